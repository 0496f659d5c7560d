package cloud

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
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

func TestOutcome(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, "success"},
		{&APIError{RetCode: 171}, "retcode_171"},
		{&APIError{RetCode: 153}, "retcode_153"},
		{&APIError{RetCode: 20004}, "retcode_20004"},
		{&APIError{RetCode: 987654}, "retcode_other"},
		{&HTTPStatusError{StatusCode: 429}, "http_429"},
		{&HTTPStatusError{StatusCode: 503}, "http_5xx"},
		{&HTTPStatusError{StatusCode: 999}, "http_5xx"},
		{&HTTPStatusError{StatusCode: 403}, "http_4xx"},
		{&ResponseError{}, "invalid_response"},
		{&TransportError{Err: context.DeadlineExceeded}, "transport_error"},
	}
	for _, tt := range tests {
		if got := Outcome(tt.err); got != tt.want {
			t.Errorf("Outcome(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

// The label takes the known codes, and retcode_other for any other: the
// codes of cloud-api-facts.md are known, and docs/operations.md lists
// exactly the known ones.
func TestOutcomeNamesOnlyKnownRetCodes(t *testing.T) {
	for _, code := range []int{1 << 40, -(1 << 40), -1, 20001, 20208, 999} {
		if outcome := Outcome(&APIError{RetCode: code}); outcome != "retcode_other" {
			t.Errorf("Outcome(RetCode %d) = %s, want retcode_other", code, outcome)
		}
	}
	for _, code := range []int{110, 130, 150, 153, 160, 161, 170, 171, 172, 174, 292, 293, 294, 295, 299, 20003, 20004, 20202, 20206} {
		if outcome := Outcome(&APIError{RetCode: code}); outcome != fmt.Sprintf("retcode_%d", code) {
			t.Errorf("RetCode %d of cloud-api-facts.md gets %s", code, outcome)
		}
	}
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := regexp.MustCompile(`for a RetCode the operator knows \(([0-9, ]+)\)`).FindSubmatch(doc)
	if listed == nil {
		t.Fatal("docs/operations.md no longer lists the known RetCodes")
	}
	var codes []int
	for _, field := range strings.Split(string(listed[1]), ", ") {
		code, err := strconv.Atoi(field)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, code)
	}
	if want := slices.Sorted(maps.Keys(knownRetCodes)); !slices.Equal(codes, want) {
		t.Errorf("docs/operations.md lists the RetCodes %v, the code knows %v", codes, want)
	}
}
