package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/plugin"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// pluginRun is what one kubectl-rbe invocation printed and returned.
type pluginRun struct {
	stdout, stderr string
	code           int
}

// runPlugin runs kubectl-rbe in-process, as `kubectl rbe ARGS -n <ns>`,
// through its real flags: a kubeconfig file for the test API server.
func (f *fixture) runPlugin(args ...string) pluginRun {
	f.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := plugin.NewCommandWithSetup(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &stdout, ErrOut: &stderr},
		func(p *plugin.Plugin) { p.PollInterval = 100 * time.Millisecond })
	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	code := plugin.Execute(ctx, cmd, append(args, "--kubeconfig", f.kubeconfig(), "--namespace", f.ns))
	run := pluginRun{stdout: stdout.String(), stderr: stderr.String(), code: code}
	f.t.Logf("kubectl rbe %s (%s): exit %d\nstderr: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), code, run.stderr)
	return run
}

// kubeconfig writes a kubeconfig file for the test API server (once per
// test) and returns its path.
func (f *fixture) kubeconfig() string {
	path := filepath.Join(os.TempDir(), "kubectl-rbe-"+f.ns+".kubeconfig")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	cfg := env.Config
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kubeconfig.AuthInfos["test"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kubeconfig.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test", Namespace: "default"}
	kubeconfig.CurrentContext = "test"
	f.g.Expect(clientcmd.WriteToFile(*kubeconfig, path)).To(Succeed())
	f.t.Cleanup(func() { _ = os.Remove(path) })
	return path
}

// secretLink reads the link and its expiry from the resource's Secret.
func (f *fixture) secretLink(name string) (string, time.Time) {
	f.t.Helper()
	secret, err := f.secret(name)
	f.g.Expect(err).NotTo(HaveOccurred())
	expires, err := time.Parse(time.RFC3339, string(secret.Data[uredisv1alpha1.KeyExpiresAt]))
	f.g.Expect(err).NotTo(HaveOccurred())
	return string(secret.Data[uredisv1alpha1.KeyBackupPath]), expires
}

// expectNoLink checks that nothing the plugin printed holds a link, except
// stdout when allowed.
func (f *fixture) expectNoLink(run pluginRun, stdoutMayHoldIt bool) {
	f.t.Helper()
	f.g.Expect(run.stderr).NotTo(ContainSubstring("Signature="), "the plugin printed a link on stderr")
	if !stdoutMayHoldIt {
		f.g.Expect(run.stdout).NotTo(ContainSubstring("Signature="), "the plugin printed a link on stdout")
	}
}

// waitPastInterval waits until the resource's last attempt is more than
// interval old (the status has whole seconds), so that a forced refresh is
// not declined.
func (f *fixture) waitPastInterval(name string, interval time.Duration) {
	f.t.Helper()
	st := f.get(name).Status
	last := st.LastRefreshTime.Time
	if st.LastFailureTime != nil && st.LastFailureTime.After(last) {
		last = st.LastFailureTime.Time
	}
	time.Sleep(time.Until(last.Add(interval + time.Second)))
}

func withForcedRefreshInterval(d time.Duration) fixtureOption {
	return withOperatorOptions(func(o *operator.Options) { o.Policy.ForcedRefreshMinInterval = d })
}

// TestPluginGetAndRefreshWait: `get` shows the resource; `refresh --wait`
// sets the annotation, returns when the status acknowledges that very
// value, having made exactly one call, and prints the new expiry.
func TestPluginGetAndRefreshWait(t *testing.T) {
	f := newFixture(t, withForcedRefreshInterval(time.Second))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("nightly"))
	f.eventuallyReady("nightly")

	run := f.runPlugin("get")
	f.g.Expect(run.code).To(BeZero())
	lines := strings.Split(strings.TrimSpace(run.stdout), "\n")
	f.g.Expect(lines).To(HaveLen(2))
	f.g.Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "READY", "BACKUP", "TIME", "LEFT", "NEXT", "REFRESH", "LAST", "FAILURE"}))
	f.g.Expect(lines[1]).To(MatchRegexp(`^nightly\s+True\s+` + backupID + `\s+(59m|60m|1h)\S*\s+in \S+\s+<none>$`))
	run = f.runPlugin("get", "-A")
	f.g.Expect(run.code).To(BeZero())
	f.g.Expect(run.stdout).To(MatchRegexp(`(?m)^NAMESPACE\s+NAME\s+READY`))
	f.g.Expect(run.stdout).To(MatchRegexp(`(?m)^` + f.ns + `\s+nightly\s+True\s+`))

	oldLink, oldExpiry := f.secretLink("nightly")
	f.waitPastInterval("nightly", time.Second)
	calls := successfulCalls(f.sim)
	run = f.runPlugin("refresh", "nightly", "--wait", "--timeout", "30s")
	f.g.Expect(run.code).To(BeZero(), run.stderr)
	f.expectNoLink(run, false)
	export := f.get("nightly")
	f.g.Expect(export.Annotations).To(HaveKey(uredisv1alpha1.AnnotationRefreshRequestedAt))
	f.g.Expect(export.Status.LastHandledRefreshRequest).To(Equal(export.Annotations[uredisv1alpha1.AnnotationRefreshRequestedAt]),
		"the command returned before the status acknowledged its request")
	f.g.Expect(successfulCalls(f.sim)).To(Equal(calls+1), "one refresh, one call")
	newLink, newExpiry := f.secretLink("nightly")
	f.g.Expect(newLink).NotTo(Equal(oldLink))
	f.g.Expect(newExpiry).To(BeTemporally(">", oldExpiry))
	f.g.Expect(run.stdout).To(ContainSubstring("redisbackupexport/nightly refreshed: link to backup %s valid until %s", backupID, newExpiry.UTC().Format(time.RFC3339)))

	// Without --wait, the request is only made.
	run = f.runPlugin("refresh", "nightly")
	f.g.Expect(run.code).To(BeZero(), run.stderr)
	f.g.Expect(run.stdout).To(ContainSubstring("refresh requested (uredis.dezai.com/refresh-requested-at="))
}

// TestPluginRefreshWaitFailures: a refresh the provider refuses, one the
// operator declines, and one nobody answers all end `refresh --wait` with
// a non-zero exit and the reason, never with an endless wait.
func TestPluginRefreshWaitFailures(t *testing.T) {
	f := newFixture(t, withForcedRefreshInterval(time.Second))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("nightly"))
	f.eventuallyReady("nightly")

	// The provider rejects the credentials: the Ready reason and message.
	f.waitPastInterval("nightly", time.Second)
	f.sim.QueueFaults(simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 171})
	calls := len(f.sim.Calls())
	run := f.runPlugin("refresh", "nightly", "--wait", "--timeout", "30s")
	f.g.Expect(run.code).To(Equal(1))
	f.g.Expect(run.stderr).To(ContainSubstring("error: the refresh failed: False/CredentialsRejected: "))
	f.expectNoLink(run, false)
	f.g.Expect(f.sim.Calls()).To(HaveLen(calls+1), "the refresh was attempted")
	f.g.Expect(f.sim.Calls()[calls].RetCode).To(Equal(171), "the injected fault answered it")

	// While the credentials stay rejected, a forced refresh is declined:
	// said at once, without a call.
	f.waitPastInterval("nightly", time.Second)
	calls = len(f.sim.Calls())
	run = f.runPlugin("refresh", "nightly", "--wait", "--timeout", "30s")
	f.g.Expect(run.code).To(Equal(1))
	f.g.Expect(run.stderr).To(ContainSubstring("error: the operator declined the refresh request: "))
	f.g.Expect(f.sim.Calls()).To(HaveLen(calls), "a declined request makes no call")

	// No operator: a timeout that says what it waited for.
	f.stopManager()
	start := time.Now()
	run = f.runPlugin("refresh", "nightly", "--wait", "--timeout", "2s")
	f.g.Expect(run.code).To(Equal(1))
	f.g.Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second))
	f.g.Expect(run.stderr).To(MatchRegexp(`error: timed out after 2s: the operator has not acknowledged refresh request "[^"]+"`))
	f.g.Expect(run.stderr).To(ContainSubstring("Is the operator running and watching namespace " + f.ns))
}

// TestPluginRefreshDeclinedTooSoon: with the default 30 s between forced
// refreshes, a request right after a refresh is acknowledged without one,
// and `refresh --wait` says so with the operator's reason.
func TestPluginRefreshDeclinedTooSoon(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("nightly"))
	f.eventuallyReady("nightly")
	calls := successfulCalls(f.sim)
	run := f.runPlugin("refresh", "nightly", "--wait", "--timeout", "30s")
	f.g.Expect(run.code).To(Equal(1))
	f.g.Expect(run.stderr).To(ContainSubstring("error: the operator declined the refresh request: "))
	f.g.Expect(run.stderr).To(ContainSubstring("30s"))
	f.g.Expect(successfulCalls(f.sim)).To(Equal(calls), "a declined request makes no call")
	f.g.Expect(f.get("nightly").Status.LastHandledRefreshRequest).NotTo(BeEmpty())
}

// TestPluginURLMinValidity: `url --min-validity` prints a link fresh
// enough without a call, refreshes one too close to expiry and prints the
// new one, and refuses at once a validity no link of this resource reaches.
// The operator keeps the link out of the status: the Secret is the source.
func TestPluginURLMinValidity(t *testing.T) {
	f := newFixture(t, withLinkLifetime(time.Minute), withForcedRefreshInterval(time.Second),
		withOperatorOptions(func(o *operator.Options) { o.LinkInStatus = false }))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("nightly", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.Target.Keys.BackupPath = "BACKUP_URL" // read through the renamed key
	}))
	f.eventuallyReady("nightly")
	f.g.Expect(f.get("nightly").Status.BackupPath).To(BeEmpty())
	secret, err := f.secret("nightly")
	f.g.Expect(err).NotTo(HaveOccurred())
	link := string(secret.Data["BACKUP_URL"])
	f.g.Expect(link).NotTo(BeEmpty())

	// Fresh enough: printed as it is, no call.
	calls := successfulCalls(f.sim)
	run := f.runPlugin("url", "nightly", "--min-validity", "20s")
	f.g.Expect(run.code).To(BeZero(), run.stderr)
	f.g.Expect(run.stdout).To(Equal(link + "\n"))
	f.expectNoLink(run, true)
	f.g.Expect(successfulCalls(f.sim)).To(Equal(calls))

	// Longer than links live (a minute): refused at once, nothing asked.
	run = f.runPlugin("url", "nightly", "--min-validity", "2m")
	f.g.Expect(run.code).To(Equal(1))
	f.g.Expect(run.stdout).To(BeEmpty())
	f.g.Expect(run.stderr).To(MatchRegexp(`links of redisbackupexport nightly live about (59|60|61)s`))
	f.g.Expect(run.stderr).To(ContainSubstring("none can stay valid for --min-validity 2m0s"))
	f.g.Expect(f.get("nightly").Annotations).NotTo(HaveKey(uredisv1alpha1.AnnotationRefreshRequestedAt), "no refresh may be requested")
	f.g.Expect(successfulCalls(f.sim)).To(Equal(calls))

	// Too close to expiry for 50s: a refresh, then the new link (its
	// planned refresh, when a third of the minute remains, is not due).
	_, expiry := f.secretLink("nightly")
	time.Sleep(time.Until(expiry.Add(-49 * time.Second)))
	run = f.runPlugin("url", "nightly", "--min-validity", "50s", "--timeout", "30s")
	f.g.Expect(run.code).To(BeZero(), run.stderr)
	f.g.Expect(run.stderr).To(ContainSubstring("less than 50s: asking the operator for a new one"))
	f.expectNoLink(run, true)
	secret, err = f.secret("nightly")
	f.g.Expect(err).NotTo(HaveOccurred())
	newLink := string(secret.Data["BACKUP_URL"])
	f.g.Expect(newLink).NotTo(Equal(link))
	f.g.Expect(run.stdout).To(Equal(newLink + "\n"))
	f.g.Expect(successfulCalls(f.sim)).To(Equal(calls+1), "one refresh, one call")
	newExpiry, err := time.Parse(time.RFC3339, string(secret.Data[uredisv1alpha1.KeyExpiresAt]))
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(time.Until(newExpiry)).To(BeNumerically(">=", 45*time.Second))
}

// TestPluginDownload: `download` over HTTPS writes the backup byte for
// byte; a download cut off part-way is detected (fewer bytes than
// announced), kept, and resumed with a Range request; storage that ignores
// Range gets the whole file again.
func TestPluginDownload(t *testing.T) {
	content := make([]byte, 300_000)
	_, _ = rand.Read(content)
	f := newFixture(t, withSimulator(func(c *simulator.Config) {
		c.TLS = true
		c.Backups[0].Content = content
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("nightly"))
	f.eventuallyReady("nightly")
	calls := successfulCalls(f.sim)
	dir := t.TempDir()
	download := func(file string) pluginRun {
		run := f.runPlugin("download", "nightly", "-o", file, "--ca-file", f.caFile, "--min-validity", "10m")
		f.expectNoLink(run, false)
		return run
	}
	// lastDownload is the newest request of the simulator's download log,
	// once the log has grown: the simulator logs a request when its handler
	// returns, which may be just after the client has read the whole body.
	logged := 0
	lastDownload := func() simulator.DownloadRequest {
		var requests []simulator.DownloadRequest
		f.g.Eventually(func() int {
			requests = f.sim.DownloadRequests()
			return len(requests)
		}).Should(BeNumerically(">", logged), "the download was logged")
		logged = len(requests)
		return requests[logged-1]
	}

	// Whole.
	whole := filepath.Join(dir, "whole.rdb")
	run := download(whole)
	f.g.Expect(run.code).To(BeZero(), run.stderr)
	f.g.Expect(os.ReadFile(whole)).To(Equal(content))
	f.g.Expect(run.stderr).To(ContainSubstring("downloaded 300000 bytes of backup %s to %s", backupID, whole))
	f.g.Expect(lastDownload()).To(Equal(simulator.DownloadRequest{Method: "GET", Status: 200, Bytes: 300_000}))
	f.g.Expect(whole + ".partial").NotTo(BeAnExistingFile())
	f.g.Expect(whole + ".partial.json").NotTo(BeAnExistingFile())
	run = download(whole)
	f.g.Expect(run.code).To(Equal(1))
	f.g.Expect(run.stderr).To(ContainSubstring("exists: remove it or choose another file"))

	// Cut off after 100,000 bytes: the byte count does not match, the part
	// is kept.
	resumed := filepath.Join(dir, "resumed.rdb")
	f.sim.QueueDownloadFaults(simulator.DownloadFault{CutAfter: 100_000})
	run = download(resumed)
	f.g.Expect(run.code).To(Equal(1))
	f.g.Expect(lastDownload().Cut).To(BeTrue(), "the injected cut happened")
	f.g.Expect(run.stderr).To(ContainSubstring("download incomplete: received 100000 of 300000 bytes; run the same command again to resume"))
	f.g.Expect(resumed).NotTo(BeAnExistingFile())
	f.g.Expect(os.ReadFile(resumed + ".partial")).To(Equal(content[:100_000]))

	// The same command resumes where it stopped.
	run = download(resumed)
	f.g.Expect(run.code).To(BeZero(), run.stderr)
	f.g.Expect(run.stderr).To(ContainSubstring("resuming " + resumed + ".partial at byte 100000 of 300000"))
	f.g.Expect(lastDownload()).To(Equal(simulator.DownloadRequest{Method: "GET", Range: "bytes=100000-", Status: 206, Bytes: 200_000}))
	f.g.Expect(os.ReadFile(resumed)).To(Equal(content))
	f.g.Expect(resumed + ".partial").NotTo(BeAnExistingFile())

	// Storage that ignores Range: the whole file again, from the start.
	restarted := filepath.Join(dir, "restarted.rdb")
	f.sim.QueueDownloadFaults(simulator.DownloadFault{CutAfter: 50_000}, simulator.DownloadFault{IgnoreRange: true})
	f.g.Expect(download(restarted).code).To(Equal(1))
	run = download(restarted)
	f.g.Expect(run.code).To(BeZero(), run.stderr)
	f.g.Expect(run.stderr).To(ContainSubstring("ignores Range requests: downloading from the start"))
	f.g.Expect(os.ReadFile(restarted)).To(Equal(content))
	var requests []simulator.DownloadRequest
	f.g.Eventually(func() []simulator.DownloadRequest {
		requests = f.sim.DownloadRequests()
		return requests
	}).Should(HaveLen(6))
	// The last two: the ranged request, answered whole and abandoned
	// part-way, and the new download from the start. The simulator logs a
	// request when its handler returns, and the abandoned one's may notice
	// the closed connection only after the next has finished: either order.
	last := requests[4:]
	f.g.Expect(last).To(ContainElement(And(
		HaveField("Range", "bytes=50000-"), HaveField("Status", 200))), "the storage ignored the Range request")
	f.g.Expect(last).To(ContainElement(simulator.DownloadRequest{Method: "GET", Status: 200, Bytes: 300_000}))

	f.g.Expect(successfulCalls(f.sim)).To(Equal(calls), "the link was fresh enough every time: no refresh")
}

// TestPluginRefreshOfASuspendedResource: the operator declines a request
// to refresh a suspended resource, and `refresh --wait` says why at once
// instead of waiting for its timeout.
func TestPluginRefreshOfASuspendedResource(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("nightly"))
	f.eventuallyReady("nightly")
	f.updateSpec("nightly", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.Suspend = true })
	f.g.Eventually(func() string { return f.ready("nightly").Reason }).Should(Equal(uredisv1alpha1.ReasonSuspended))
	calls := successfulCalls(f.sim)
	started := time.Now()
	run := f.runPlugin("refresh", "nightly", "--wait", "--timeout", "60s")
	f.g.Expect(run.code).To(Equal(1))
	f.g.Expect(run.stderr).To(ContainSubstring("the resource is suspended (spec.suspend: true)"))
	f.g.Expect(time.Since(started)).To(BeNumerically("<", 30*time.Second), "answered, not timed out")
	f.g.Expect(successfulCalls(f.sim)).To(Equal(calls), "a suspended resource makes no call")
}
