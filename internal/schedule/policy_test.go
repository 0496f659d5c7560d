package schedule

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestRefreshTime(t *testing.T) {
	p := DefaultPolicy()
	day := 24 * time.Hour
	tests := []struct {
		name          string
		lifetime      time.Duration
		refreshBefore time.Duration
		jitter        float64
		want          time.Duration // after t0
	}{
		{name: "10s: the margin wins over a third", lifetime: 10 * time.Second, want: 0},
		{name: "24s: the margin wins", lifetime: 24 * time.Second, want: 14 * time.Second},
		{name: "45s: a third remains", lifetime: 45 * time.Second, want: 30 * time.Second},
		{name: "60s: a third remains", lifetime: time.Minute, want: 40 * time.Second},
		{name: "5m, whole seconds", lifetime: 5 * time.Minute, want: 200 * time.Second},
		{name: "1h", lifetime: time.Hour, want: 40 * time.Minute},
		{name: "4h", lifetime: 4 * time.Hour, want: 160 * time.Minute},
		{name: "7d", lifetime: 7 * day, want: 7 * day * 2 / 3},
		{name: "7d with a 1-third lifetime and odd nanoseconds", lifetime: 7*day + 1, want: 7 * day * 2 / 3},
		{name: "refreshBefore", lifetime: time.Hour, refreshBefore: 10 * time.Minute, want: 50 * time.Minute},
		{name: "refreshBefore under the margin", lifetime: time.Hour, refreshBefore: time.Second, want: time.Hour - p.MinMargin},
		{name: "refreshBefore over half the lifetime falls back", lifetime: time.Hour, refreshBefore: 45 * time.Minute, want: 40 * time.Minute},
		{name: "full jitter moves earlier by a tenth of the window", lifetime: time.Hour, jitter: 0.999999999, want: 38 * time.Minute},
		{name: "half jitter", lifetime: time.Hour, jitter: 0.5, want: 39 * time.Minute},
		{name: "jitter on refreshBefore", lifetime: 7 * day, refreshBefore: day, jitter: 0.5, want: 6*day - day/20},
		{name: "out-of-range jitter is clamped", lifetime: time.Hour, jitter: 7, want: 38 * time.Minute},
		{name: "expired at birth", lifetime: -time.Minute, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.RefreshTime(t0, t0.Add(tt.lifetime), tt.refreshBefore, tt.jitter)
			if want := t0.Add(tt.want).Truncate(time.Second); !got.Equal(want) {
				t.Fatalf("RefreshTime() = +%v, want +%v", got.Sub(t0), want.Sub(t0))
			}
		})
	}
}

func TestRefreshTimeInvariants(t *testing.T) {
	p := DefaultPolicy()
	obtained := t0.Add(123456789 * time.Nanosecond)
	for lifetime := 10 * time.Second; lifetime <= 7*24*time.Hour; lifetime = lifetime*3/2 + 7*time.Millisecond {
		for _, refreshBefore := range []time.Duration{0, 5 * time.Second, time.Minute, time.Hour} {
			expires := obtained.Add(lifetime)
			earliest := p.RefreshTime(obtained, expires, refreshBefore, 0.999999)
			latest := p.RefreshTime(obtained, expires, refreshBefore, 0)
			for _, at := range []time.Time{earliest, latest} {
				if at.Nanosecond() != 0 {
					t.Fatalf("lifetime %v: %v is not a whole second", lifetime, at)
				}
				if !at.Before(expires) {
					t.Fatalf("lifetime %v: refresh %v not before expiry %v", lifetime, at, expires)
				}
				if lifetime >= 2*p.MinMargin && at.After(expires.Add(-p.MinMargin)) {
					t.Fatalf("lifetime %v refreshBefore %v: refresh at %v breaks the %v margin", lifetime, refreshBefore, expires.Sub(at), p.MinMargin)
				}
			}
			window := expires.Sub(latest)
			if spread := latest.Sub(earliest); spread > time.Duration(p.JitterFraction*float64(window))+time.Second {
				t.Fatalf("lifetime %v: jitter spread %v exceeds %v of the %v window", lifetime, spread, p.JitterFraction, window)
			}
		}
	}
}

func TestTooShort(t *testing.T) {
	p := DefaultPolicy()
	if !p.TooShort(t0, t0.Add(29*time.Second)) || p.TooShort(t0, t0.Add(30*time.Second)) {
		t.Fatal("TooShort must compare against MinUsefulLifetime")
	}
	if !p.TooShort(t0, t0.Add(-time.Hour)) {
		t.Fatal("an already expired link is too short")
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 5 * time.Second, Max: 5 * time.Minute}
	tests := []struct {
		failures int32
		jitter   float64
		want     time.Duration
	}{
		{0, 0.999999, 4 * time.Second}, // treated as the first failure
		{1, 0.999999, 4 * time.Second}, // 5s * ~1, truncated
		{1, 0, 2 * time.Second},        // 5s * 1/2, truncated
		{2, 0.5, 7 * time.Second},      // 10s * 3/4
		{4, 0.999999, 39 * time.Second},
		{7, 0.999999, 4*time.Minute + 59*time.Second}, // 320s capped at 300s
		{40, 0, 150 * time.Second},                    // no overflow
		{1 << 30, 0.5, 225 * time.Second},
	}
	for _, tt := range tests {
		if got := b.Delay(tt.failures, tt.jitter); got != tt.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.failures, tt.jitter, got, tt.want)
		}
	}
	if got := (Backoff{Base: time.Millisecond, Max: time.Millisecond}).Delay(1, 0); got != time.Second {
		t.Errorf("Delay must be at least a second, got %v", got)
	}
}

func TestRetryDelay(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		name                 string
		backoff, untilExpiry time.Duration
		want                 time.Duration
	}{
		{"short backoff, plenty of time: the backoff", 5 * time.Second, time.Hour, 5 * time.Second},
		{"long backoff, plenty of time: the backoff", 5 * time.Minute, time.Hour, 5 * time.Minute},
		{"long backoff, 20s left: a quarter of them", 5 * time.Minute, 20 * time.Second, 5 * time.Second},
		{"a quarter is rounded down to whole seconds", 5 * time.Minute, 10 * time.Second, 2 * time.Second},
		{"3s left: the one-second floor", 5 * time.Minute, 3 * time.Second, time.Second},
		{"a fraction of a second left: still the floor", 5 * time.Minute, 300 * time.Millisecond, time.Second},
		{"backoff below the cap: the backoff", 2 * time.Second, 20 * time.Second, 2 * time.Second},
		{"expired: the backoff unchanged", 5 * time.Minute, 0, 5 * time.Minute},
		{"long expired: the backoff unchanged", 5 * time.Minute, -time.Hour, 5 * time.Minute},
	}
	for _, tt := range tests {
		if got := p.RetryDelay(tt.backoff, tt.untilExpiry); got != tt.want {
			t.Errorf("%s: RetryDelay(%v, %v) = %v, want %v", tt.name, tt.backoff, tt.untilExpiry, got, tt.want)
		}
	}
}

// TestRetriesFitBeforeExpiry: however large the backoff, a link with T left
// gets a retry every quarter of what remains, so that many attempts fit
// before it expires (log(T/1s)/log(4/3) + the one-second tail).
func TestRetriesFitBeforeExpiry(t *testing.T) {
	p := DefaultPolicy()
	for _, left := range []time.Duration{10 * time.Second, time.Minute, 20 * time.Minute} {
		attempts, remaining := 0, left
		for remaining > 0 {
			remaining -= p.RetryDelay(time.Hour, remaining)
			attempts++
		}
		if attempts < 8 {
			t.Errorf("with %v left only %d retries fit before expiry", left, attempts)
		}
	}
}
