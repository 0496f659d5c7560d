package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFaultKinds(t *testing.T) {
	t.Run("latency then normal answer", func(t *testing.T) {
		s, _ := startServer(t, Config{})
		s.QueueFaults(Fault{Kind: FaultLatency, Latency: 20 * time.Millisecond})
		wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 0)
		if c := s.Calls()[0]; c.Fault != string(FaultLatency) || c.RetCode != 0 {
			t.Errorf("call %+v", c)
		}
	})
	t.Run("HTTP status", func(t *testing.T) {
		s, _ := startServer(t, Config{})
		s.QueueFaults(Fault{Kind: FaultHTTPStatus, HTTPStatus: 503}, Fault{Kind: FaultHTTPStatus})
		for _, want := range []int{503, 500} {
			a := callAPI(t, s, testAccount, backupURLParams())
			if a.status != want || a.fields != nil {
				t.Errorf("status %d body %q, want %d and no JSON", a.status, a.raw, want)
			}
		}
		if c := s.Calls()[0]; c.HTTPStatus != 503 || c.RetCode != -1 {
			t.Errorf("call %+v", c)
		}
	})
	t.Run("RetCode with default and own message", func(t *testing.T) {
		s, _ := startServer(t, Config{})
		s.QueueFaults(Fault{Kind: FaultRetCode, RetCode: 153}, Fault{Kind: FaultRetCode, RetCode: 20003}, Fault{Kind: FaultRetCode, RetCode: 171, Message: "custom"})
		for _, want := range []struct {
			code int
			msg  string
		}{{153, "request throttled"}, {20003, "failed to get info"}, {171, "custom"}} {
			a := callAPI(t, s, testAccount, backupURLParams())
			wantRetCode(t, a, want.code)
			if a.str("Message") != want.msg || a.str("Action") != "DescribeURedisBackupURLResponse" {
				t.Errorf("answer %s", a.raw)
			}
		}
	})
	t.Run("malformed JSON", func(t *testing.T) {
		s, _ := startServer(t, Config{})
		s.QueueFaults(Fault{Kind: FaultMalformedJSON})
		a := callAPI(t, s, testAccount, backupURLParams())
		var v any
		if a.status != http.StatusOK || json.Unmarshal(a.raw, &v) == nil {
			t.Errorf("status %d body %q, want 200 and invalid JSON", a.status, a.raw)
		}
	})
	t.Run("link without Expires", func(t *testing.T) {
		s, clock := startServer(t, Config{})
		s.QueueFaults(Fault{Kind: FaultLinkWithoutExpires})
		a := callAPI(t, s, testAccount, backupURLParams())
		wantRetCode(t, a, 0)
		link := a.str("BackupPath")
		if strings.Contains(link, "Expires") || a.str("BackupURL") != link+"\n" {
			t.Fatalf("links %q / %q", link, a.str("BackupURL"))
		}
		clock.Advance(365 * 24 * time.Hour)
		if status, _ := fetch(t, link); status != http.StatusOK {
			t.Errorf("link without Expires: status %d, want 200", status)
		}
	})
	t.Run("expired link", func(t *testing.T) {
		s, clock := startServer(t, Config{})
		s.QueueFaults(Fault{Kind: FaultExpiredLink})
		a := callAPI(t, s, testAccount, backupURLParams())
		wantRetCode(t, a, 0)
		_, q := linkQuery(t, a.str("BackupPath"))
		expires, err := strconv.ParseInt(q.Get("Expires"), 10, 64)
		if err != nil || expires >= clock.Now().Unix() {
			t.Fatalf("Expires %q is not in the past", q.Get("Expires"))
		}
		if status, _ := fetch(t, a.str("BackupPath")); status != http.StatusForbidden {
			t.Errorf("status %d, want 403", status)
		}
	})
	t.Run("drop connection", func(t *testing.T) {
		s, _ := startServer(t, Config{})
		s.QueueFaults(Fault{Kind: FaultDropConnection})
		form := url.Values{}
		for k, v := range signed(testAccount, backupURLParams()) {
			form.Set(k, v)
		}
		resp, err := testClient.PostForm(s.URL(), form)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got HTTP %d, want a transport error", resp.StatusCode)
		}
		if c := s.Calls()[0]; c.Fault != string(FaultDropConnection) || c.HTTPStatus != 0 {
			t.Errorf("call %+v", c)
		}
		wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 0)
	})
	t.Run("only BackupURL", func(t *testing.T) {
		s, _ := startServer(t, Config{})
		s.QueueFaults(Fault{Kind: FaultOnlyBackupURL})
		a := callAPI(t, s, testAccount, backupURLParams())
		wantRetCode(t, a, 0)
		if a.str("BackupPath") != "" || !strings.HasSuffix(a.str("BackupURL"), "\n") {
			t.Fatalf("answer %s", a.raw)
		}
		if status, _ := fetch(t, strings.TrimSpace(a.str("BackupURL"))); status != http.StatusOK {
			t.Errorf("BackupURL download: status %d", status)
		}
	})
	t.Run("documented shape", func(t *testing.T) {
		s, _ := startServer(t, Config{DocumentedShape: true})
		a := callAPI(t, s, testAccount, backupURLParams())
		wantRetCode(t, a, 0)
		token := regexp.MustCompile(`^[A-Za-z]{8}$`)
		if !token.MatchString(a.str("BackupPath")) || !token.MatchString(a.str("InnerBackupPath")) || !strings.HasSuffix(a.str("BackupURL"), "\n") {
			t.Fatalf("answer %s is not shaped like the documented example", a.raw)
		}
		if status, _ := fetch(t, strings.TrimSpace(a.str("BackupURL"))); status != http.StatusOK {
			t.Errorf("BackupURL download: status %d", status)
		}
		s.SetDocumentedShape(false)
		if a := callAPI(t, s, testAccount, backupURLParams()); !strings.HasPrefix(a.str("BackupPath"), "http") {
			t.Errorf("after SetDocumentedShape(false): BackupPath %q", a.str("BackupPath"))
		}
	})
	t.Run("empty link", func(t *testing.T) {
		s, _ := startServer(t, Config{})
		s.QueueFaults(Fault{Kind: FaultEmptyLink})
		a := callAPI(t, s, testAccount, backupURLParams())
		wantRetCode(t, a, 0)
		_, hasPath := a.fields["BackupPath"]
		_, hasURL := a.fields["BackupURL"]
		if hasPath || hasURL {
			t.Errorf("answer %s has a link", a.raw)
		}
	})
}

func TestQueueFaultsInOrder(t *testing.T) {
	s, _ := startServer(t, Config{})
	s.QueueFaults(Fault{Kind: FaultRetCode, RetCode: 150}, Fault{Kind: FaultHTTPStatus, HTTPStatus: 502})
	s.QueueFaults(Fault{Kind: FaultEmptyLink})
	for i := 0; i < 4; i++ {
		callAPI(t, s, testAccount, backupURLParams())
	}
	var got []string
	for _, c := range s.Calls() {
		got = append(got, c.Fault+"/"+strconv.Itoa(c.RetCode)+"/"+strconv.Itoa(c.HTTPStatus))
	}
	want := "[retcode/150/200 http-status/-1/502 empty-link/0/200 /0/200]"
	if g := "[" + strings.Join(got, " ") + "]"; g != want {
		t.Errorf("calls %s, want %s", g, want)
	}

	s.QueueFaults(Fault{Kind: FaultRetCode}, Fault{Kind: FaultRetCode})
	s.SetLatency(time.Hour)
	s.ClearFaults()
	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 0)
}

func TestFaultForOneAccount(t *testing.T) {
	s, _ := startServer(t, Config{})
	s.QueueFaults(Fault{Kind: FaultRetCode, RetCode: 153, PublicKey: otherAccount.PublicKey}, Fault{Kind: FaultRetCode, RetCode: 150})
	// testAccount passes the other account's fault by and takes the next.
	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 150)
	wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 0)
	wantRetCode(t, callAPI(t, s, otherAccount, backupURLParams()), 153)
	wantRetCode(t, callAPI(t, s, otherAccount, backupURLParams()), 0)

	s.SetFaultRate(1, Fault{Kind: FaultRetCode, RetCode: 153, PublicKey: otherAccount.PublicKey})
	for range 5 {
		wantRetCode(t, callAPI(t, s, testAccount, backupURLParams()), 0)
		wantRetCode(t, callAPI(t, s, otherAccount, backupURLParams()), 153)
	}
}

func faultPattern(t *testing.T, seed int64) []string {
	t.Helper()
	s, _ := startServer(t, Config{Seed: seed})
	s.SetFaultRate(0.3, Fault{Kind: FaultRetCode, RetCode: 150}, Fault{Kind: FaultHTTPStatus, HTTPStatus: 502})
	var pattern []string
	for i := 0; i < 200; i++ {
		callAPI(t, s, testAccount, backupURLParams())
	}
	for _, c := range s.Calls() {
		pattern = append(pattern, c.Fault)
	}
	return pattern
}

func TestFaultRateIsApproximateAndSeeded(t *testing.T) {
	first := faultPattern(t, 42)
	counts := map[string]int{}
	for _, f := range first {
		counts[f]++
	}
	faulted := len(first) - counts[""]
	// 200 draws at p=0.3: mean 60, sd about 6.5; these bounds are 4 sd wide.
	if faulted < 34 || faulted > 86 || counts["retcode"] == 0 || counts["http-status"] == 0 {
		t.Errorf("fault counts %v out of %d", counts, len(first))
	}
	if again := faultPattern(t, 42); strings.Join(again, ",") != strings.Join(first, ",") {
		t.Error("same seed gave a different fault pattern")
	}
}

func TestLatencyStopsWhenClientGivesUp(t *testing.T) {
	s, _ := startServer(t, Config{})
	s.SetLatency(time.Hour)
	form := url.Values{}
	for k, v := range signed(testAccount, backupURLParams()) {
		form.Set(k, v)
	}
	// Give up as soon as the request is on the wire: no timing guesses.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { cancel() },
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := testClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("answered despite an hour of latency")
	}
	// The handler notices the abandoned request and logs it without an answer.
	waitFor(t, "the abandoned call to be logged", func() bool { return s.CallCount("") == 1 })
	if c := s.Calls()[0]; c.RetCode != -1 || c.HTTPStatus != 0 {
		t.Errorf("call %+v", c)
	}
}

// Hundreds of goroutines calling, downloading and mutating at once; run
// with -race to make this meaningful.
func TestConcurrentUse(t *testing.T) {
	s, _ := startServer(t, Config{})
	s.SetFaultRate(0.1, Fault{Kind: FaultRetCode, RetCode: 150})
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := concurrentStep(s, i); err != nil {
				t.Error(err)
			}
			_ = s.Calls()
		}(i)
	}
	wg.Wait()
	if got := s.CallCount(""); got != 150 {
		t.Errorf("CallCount = %d, want 150", got)
	}
}

func concurrentStep(s *Server, i int) error {
	switch i % 4 {
	case 0:
		s.SetBackupState(testBackupID, StateSuccess)
		s.AddBackup(Backup{ID: "extra-" + strconv.Itoa(i), Region: testRegion})
		return nil
	case 1:
		_, err := tryPostForm(s, signed(testAccount, listParams(nil)))
		return err
	}
	a, err := tryPostForm(s, signed(testAccount, backupURLParams()))
	if err != nil || a.str("BackupPath") == "" {
		return err
	}
	resp, err := testClient.Get(a.str("BackupPath"))
	if err != nil {
		return err
	}
	if _, err := decodeAnswer(resp); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: HTTP %d", resp.StatusCode)
	}
	return nil
}
