package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// TestInvalidTargetCostsNoQuota: a target Secret the API server would
// refuse as invalid (here 64 annotations of 4,096 characters, over the
// 256 KiB a Secret's annotations may hold; each one alone is admitted) is
// found by a server-side dry-run before any API call. The resource says
// TargetInvalid, Stalled, and nothing is retried until the spec changes.
func TestInvalidTargetCostsNoQuota(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	tooMany := map[string]uredisv1alpha1.AnnotationValue{}
	for i := range 64 {
		tooMany[fmt.Sprintf("example.com/note-%02d", i)] = uredisv1alpha1.AnnotationValue(strings.Repeat("n", 4096))
	}
	f.create(f.newExport("invalid", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.Target.Annotations = tooMany }))

	cond := f.eventuallyNotReady("invalid", uredisv1alpha1.ReasonTargetInvalid)
	f.g.Expect(cond.Message).To(And(ContainSubstring("metadata.annotations"), ContainSubstring("fix spec.target")))
	f.g.Expect(findCondition(f.get("invalid"), uredisv1alpha1.ConditionStalled)).NotTo(BeNil())
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(3*time.Second).Should(BeZero(), "no call for a write that cannot succeed")
	_, err := f.secret("invalid")
	f.g.Expect(err).To(HaveOccurred(), "nothing was written")

	f.updateSpec("invalid", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.Target.Annotations = map[string]uredisv1alpha1.AnnotationValue{"example.com/note": "fixed"}
	})
	f.eventuallyReady("invalid")
	f.g.Expect(f.sim.CallCount("")).To(Equal(1))

	// A Ready resource whose spec turns invalid keeps its Secret as it is.
	before, err := f.secret("invalid")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.updateSpec("invalid", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.Target.Annotations = tooMany })
	f.eventuallyNotReady("invalid", uredisv1alpha1.ReasonTargetInvalid)
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(2 * time.Second).Should(Equal(1))
	after, err := f.secret("invalid")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))
}

// staleSecretCache makes the manager's cached view of one Secret's metadata
// stand still, as a lagging cache would.
type staleSecretCache struct {
	client.Client
	name   string
	frozen atomic.Pointer[metav1.PartialObjectMetadata]
	// served counts the reads answered with the frozen metadata.
	served atomic.Int32
}

func (c *staleSecretCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if meta, ok := obj.(*metav1.PartialObjectMetadata); ok && key.Name == c.name {
		if frozen := c.frozen.Load(); frozen != nil {
			frozen.DeepCopyInto(meta)
			c.served.Add(1)
			return nil
		}
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// TestSecretPatchNeverLandsOnARecreatedSecret: the operator's Secret is
// deleted and someone else creates a Secret of the same name while the
// cache still shows the old one. The write carries the cached
// resourceVersion as a precondition, so the API server refuses it and the
// foreign Secret never receives the link.
func TestSecretPatchNeverLandsOnARecreatedSecret(t *testing.T) {
	stale := &staleSecretCache{name: "victim"}
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) {
		o.Policy.ForcedRefreshMinInterval = 0
		o.WrapClient = func(c client.Client) client.Client { stale.Client = c; return stale }
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("victim"))
	f.eventuallyReady("victim")

	ours, err := f.secret("victim")
	f.g.Expect(err).NotTo(HaveOccurred())
	meta := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: *ours.ObjectMeta.DeepCopy()}
	stale.frozen.Store(meta)

	f.g.Expect(f.c.Delete(f.ctx, ours)).To(Succeed())
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "victim", Namespace: f.ns}, StringData: map[string]string{"owner": "someone else"}}
	f.g.Expect(f.c.Create(f.ctx, foreign)).To(Succeed())
	calls := f.sim.CallCount("")
	f.annotate("victim", uredisv1alpha1.AnnotationRefreshRequestedAt, "now")

	f.g.Eventually(func() int { return f.sim.CallCount("") }).WithTimeout(10*time.Second).Should(BeNumerically(">", calls), "the refresh was attempted")
	f.g.Expect(stale.served.Load()).To(BeNumerically(">", 0), "the operator saw the stale metadata, and so patched rather than created")
	f.g.Consistently(func() map[string][]byte {
		s, _ := f.secret("victim")
		return s.Data
	}).WithTimeout(3*time.Second).Should(Equal(map[string][]byte{"owner": []byte("someone else")}), "the foreign Secret is never written")
}

// TestLinkKeptOutOfStatus: with --link-in-status=false the link is only in
// the Secret; the operator still knows the Secret holds it (a restart makes
// no call) and still repairs an edited one.
func TestLinkKeptOutOfStatus(t *testing.T) {
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) { o.LinkInStatus = false }))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("quiet"))
	export := f.eventuallyReady("quiet")
	f.g.Expect(export.Status.BackupPath).To(BeEmpty())
	f.g.Expect(export.Status.ExpiresAt).NotTo(BeNil())
	secret, err := f.secret("quiet")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(download(string(secret.Data[uredisv1alpha1.KeyBackupPath]))).To(Equal("backup one"))

	f.restartManager()
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(3*time.Second).Should(Equal(1), "a restart makes no call")

	secret.Data[uredisv1alpha1.KeyBackupPath] = []byte("https://tampered.example.com/")
	f.g.Expect(f.c.Update(f.ctx, secret)).To(Succeed())
	f.g.Eventually(func() string {
		s, _ := f.secret("quiet")
		return string(s.Data[uredisv1alpha1.KeyBackupPath])
	}).WithTimeout(10 * time.Second).ShouldNot(ContainSubstring("tampered"))
	f.g.Expect(f.get("quiet").Status.BackupPath).To(BeEmpty())

	// During an outage a deleted Secret cannot be written back from the
	// status: Ready says so at once, though the link has not expired. (Once
	// the last answer is too old to be shared, so that the outage shows.)
	time.Sleep(time.Until(f.eventuallyReady("quiet").Status.LastRefreshTime.Add(16 * time.Second)))
	f.sim.SetFaultRate(1, simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 503})
	secret, err = f.secret("quiet")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(f.c.Delete(f.ctx, secret)).To(Succeed())
	cond := f.eventuallyNotReady("quiet", uredisv1alpha1.ReasonProviderUnavailable)
	f.g.Expect(f.get("quiet").Status.ExpiresAt.Time).To(BeTemporally(">", time.Now()), "the link is still valid, only the Secret is gone")
	f.g.Expect(cond.Message).To(ContainSubstring("503"))
	f.sim.ClearFaults()
	f.g.Eventually(func() string { return conditionSummary(f.ready("quiet")) }).WithTimeout(30 * time.Second).Should(HavePrefix("True/Refreshed"))
	_, err = f.secret("quiet")
	f.g.Expect(err).NotTo(HaveOccurred())
}

// TestRejectedCredentialsHoldAgainstForcedRefreshesAndSpecEdits: after the
// provider rejected the credentials, neither forcing a refresh nor editing
// the spec makes another call before the slow retry; new credentials do.
func TestRejectedCredentialsHoldAgainstForcedRefreshesAndSpecEdits(t *testing.T) {
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) { o.Policy.ForcedRefreshMinInterval = 0 }))
	f.createCredentials("cloud-credentials", publicKey, "wrong-private-key")
	f.create(f.newExport("rejected"))
	f.eventuallyNotReady("rejected", uredisv1alpha1.ReasonCredentialsRejected)
	f.g.Expect(f.sim.CallCount("")).To(Equal(1))

	for i := range 5 {
		f.annotate("rejected", uredisv1alpha1.AnnotationRefreshRequestedAt, fmt.Sprint(i))
		f.updateSpec("rejected", func(e *uredisv1alpha1.RedisBackupExport) {
			e.Spec.Target.Labels = map[string]uredisv1alpha1.LabelValue{"attempt": uredisv1alpha1.LabelValue(fmt.Sprint(i))}
		})
	}
	f.g.Eventually(func() string { return f.get("rejected").Status.LastHandledRefreshRequest }).WithTimeout(10 * time.Second).Should(Equal("4"))
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(3*time.Second).Should(Equal(1), "no call until the credentials change")

	creds, err := f.secret("cloud-credentials")
	f.g.Expect(err).NotTo(HaveOccurred())
	creds.Data["privateKey"] = []byte(privateKey)
	f.g.Expect(f.c.Update(f.ctx, creds)).To(Succeed())
	f.eventuallyReady("rejected")
}

// TestOneNamespaceCannotStarveAnother: one operator, three tenant
// namespaces, a budget of 2 calls per second. Two noisy namespaces have 15
// resources each whose links last 30 s and force refreshes on them in a
// tight loop for a minute, asking for far more than the budget; together
// they could hold every worker but for the overall cap. The quiet
// namespace's links (also 30 s, refreshed 10 s before they expire) must
// never expire, and the noisy namespaces' calls stay within the budget.
func TestOneNamespaceCannotStarveAnother(t *testing.T) {
	const (
		noisyResources = 30
		qps            = 2
		interval       = 5 * time.Second
		window         = 60 * time.Second
		noisyPublic    = "noisy-public-key"
		quietPublic    = "quiet-public-key"
	)
	quietNS := namespaceFor(t.Name() + "-quiet")
	noisyNS2 := namespaceFor(t.Name() + "-noisy")
	f := newFixture(t, withLinkLifetime(30*time.Second), withBackups("noisy", noisyResources), withBackups("quiet", 2),
		withSimulator(func(c *simulator.Config) {
			c.Accounts = append(c.Accounts,
				simulator.Account{PublicKey: noisyPublic, PrivateKey: "noisy-private-key"},
				simulator.Account{PublicKey: quietPublic, PrivateKey: "quiet-private-key"})
		}),
		withOperatorOptions(func(o *operator.Options) {
			o.WatchNamespaces = append(o.WatchNamespaces, quietNS, noisyNS2)
			o.APIQPS, o.APIBurst = qps, qps
			o.Policy.ForcedRefreshMinInterval = interval
			o.Policy.MinUsefulLifetime = 20 * time.Second
		}))
	quiet, noisy2 := f.sibling(quietNS), f.sibling(noisyNS2)
	f.createCredentials("cloud-credentials", noisyPublic, "noisy-private-key")
	noisy2.createCredentials("cloud-credentials", noisyPublic, "noisy-private-key")
	noisyIn := func(i int) *fixture {
		if i%2 == 1 {
			return noisy2
		}
		return f
	}
	quiet.createCredentials("cloud-credentials", quietPublic, "quiet-private-key")
	for i := range noisyResources {
		fx := noisyIn(i)
		fx.create(fx.newExport(fmt.Sprintf("noisy-%02d", i), func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = fmt.Sprintf("noisy-%03d", i) }))
	}
	for i := range 2 {
		quiet.create(quiet.newExport(fmt.Sprintf("quiet-%d", i), func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = fmt.Sprintf("quiet-%03d", i) }))
	}

	// The noisy tenants: a new force-refresh value on one of their
	// resources every 50 ms, round robin.
	ctx, stop := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	var requests atomic.Int32
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			export := &uredisv1alpha1.RedisBackupExport{ObjectMeta: metav1.ObjectMeta{Namespace: noisyIn(i % noisyResources).ns, Name: fmt.Sprintf("noisy-%02d", i%noisyResources)}}
			patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:"%d"}}}`, uredisv1alpha1.AnnotationRefreshRequestedAt, i))
			if f.c.Patch(ctx, export, client.RawPatch(types.MergePatchType, patch)) == nil {
				requests.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()

	quietExpiry := func(name string) (time.Time, error) {
		secret, err := quiet.secret(name)
		if err != nil {
			return time.Time{}, err
		}
		return time.Parse(time.RFC3339, string(secret.Data[uredisv1alpha1.KeyExpiresAt]))
	}
	for i := range 2 {
		f.g.Eventually(func() error { _, err := quietExpiry(fmt.Sprintf("quiet-%d", i)); return err }).
			WithTimeout(30*time.Second).Should(Succeed(), "the quiet namespace's first links arrive while the noisy one floods")
	}
	noisyBefore := countCalls(f.sim, noisyPublic)
	start := time.Now()
	var expired time.Duration
	const tick = 250 * time.Millisecond
	for time.Since(start) < window {
		for i := range 2 {
			expiresAt, err := quietExpiry(fmt.Sprintf("quiet-%d", i))
			f.g.Expect(err).NotTo(HaveOccurred())
			if !time.Now().Before(expiresAt) {
				expired += tick
			}
		}
		time.Sleep(tick)
	}
	noisyCalls := countCalls(f.sim, noisyPublic) - noisyBefore
	// The flood happened, and the operator took it in: every noisy
	// resource has acknowledged requests.
	f.g.Expect(int(requests.Load())).To(BeNumerically(">", int(window/(100*time.Millisecond))), "force-refresh requests written")
	for i := range noisyResources {
		fx := noisyIn(i)
		f.g.Eventually(func() string { return fx.get(fmt.Sprintf("noisy-%02d", i)).Status.LastHandledRefreshRequest }).
			WithTimeout(30*time.Second).ShouldNot(BeEmpty(), "noisy-%02d acknowledged no request", i)
	}
	t.Logf("noisy namespaces: %d requests, %d calls in %s; quiet namespace: %d calls, %s of expired link", requests.Load(), noisyCalls, window, countCalls(f.sim, quietPublic), expired)
	f.g.Expect(expired).To(BeZero(), "the quiet namespace's links never expire")
	// Each noisy resource: at most one forced refresh per interval, and all
	// their calls together within the budget.
	f.g.Expect(noisyCalls).To(BeNumerically("<=", min(noisyResources*int(window/interval+1), qps*int(window/time.Second)+qps)))
	f.g.Expect(countCalls(f.sim, quietPublic)).To(BeNumerically(">=", 2*2), "the quiet links were refreshed, not merely long-lived")
}

func countCalls(sim *simulator.Server, publicKey string) int {
	n := 0
	for _, call := range sim.Calls() {
		if call.PublicKey == publicKey {
			n++
		}
	}
	return n
}
