package cloud

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

var (
	throttled153 = &APIError{Action: ActionDescribeBackupURL, RetCode: RetCodeThrottled}
	throttled429 = &HTTPStatusError{Action: ActionDescribeBackupURL, StatusCode: http.StatusTooManyRequests}
)

// fakeClock is a settable clock for a Throttle.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func newFakeThrottle() (*Throttle, *fakeClock) {
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	th := NewThrottle(0, 1)
	th.now = clock.Now
	return th, clock
}

func TestThrottlePausesOnlyTheThrottledKey(t *testing.T) {
	th, _ := newFakeThrottle()
	th.Observe("key-a", throttled153)

	if got := th.remaining("key-a"); got != time.Second {
		t.Fatalf("key-a must be paused for 1s, remaining %v", got)
	}
	if got := th.remaining("key-b"); got > 0 {
		t.Fatalf("key-b must not be paused, remaining %v", got)
	}
	// The clock is frozen: key-a's pause never ends, key-b goes at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := th.Wait(ctx, "key-b"); err != nil {
		t.Fatalf("Wait for key-b: %v", err)
	}
	if waited := time.Since(start); waited > 500*time.Millisecond {
		t.Fatalf("key-b waited %v for key-a's pause", waited)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if err := th.Wait(short, "key-a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait for key-a = %v, want it to wait out the pause until the context ends", err)
	}

	// HTTP 429 pauses its key the same way.
	th.Observe("key-c", throttled429)
	if got := th.remaining("key-c"); got != time.Second {
		t.Fatalf("HTTP 429 must pause key-c for 1s, remaining %v", got)
	}
	if got := th.remaining("key-b"); got > 0 {
		t.Fatalf("key-b must still not be paused, remaining %v", got)
	}
}

func TestThrottlePauseDoublesAndResetsPerKey(t *testing.T) {
	th, clock := newFakeThrottle()

	// key-a is throttled again and again: 1s, 2s, 4s, ... up to 1 min.
	for i, seconds := range []int{1, 2, 4, 8, 16, 32, 60, 60} {
		pause := time.Duration(seconds) * time.Second
		th.Observe("key-a", throttled153)
		if got := th.remaining("key-a"); got != pause {
			t.Fatalf("throttled answer %d: key-a paused %v, want %v", i+1, got, pause)
		}
		clock.Advance(pause)
	}

	// key-b's first throttled answer starts at 1s, whatever key-a's state.
	th.Observe("key-a", throttled153)
	th.Observe("key-b", throttled429)
	if got := th.remaining("key-b"); got != time.Second {
		t.Fatalf("key-b paused %v, want 1s (its own first pause)", got)
	}

	// A call of key-a that was not throttled (one already in flight) resets
	// key-a's penalty but leaves its pause, and key-b's doubling, alone.
	th.Observe("key-a", nil)
	if got := th.remaining("key-a"); got != time.Minute {
		t.Fatalf("a success must not end key-a's current pause, remaining %v", got)
	}
	th.Observe("key-b", throttled153)
	if got := th.remaining("key-b"); got != 2*time.Second {
		t.Fatalf("key-b's second throttled answer: paused %v, want 2s", got)
	}
	clock.Advance(time.Minute)
	th.Observe("key-a", throttled153)
	if got := th.remaining("key-a"); got != time.Second {
		t.Fatalf("after the reset key-a must be paused 1s again, got %v", got)
	}
	if _, ok := th.paused["key-b"]; !ok {
		t.Fatal("key-b's doubling state must survive key-a's reset")
	}

	// A key-b call that is not throttled after its pause forgets key-b.
	th.Observe("key-b", nil)
	if _, ok := th.paused["key-b"]; ok {
		t.Fatal("key-b's state must be dropped once its pause is over and its penalty reset")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := th.Wait(ctx, "key-a"); err == nil {
		t.Fatal("Wait must give up when the context ends")
	}
}

func TestThrottleForgetsKeysSoItsTableStaysBounded(t *testing.T) {
	th, clock := newFakeThrottle()

	// 100,000 keys, each throttled once and never used again, at 10 calls a
	// second: only the keys of the last few minutes may be remembered.
	const perSecond, keys = 10, 100_000
	largest := 0
	for i := range keys {
		th.Observe("key-"+strconv.Itoa(i), throttled153)
		largest = max(largest, len(th.paused))
		clock.Advance(time.Second / perSecond)
	}
	// A pause ends within maxPenalty, is forgotten maxPenalty later, and the
	// sweep runs once per maxPenalty: three minutes of keys at most.
	if bound := 3 * 60 * perSecond; largest > bound {
		t.Fatalf("the table held %d keys, want at most %d", largest, bound)
	}
	clock.Advance(3 * time.Minute)
	th.Observe("last", nil)
	if len(th.paused) != 0 {
		t.Fatalf("%d keys remembered long after their pauses", len(th.paused))
	}

	// Keys whose calls succeed after their pause are dropped at once.
	for i := range 1000 {
		th.Observe("key-"+strconv.Itoa(i), throttled429)
	}
	clock.Advance(time.Second)
	for i := range 1000 {
		th.Observe("key-"+strconv.Itoa(i), nil)
	}
	if len(th.paused) != 0 {
		t.Fatalf("%d keys remembered after successful calls", len(th.paused))
	}
}

func TestThrottleWaitsOutThePause(t *testing.T) {
	th := NewThrottle(0, 1)
	th.minPenalty = 100 * time.Millisecond

	th.Observe("key-a", throttled153)
	start := time.Now()
	if err := th.Wait(context.Background(), "key-a"); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 80*time.Millisecond {
		t.Fatalf("waited %v after a throttled answer, want about 100ms", waited)
	}
}

func TestThrottlePauseHoldsBackCallsWaitingForAToken(t *testing.T) {
	th, _ := newFakeThrottle()
	th.limiter = NewThrottle(10, 1).limiter
	if err := th.Wait(context.Background(), "key-b"); err != nil { // the burst token
		t.Fatal(err)
	}
	// key-a passes the pause check and waits 100ms for a token; meanwhile a
	// throttled answer for key-a arrives (the fake clock never ends it).
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- th.Wait(ctx, "key-a") }()
	time.Sleep(30 * time.Millisecond)
	th.Observe("key-a", throttled153)
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait for key-a = %v: a call must not go out once its key is paused", err)
	}
}

func TestThrottleRateLimits(t *testing.T) {
	th := NewThrottle(20, 2)
	start := time.Now()
	for range 6 {
		if err := th.Wait(context.Background(), "key"); err != nil {
			t.Fatal(err)
		}
	}
	// 2 at once, then 4 more at 20/s: at least 150ms.
	if elapsed := time.Since(start); elapsed < 150*time.Millisecond {
		t.Fatalf("6 calls at 20 qps burst 2 took %v", elapsed)
	}
}
