package cloud

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingGateway answers every call with a fresh link after delay.
func countingGateway(t *testing.T, delay time.Duration) (*Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(delay)
		_, _ = w.Write([]byte(`{"RetCode":0,"BackupPath":"https://s.example.com/x?Expires=4102444800"}`))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Options{Endpoint: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

func TestSharedResolverCoalescesOnlyIdenticalCredentials(t *testing.T) {
	client, calls := countingGateway(t, 200*time.Millisecond)
	shared := NewSharedResolver(client)
	req := BackupURLRequest{Region: "r", BackupID: "b"}
	other := Credentials{PublicKey: testCreds.PublicKey, PrivateKey: "another-private-key"}

	var wg sync.WaitGroup
	for i := range 6 {
		creds := testCreds
		if i%2 == 1 {
			creds = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := shared.ResolveBackupLink(context.Background(), creds, req, 0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := calls.Load(); got != 2 {
		t.Fatalf("%d calls, want one per distinct credentials", got)
	}
}

func TestSharedResolverReusesRecentAnswersWithinMaxAge(t *testing.T) {
	client, calls := countingGateway(t, 0)
	shared := NewSharedResolver(client)
	req := BackupURLRequest{Region: "r", BackupID: "b"}
	ctx := context.Background()

	first, err := shared.ResolveBackupLink(ctx, testCreds, req, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := shared.ResolveBackupLink(ctx, testCreds, req, time.Minute)
	if calls.Load() != 1 || again.URL != first.URL {
		t.Fatalf("a recent answer must be reused (calls %d)", calls.Load())
	}
	if _, err := shared.ResolveBackupLink(ctx, testCreds, req, 0); err != nil || calls.Load() != 2 {
		t.Fatalf("maxAge 0 must make a new call (calls %d, err %v)", calls.Load(), err)
	}
	if _, err := shared.ResolveBackupLink(ctx, testCreds, BackupURLRequest{Region: "r", BackupID: "other"}, time.Minute); err != nil || calls.Load() != 3 {
		t.Fatalf("another backup must not share (calls %d)", calls.Load())
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

func TestOutcome(t *testing.T) {
	tests := map[string]error{
		"success":          nil,
		"retcode_171":      &APIError{RetCode: 171},
		"http_429":         &HTTPStatusError{StatusCode: 429},
		"http_5xx":         &HTTPStatusError{StatusCode: 503},
		"http_4xx":         &HTTPStatusError{StatusCode: 403},
		"invalid_response": &ResponseError{},
		"transport_error":  &TransportError{Err: context.DeadlineExceeded},
	}
	for want, err := range tests {
		if got := Outcome(err); got != want {
			t.Errorf("Outcome(%v) = %s, want %s", err, got, want)
		}
	}
}
