package cloud

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throttle paces every call a Client makes: a token bucket shared by all
// resources (so that a thousand resources cannot burn the account's quota),
// and a global pause after the provider answers "slow down" (RetCode 153 or
// HTTP 429). The pause doubles while throttling continues and resets after a
// call that was not throttled, so one throttled answer slows the whole
// operator down, not just the resource that received it.
type Throttle struct {
	limiter    *rate.Limiter
	minPenalty time.Duration
	maxPenalty time.Duration
	now        func() time.Time

	mu          sync.Mutex
	pausedUntil time.Time
	penalty     time.Duration
}

// NewThrottle allows qps calls per second with bursts of burst calls; a
// non-positive qps means no limit. Throttled answers pause all calls for 1 s,
// doubling up to 1 min.
func NewThrottle(qps float64, burst int) *Throttle {
	limit := rate.Limit(qps)
	if qps <= 0 {
		limit = rate.Inf
	}
	return &Throttle{
		limiter:    rate.NewLimiter(limit, max(burst, 1)),
		minPenalty: time.Second,
		maxPenalty: time.Minute,
		penalty:    time.Second,
		now:        time.Now,
	}
}

// Wait blocks until a call may be made or ctx ends.
func (t *Throttle) Wait(ctx context.Context) error {
	for {
		t.mu.Lock()
		pause := t.pausedUntil.Sub(t.now())
		t.mu.Unlock()
		if pause <= 0 {
			break
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
	return t.limiter.Wait(ctx)
}

// Observe feeds a call's result back: throttled answers extend the pause.
func (t *Throttle) Observe(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !IsThrottled(err) {
		t.penalty = t.minPenalty
		return
	}
	if until := t.now().Add(t.penalty); until.After(t.pausedUntil) {
		t.pausedUntil = until
	}
	t.penalty = min(2*t.penalty, t.maxPenalty)
}
