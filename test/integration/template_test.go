package integration

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// withTLS serves the simulator's API and links over HTTPS with a CA of its
// own; trustSimulator then has the operator trust it.
func withTLS() fixtureOption {
	return withSimulator(func(c *simulator.Config) { c.TLS = true })
}

// trustSimulator writes the simulator's CA to a file and restarts the
// manager trusting it (--api-ca-file); it returns the file, for the tools.
func (f *fixture) trustSimulator() string {
	f.t.Helper()
	caFile := filepath.Join(f.t.TempDir(), "simulator-ca.pem")
	f.g.Expect(os.WriteFile(caFile, f.sim.CACertPEM(), 0o600)).To(Succeed())
	f.opts.APICAFile = caFile
	f.restartManager()
	return caFile
}

func templated(policy uredisv1alpha1.TemplateMergePolicy, data map[string]uredisv1alpha1.TemplateText) func(*uredisv1alpha1.RedisBackupExport) {
	return func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.Target.Template = &uredisv1alpha1.SecretTemplate{Data: data, MergePolicy: policy}
	}
}

func dataKeys(s *corev1.Secret) []string {
	return slices.Sorted(maps.Keys(s.Data))
}

// runTool runs a command in dir with a time limit and returns its combined
// output.
func runTool(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

const (
	curlConfig = `# curl -K curl.conf
url = {{ .backupPath | quote }}
output = "{{ .backupId }}.rdb"
fail
silent
show-error
`
	// rclone's http backend drops a link's query string (by design), so
	// rclone takes the link with copyurl; the config names where it goes.
	rcloneConfig = `[restore]
type = alias
remote = ./restored/{{ .region }}
`
	envFile = `BACKUP_URL={{ .backupPath | squote }}
BACKUP_EXPIRES_AT={{ .expiresAtUnix }}
`
)

// requireTool skips a test whose tool is not installed, except in CI
// (CI=true), whose .ci/run installs it.
func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed: .ci/run installs it", name)
		}
		t.Skipf("%s is not installed (apt-get install %s)", name, name)
	}
}

// TestTemplatedSecretDrivesRealTools renders a curl config and an rclone
// config into the Secret, and has the real tools download the backup with
// them from the simulator over HTTPS.
func TestTemplatedSecretDrivesRealTools(t *testing.T) {
	f := newFixture(t, withTLS(), withSimulator(func(c *simulator.Config) {
		c.Backups = append(c.Backups, simulator.Backup{ID: "tools-1", Region: region, Zone: zone, Content: []byte("REDIS0011 the backup the tools fetch\n")})
	}))
	caFile := f.trustSimulator()
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("tools", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = "tools-1" }, templated("", map[string]uredisv1alpha1.TemplateText{
		"curl.conf":   curlConfig,
		"rclone.conf": rcloneConfig,
		"restore.env": envFile,
		"url":         `{{ .backupPath }}`,
	})))
	export := f.eventuallyReady("tools")
	secret, err := f.secret("tools")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(secret.Type).To(Equal(corev1.SecretTypeOpaque))
	f.g.Expect(dataKeys(secret)).To(Equal([]string{"curl.conf", "rclone.conf", "restore.env", "url"}), "Replace, the default: only the templated keys")
	link := string(secret.Data["url"])
	f.g.Expect(link).To(HavePrefix("https://127.0.0.1:"))
	f.g.Expect(string(secret.Data["restore.env"])).To(Equal("BACKUP_URL='" + link + "'\nBACKUP_EXPIRES_AT=" + strconv.FormatInt(export.Status.ExpiresAt.Unix(), 10) + "\n"))

	dir := t.TempDir()
	for _, key := range []string{"curl.conf", "rclone.conf"} {
		f.g.Expect(os.WriteFile(filepath.Join(dir, key), secret.Data[key], 0o600)).To(Succeed())
	}
	want := "REDIS0011 the backup the tools fetch\n"

	t.Run("curl", func(t *testing.T) {
		requireTool(t, "curl")
		out, err := runTool(t, dir, "curl", "--cacert", caFile, "-K", "curl.conf")
		if err != nil {
			t.Fatalf("curl -K curl.conf: %v: %s", err, out)
		}
		got, err := os.ReadFile(filepath.Join(dir, "tools-1.rdb"))
		if err != nil || string(got) != want {
			t.Fatalf("curl downloaded %q (%v), want %q", got, err, want)
		}
	})
	t.Run("rclone", func(t *testing.T) {
		requireTool(t, "rclone")
		out, err := runTool(t, dir, "rclone", "--config", "rclone.conf", "--ca-cert", caFile, "copyurl", link, "restore:backup.rdb")
		if err != nil {
			t.Fatalf("rclone copyurl: %v: %s", err, out)
		}
		got, err := os.ReadFile(filepath.Join(dir, "restored", region, "backup.rdb"))
		if err != nil || string(got) != want {
			t.Fatalf("rclone downloaded %q (%v), want %q", got, err, want)
		}
	})
	f.g.Expect(f.sim.Downloads()).To(BeNumerically(">=", 1), "the tools downloaded from the simulator")
}

// TestTemplateInvalid: a template that does not parse, or fails on a
// placeholder link, costs no call and writes nothing; one that fails only
// on the real link costs that call, leaves the Secret as it was and keeps
// the link out of every message; nothing is retried until the spec
// changes. Merge and Replace shape the Secret.
func TestTemplateInvalid(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)

	// A field of another name: found on the placeholder, before any call.
	f.create(f.newExport("tmpl", templated("", map[string]uredisv1alpha1.TemplateText{"BACKUP_URL": `{{ .backupURL }}`})))
	cond := f.eventuallyNotReady("tmpl", uredisv1alpha1.ReasonTemplateInvalid)
	f.g.Expect(cond.Message).To(And(ContainSubstring(`key "BACKUP_URL"`), ContainSubstring(`backupURL`)))
	f.g.Expect(findCondition(f.get("tmpl"), uredisv1alpha1.ConditionStalled)).NotTo(BeNil())
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(2 * time.Second).Should(BeZero())
	_, err := f.secret("tmpl")
	f.g.Expect(err).To(HaveOccurred(), "nothing was written")

	// Fixed: Replace, only the templated key.
	f.updateSpec("tmpl", templated(uredisv1alpha1.MergePolicyReplace, map[string]uredisv1alpha1.TemplateText{"BACKUP_URL": `{{ .backupPath }}`}))
	f.eventuallyReady("tmpl")
	f.g.Expect(f.sim.CallCount("")).To(Equal(1))
	secret, err := f.secret("tmpl")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(dataKeys(secret)).To(Equal([]string{"BACKUP_URL"}))
	f.g.Expect(download(string(secret.Data["BACKUP_URL"]))).To(Equal("backup one"))

	// Merge: the default keys too.
	f.updateSpec("tmpl", templated(uredisv1alpha1.MergePolicyMerge, map[string]uredisv1alpha1.TemplateText{"BACKUP_URL": `{{ .backupPath }}`, "region": `{{ .region | upper }}`}))
	f.g.Eventually(func() []string { s, _ := f.secret("tmpl"); return dataKeys(s) }).WithTimeout(10 * time.Second).
		Should(Equal([]string{"BACKUP_URL", "backupId", "backupPath", "expiresAt", "innerBackupPath", "region"}))
	f.eventuallyReady("tmpl")
	secret, _ = f.secret("tmpl")
	f.g.Expect(string(secret.Data["region"])).To(Equal(strings.ToUpper(region)), "a templated key replaces the default key")
	f.g.Expect(secret.Data["BACKUP_URL"]).To(Equal(secret.Data["backupPath"]))

	// An invalid edit of a Ready resource: no call, the Secret untouched.
	calls := f.sim.CallCount("")
	before := secret.ResourceVersion
	f.updateSpec("tmpl", templated(uredisv1alpha1.MergePolicyMerge, map[string]uredisv1alpha1.TemplateText{"BACKUP_URL": `{{ .backupPath `}))
	cond = f.eventuallyNotReady("tmpl", uredisv1alpha1.ReasonTemplateInvalid)
	f.g.Expect(cond.Message).To(And(ContainSubstring(`key "BACKUP_URL" does not parse`), ContainSubstring("the Secret is left as it is")))
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(2 * time.Second).Should(Equal(calls))
	secret, _ = f.secret("tmpl")
	f.g.Expect(secret.ResourceVersion).To(Equal(before))

	// A template that works on the placeholder but fails on the real link
	// (here, on a link whose host has a port): one call, then nothing until
	// the spec changes; the Secret is untouched and no message quotes the
	// link. (Another backup, so that no answer of the last seconds is
	// shared and a call is needed.)
	f.updateSpec("tmpl", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.BackupID = otherID
		templated(uredisv1alpha1.MergePolicyMerge, map[string]uredisv1alpha1.TemplateText{
			"BACKUP_URL": "{{ .backupPath }}\n{{ if contains \":\" (urlParse .backupPath).host }}{{ fail .backupPath }}{{ end }}",
		})(e)
	})
	f.g.Eventually(func() string { return conditionSummary(f.ready("tmpl")) }).WithTimeout(10 * time.Second).
		Should(ContainSubstring(`key "BACKUP_URL" fails to render at line 2`))
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(3*time.Second).Should(Equal(calls+1), "one call, and no retry loop")
	secret, _ = f.secret("tmpl")
	f.g.Expect(secret.ResourceVersion).To(Equal(before), "the Secret keeps the last good rendering")
	linkPrefix := f.sim.URL() + "download/"
	f.g.Expect(f.conditionMessages("tmpl")).NotTo(Or(ContainSubstring(linkPrefix), ContainSubstring("Signature")))
	f.g.Expect(strings.Join(f.eventNotes(), "\n")).NotTo(Or(ContainSubstring(linkPrefix), ContainSubstring("Signature")))
	f.g.Expect(f.eventSummaries()).To(ContainElement("Warning/RefreshFailed/tmpl"))

	// Back to Replace and a good template: the Secret loses the default keys.
	f.updateSpec("tmpl", templated(uredisv1alpha1.MergePolicyReplace, map[string]uredisv1alpha1.TemplateText{"link.txt": `{{ .backupPath }}`}))
	f.g.Eventually(func() []string { s, _ := f.secret("tmpl"); return dataKeys(s) }).WithTimeout(10 * time.Second).Should(Equal([]string{"link.txt"}))
	f.eventuallyReady("tmpl")
}
