package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/argocd"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/schedule"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// The tests in this file hold the operator to its promise: Ready=True
// means the Secret holds a link that works now.

// failedCalls counts the calls the simulator answered with a fault.
func failedCalls(sim *simulator.Server) int {
	n := 0
	for _, call := range sim.Calls() {
		if call.Fault != "" {
			n++
		}
	}
	return n
}

// TestOutageAcrossTheExpiry: the API fails from just after the first link
// until past its expiry, with a transient backoff (10-20 s) longer than the
// time a refresh leaves before the expiry (about 7 s): an uncapped retry
// would overshoot it. Ready must leave True within 2 s of expiresAt, the
// Secret must keep the link it had, and Ready must come back once the API
// answers again.
func TestOutageAcrossTheExpiry(t *testing.T) {
	const lifetime = 20 * time.Second
	f := newFixture(t, withLinkLifetime(lifetime), withOperatorOptions(func(o *operator.Options) {
		shortLinks(o)
		o.TransientBackoff = schedule.Backoff{Base: 20 * time.Second, Max: 20 * time.Second}
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("outage"))
	export := f.eventuallyReady("outage")
	expiry := export.Status.ExpiresAt.Time
	before, err := f.secret("outage")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.sim.SetFaultRate(1, simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 503})

	var leftTrue time.Time
	var lastTrue *metav1.Condition
	for deadline := expiry.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ready := f.ready("outage")
		if ready != nil && ready.Status == metav1.ConditionTrue {
			lastTrue = ready
			continue
		}
		leftTrue = time.Now()
		break
	}
	f.g.Expect(leftTrue.IsZero()).To(BeFalse(), "Ready still True 10 s after the link expired at %s", expiry)
	t.Logf("link expired at %s; Ready left True %v later; %d calls failed", expiry.Format(time.RFC3339), leftTrue.Sub(expiry).Round(10*time.Millisecond), failedCalls(f.sim))
	f.g.Expect(leftTrue).NotTo(BeTemporally("<", expiry), "Ready turned False while the link was still valid")
	f.g.Expect(leftTrue).To(BeTemporally("<=", expiry.Add(2*time.Second)), "Ready must leave True within 2 s of the expiry")
	f.g.Expect(lastTrue.Reason).To(Equal(uredisv1alpha1.ReasonRefreshFailing), "before the expiry the condition says refreshing fails")
	f.g.Expect(f.ready("outage").Reason).To(Equal(uredisv1alpha1.ReasonLinkExpired))
	// The faults happened, and the retries fitted the link's lifetime: the
	// 10-20 s backoff alone would have allowed one retry before the expiry.
	f.g.Expect(failedCalls(f.sim)).To(BeNumerically(">=", 3), "several retries before the expiry, every one refused")

	after, err := f.secret("outage")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(after.ResourceVersion).To(Equal(before.ResourceVersion), "the Secret is kept as it was")

	f.sim.ClearFaults()
	f.g.Eventually(func() string { return conditionSummary(f.ready("outage")) }).
		WithTimeout(45 * time.Second).WithPolling(250 * time.Millisecond).Should(HavePrefix("True/Refreshed"))
	secret, err := f.secret("outage")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(download(string(secret.Data["backupPath"]))).To(Equal("backup one"))
}

// TestShortLinksUnderFaults: 30-second links, half of all calls failing,
// the default backoff (5 s doubling to 5 min), for three minutes. Sampled
// every 250 ms, no Secret may ever hold an expired link.
func TestShortLinksUnderFaults(t *testing.T) {
	const n, lifetime, runtime = 5, 30 * time.Second, 3 * time.Minute
	f := newFixture(t, withLinkLifetime(lifetime), withBackups("short", n), withSimulator(func(c *simulator.Config) { c.Seed = 11 }),
		withOperatorOptions(shortLinks))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	names := f.createMany("short", n)
	f.waitAllReady(names, time.Minute)
	f.sim.ResetCalls()
	f.sim.SetFaultRate(0.5,
		simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 503},
		simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 150},
		simulator.Fault{Kind: simulator.FaultDropConnection},
		simulator.Fault{Kind: simulator.FaultMalformedJSON},
	)

	start := time.Now()
	samples, expiredSamples := 0, 0
	var firstExpired []string
	for time.Since(start) < runtime {
		samples++
		if expired := f.expiredSecrets(names...); len(expired) > 0 {
			expiredSamples++
			if firstExpired == nil {
				firstExpired = expired
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	calls, failed := f.sim.CallCount(""), failedCalls(f.sim)
	// A link is refreshed when a third of its 30 s remains, less up to a
	// second of jitter: about every 19 s. Half the calls failing doubles the
	// expected calls; allow three times the links needed.
	linksNeeded := float64(n) * (runtime.Seconds()/19 + 1)
	bound := int(3 * linksNeeded)
	t.Logf("%d samples, %d with an expired link; %d calls (%d failed) for %d resources in %v, bound %d",
		samples, expiredSamples, calls, failed, n, runtime, bound)
	f.g.Expect(expiredSamples).To(BeZero(), "a Secret held an expired link, first: %v", firstExpired)
	f.g.Expect(failed).To(BeNumerically(">=", calls/4), "about half the calls were refused")
	f.g.Expect(calls).To(BeNumerically("<=", bound))
}

// gitopsView is one read of a resource, exactly as the API server serves
// it, and what GitOps tools make of that same read: kstatus (Flux's health
// checks, kubectl-style tooling) and the Argo CD health check shipped in
// config/argocd/health.lua, run as Argo CD runs it.
type gitopsView struct {
	export  *uredisv1alpha1.RedisBackupExport
	kstatus *status.Result
	argocd  argocd.Health
}

// shippedHealthScript reads config/argocd/health.lua once, not on every
// poll.
var shippedHealthScript = sync.OnceValues(argocd.ShippedScript)

func (f *fixture) gitopsViewOf(name string) gitopsView {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(uredisv1alpha1.GroupVersionKind)
	f.g.Expect(f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, u)).To(Succeed())
	export := &uredisv1alpha1.RedisBackupExport{}
	f.g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, export)).To(Succeed())
	res, err := status.Compute(u)
	f.g.Expect(err).NotTo(HaveOccurred())
	script, err := shippedHealthScript()
	f.g.Expect(err).NotTo(HaveOccurred())
	health, err := argocd.Run(script, u)
	f.g.Expect(err).NotTo(HaveOccurred(), "the Argo CD health check failed (Argo CD would show Unknown)")
	return gitopsView{export: export, kstatus: res, argocd: health}
}

// eventuallyKstatus waits until kstatus says want, and returns that read.
func (f *fixture) eventuallyKstatus(name string, want status.Status) gitopsView {
	f.t.Helper()
	var view gitopsView
	f.g.Eventually(func() status.Status {
		view = f.gitopsViewOf(name)
		return view.kstatus.Status
	}).WithTimeout(40*time.Second).WithPolling(100*time.Millisecond).Should(Equal(want), "kstatus of %s", name)
	return view
}

// expectGitOps: on one read, kstatus says wantKstatus, the Argo CD health
// check says wantArgoCD, the two agree, and once the operator has answered
// for the current generation Argo CD shows the Ready condition's message.
func (f *fixture) expectGitOps(view gitopsView, wantKstatus status.Status, wantArgoCD string) {
	f.t.Helper()
	f.g.Expect(view.kstatus.Status).To(Equal(wantKstatus), "kstatus: %s", view.kstatus.Message)
	f.g.Expect(view.argocd.Status).To(Equal(wantArgoCD), "Argo CD: %s", view.argocd.Message)
	f.g.Expect(view.argocd.Status).To(Equal(argocd.ForKstatus(view.kstatus.Status)), "Argo CD agrees with kstatus")
	ready := findCondition(view.export, uredisv1alpha1.ConditionReady)
	if ready != nil && view.export.Status.ObservedGeneration == view.export.Generation {
		f.g.Expect(view.argocd.Message).To(Equal(ready.Reason + ": " + ready.Message))
	}
	f.t.Logf("%s: kstatus %s (%s); Argo CD %s (%s)", view.export.Name, view.kstatus.Status, view.kstatus.Message, view.argocd.Status, view.argocd.Message)
}

// TestKstatus: what status.Compute and the shipped Argo CD health check say
// in each state a GitOps tool meets, on the same reads of real resources.
func TestKstatus(t *testing.T) {
	const lifetime = 20 * time.Second
	f := newFixture(t, withLinkLifetime(lifetime), withOperatorOptions(shortLinks))
	f.createCredentials("cloud-credentials", publicKey, privateKey)

	// A new resource: the operator's first call takes 3 s, and until it
	// answers the status holds only the default observedGeneration 0.
	f.sim.SetLatency(3 * time.Second)
	f.create(f.newExport("steady"))
	view := f.gitopsViewOf("steady")
	f.expectGitOps(view, status.InProgressStatus, argocd.Progressing)
	f.g.Expect(view.export.Status.ObservedGeneration).To(BeZero())

	// Ready: Current, Healthy.
	view = f.eventuallyKstatus("steady", status.CurrentStatus)
	f.expectGitOps(view, status.CurrentStatus, argocd.Healthy)
	f.g.Expect(findCondition(view.export, uredisv1alpha1.ConditionReady).Status).To(Equal(metav1.ConditionTrue))
	f.sim.SetLatency(0)

	// A spec edit the API refuses for good: Failed, Degraded, with
	// observedGeneration at the edited generation.
	f.create(f.newExport("edited"))
	f.eventuallyReady("edited")
	f.updateSpec("edited", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = "no-such-backup" })
	view = f.eventuallyKstatus("edited", status.FailedStatus)
	f.expectGitOps(view, status.FailedStatus, argocd.Degraded)
	edited := view.export
	f.g.Expect(edited.Status.ObservedGeneration).To(Equal(edited.Generation))
	f.g.Expect(edited.Status.LinkGeneration).To(Equal(edited.Generation - 1))
	f.g.Expect(findCondition(edited, uredisv1alpha1.ConditionReady).Reason).To(Equal(uredisv1alpha1.ReasonProviderRejected))
	f.g.Expect(findCondition(edited, uredisv1alpha1.ConditionStalled)).NotTo(BeNil())

	// An outage while the link is valid: still Current and Healthy, and the
	// Ready condition (shown by Argo CD) says refreshing fails.
	f.sim.SetFaultRate(1, simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 503})
	f.g.Eventually(func() string { return conditionSummary(f.ready("steady")) }).
		WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(HavePrefix("True/" + uredisv1alpha1.ReasonRefreshFailing))
	view = f.gitopsViewOf("steady")
	f.g.Expect(findCondition(view.export, uredisv1alpha1.ConditionReady).Reason).To(Equal(uredisv1alpha1.ReasonRefreshFailing))
	f.expectGitOps(view, status.CurrentStatus, argocd.Healthy)
	f.g.Expect(failedCalls(f.sim)).To(BeNumerically(">", 0))

	// The link expires during the outage: InProgress, Progressing.
	view = f.eventuallyKstatus("steady", status.InProgressStatus)
	f.expectGitOps(view, status.InProgressStatus, argocd.Progressing)
	f.g.Expect(findCondition(view.export, uredisv1alpha1.ConditionReady).Reason).To(Equal(uredisv1alpha1.ReasonLinkExpired))
	f.g.Expect(findCondition(view.export, uredisv1alpha1.ConditionReconciling)).NotTo(BeNil())

	// The API answers again, slowly, and the refused edit is corrected (to
	// a backup no other resource holds an answer for, so a call is needed):
	// while that call is in flight the status describes the previous
	// generation, InProgress and Progressing whatever its conditions say;
	// then Current and Healthy.
	f.sim.ClearFaults()
	f.sim.SetLatency(3 * time.Second)
	f.updateSpec("edited", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = otherID })
	view = f.gitopsViewOf("edited")
	f.g.Expect(view.export.Status.ObservedGeneration).To(Equal(view.export.Generation-1), "the operator has not answered yet")
	f.expectGitOps(view, status.InProgressStatus, argocd.Progressing)
	f.g.Expect(view.argocd.Message).To(ContainSubstring("generation %d", view.export.Generation))
	view = f.eventuallyKstatus("edited", status.CurrentStatus)
	f.expectGitOps(view, status.CurrentStatus, argocd.Healthy)
	f.g.Expect(findCondition(view.export, uredisv1alpha1.ConditionReady).Reason).To(Equal(uredisv1alpha1.ReasonRefreshed))
}

// TestDocumentedAnswerShape: a gateway that answers like the API's own
// documentation (a token in BackupPath, the link only in BackupURL with a
// trailing newline) still gets its link used, and the condition says which
// field it came from; an answer with no usable link in either field names
// both.
func TestDocumentedAnswerShape(t *testing.T) {
	f := newFixture(t, withSimulator(func(c *simulator.Config) { c.DocumentedShape = true }))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("documented"))
	export := f.eventuallyReady("documented")
	f.g.Expect(f.ready("documented").Message).To(ContainSubstring("BackupURL"))
	secret, err := f.secret("documented")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(string(secret.Data["backupPath"])).To(Equal(export.Status.BackupPath))
	f.g.Expect(string(secret.Data["backupPath"])).NotTo(HaveSuffix("\n"))
	f.g.Expect(download(string(secret.Data["backupPath"]))).To(Equal("backup one"))
	f.g.Expect(secret.Data).NotTo(HaveKey("innerBackupPath"), "the documented InnerBackupPath is a token, not a link")

	f.sim.QueueFaults(simulator.Fault{Kind: simulator.FaultEmptyLink})
	f.create(f.newExport("neither", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = otherID }))
	cond := f.eventuallyNotReady("neither", uredisv1alpha1.ReasonProviderUnavailable)
	f.g.Expect(cond.Message).To(ContainSubstring("neither BackupPath nor BackupURL holds a usable link"))
	f.eventuallyReady("neither")
}

// TestManyTenantNamespaces: one manager serving 20 tenant namespaces, each
// created after it started with its own credentials Secret and resource
// (for a backup of its own), all at once. Each gets its link with exactly one call; no namespace's
// first sync waits on a watch being started for it (there is none: the
// Secret metadata is one watch, started with the manager).
func TestManyTenantNamespaces(t *testing.T) {
	const tenants = 20
	f := newFixture(t, withBackups("tenant", tenants))
	namespaces := make([]string, tenants)
	for i := range namespaces {
		namespaces[i] = fmt.Sprintf("%s-tenant-%02d", f.ns, i)
	}
	opts := f.opts
	opts.WatchNamespaces = namespaces
	f.startManager(opts)

	var wg sync.WaitGroup
	created := make([]time.Time, tenants)
	for i, ns := range namespaces {
		wg.Go(func() {
			g := NewWithT(t)
			g.Expect(f.c.Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
			g.Expect(f.c.Create(f.ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "cloud-credentials", Namespace: ns},
				StringData: map[string]string{"publicKey": publicKey, "privateKey": privateKey},
			})).To(Succeed())
			export := f.newExport("tenant")
			export.Namespace, export.Spec.BackupID = ns, fmt.Sprintf("tenant-%03d", i)
			g.Expect(f.c.Create(f.ctx, export)).To(Succeed())
			created[i] = time.Now()
		})
	}
	wg.Wait()

	var slowest time.Duration
	for i, ns := range namespaces {
		key := types.NamespacedName{Namespace: ns, Name: "tenant"}
		f.g.Eventually(func() metav1.ConditionStatus {
			export := &uredisv1alpha1.RedisBackupExport{}
			if err := f.c.Get(f.ctx, key, export); err != nil {
				return ""
			}
			ready := findCondition(export, uredisv1alpha1.ConditionReady)
			if ready == nil {
				return ""
			}
			slowest = max(slowest, ready.LastTransitionTime.Sub(created[i].Truncate(time.Second)))
			return ready.Status
		}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(Equal(metav1.ConditionTrue), "tenant %s", ns)
	}
	t.Logf("%d tenant namespaces Ready; slowest create→Ready %v (whole seconds)", tenants, slowest)
	f.g.Eventually(func() int { return successfulCalls(f.sim) }).WithTimeout(5 * time.Second).Should(Equal(tenants))
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(2*time.Second).Should(Equal(tenants), "one call per tenant")
}

// TestSecretRestoredDuringOutage: the Secret is deleted while every call
// fails. The link in the status still works, so the operator writes it back
// without a call: Ready=True (RefreshFailing) stays true to the Secret.
func TestSecretRestoredDuringOutage(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("restored"))
	export := f.eventuallyReady("restored")
	// Past the 15 s in which resources may share an answer: the refresh
	// after the deletion must call the API, and fail.
	time.Sleep(16 * time.Second)
	f.sim.SetFaultRate(1, simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 503})
	secret, err := f.secret("restored")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(f.c.Delete(f.ctx, secret)).To(Succeed())

	f.g.Eventually(func() string {
		s, err := f.secret("restored")
		if err != nil {
			return err.Error()
		}
		return string(s.Data["backupPath"])
	}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(Equal(export.Status.BackupPath), "the still valid link is written back")
	f.g.Eventually(func() string { return conditionSummary(f.ready("restored")) }).
		WithTimeout(10 * time.Second).Should(HavePrefix("True/" + uredisv1alpha1.ReasonRefreshFailing))
	f.g.Expect(failedCalls(f.sim)).To(BeNumerically(">=", 1), "the refresh was tried, and failed")
	f.g.Expect(successfulCalls(f.sim)).To(Equal(1), "no new link was obtained")
	restored, err := f.secret("restored")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(download(string(restored.Data["backupPath"]))).To(Equal("backup one"))
}

// TestSecretWriteRefused: the API server refuses the Secret (here a
// ValidatingAdmissionPolicy, as an admission webhook, a policy engine or a
// quota could). The resource says so, Stalled, and is retried slowly, not
// on every reconcile; once the refusal is lifted it recovers.
func TestSecretWriteRefused(t *testing.T) {
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) {
		o.PermanentBackoff = schedule.Backoff{Base: 4 * time.Second, Max: 4 * time.Second}
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	lift := f.refuseSecret("refused")
	f.create(f.newExport("refused"))

	cond := f.eventuallyNotReady("refused", uredisv1alpha1.ReasonSecretWriteRefused)
	f.g.Expect(cond.Message).To(ContainSubstring(`refused to write Secret "refused"`))
	f.g.Expect(cond.Message).NotTo(ContainSubstring("no Secret named"), "the API server's own text is left out")
	f.g.Expect(findCondition(f.get("refused"), uredisv1alpha1.ConditionStalled)).NotTo(BeNil())
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(3*time.Second).WithPolling(500*time.Millisecond).
		Should(BeNumerically("<=", 2), "retried slowly, not in a loop")

	lift()
	f.g.Eventually(func() string { return conditionSummary(f.ready("refused")) }).
		WithTimeout(20 * time.Second).WithPolling(200 * time.Millisecond).Should(HavePrefix("True/"))
}

// refuseSecret makes the API server refuse Secrets of that name in the
// fixture's namespace, with a ValidatingAdmissionPolicy, and waits until it
// does; the returned function lifts the refusal (which the API server
// takes a moment to notice).
func (f *fixture) refuseSecret(name string) (lift func()) {
	f.t.Helper()
	policyName := f.ns + "-refuse-" + name
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: policyName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("object.metadata.name != %q", name),
				Message:    "no Secret named " + name,
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policyName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policyName,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": f.ns},
			}},
		},
	}
	f.g.Expect(f.c.Create(f.ctx, policy)).To(Succeed())
	f.g.Expect(f.c.Create(f.ctx, binding)).To(Succeed())
	remove := func() {
		_ = f.c.Delete(context.Background(), binding)
		_ = f.c.Delete(context.Background(), policy)
	}
	f.t.Cleanup(remove)
	probe := func() error {
		return f.c.Create(f.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns}}, client.DryRunAll)
	}
	f.g.Eventually(probe).WithTimeout(20*time.Second).WithPolling(200*time.Millisecond).ShouldNot(Succeed(), "the policy takes effect")
	return remove
}
