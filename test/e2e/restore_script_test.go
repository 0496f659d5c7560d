package e2e

import (
	"bytes"
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// TestRestoreScriptRefusesUnsafeDownloads runs restore.sh's download, with
// curl, against links it must refuse: control characters in the link, a
// plain http:// link, an HTTPS link that redirects to http://, and a backup
// larger than MAX_DOWNLOAD_BYTES, announced or not. A valid HTTPS link
// from the same servers downloads, so each refusal is the script's doing.
// Needs bash and curl, not Redis or the API server.
func TestRestoreScriptRefusesUnsafeDownloads(t *testing.T) {
	if !requireCurl(t) {
		t.Skip("curl is not installed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	content := []byte("REDIS0011 a backup of 38 bytes or so\n")
	accounts := []simulator.Account{{PublicKey: publicKey, PrivateKey: privateKey}}
	backups := []simulator.Backup{{ID: backupID, Region: region, Zone: zone, GroupID: groupID, Content: content}}

	// The storage over HTTPS, and a plain-HTTP one whose links are just as
	// valid: the script must never fetch from the latter.
	secure, err := simulator.Start(simulator.Config{Accounts: accounts, Backups: backups, TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(secure.Close)
	plain, err := simulator.Start(simulator.Config{Accounts: accounts, Backups: backups})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	secureLink, plainLink := fetchLink(ctx, t, secure), fetchLink(ctx, t, plain)

	// An HTTPS server that redirects to the plain link, and one that serves
	// 2 KiB with or without announcing the size.
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plainLink, http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	large := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := bytes.Repeat([]byte("x"), 2048)
		if r.URL.Path == "/announced" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		for i := 0; i < len(body); i += 256 {
			_, _ = w.Write(body[i : i+256])
			w.(http.Flusher).Flush() // chunked when not announced
		}
	}))
	t.Cleanup(large.Close)

	// One bundle with the simulator's CA and the test servers' certificate,
	// given to curl the way the script documents: CURL_CA_BUNDLE.
	dir := t.TempDir()
	caBundle := filepath.Join(dir, "ca.pem")
	bundle := secure.CACertPEM()
	for _, srv := range []*httptest.Server{redirect, large} {
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})...)
	}
	if err := os.WriteFile(caBundle, bundle, 0o644); err != nil {
		t.Fatal(err)
	}

	download := func(t *testing.T, link string, extra ...string) (out string, file string, err error) {
		t.Helper()
		file = filepath.Join(t.TempDir(), "backup.rdb")
		env := map[string]string{"BACKUP_URL": link, "BACKUP_FILE": file, "CURL_CA_BUNDLE": caBundle}
		for i := 0; i+1 < len(extra); i += 2 {
			env[extra[i]] = extra[i+1]
		}
		out, err = runRestoreScript(ctx, t, NewWithT(t), env, "download")
		return out, file, err
	}
	refused := func(t *testing.T, out, file string, err error, why string) {
		t.Helper()
		g := NewWithT(t)
		g.Expect(err).To(HaveOccurred(), "restore.sh must refuse the download")
		g.Expect(out).To(ContainSubstring(why))
		g.Expect(out).NotTo(ContainSubstring("Signature="), "the script printed the link")
		g.Expect(file).NotTo(BeAnExistingFile(), "nothing may be kept")
		g.Expect(file+".part").NotTo(BeAnExistingFile(), "nothing may be kept")
	}

	t.Run("a valid HTTPS link downloads", func(t *testing.T) {
		before := secure.Downloads()
		out, file, err := download(t, secureLink)
		g := NewWithT(t)
		g.Expect(err).NotTo(HaveOccurred(), "restore.sh download failed:\n%s", out)
		g.Expect(os.ReadFile(file)).To(Equal(content))
		g.Expect(secure.Downloads()).To(Equal(before + 1))
		// The 2 KiB body downloads as well when the limit allows it.
		out, file, err = download(t, large.URL+"/announced")
		g.Expect(err).NotTo(HaveOccurred(), "restore.sh download failed:\n%s", out)
		g.Expect(os.ReadFile(file)).To(HaveLen(2048))
	})

	for name, link := range map[string]string{
		// A newline would make the rest of the link a line of curl's
		// config: here a second URL, fetched to stdout.
		"newline injecting a curl option": "https://127.0.0.1:1/unused\nurl = " + secureLink + "&x=",
		"trailing newline":                secureLink + "\n",
		"carriage return":                 secureLink + "\r",
		// curl refuses these URLs itself (exit code 3): for them, the
		// message is what shows that the script refused them first.
		"tab":    secureLink + "&x=\t",
		"escape": secureLink + "&x=\x1b[2J",
		"DEL":    secureLink + "&x=\x7f",
	} {
		t.Run("control character: "+name, func(t *testing.T) {
			before := secure.Downloads()
			out, file, err := download(t, link)
			refused(t, out, file, err, "BACKUP_URL contains control characters")
			NewWithT(t).Expect(secure.Downloads()).To(Equal(before), "nothing may be fetched")
		})
	}

	t.Run("plain http link", func(t *testing.T) {
		out, file, err := download(t, plainLink)
		refused(t, out, file, err, "not an https:// link")
		NewWithT(t).Expect(plain.Downloads()).To(BeZero(), "nothing may be fetched over plain HTTP")
	})

	t.Run("redirect to plain http", func(t *testing.T) {
		out, file, err := download(t, redirect.URL+"/backup")
		refused(t, out, file, err, "redirected to a protocol other than https")
		NewWithT(t).Expect(plain.Downloads()).To(BeZero(), "the redirect may not be followed to plain HTTP")
	})

	t.Run("larger than MAX_DOWNLOAD_BYTES, size announced", func(t *testing.T) {
		out, file, err := download(t, large.URL+"/announced", "MAX_DOWNLOAD_BYTES", "2047")
		refused(t, out, file, err, "larger than MAX_DOWNLOAD_BYTES (2047 bytes")
	})

	t.Run("larger than MAX_DOWNLOAD_BYTES, size not announced", func(t *testing.T) {
		out, file, err := download(t, large.URL+"/chunked", "MAX_DOWNLOAD_BYTES", "2047")
		refused(t, out, file, err, "larger than MAX_DOWNLOAD_BYTES (2047 bytes")
	})

	// The refresh guard: a link that expires too soon is not downloaded.
	soon := time.Now().Add(5 * time.Second).UTC().Format(time.RFC3339)
	t.Run("a link valid for less than MIN_VALIDITY, without EXPORT_NAME", func(t *testing.T) {
		before := secure.Downloads()
		out, file, err := download(t, secureLink, "EXPIRES_AT", soon, "MIN_VALIDITY", "60")
		refused(t, out, file, err, "less than MIN_VALIDITY (60s): set EXPORT_NAME")
		NewWithT(t).Expect(secure.Downloads()).To(Equal(before), "nothing may be fetched")
	})
	t.Run("MIN_VALIDITY by default: MAX_DOWNLOAD_BYTES at MIN_DOWNLOAD_RATE, plus a minute", func(t *testing.T) {
		out, file, err := download(t, secureLink, "EXPIRES_AT", soon, "MAX_DOWNLOAD_BYTES", "1000", "MIN_DOWNLOAD_RATE", "10")
		refused(t, out, file, err, "less than MIN_VALIDITY (160s)")
	})
	t.Run("the guard sends the token over HTTPS only", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "token"), []byte("a-token"), 0o600); err != nil {
			t.Fatal(err)
		}
		out, file, err := download(t, secureLink, "EXPIRES_AT", soon, "MIN_VALIDITY", "60", "EXPORT_NAME", "nightly",
			"EXPORT_NAMESPACE", "team-a", "SERVICE_ACCOUNT_DIR", dir, "KUBERNETES_API", "http://127.0.0.1:1")
		refused(t, out, file, err, "KUBERNETES_API is not an https:// URL: refused")
	})

	t.Run("MAX_DOWNLOAD_BYTES must be a number", func(t *testing.T) {
		out, file, err := download(t, secureLink, "MAX_DOWNLOAD_BYTES", "1G")
		refused(t, out, file, err, "'1G' is not a number")
	})
}

// fetchLink asks the simulator for the backup's link, with the operator's
// own client.
func fetchLink(ctx context.Context, t *testing.T, sim *simulator.Server) string {
	t.Helper()
	client, err := cloud.New(cloud.Options{Endpoint: sim.URL(), HTTPClient: sim.Client(), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	link, err := client.DescribeBackupURL(ctx, cloud.Credentials{PublicKey: publicKey, PrivateKey: privateKey},
		cloud.BackupURLRequest{Region: region, Zone: zone, BackupID: backupID, GroupID: groupID})
	if err != nil {
		t.Fatalf("DescribeURedisBackupURL: %v", err)
	}
	return link.URL
}
