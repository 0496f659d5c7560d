package simulator

import (
	"math"
	"time"
)

// rateLimiter keeps one token bucket per account. It runs on the server's
// (injectable) clock so that throttling is deterministic in tests.
// Guarded by Server.mu.
type rateLimiter struct {
	rate    float64 // tokens per second; 0 = unlimited
	burst   float64
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst int) rateLimiter {
	if rate <= 0 {
		return rateLimiter{}
	}
	b := float64(burst)
	if burst <= 0 {
		b = math.Max(1, math.Ceil(rate))
	}
	return rateLimiter{rate: rate, burst: b, buckets: map[string]*tokenBucket{}}
}

// allow takes a token from the account's bucket if one is there; a refused
// call takes nothing, so a client that backs off gets through again.
func (l *rateLimiter) allow(publicKey string, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	bucket, ok := l.buckets[publicKey]
	if !ok {
		bucket = &tokenBucket{tokens: l.burst, last: now}
		l.buckets[publicKey] = bucket
	}
	if elapsed := now.Sub(bucket.last).Seconds(); elapsed > 0 {
		bucket.tokens = math.Min(l.burst, bucket.tokens+elapsed*l.rate)
		bucket.last = now
	}
	if bucket.tokens < 1 {
		return false
	}
	bucket.tokens--
	return true
}

func (s *Server) allowRate(publicKey string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limiter.allow(publicKey, now)
}
