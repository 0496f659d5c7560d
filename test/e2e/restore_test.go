package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
	"github.com/dezai/uredis-backup-operator/internal/testenv"
)

const (
	publicKey  = "e2e-public-key"
	privateKey = "e2e-private-key"
	backupID   = "00a1b68c-c7f5-4a52-9eac-d1c2e3f48f0e"
	region     = "cn-bj2"
	zone       = "cn-bj2-04"
	groupID    = "mfweUQnQ"
	// linkSecret is the Secret the restore sample reads.
	linkSecret = "nightly-link"
	// linkLifetime is short so that the test sees a link expire and get
	// replaced; the operator refreshes it when a third of it remains. It
	// leaves the restore guard's MIN_VALIDITY (minValidity) a margin
	// against the second an expiry is truncated to and the second the
	// script polls.
	linkLifetime = 60 * time.Second
	// minValidity is what the guarded download asks for: more than the
	// third of a link's lifetime that remains at its planned refresh, so
	// that the test can hold a link that has less without its refresh
	// being due.
	minValidity = 30 * time.Second
	// forcedRefreshInterval is the operator's --forced-refresh-min-interval:
	// less than the age of the link the guard replaces (at least
	// linkLifetime - minValidity), more than the time from the guard's
	// refresh to the request the operator must decline.
	forcedRefreshInterval = 20 * time.Second
	restoreSh             = "../../config/samples/restore/restore.sh"
)

// TestRestoreFromExportedLink: a backup written by a real Redis, exported
// by the operator, is downloaded through the link in the Secret and restored
// intact; the restore sample script restores it too; an expired or tampered
// link is refused, and the refreshed link in the Secret works.
func TestRestoreFromExportedLink(t *testing.T) {
	requireRedis(t)
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	base := t.TempDir()
	data := testDataset()

	// 1. A source Redis with known data, saved to an RDB file.
	source := startRedis(t, redisOptions{dir: filepath.Join(base, "source")})
	writeDataset(t, g, source, data)
	verifyDataset(t, g, source, data)
	out, err := source.cli(nil, "SAVE")
	g.Expect(err).NotTo(HaveOccurred(), out)
	g.Expect(strings.TrimSpace(out)).To(Equal("OK"))
	rdb, err := os.ReadFile(filepath.Join(base, "source", "dump.rdb"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(rdb)).To(HavePrefix("REDIS"), "an RDB file")
	t.Logf("source Redis saved %d keys in a %d-byte RDB file", len(data), len(rdb))

	// 2. The simulator serves it as a backup, over HTTPS with a CA of its
	// own (as the real API and storage serve theirs): the operator trusts it
	// through --api-ca-file, curl in restore.sh through CURL_CA_BUNDLE.
	sim, err := simulator.Start(simulator.Config{
		Accounts:     []simulator.Account{{PublicKey: publicKey, PrivateKey: privateKey}},
		Backups:      []simulator.Backup{{ID: backupID, Region: region, Zone: zone, GroupID: groupID, Content: rdb}},
		LinkLifetime: linkLifetime,
		TLS:          true,
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(sim.Close)
	caFile := filepath.Join(base, "simulator-ca.pem")
	g.Expect(os.WriteFile(caFile, sim.CACertPEM(), 0o644)).To(Succeed())
	ns := createNamespace(ctx, t, g)
	startOperator(ctx, t, g, ns, sim.URL(), caFile)
	g.Expect(env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cloud-credentials", Namespace: ns},
		StringData: map[string]string{"publicKey": publicKey, "privateKey": privateKey},
	})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &uredisv1alpha1.RedisBackupExport{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: ns},
		Spec: uredisv1alpha1.RedisBackupExportSpec{
			BackupSelection: uredisv1alpha1.BackupSelection{BackupID: backupID, Region: region, Zone: zone, GroupID: groupID},
			CredentialsRef:  &uredisv1alpha1.CredentialsReference{Name: "cloud-credentials"},
			Target:          uredisv1alpha1.TargetSecret{Name: linkSecret},
		},
	})).To(Succeed())
	g.Eventually(func() string { return readyStatus(ctx, ns, "nightly") }).
		WithTimeout(60*time.Second).WithPolling(200*time.Millisecond).Should(HavePrefix("True/"), "the export must become Ready")

	// 3. The link, taken only from the Secret, downloads the exact file.
	link, expiresAt := readLink(ctx, t, g, ns)
	g.Expect(expiresAt).To(BeTemporally(">", time.Now()), "the Secret holds an expired link")
	status, body := httpGet(ctx, t, sim, link)
	g.Expect(status).To(Equal(http.StatusOK), "downloading the link from the Secret")
	g.Expect(body).To(Equal(rdb), "the download must be the RDB file, byte for byte")
	downloaded := filepath.Join(base, "download", "backup.rdb")
	g.Expect(os.MkdirAll(filepath.Dir(downloaded), 0o755)).To(Succeed())
	g.Expect(os.WriteFile(downloaded, body, 0o644)).To(Succeed())

	// A tampered copy of the link (one character of its Signature changed)
	// is refused while the real one is valid: a wrong link cannot pass.
	status, body = httpGet(ctx, t, sim, tamperSignature(t, link))
	g.Expect(status).To(Equal(http.StatusForbidden), "a tampered link must be refused")
	g.Expect(string(body)).To(ContainSubstring("signature mismatch"))

	// 4. redis-check-rdb accepts it, and a fresh Redis loads every key.
	check, err := runTool(ctx, redis.checkRDB, downloaded)
	g.Expect(err).NotTo(HaveOccurred(), "redis-check-rdb: %s", check)
	g.Expect(check).To(ContainSubstring("RDB looks OK"))
	loaded := startRedis(t, redisOptions{dir: filepath.Dir(downloaded), dbfilename: filepath.Base(downloaded)})
	verifyDataset(t, g, loaded, data)
	t.Logf("a redis-server started on the downloaded file holds all %d keys", len(data))

	// 5. The restore sample script restores the downloaded file into an
	// empty Redis...
	target := startRedis(t, redisOptions{dir: filepath.Join(base, "target")})
	verifyDataset(t, g, target, nil)
	out = runRestore(ctx, t, g, map[string]string{
		"BACKUP_FILE": downloaded,
		"TARGET_HOST": "127.0.0.1",
		"TARGET_PORT": strconv.Itoa(target.port),
	})
	g.Expect(out).To(ContainSubstring("restored %d keys from 2 databases", len(data)))
	verifyDataset(t, g, target, data)

	// ... and, given the link instead of a file, downloads it itself (with
	// curl, HTTPS only) into a Redis that needs a password, printing neither
	// link nor password nor token. It runs as the sample Job's download step
	// does, with the Job's Role and nothing more, and a link about to
	// expire: the refresh guard has the operator replace it first.
	if requireCurl(t) {
		const password = `pa ss"word\`
		secured := startRedis(t, redisOptions{dir: filepath.Join(base, "secured"), password: password})
		guard := newRestoreGuard(ctx, t, g, ns)
		guard.expectLeastPrivilege(ctx, g, ns)

		// A link with more than MIN_VALIDITY to live, so that its planned
		// refresh (when a third of its lifetime remains) is not due; then
		// wait until it has a second less than MIN_VALIDITY. It is then
		// linkLifetime - minValidity old or more: a forced refresh is
		// allowed.
		current, currentExpiry := readLink(ctx, t, g, ns)
		if time.Until(currentExpiry) < minValidity+time.Second {
			g.Eventually(func() string { link, _ := readLink(ctx, t, g, ns); return link }).
				WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).ShouldNot(Equal(current))
			current, currentExpiry = readLink(ctx, t, g, ns)
		}
		time.Sleep(time.Until(currentExpiry.Add(-minValidity + time.Second)))
		calls := successfulCalls(sim)
		jobEnv := func(link string, expiresAt time.Time, more map[string]string) map[string]string {
			env := guard.with(map[string]string{
				"BACKUP_URL":     link,
				"EXPIRES_AT":     expiresAt.UTC().Format(time.RFC3339),
				"MIN_VALIDITY":   strconv.Itoa(int(minValidity.Seconds())),
				"CURL_CA_BUNDLE": caFile,
			})
			for k, v := range more {
				env[k] = v
			}
			return env
		}
		// The Job's init container: the guarded download.
		viaLink := filepath.Join(base, "via-link", "backup.rdb")
		out, err = runRestoreScript(ctx, t, g, jobEnv(current, currentExpiry, map[string]string{"BACKUP_FILE": viaLink}), "download")
		g.Expect(err).NotTo(HaveOccurred(), "the guarded download failed")
		g.Expect(out).To(MatchRegexp(`the link is valid for \d+s only, less than MIN_VALIDITY \(30s\): asking the operator for a new one`))
		g.Expect(out).To(MatchRegexp(`new link valid until \S+ \(([3-5][0-9]|6[01])s\)`))
		g.Expect(out).To(ContainSubstring("downloaded %d bytes", len(rdb)))
		g.Expect(successfulCalls(sim)).To(Equal(calls+1), "the guard's refresh is one call")
		export := &uredisv1alpha1.RedisBackupExport{}
		g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly"}, export)).To(Succeed())
		request := export.Annotations[uredisv1alpha1.AnnotationRefreshRequestedAt]
		g.Expect(request).NotTo(BeEmpty(), "the guard set the refresh-requested-at annotation")
		g.Expect(export.Status.LastHandledRefreshRequest).To(Equal(request))
		refreshed, refreshedExpiry := readLink(ctx, t, g, ns)
		g.Expect(refreshed).NotTo(Equal(current))
		printed := out

		// Asked again at once (well within the operator's 20 s between
		// forced refreshes), the operator declines: the script says so and
		// downloads nothing.
		declinedFile := filepath.Join(base, "declined", "backup.rdb")
		out, err = runRestoreScript(ctx, t, g, jobEnv(refreshed, time.Now().Add(time.Second), map[string]string{"BACKUP_FILE": declinedFile}), "download")
		g.Expect(err).To(HaveOccurred())
		g.Expect(out).To(ContainSubstring("ERROR: the operator declined the refresh request"))
		g.Expect(declinedFile).NotTo(BeAnExistingFile())
		g.Expect(successfulCalls(sim)).To(Equal(calls + 1))
		printed += out

		// No link of this export lives 60 s: refused at once, nothing asked.
		g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly"}, export)).To(Succeed())
		request = export.Annotations[uredisv1alpha1.AnnotationRefreshRequestedAt]
		out, err = runRestoreScript(ctx, t, g, jobEnv(refreshed, refreshedExpiry, map[string]string{"BACKUP_FILE": declinedFile, "MIN_VALIDITY": "60"}), "download")
		g.Expect(err).To(HaveOccurred())
		g.Expect(out).To(MatchRegexp(`ERROR: links of nightly live about (59|60)s \(the last was obtained at \S+ and expires at \S+\): none stays valid for MIN_VALIDITY \(60s\)`))
		g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly"}, export)).To(Succeed())
		g.Expect(export.Annotations[uredisv1alpha1.AnnotationRefreshRequestedAt]).To(Equal(request), "no refresh may be requested")
		g.Expect(declinedFile).NotTo(BeAnExistingFile())
		printed += out

		// The Job's container: the restore of what the download step got.
		out = runRestore(ctx, t, g, map[string]string{
			"BACKUP_FILE":     viaLink,
			"TARGET_HOST":     "127.0.0.1",
			"TARGET_PORT":     strconv.Itoa(secured.port),
			"TARGET_PASSWORD": password,
		}, "restore")
		g.Expect(out).To(ContainSubstring("restored %d keys from 2 databases", len(data)))
		printed += out
		for _, secret := range []string{signatureOf(t, current), signatureOf(t, refreshed), "Signature=", password, guard.token} {
			g.Expect(printed).NotTo(ContainSubstring(secret), "the script printed a link, the password or the token")
		}
		verifyDataset(t, g, secured, data)
	}

	// 6. Once expired, the first link is refused; the Secret by then holds a
	// refreshed link that works.
	wait := time.Until(expiresAt.Add(1500 * time.Millisecond))
	t.Logf("waiting %s for the first link to expire", wait.Round(time.Second))
	time.Sleep(wait)
	status, body = httpGet(ctx, t, sim, link)
	g.Expect(status).To(Equal(http.StatusForbidden), "an expired link must be refused")
	g.Expect(string(body)).To(ContainSubstring("link expired"))

	fresh, freshExpiry := readLink(ctx, t, g, ns)
	g.Expect(fresh).NotTo(Equal(link), "the operator must have replaced the expired link")
	g.Expect(freshExpiry).To(BeTemporally(">", time.Now()), "the Secret holds an expired link")
	status, body = httpGet(ctx, t, sim, fresh)
	g.Expect(status).To(Equal(http.StatusOK), "downloading the refreshed link from the Secret")
	g.Expect(body).To(Equal(rdb), "the refreshed link must serve the same RDB file")
}

func createNamespace(ctx context.Context, t *testing.T, g Gomega) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-restore-"}}
	g.Expect(env.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// startOperator runs the real manager for namespace ns against the
// simulator's HTTPS endpoint, trusting the CA in caFile, until the test
// ends.
func startOperator(ctx context.Context, t *testing.T, g Gomega, ns, endpoint, caFile string) {
	t.Helper()
	opts := operator.DefaultOptions()
	opts.APIEndpoint = endpoint
	opts.APICAFile = caFile
	opts.MetricsBindAddress, opts.HealthProbeBindAddress = "0", "0"
	opts.WatchNamespaces = []string{ns}
	opts.InProcessTestManagers = true
	opts.Policy.MinMargin, opts.Policy.MinUsefulLifetime = 3*time.Second, 10*time.Second
	// The restore guard's forced refresh must not wait for the default
	// 30 s, and the request after it must still be declined.
	opts.Policy.ForcedRefreshMinInterval = forcedRefreshInterval
	mgr, err := operator.NewManager(env.Config, opts)
	g.Expect(err).NotTo(HaveOccurred())
	testenv.StartManager(t, ctx, mgr)
}

func readyStatus(ctx context.Context, ns, name string) string {
	export := &uredisv1alpha1.RedisBackupExport{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, export); err != nil {
		return err.Error()
	}
	c := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}

// readLink reads the link and its expiry from the operator's Secret, the
// way the restore Job does (keys backupPath and expiresAt).
func readLink(ctx context.Context, t *testing.T, g Gomega, ns string) (string, time.Time) {
	t.Helper()
	secret := &corev1.Secret{}
	g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: linkSecret}, secret)).To(Succeed())
	g.Expect(string(secret.Data["backupId"])).To(Equal(backupID))
	g.Expect(string(secret.Data["region"])).To(Equal(region))
	link := string(secret.Data["backupPath"])
	g.Expect(link).To(HavePrefix("https://127.0.0.1:"), "a loopback simulator link, over HTTPS")
	expiresAt, err := time.Parse(time.RFC3339, string(secret.Data["expiresAt"]))
	g.Expect(err).NotTo(HaveOccurred(), "expiresAt must be RFC 3339")
	return link, expiresAt
}

// httpGet downloads a link with a client that trusts the simulator's CA and
// returns the status and body.
func httpGet(ctx context.Context, t *testing.T, sim *simulator.Server, link string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		t.Fatalf("building the request: %v", err) // never print the link itself
	}
	resp, err := sim.Client().Do(req)
	if urlErr := (*url.Error)(nil); errors.As(err, &urlErr) {
		err = urlErr.Err // without the link
	}
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp.StatusCode, body
}

// signatureOf returns the Signature parameter of a link.
func signatureOf(t *testing.T, link string) string {
	t.Helper()
	_, query, _ := strings.Cut(link, "?")
	for _, part := range strings.Split(query, "&") {
		if value, ok := strings.CutPrefix(part, "Signature="); ok && value != "" {
			return value
		}
	}
	t.Fatal("the link has no Signature parameter")
	return ""
}

// tamperSignature changes the first character of the link's Signature to
// another base64 character.
func tamperSignature(t *testing.T, link string) string {
	t.Helper()
	i := strings.Index(link, "Signature=") + len("Signature=")
	if i < len("Signature=") || i >= len(link) {
		t.Fatal("the link has no Signature parameter")
	}
	replacement := byte('A')
	if link[i] == 'A' {
		replacement = 'B'
	}
	return link[:i] + string(replacement) + link[i+1:]
}

// runRestore runs config/samples/restore/restore.sh with bash and env (args,
// e.g. "restore", after the script), and returns its output; the script
// must succeed.
func runRestore(ctx context.Context, t *testing.T, g Gomega, env map[string]string, args ...string) string {
	t.Helper()
	out, err := runRestoreScript(ctx, t, g, env, args...)
	g.Expect(err).NotTo(HaveOccurred(), "restore.sh failed")
	return out
}

// runRestoreScript runs config/samples/restore/restore.sh with bash and env
// (args, e.g. "download", after the script), and returns its output and how
// it exited. Either way it must leave no work directory behind.
func runRestoreScript(ctx context.Context, t *testing.T, g Gomega, env map[string]string, args ...string) (string, error) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	g.Expect(err).NotTo(HaveOccurred(), "bash is needed to run restore.sh")
	script, err := filepath.Abs(restoreSh)
	g.Expect(err).NotTo(HaveOccurred())
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, append([]string{script}, args...)...)
	// SIGTERM on timeout, so that the script's trap stops its temporary
	// redis-server.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "TMPDIR=" + tmp, "TEMP_PORT=" + strconv.Itoa(freePort(t))}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	start := time.Now()
	outBytes, err := cmd.CombinedOutput()
	out := string(outBytes)
	t.Logf("restore.sh (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	leftovers, _ := os.ReadDir(tmp)
	g.Expect(leftovers).To(BeEmpty(), "restore.sh must remove its work directory")
	return out, err
}

func runTool(ctx context.Context, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	return string(out), err
}

// requireCurl reports whether curl is installed. Without it the test
// fails when E2E_REQUIRE_REDIS=1 (CI), and otherwise logs that restore.sh's
// download is not exercised.
func requireCurl(t *testing.T) bool {
	t.Helper()
	if _, err := exec.LookPath("curl"); err == nil {
		return true
	}
	if os.Getenv(requireRedisEnv) == "1" {
		t.Fatalf("curl is not installed, and %s=1 requires it: install the Debian package curl", requireRedisEnv)
	}
	t.Log("curl is not installed: restore.sh's own download is not exercised")
	return false
}
