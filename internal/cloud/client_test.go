package cloud

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"
)

var testCreds = Credentials{PublicKey: "pub-key", PrivateKey: "very-private-key"}

// fakeGateway answers every request with status and body, and records the
// last request's form for assertions.
type fakeGateway struct {
	status   int
	body     string
	delay    time.Duration
	lastForm map[string]string
	lastURL  string
	lastUA   string
	lastType string
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	g.lastForm = map[string]string{}
	for k := range r.PostForm {
		g.lastForm[k] = r.PostForm.Get(k)
	}
	g.lastURL, g.lastUA, g.lastType = r.URL.String(), r.UserAgent(), r.Header.Get("Content-Type")
	if g.delay > 0 {
		select {
		case <-time.After(g.delay):
		case <-r.Context().Done():
			return
		}
	}
	if g.status != 0 {
		w.WriteHeader(g.status)
	}
	_, _ = fmt.Fprint(w, g.body) // the client under test may have given up already
}

func newTestClient(t *testing.T, g *fakeGateway, mutate ...func(*Options)) *Client {
	t.Helper()
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	opts := Options{
		Endpoint: srv.URL + "/",
		Now:      func() time.Time { return time.Unix(1_800_000_000, 600_000_000) },
	}
	for _, m := range mutate {
		m(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const linkBase = "https://store.example.com/uredis/b1?UCloudPublicKey=storage-key"

func TestDescribeBackupURLSendsASignedForm(t *testing.T) {
	g := &fakeGateway{body: `{"Action":"DescribeURedisBackupURLResponse","RetCode":0,"BackupPath":"` + linkBase + `&Expires=1800003600&Signature=abc"}`}
	c := newTestClient(t, g)

	_, err := c.DescribeBackupURL(context.Background(), testCreds, BackupURLRequest{
		Region: "cn-bj2", BackupID: "b1", Zone: "cn-bj2-04", RegionFlag: true, SlaveZone: "cn-bj2-05",
	})
	if err != nil {
		t.Fatal(err)
	}
	if g.lastURL != "/?Action=DescribeURedisBackupURL" {
		t.Errorf("request URL = %q", g.lastURL)
	}
	if g.lastType != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", g.lastType)
	}
	if !strings.HasPrefix(g.lastUA, "uredis-backup-operator/") {
		t.Errorf("User-Agent = %q", g.lastUA)
	}
	want := map[string]string{
		"Action": "DescribeURedisBackupURL", "PublicKey": "pub-key", "Region": "cn-bj2", "BackupId": "b1",
		"Zone": "cn-bj2-04", "RegionFlag": "true", "SlaveZone": "cn-bj2-05",
	}
	signature := g.lastForm["Signature"]
	delete(g.lastForm, "Signature")
	if fmt.Sprint(sortedPairs(g.lastForm)) != fmt.Sprint(sortedPairs(want)) {
		t.Errorf("form = %v, want %v (unset optional parameters must not be sent)", g.lastForm, want)
	}
	expected := sha1Hex("ActionDescribeURedisBackupURLBackupIdb1PublicKeypub-keyRegioncn-bj2RegionFlagtrueSlaveZonecn-bj2-05Zonecn-bj2-04very-private-key")
	if signature != expected {
		t.Errorf("Signature = %q, want %q", signature, expected)
	}
}

func TestSecurityTokenIsSentAndSigned(t *testing.T) {
	g := &fakeGateway{body: `{"RetCode":0,"BackupPath":"` + linkBase + `&Expires=1800003600&Signature=abc"}`}
	c := newTestClient(t, g)
	creds := testCreds
	creds.SecurityToken = "tok"
	if _, err := c.DescribeBackupURL(context.Background(), creds, BackupURLRequest{Region: "r", BackupID: "b"}); err != nil {
		t.Fatal(err)
	}
	if g.lastForm["SecurityToken"] != "tok" {
		t.Fatalf("SecurityToken not sent: %v", g.lastForm)
	}
	want := sha1Hex("ActionDescribeURedisBackupURLBackupIdbPublicKeypub-keyRegionrSecurityTokentokvery-private-key")
	if g.lastForm["Signature"] != want {
		t.Fatalf("SecurityToken must be signed like any parameter")
	}
}

func TestDescribeBackupURLDecodesLinks(t *testing.T) {
	obtained := time.Unix(1_800_000_000, 0).UTC()
	tests := []struct {
		name, body    string
		wantURL       string
		wantInner     string
		wantExpires   time.Time
		wantFromLink  bool
		wantField     string
		retCodeString bool
	}{{
		name:         "escaped ampersands and trailing newline in BackupURL",
		body:         `{"RetCode":0,"BackupURL":"https://s.example.com/f?UCloudPublicKey=k\u0026Expires=1800007200\u0026Signature=sb+QO/W=\n"}`,
		wantURL:      "https://s.example.com/f?UCloudPublicKey=k&Expires=1800007200&Signature=sb+QO/W=",
		wantExpires:  time.Unix(1_800_007_200, 0).UTC(),
		wantFromLink: true,
		wantField:    FieldBackupURL,
	}, {
		// DescribeURedisBackupURL.md's example answer, verbatim in shape:
		// a short token in BackupPath and InnerBackupPath, the link in
		// BackupURL with a trailing newline.
		name:         "the documented example: a token in BackupPath, the link in BackupURL",
		body:         `{"Action":"DescribeURedisBackupURLResponse","BackupPath":"KgVuXeBu","BackupURL":"http://umemb-9001.cn-bj.example.com/uredis-bz/sgbf_a75b24a9?UCloudPublicKey=ucloud@ucloud.cn1426\u0026Expires=1800007200\u0026Signature=sbH+QOWbtx6z5o6HBxrOcU=\n","InnerBackupPath":"zeAzhTZt","RetCode":0}`,
		wantURL:      "http://umemb-9001.cn-bj.example.com/uredis-bz/sgbf_a75b24a9?UCloudPublicKey=ucloud@ucloud.cn1426&Expires=1800007200&Signature=sbH+QOWbtx6z5o6HBxrOcU=",
		wantExpires:  time.Unix(1_800_007_200, 0).UTC(),
		wantFromLink: true,
		wantField:    FieldBackupURL,
	}, {
		name:         "BackupPath preferred over BackupURL",
		body:         `{"RetCode":"0","BackupPath":" https://a.example.com/p?Expires=1800000100 ","BackupURL":"https://b.example.com/u?Expires=1800000200","InnerBackupPath":"http://10.0.0.1/p?Expires=1800000100\n"}`,
		wantURL:      "https://a.example.com/p?Expires=1800000100",
		wantInner:    "http://10.0.0.1/p?Expires=1800000100",
		wantExpires:  time.Unix(1_800_000_100, 0).UTC(),
		wantFromLink: true,
		wantField:    FieldBackupPath,
	}, {
		name:        "no Expires: default lifetime from when it was obtained",
		body:        `{"RetCode":0,"BackupPath":"https://a.example.com/p?Signature=x","InnerBackupPath":"not a link"}`,
		wantURL:     "https://a.example.com/p?Signature=x",
		wantExpires: obtained.Add(DefaultLinkLifetime),
		wantField:   FieldBackupPath,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, &fakeGateway{body: tt.body})
			got, err := c.DescribeBackupURL(context.Background(), testCreds, BackupURLRequest{Region: "r", BackupID: "b"})
			if err != nil {
				t.Fatal(err)
			}
			if got.URL != tt.wantURL || got.InnerURL != tt.wantInner {
				t.Errorf("URL = %q, inner = %q; want %q, %q", got.URL, got.InnerURL, tt.wantURL, tt.wantInner)
			}
			if !got.ExpiresAt.Equal(tt.wantExpires) || got.ExpiryFromLink != tt.wantFromLink {
				t.Errorf("ExpiresAt = %v (from link %v), want %v (%v)", got.ExpiresAt, got.ExpiryFromLink, tt.wantExpires, tt.wantFromLink)
			}
			if got.Field != tt.wantField {
				t.Errorf("Field = %q, want %q", got.Field, tt.wantField)
			}
			if !got.ObtainedAt.Equal(obtained) {
				t.Errorf("ObtainedAt = %v, want %v truncated to the second", got.ObtainedAt, obtained)
			}
		})
	}
}

func TestDescribeBackupURLErrors(t *testing.T) {
	tests := []struct {
		name      string
		gateway   fakeGateway
		wantClass Class
		check     func(t *testing.T, err error)
	}{{
		name:      "RetCode as a number",
		gateway:   fakeGateway{body: `{"Action":"DescribeURedisBackupURLResponse","RetCode":171,"Message":"signature error"}`},
		wantClass: Permanent,
		check:     wantAPIError(171, "signature error"),
	}, {
		name:      "RetCode as a string",
		gateway:   fakeGateway{body: `{"RetCode":"20003","Message":"failed to get info\n"}`},
		wantClass: Permanent,
		check:     wantAPIError(20003, "failed to get info"),
	}, {
		name:      "throttled",
		gateway:   fakeGateway{body: `{"RetCode":153,"Message":"request throttled"}`},
		wantClass: Transient,
		check:     wantThrottled(true),
	}, {
		name:      "HTTP 503 whatever the body",
		gateway:   fakeGateway{status: 503, body: `{"RetCode":0}`},
		wantClass: Transient,
		check:     wantThrottled(false),
	}, {
		name:      "HTTP 429",
		gateway:   fakeGateway{status: 429},
		wantClass: Transient,
		check:     wantThrottled(true),
	}, {
		name:      "HTTP 403",
		gateway:   fakeGateway{status: 403},
		wantClass: Permanent,
	}, {
		name:      "malformed JSON",
		gateway:   fakeGateway{body: `{"RetCode":0,"BackupPath":"https://secret.example.com/x?Signature=SECRETSIG`},
		wantClass: Transient,
		check:     wantResponseError,
	}, {
		name:      "missing RetCode",
		gateway:   fakeGateway{body: `{"BackupPath":"https://a.example.com/p"}`},
		wantClass: Transient,
		check:     wantResponseError,
	}, {
		name:      "success without a link",
		gateway:   fakeGateway{body: `{"RetCode":0,"BackupPath":"\n"}`},
		wantClass: Transient,
		check:     wantResponseError,
	}, {
		name:      "neither field usable: both named, neither value repeated",
		gateway:   fakeGateway{body: `{"RetCode":0,"BackupPath":"KgVuXeBu","BackupURL":"ftp://secret.example.com/x?Signature=SECRETSIG\n"}`},
		wantClass: Transient,
		check: func(t *testing.T, err error) {
			wantResponseError(t, err)
			msg := err.Error()
			if !strings.Contains(msg, "BackupPath") || !strings.Contains(msg, "BackupURL") ||
				strings.Contains(msg, "KgVuXeBu") || strings.Contains(msg, "SECRETSIG") {
				t.Errorf("message %q should name both fields and repeat neither value", msg)
			}
		},
	}, {
		name:      "link with another scheme",
		gateway:   fakeGateway{body: `{"RetCode":0,"BackupPath":"ftp://secret.example.com/x?Signature=SECRETSIG"}`},
		wantClass: Transient,
		check:     wantResponseError,
	}, {
		name:      "link with a garbled Expires",
		gateway:   fakeGateway{body: `{"RetCode":0,"BackupPath":"https://secret.example.com/x?Expires=soon&Signature=SECRETSIG"}`},
		wantClass: Transient,
		check:     wantResponseError,
	}, {
		name:      "oversized body",
		gateway:   fakeGateway{body: `{"RetCode":0,"Message":"` + strings.Repeat("x", maxResponseBytes) + `"}`},
		wantClass: Transient,
		check:     wantResponseError,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.gateway
			c := newTestClient(t, &g)
			_, err := c.DescribeBackupURL(context.Background(), testCreds, BackupURLRequest{Region: "r", BackupID: "b"})
			if err == nil {
				t.Fatal("expected an error")
			}
			if got := Classify(err); got != tt.wantClass {
				t.Errorf("Classify() = %v, want %v", got, tt.wantClass)
			}
			for _, secret := range []string{testCreds.PrivateKey, "SECRETSIG", "secret.example.com"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals %q", err, secret)
				}
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

func TestRequestTimeoutAndCancellation(t *testing.T) {
	g := &fakeGateway{delay: 5 * time.Second, body: `{"RetCode":0}`}
	c := newTestClient(t, g, func(o *Options) { o.Timeout = 50 * time.Millisecond })
	_, err := c.DescribeBackupURL(context.Background(), testCreds, BackupURLRequest{Region: "r", BackupID: "b"})
	var transportErr *TransportError
	if !errors.As(err, &transportErr) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a TransportError wrapping DeadlineExceeded, got %v", err)
	}
	if Classify(err) != Transient {
		t.Error("a timeout is transient")
	}

	c = newTestClient(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = c.DescribeBackupURL(ctx, testCreds, BackupURLRequest{Region: "r", BackupID: "b"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestNewRejectsBadEndpoints(t *testing.T) {
	for _, endpoint := range []string{"api.dezai.com", "ftp://api.dezai.com/", "https:///path"} {
		if _, err := New(Options{Endpoint: endpoint}); err == nil {
			t.Errorf("New(%q) accepted an invalid endpoint", endpoint)
		}
	}
}

func TestCredentialsNeverPrint(t *testing.T) {
	creds := Credentials{PublicKey: "pk", PrivateKey: "PRIVATE", SecurityToken: "TOKEN"}
	for _, s := range []string{fmt.Sprint(creds), fmt.Sprintf("%v %+v %s", creds, creds, creds), fmt.Sprint(creds.MarshalLog())} {
		if strings.Contains(s, "PRIVATE") || strings.Contains(s, "TOKEN") {
			t.Fatalf("credentials leaked: %s", s)
		}
	}
	link := Link{URL: "https://x.example.com/?Signature=SIG"}
	if strings.Contains(fmt.Sprint(link), "SIG") {
		t.Fatal("Link printed its URL")
	}
}

func wantAPIError(code int, message string) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.RetCode != code || apiErr.Message != message {
			t.Fatalf("want APIError %d %q, got %#v", code, message, err)
		}
		if got, ok := RetCodeOf(err); !ok || got != code {
			t.Fatalf("RetCodeOf() = %d, %v", got, ok)
		}
	}
}

func wantThrottled(want bool) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		if IsThrottled(err) != want {
			t.Fatalf("IsThrottled(%v) = %v, want %v", err, !want, want)
		}
	}
}

func wantResponseError(t *testing.T, err error) {
	var respErr *ResponseError
	if !errors.As(err, &respErr) {
		t.Fatalf("want a ResponseError, got %#v", err)
	}
}

func sortedPairs(m map[string]string) []string {
	pairs := make([]string, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return pairs
}
