package cloud

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throttle paces every call a Client makes in two ways:
//
//   - a token bucket shared by all calls, whatever their credentials, so that
//     a thousand resources cannot burn the operator's budget;
//   - a pause per public key after the provider answers "slow down"
//     (RetCode 153 or HTTP 429) for that key. The pause starts at 1 s,
//     doubles while the key keeps being throttled, up to 1 min, and resets
//     after a call with that key that was not throttled. Calls with other
//     keys are not paused: one tenant's throttled account does not stall the
//     others.
//
// Wait blocks its caller for the whole pause: a caller that holds something
// shared while it waits (a reconcile worker) holds it that long.
//
// The pause state of a key is dropped once its pause is over and its penalty
// has reset, or once its pause has been over for maxPenalty without the key
// being throttled again (a key that is not used any more). So the table only
// holds keys throttled in the last three minutes at most: no more keys than
// calls made in that time (which the token bucket bounds), however many keys
// the operator has ever seen.
type Throttle struct {
	limiter    *rate.Limiter
	minPenalty time.Duration
	maxPenalty time.Duration
	now        func() time.Time

	mu     sync.Mutex
	paused map[string]*pause // by public key
	// nextSweep is when forgotten keys are next looked for.
	nextSweep time.Time
}

// pause is one public key's throttling state.
type pause struct {
	until   time.Time     // no call with the key before this
	penalty time.Duration // the next throttled answer's pause
}

// NewThrottle allows qps calls per second with bursts of burst calls; a
// non-positive qps means no limit. A throttled answer pauses the calls made
// with the same public key for 1 s, doubling up to 1 min.
func NewThrottle(qps float64, burst int) *Throttle {
	limit := rate.Limit(qps)
	if qps <= 0 {
		limit = rate.Inf
	}
	return &Throttle{
		limiter:    rate.NewLimiter(limit, max(burst, 1)),
		minPenalty: time.Second,
		maxPenalty: time.Minute,
		now:        time.Now,
		paused:     map[string]*pause{},
	}
}

// Wait blocks until a call with publicKey may be made or ctx ends: while
// that key is paused, and for a token of the shared bucket. A pause that
// began while the caller waited for its token still holds it back (the token
// is spent, and another one taken after the pause), so that no call goes out
// with a key that is known to be throttled.
func (t *Throttle) Wait(ctx context.Context, publicKey string) error {
	for {
		if err := t.waitPause(ctx, publicKey); err != nil {
			return err
		}
		if err := t.limiter.Wait(ctx); err != nil {
			return err
		}
		if t.remaining(publicKey) <= 0 {
			return nil
		}
	}
}

// waitPause blocks while publicKey is paused.
func (t *Throttle) waitPause(ctx context.Context, publicKey string) error {
	for {
		remaining := t.remaining(publicKey)
		if remaining <= 0 {
			return nil
		}
		timer := time.NewTimer(remaining)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// remaining is how long calls with publicKey must still wait.
func (t *Throttle) remaining(publicKey string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.paused[publicKey]
	if !ok {
		return 0
	}
	return p.until.Sub(t.now())
}

// Observe feeds back the result of a call made with publicKey: a throttled
// answer pauses that key (and doubles its next pause); any other result
// resets the key's penalty.
func (t *Throttle) Observe(publicKey string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.sweep(now)
	p, ok := t.paused[publicKey]
	if !IsThrottled(err) {
		if !ok {
			return
		}
		// Calls already in flight when the pause began may still succeed:
		// the pause stands, but the next one starts small again.
		p.penalty = t.minPenalty
		if t.forgotten(p, now) {
			delete(t.paused, publicKey)
		}
		return
	}
	if !ok || t.forgotten(p, now) {
		p = &pause{penalty: t.minPenalty}
		t.paused[publicKey] = p
	}
	if until := now.Add(p.penalty); until.After(p.until) {
		p.until = until
	}
	p.penalty = min(2*p.penalty, t.maxPenalty)
}

// forgotten reports whether p is over and says nothing any more: its
// penalty was reset by a call that was not throttled, or it ended maxPenalty
// ago and the key has not been throttled since.
func (t *Throttle) forgotten(p *pause, now time.Time) bool {
	over := now.Sub(p.until)
	return over >= 0 && (p.penalty == t.minPenalty || over >= t.maxPenalty)
}

// sweep drops forgotten keys, at most once per maxPenalty. Must be called
// with t.mu held.
func (t *Throttle) sweep(now time.Time) {
	if now.Before(t.nextSweep) {
		return
	}
	t.nextSweep = now.Add(t.maxPenalty)
	for key, p := range t.paused {
		if t.forgotten(p, now) {
			delete(t.paused, key)
		}
	}
}
