package cloud

import (
	"crypto/sha1" // SHA-1: the provider's scheme
	"encoding/hex"
	"errors"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for everything that reads the provider's bytes or computes
// what it verifies. Seed corpora live in testdata/fuzz; `make fuzz` (and CI)
// runs each target for a bounded time.

func FuzzDecodeBackupURLResponse(f *testing.F) {
	f.Add([]byte(`{"Action":"DescribeURedisBackupURLResponse","RetCode":0,"BackupPath":"https://s.example.com/f?UCloudPublicKey=k\u0026Expires=1800007200\u0026Signature=sb+QO/W=\n"}`))
	f.Add([]byte(`{"RetCode":"171","Message":"signature error"}`))
	f.Add([]byte(`{"RetCode":0,"BackupPath":"","BackupURL":"http://h/p?Expires=1"}`))
	f.Add([]byte(`{"RetCode":1e99}`))
	f.Add([]byte(`{"RetCode":0}{"RetCode":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var resp describeBackupURLResponse
		err := decodeResponse(ActionDescribeBackupURL, body, &resp)
		var respErr *ResponseError
		if errors.As(err, &respErr) && len(body) >= 16 && strings.Contains(respErr.Error(), string(body)) {
			t.Fatalf("the error repeats the response body: %v", respErr)
		}
		if err != nil {
			return
		}
		if resp.RetCode == nil || int(*resp.RetCode) != 0 {
			t.Fatalf("a decoded success must carry RetCode 0")
		}
		link, err := parseLink(resp.BackupPath, time.Unix(1_800_000_000, 0), time.Hour)
		if err == nil {
			checkLink(t, resp.BackupPath, link)
		}
	})
}

func FuzzParseLink(f *testing.F) {
	for _, seed := range []string{
		"https://s.example.com/f?UCloudPublicKey=k&Expires=1800007200&Signature=sb+QO/W=",
		"http://10.0.0.1/p\n",
		"https://a/p?Expires=99999999999999999999",
		"ftp://a/p",
		"https:///nohost?Expires=1",
		"https://a/p?Expires=1&Expires=2",
		" https://a/%zz?Expires=5 ",
	} {
		f.Add(seed, int64(1_800_000_000))
	}
	f.Fuzz(func(t *testing.T, raw string, obtained int64) {
		obtainedAt := time.Unix(obtained%maxUnixSeconds, 0)
		link, err := parseLink(raw, obtainedAt, time.Hour)
		if err != nil {
			if trimmed := strings.TrimSpace(raw); len(trimmed) >= 16 && strings.Contains(err.Error(), trimmed) {
				t.Fatalf("the error repeats the link: %v", err)
			}
			return
		}
		checkLink(t, raw, link)
		if !link.ExpiryFromLink && !link.ExpiresAt.Equal(obtainedAt.Add(time.Hour).Truncate(time.Second)) {
			t.Fatalf("a link without Expires must get the default lifetime")
		}
	})
}

// checkLink asserts what every accepted link satisfies.
func checkLink(t *testing.T, raw string, link Link) {
	t.Helper()
	if link.URL != strings.TrimSpace(raw) {
		t.Fatalf("the link must be kept verbatim: %q became %q", raw, link.URL)
	}
	u, err := url.Parse(link.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(link.URL) > maxLinkLength {
		t.Fatalf("accepted an invalid link %q", link.URL)
	}
	if link.ExpiryFromLink && (link.ExpiresAt.Unix() <= 0 || link.ExpiresAt.Unix() > maxUnixSeconds) {
		t.Fatalf("accepted an out-of-range expiry %v", link.ExpiresAt)
	}
}

func FuzzSign(f *testing.F) {
	f.Add("DescribeUHostInstance", "cn-bj2", "10", "ucloudsomeone@example.com1296235120854146120", "46f09bb9fab4f12dfc160dae12273d5332b5debe")
	f.Add("", "a=b&c", "ü", "Signature", "")
	f.Fuzz(func(t *testing.T, action, region, limit, publicKey, privateKey string) {
		params := map[string]string{"Action": action, "Region": region, "Limit": limit, "PublicKey": publicKey, "Signature": "ignored"}
		got := Sign(params, privateKey)
		if len(got) != 40 || strings.Trim(got, "0123456789abcdef") != "" {
			t.Fatalf("signature %q is not 40 lower-case hex digits", got)
		}
		if want := referenceSignature(params, privateKey); got != want {
			t.Fatalf("Sign() = %s, reference = %s", got, want)
		}
	})
}

// referenceSignature is a second, deliberately plain implementation of the
// documented algorithm.
func referenceSignature(params map[string]string, privateKey string) string {
	var names []string
	for name := range params {
		if name != "Signature" {
			names = append(names, name)
		}
	}
	sort.Strings(names) // Go compares strings byte by byte, as the gateway does
	s := ""
	for _, name := range names {
		s += name + params[name]
	}
	sum := sha1.Sum([]byte(s + privateKey)) // SHA-1: the provider's scheme
	return hex.EncodeToString(sum[:])
}
