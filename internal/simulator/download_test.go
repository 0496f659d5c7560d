package simulator

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func freshLink(t *testing.T, s *Server) string {
	t.Helper()
	a := callAPI(t, s, testAccount, backupURLParams())
	wantRetCode(t, a, 0)
	return a.str("BackupPath")
}

func linkQuery(t *testing.T, link string) (string, url.Values) {
	t.Helper()
	base, rawQuery, ok := strings.Cut(link, "?")
	if !ok {
		t.Fatalf("link without query: %q", link)
	}
	// Our own split, so '+' stays '+'.
	q := url.Values{}
	for _, part := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(part, "=")
		q.Set(k, v)
	}
	return base, q
}

func TestDownload(t *testing.T) {
	s, _ := startServer(t, Config{})
	a := callAPI(t, s, testAccount, backupURLParams())
	wantRetCode(t, a, 0)

	resp, err := testClient.Get(a.str("BackupPath"))
	if err != nil {
		t.Fatal(err)
	}
	body := readAnswer(t, resp).raw
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, testContent) {
		t.Fatalf("download: %d %q", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	// What a client gets after trimming the deprecated field works too.
	if status, _ := fetch(t, strings.TrimSpace(a.str("BackupURL"))); status != http.StatusOK {
		t.Errorf("trimmed BackupURL: status %d", status)
	}
	if status, body := fetch(t, a.str("InnerBackupPath")); status != http.StatusOK || !bytes.Equal(body, testContent) {
		t.Errorf("inner link: %d %q", status, body)
	}
	if got := s.Downloads(); got != 3 {
		t.Errorf("Downloads() = %d, want 3", got)
	}
	if got := s.CallCount(""); got != 1 {
		t.Errorf("downloads were logged as API calls: CallCount = %d", got)
	}
}

func TestDownloadExpires(t *testing.T) {
	s, clock := startServer(t, Config{LinkLifetime: 10 * time.Minute})
	link := freshLink(t, s)

	clock.Advance(10 * time.Minute) // now == Expires: still valid
	if status, _ := fetch(t, link); status != http.StatusOK {
		t.Fatalf("at Expires: status %d, want 200", status)
	}
	clock.Advance(time.Second)
	status, body := fetch(t, link)
	if status != http.StatusForbidden {
		t.Fatalf("after Expires: status %d, want 403", status)
	}
	if !strings.Contains(string(body), "expired") {
		t.Errorf("reason %q does not say expired", body)
	}
	if s.Downloads() != 1 {
		t.Errorf("Downloads() = %d, want 1", s.Downloads())
	}
}

func TestDownloadTamperedLinks(t *testing.T) {
	s, _ := startServer(t, Config{})
	other := testBackup()
	other.ID = "11111111-2222-3333-4444-555555555555"
	s.AddBackup(other)
	link := freshLink(t, s)
	base, q := linkQuery(t, link)
	expires, _ := strconv.ParseInt(q.Get("Expires"), 10, 64)

	rebuild := func(base, publicKey, expires, signature string) string {
		return base + "?UCloudPublicKey=" + publicKey + "&Expires=" + expires + "&Signature=" + signature
	}
	sig := q.Get("Signature")
	flipped := string(rune(sig[0]^1)) + sig[1:]
	tampered := map[string]string{
		"other backup id":   rebuild(strings.Replace(base, testBackupID, other.ID, 1), q.Get("UCloudPublicKey"), q.Get("Expires"), sig),
		"later Expires":     rebuild(base, q.Get("UCloudPublicKey"), strconv.FormatInt(expires+3600, 10), sig),
		"changed Signature": rebuild(base, q.Get("UCloudPublicKey"), q.Get("Expires"), flipped),
		"no Signature":      base + "?UCloudPublicKey=" + q.Get("UCloudPublicKey") + "&Expires=" + q.Get("Expires"),
		"Expires dropped":   base + "?UCloudPublicKey=" + q.Get("UCloudPublicKey") + "&Signature=" + sig,
		"other access key":  rebuild(base, "someone-else", q.Get("Expires"), sig),
		"repeated Expires":  link + "&Expires=" + strconv.FormatInt(expires+3600, 10),
	}
	for name, bad := range tampered {
		t.Run(name, func(t *testing.T) {
			if status, _ := fetch(t, bad); status != http.StatusForbidden {
				t.Errorf("status %d, want 403", status)
			}
		})
	}
	if status, _ := fetch(t, link); status != http.StatusOK {
		t.Errorf("original link: status %d", status)
	}
}

// The link's Signature is standard base64; a '+' must survive when the link
// is used verbatim and must not match once turned into a space.
func TestDownloadSignatureWithPlus(t *testing.T) {
	s, clock := startServer(t, Config{})
	var link string
	for i := 0; i < 500 && !strings.Contains(link, "+"); i++ {
		clock.Advance(time.Second) // a new Expires gives a new signature
		link = freshLink(t, s)
	}
	_, q := linkQuery(t, link)
	if !strings.Contains(q.Get("Signature"), "+") {
		t.Fatal("no signature with '+' in 500 links")
	}
	if status, body := fetch(t, link); status != http.StatusOK || !bytes.Equal(body, testContent) {
		t.Errorf("verbatim link: %d %q", status, body)
	}
	if status, _ := fetch(t, strings.ReplaceAll(link, "+", "%2B")); status != http.StatusOK {
		t.Errorf("percent-encoded '+': status %d, want 200", status)
	}
	if status, _ := fetch(t, strings.ReplaceAll(link, "+", "%20")); status != http.StatusForbidden {
		t.Errorf("'+' turned into a space: status %d, want 403", status)
	}
}

// Downloads honour Range as object storage does, unless a fault says
// otherwise; a cut download announces the whole length and drops the
// connection part-way.
func TestDownloadRangeAndFaults(t *testing.T) {
	s, _ := startServer(t, Config{})
	link := freshLink(t, s)
	get := func(rangeHeader string) (*http.Response, []byte, error) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, link, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rangeHeader != "" {
			req.Header.Set("Range", rangeHeader)
		}
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}

	resp, body, err := get("bytes=6-")
	if err != nil || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, testContent[6:]) {
		t.Fatalf("Range bytes=6-: %d %q %v", resp.StatusCode, body, err)
	}
	if want := fmt.Sprintf("bytes 6-%d/%d", len(testContent)-1, len(testContent)); resp.Header.Get("Content-Range") != want {
		t.Errorf("Content-Range %q, want %q", resp.Header.Get("Content-Range"), want)
	}

	s.QueueDownloadFaults(DownloadFault{IgnoreRange: true})
	resp, body, err = get("bytes=6-")
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, testContent) {
		t.Fatalf("IgnoreRange: %d %q %v", resp.StatusCode, body, err)
	}

	s.QueueDownloadFaults(DownloadFault{CutAfter: 5})
	resp, body, err = get("")
	if !errors.Is(err, io.ErrUnexpectedEOF) || resp.ContentLength != int64(len(testContent)) || !bytes.Equal(body, testContent[:5]) {
		t.Fatalf("CutAfter 5: length %d, body %q, error %v; want the full length announced, 5 bytes and an unexpected EOF", resp.ContentLength, body, err)
	}

	want := []DownloadRequest{
		{Method: http.MethodGet, Range: "bytes=6-", Status: http.StatusPartialContent, Bytes: int64(len(testContent) - 6)},
		{Method: http.MethodGet, Range: "bytes=6-", Status: http.StatusOK, Bytes: int64(len(testContent))},
		{Method: http.MethodGet, Status: http.StatusOK, Bytes: 5, Cut: true},
	}
	if got := s.DownloadRequests(); !reflect.DeepEqual(got, want) {
		t.Errorf("DownloadRequests() = %+v, want %+v", got, want)
	}
}
