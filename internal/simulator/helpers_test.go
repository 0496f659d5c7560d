package simulator

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testBackupID = "00a1b68c-c7f5-4a52-9eac-d1c2e3f48f0e"
	testRegion   = "cn-bj2"
	testZone     = "cn-bj2-04"
	testGroup    = "mfweUQnQ"
)

var (
	testAccount  = Account{PublicKey: "test-public-key", PrivateKey: "test-private-key"}
	otherAccount = Account{PublicKey: "other-public-key", PrivateKey: "other-private-key"}
	testContent  = []byte("REDIS0009 simulated rdb payload")
	testClient   = &http.Client{Timeout: 60 * time.Second}
)

// fakeClock is an injectable clock that only moves when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func testBackup() Backup {
	return Backup{ID: testBackupID, Region: testRegion, Zone: testZone, GroupID: testGroup, Name: "nightly", Content: testContent}
}

// startServer starts a simulator with the test account, the test backup and
// a fake clock unless cfg says otherwise, and closes it after the test.
func startServer(t *testing.T, cfg Config) (*Server, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	if cfg.Accounts == nil {
		cfg.Accounts = []Account{testAccount, otherAccount}
	}
	if cfg.Backups == nil {
		cfg.Backups = []Backup{testBackup()}
	}
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s, clock
}

// testSign is the test's own rendering of the documented algorithm, kept
// separate from the simulator's so a bug in one is caught by the other.
func testSign(params map[string]string, privateKey string) string {
	var text string
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if name != "Signature" {
			text += name + params[name]
		}
	}
	sum := sha1.Sum([]byte(text + privateKey))
	return hex.EncodeToString(sum[:])
}

// signed returns params plus PublicKey and a valid Signature for account.
func signed(account Account, params map[string]string) map[string]string {
	out := maps.Clone(params)
	out["PublicKey"] = account.PublicKey
	if account.SecurityToken != "" {
		out["SecurityToken"] = account.SecurityToken
	}
	out["Signature"] = testSign(out, account.PrivateKey)
	return out
}

// answer is a decoded API response.
type answer struct {
	status int
	raw    []byte
	fields map[string]any
}

func (a answer) retCode(t *testing.T) int {
	t.Helper()
	switch v := a.fields["RetCode"].(type) {
	case float64:
		return int(v)
	default:
		t.Fatalf("RetCode is %T %v in %s", v, v, a.raw)
		return 0
	}
}

func (a answer) str(name string) string {
	s, _ := a.fields[name].(string)
	return s
}

// postForm sends params the way the official SDK does: POST with Action in
// the query string and every parameter in a form body.
func postForm(t *testing.T, s *Server, params map[string]string) answer {
	t.Helper()
	a, err := tryPostForm(s, params)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	return a
}

// tryPostForm is postForm for goroutines other than the test's own, which
// must not call t.Fatal.
func tryPostForm(s *Server, params map[string]string) (answer, error) {
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	endpoint := s.URL() + "?Action=" + url.QueryEscape(params["Action"])
	resp, err := testClient.Post(endpoint, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return answer{}, err
	}
	return decodeAnswer(resp)
}

func readAnswer(t *testing.T, resp *http.Response) answer {
	t.Helper()
	a, err := decodeAnswer(resp)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return a
}

func decodeAnswer(resp *http.Response) (answer, error) {
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &a.fields)
	}
	return a, nil
}

// callAPI signs params for account and posts them.
func callAPI(t *testing.T, s *Server, account Account, params map[string]string) answer {
	t.Helper()
	return postForm(t, s, signed(account, params))
}

func backupURLParams() map[string]string {
	return map[string]string{"Action": "DescribeURedisBackupURL", "Region": testRegion, "Zone": testZone, "BackupId": testBackupID, "GroupId": testGroup}
}

func wantRetCode(t *testing.T, a answer, want int) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("HTTP %d, want 200; body %s", a.status, a.raw)
	}
	if got := a.retCode(t); got != want {
		t.Fatalf("RetCode %d, want %d; body %s", got, want, a.raw)
	}
}

// fetch GETs a link verbatim and returns status and body.
func fetch(t *testing.T, link string) (int, []byte) {
	t.Helper()
	resp, err := testClient.Get(link)
	if err != nil {
		t.Fatalf("GET link: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// waitFor polls cond generously: loaded CI machines are slow.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logRecorder collects Logf output for checks that no secret is logged.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
