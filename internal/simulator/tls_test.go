package simulator

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestTLSServesAPIAndLinksOverHTTPS(t *testing.T) {
	s, _ := startServer(t, Config{TLS: true})
	if !strings.HasPrefix(s.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %q, want https on loopback", s.URL())
	}
	block, _ := pem.Decode(s.CACertPEM())
	if block == nil {
		t.Fatal("CACertPEM holds no PEM block")
	}
	if ca, err := x509.ParseCertificate(block.Bytes); err != nil || !ca.IsCA {
		t.Fatalf("CACertPEM is not a CA certificate (%v)", err)
	}

	client := s.Client()
	form := url.Values{}
	for k, v := range signed(testAccount, backupURLParams()) {
		form.Set(k, v)
	}
	resp, err := client.PostForm(s.URL(), form)
	if err != nil {
		t.Fatalf("API over HTTPS: %v", err)
	}
	a := readAnswer(t, resp)
	wantRetCode(t, a, 0)
	link := a.str("BackupPath")
	if !strings.HasPrefix(link, s.URL()+"download/") {
		t.Fatalf("link %q is not an https link of this server", link)
	}
	resp, err = client.Get(link)
	if err != nil {
		t.Fatalf("download over HTTPS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != string(testContent) {
		t.Fatalf("download: HTTP %d, %d bytes", resp.StatusCode, len(body))
	}

	// A client that does not trust the server's own CA is refused.
	if resp, err := testClient.Get(link); err == nil {
		resp.Body.Close()
		t.Fatal("a client without the simulator's CA connected")
	} else if !errors.As(err, new(x509.UnknownAuthorityError)) {
		t.Fatalf("without the CA: %v, want an unknown authority", err)
	}
}

func TestWithoutTLSThereIsNoCA(t *testing.T) {
	s, _ := startServer(t, Config{})
	if !strings.HasPrefix(s.URL(), "http://") || s.CACertPEM() != nil {
		t.Fatalf("URL %q, CA %q", s.URL(), s.CACertPEM())
	}
}
