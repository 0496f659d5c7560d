// Package schedule holds the operator's timing decisions as pure functions:
// when to refresh a link, how long to back off after a failure, and what a
// reconcile should do now. Nothing here reads a clock or draws a random
// number itself; callers pass both in, so every rule is table-tested.
package schedule

import (
	"math"
	"time"
)

// Policy sets when links are refreshed.
type Policy struct {
	// RemainingFraction of a link's lifetime left when it is refreshed by
	// default (cert-manager renews at 2/3 of a certificate's life likewise).
	RemainingFraction float64
	// MinMargin: every refresh is planned at least this long before expiry,
	// so a slow API call or a little clock skew cannot leave an expired link.
	MinMargin time.Duration
	// MinUsefulLifetime: a link that lives less than this is reported as
	// unusable instead of being refreshed in a tight loop.
	MinUsefulLifetime time.Duration
	// JitterFraction of the refresh window by which a refresh may be moved
	// earlier at random, so that resources created together spread out.
	JitterFraction float64
	// RetryFraction of the time a still valid link has left is the longest
	// a retry after a transient failure waits, so that several retries fit
	// before the link expires whatever the backoff has grown to.
	RetryFraction float64
	// ForcedRefreshMinInterval is the shortest time between a resource's
	// last attempt and a forced refresh (the refresh-requested-at
	// annotation); a request sooner is acknowledged and not acted upon.
	ForcedRefreshMinInterval time.Duration
}

// DefaultPolicy suits links that live from minutes to days.
func DefaultPolicy() Policy {
	return Policy{
		RemainingFraction: 1.0 / 3,
		MinMargin:         10 * time.Second,
		MinUsefulLifetime: 30 * time.Second,
		JitterFraction:    0.1,
		RetryFraction:     0.25,

		ForcedRefreshMinInterval: 30 * time.Second,
	}
}

// RefreshTime returns when to refresh a link obtained at obtainedAt that
// expires at expiresAt. refreshBefore, when positive, replaces the default
// window (RemainingFraction of the lifetime); jitter01 is a random number in
// [0, 1) that moves the refresh earlier by up to JitterFraction of the window.
// The result is in whole seconds, never after expiresAt - MinMargin (unless
// the whole lifetime is shorter than that) and never before obtainedAt.
func (p Policy) RefreshTime(obtainedAt, expiresAt time.Time, refreshBefore time.Duration, jitter01 float64) time.Time {
	lifetime := expiresAt.Sub(obtainedAt)
	if lifetime <= 0 {
		return obtainedAt.Truncate(time.Second)
	}
	window := p.window(lifetime, refreshBefore)
	window += time.Duration(clamp01(jitter01) * p.JitterFraction * float64(window))
	at := expiresAt.Add(-window)
	if latest := expiresAt.Add(-p.MinMargin); at.After(latest) {
		at = latest
	}
	if at.Before(obtainedAt) {
		at = obtainedAt
	}
	return wholeSecondBefore(at, expiresAt)
}

// window is how long before expiry the refresh is due, before jitter.
func (p Policy) window(lifetime, refreshBefore time.Duration) time.Duration {
	window := time.Duration(float64(lifetime) * p.RemainingFraction)
	// A refreshBefore as long as half the lifetime or more would refresh
	// (almost) as soon as a link arrives; fall back to the default then, as
	// cert-manager does for a renewBefore longer than the certificate.
	if refreshBefore > 0 && refreshBefore <= lifetime/2 {
		window = refreshBefore
	}
	return max(window, p.MinMargin)
}

// minRetryDelay is the shortest wait before a retry: nothing retries in a
// tighter loop than this, however little time a link has left.
const minRetryDelay = time.Second

// RetryDelay caps a transient failure's backoff delay while a link is still
// valid: the retry waits no longer than RetryFraction of untilExpiry, and
// at least a second. Once the link has expired (untilExpiry <= 0) the
// backoff applies unchanged. The result is in whole seconds.
func (p Policy) RetryDelay(backoff, untilExpiry time.Duration) time.Duration {
	if untilExpiry <= 0 || p.RetryFraction <= 0 {
		return backoff
	}
	limit := max(time.Duration(float64(untilExpiry)*p.RetryFraction).Truncate(time.Second), minRetryDelay)
	return min(backoff, limit)
}

// TooShort reports whether a link's lifetime is below the useful minimum.
func (p Policy) TooShort(obtainedAt, expiresAt time.Time) bool {
	return expiresAt.Sub(obtainedAt) < p.MinUsefulLifetime
}

// wholeSecondBefore truncates t to whole seconds, keeping it before limit.
func wholeSecondBefore(t, limit time.Time) time.Time {
	whole := t.Truncate(time.Second)
	if !whole.Before(limit) {
		return limit.Add(-time.Second).Truncate(time.Second)
	}
	return whole
}

func clamp01(x float64) float64 {
	if math.IsNaN(x) || x < 0 {
		return 0
	}
	if x >= 1 {
		return math.Nextafter(1, 0)
	}
	return x
}

// Backoff is an exponential backoff with jitter: the n-th consecutive
// failure (n >= 1) waits base*2^(n-1), capped at maxDelay, then scaled by a
// random factor in [1/2, 1] so that resources failing together do not retry
// together. The result is in whole seconds and at least one second.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// Delay returns the wait after the failures-th consecutive failure.
func (b Backoff) Delay(failures int32, jitter01 float64) time.Duration {
	if failures < 1 {
		failures = 1
	}
	delay := b.Max
	if exp := failures - 1; exp < 32 {
		if d := b.Base << exp; d > 0 && d < b.Max {
			delay = d
		}
	}
	delay = time.Duration(float64(delay) * (0.5 + clamp01(jitter01)/2))
	return max(delay.Truncate(time.Second), time.Second)
}
