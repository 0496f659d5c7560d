package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
)

func TestCreateYieldsSecretAndReadyStatus(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("nightly", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.Target.Name = "nightly-link"
		e.Spec.GroupID = "mfweUQnQ"
	}))

	export := f.eventuallyReady("nightly")
	st := export.Status
	f.g.Expect(st.BackupPath).To(HavePrefix(f.sim.URL() + "download/" + backupID + "?"))
	f.g.Expect(st.ExpiresAt).NotTo(BeNil())
	f.g.Expect(st.ExpiresAt.Time).To(BeTemporally("~", time.Now().Add(time.Hour), 10*time.Second))
	f.g.Expect(st.SecretName).To(Equal("nightly-link"))
	f.g.Expect(st.ObservedGeneration).To(Equal(export.Generation))
	f.g.Expect(st.NextRefreshTime.Time).To(BeTemporally(">", time.Now().Add(30*time.Minute)))

	secret, err := f.secret("nightly-link")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(secret.Type).To(Equal(corev1.SecretTypeOpaque))
	f.g.Expect(secret.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "uredis-backup-operator"))
	f.g.Expect(metav1.IsControlledBy(secret, export)).To(BeTrue(), "the Secret must be owned by the resource")
	f.g.Expect(string(secret.Data["backupPath"])).To(Equal(st.BackupPath))
	f.g.Expect(string(secret.Data["expiresAt"])).To(Equal(st.ExpiresAt.UTC().Format(time.RFC3339)))
	f.g.Expect(string(secret.Data["backupId"])).To(Equal(backupID))
	f.g.Expect(string(secret.Data["region"])).To(Equal(region))
	f.g.Expect(string(secret.Data["innerBackupPath"])).To(ContainSubstring("/inner/" + backupID))

	calls := f.sim.Calls()
	f.g.Expect(calls).To(HaveLen(1), "exactly one API call")
	f.g.Expect(calls[0].RetCode).To(Equal(0), "and it was correctly signed")
	f.g.Expect(calls[0].Params).To(HaveKeyWithValue("GroupId", "mfweUQnQ"))

	// The link in the Secret really downloads the backup.
	f.g.Expect(download(string(secret.Data["backupPath"]))).To(Equal("backup one"))
	// No further calls once the link is in place.
	f.g.Consistently(func() int { return len(f.sim.Calls()) }).WithTimeout(2 * time.Second).Should(Equal(1))
}

func TestLinkIsRefreshedBeforeItExpires(t *testing.T) {
	const lifetime = 6 * time.Second
	f := newFixture(t, withLinkLifetime(lifetime), withOperatorOptions(func(o *operator.Options) {
		o.Policy.MinMargin, o.Policy.MinUsefulLifetime = 2*time.Second, 4*time.Second
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("short"))
	f.eventuallyReady("short")

	// For three lifetimes, sample the Secret: it must always hold a link that
	// has not expired and that the simulator still accepts.
	links := map[string]bool{}
	deadline := time.Now().Add(3 * lifetime)
	for time.Now().Before(deadline) {
		secret, err := f.secret("short")
		f.g.Expect(err).NotTo(HaveOccurred())
		expiresAt, err := time.Parse(time.RFC3339, string(secret.Data["expiresAt"]))
		f.g.Expect(err).NotTo(HaveOccurred())
		f.g.Expect(expiresAt).To(BeTemporally(">", time.Now()), "the Secret held an expired link")
		links[string(secret.Data["backupPath"])] = true
		time.Sleep(500 * time.Millisecond)
	}
	f.g.Expect(len(links)).To(BeNumerically(">=", 3), "the link must have been replaced repeatedly")
	f.g.Expect(f.get("short").Status.FailureCount).To(BeZero())
}

func TestDeletedOrEditedSecretIsRestored(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("restore"))
	f.eventuallyReady("restore")

	secret, err := f.secret("restore")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(f.c.Delete(f.ctx, secret)).To(Succeed())
	f.g.Eventually(func() error { _, err := f.secret("restore"); return err }).WithTimeout(20 * time.Second).Should(Succeed())

	secret, _ = f.secret("restore")
	secret.Data["backupPath"] = []byte("https://evil.example.com/")
	f.g.Expect(f.c.Update(f.ctx, secret)).To(Succeed())
	f.g.Eventually(func() string {
		s, _ := f.secret("restore")
		return string(s.Data["backupPath"])
	}).WithTimeout(20 * time.Second).Should(HavePrefix(f.sim.URL()))
	final, _ := f.secret("restore")
	f.g.Expect(download(string(final.Data["backupPath"]))).To(Equal("backup one"))
}

func TestChangingBackupIDRefreshesAtOnce(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("switch"))
	f.eventuallyReady("switch")

	f.updateSpec("switch", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = otherID })
	f.g.Eventually(func() string {
		s, _ := f.secret("switch")
		return string(s.Data["backupId"]) + " " + string(s.Data["backupPath"])
	}).WithTimeout(10 * time.Second).Should(ContainSubstring(otherID + " " + f.sim.URL() + "download/" + otherID))
	secret, _ := f.secret("switch")
	f.g.Expect(download(string(secret.Data["backupPath"]))).To(Equal("backup two"))
	// The Secret is written before the status: wait for the status too.
	f.g.Eventually(func() int64 { return f.get("switch").Status.LinkGeneration }).WithTimeout(10 * time.Second).Should(Equal(int64(2)))
}

func TestMissingCredentialsThenCreated(t *testing.T) {
	f := newFixture(t)
	f.create(f.newExport("waiting"))

	cond := f.eventuallyNotReady("waiting", uredisv1alpha1.ReasonCredentialsNotFound)
	f.g.Expect(cond.Message).To(ContainSubstring(`"cloud-credentials" not found`))
	f.g.Expect(f.sim.CallCount("")).To(BeZero(), "no API call without credentials")

	// Creating the Secret recovers the resource at once: the default
	// backoffs are minutes long, so a few seconds prove the watch works.
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.g.Eventually(func() string { return conditionSummary(f.ready("waiting")) }).
		WithTimeout(10 * time.Second).Should(HavePrefix("True/"))
}

func TestCredentialsWithMissingKeys(t *testing.T) {
	f := newFixture(t)
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cloud-credentials", Namespace: f.ns},
		StringData: map[string]string{"publicKey": publicKey, "privateKey": "  "},
	}
	f.g.Expect(f.c.Create(f.ctx, secret)).To(Succeed())
	f.create(f.newExport("keys"))
	cond := f.eventuallyNotReady("keys", uredisv1alpha1.ReasonCredentialsValueEmpty)
	f.g.Expect(cond.Message).To(ContainSubstring(`"privateKey"`))
	f.g.Expect(f.sim.CallCount("")).To(BeZero())
}

func TestWrongPrivateKeyIsNotRetriedHot(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, "wrong-private-key")
	f.create(f.newExport("badkey"))

	cond := f.eventuallyNotReady("badkey", uredisv1alpha1.ReasonCredentialsRejected)
	f.g.Expect(cond.Message).To(ContainSubstring("RetCode 171"))
	f.g.Expect(cond.Message).To(ContainSubstring("signature error"))
	f.g.Expect(cond.Message).NotTo(ContainSubstring("wrong-private-key"))
	f.g.Consistently(func() int { return f.sim.CallCount("") }).
		WithTimeout(30*time.Second).WithPolling(time.Second).Should(BeNumerically("<=", 2), "a rejected signature must not be retried hot")

	// Fixing the key recovers at once, without waiting for the slow retry.
	secret, err := f.secret("cloud-credentials")
	f.g.Expect(err).NotTo(HaveOccurred())
	secret.Data["privateKey"] = []byte(privateKey)
	f.g.Expect(f.c.Update(f.ctx, secret)).To(Succeed())
	f.g.Eventually(func() string { return conditionSummary(f.ready("badkey")) }).
		WithTimeout(10 * time.Second).Should(HavePrefix("True/"))
	f.g.Expect(f.get("badkey").Status.FailureCount).To(BeZero())
}

func TestForeignSecretIsNeverTakenOver(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	foreign := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: f.ns},
		StringData: map[string]string{"owner": "somebody else"},
	}
	f.g.Expect(f.c.Create(f.ctx, foreign)).To(Succeed())
	f.create(f.newExport("taken"))

	cond := f.eventuallyNotReady("taken", uredisv1alpha1.ReasonSecretConflict)
	f.g.Expect(cond.Message).To(ContainSubstring("left untouched"))
	secret, err := f.secret("taken")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(secret.Data).To(Equal(map[string][]byte{"owner": []byte("somebody else")}))
	f.g.Expect(secret.OwnerReferences).To(BeEmpty())
	f.g.Expect(secret.Labels).To(BeEmpty())

	// Once the foreign Secret is gone, the resource takes the name.
	f.g.Expect(f.c.Delete(f.ctx, secret)).To(Succeed())
	f.eventuallyReady("taken")
}

func (f *fixture) getErr(name string) (*uredisv1alpha1.RedisBackupExport, error) {
	export := &uredisv1alpha1.RedisBackupExport{}
	err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, export)
	return export, err
}

func clientKey(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

// download fetches a link and returns the body, or the HTTP status text.
func download(link string) string {
	resp, err := http.Get(link) // the loopback simulator link under test
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.Status + ": " + strings.TrimSpace(string(body))
	}
	return string(body)
}
