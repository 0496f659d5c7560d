package integration

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/argocd"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// callsFor counts the DescribeURedisBackupURL calls made for one backup.
func callsFor(sim *simulator.Server, backup string) int {
	n := 0
	for _, call := range sim.Calls() {
		if call.Action == "DescribeURedisBackupURL" && call.Params["BackupId"] == backup {
			n++
		}
	}
	return n
}

func (f *fixture) setSuspend(name string, suspend bool) {
	f.t.Helper()
	f.updateSpec(name, func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.Suspend = suspend })
}

// eventuallyReadyAs waits until Ready has the given status and reason.
func (f *fixture) eventuallyReadyAs(name string, st metav1.ConditionStatus, reason string) *metav1.Condition {
	f.t.Helper()
	f.g.Eventually(func() string { return conditionSummary(f.ready(name)) }).
		WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(HavePrefix(string(st)+"/"+reason), "waiting for Ready=%s/%s", st, reason)
	return f.ready(name)
}

// TestSuspendStopsEveryCallAndWrite: a suspended resource makes no call and
// no Secret write across its planned refresh, a forced refresh and a
// deleted Secret; Ready stays True, saying it is suspended and until when
// the link works, and turns False at the expiry. Resuming after the expiry
// costs exactly one call.
func TestSuspendStopsEveryCallAndWrite(t *testing.T) {
	// Long enough that the suspension lands well before the planned refresh
	// (about 20 s after the link), even on a loaded machine.
	const lifetime = 30 * time.Second
	f := newFixture(t, withLinkLifetime(lifetime), withBackups("suspend", 2), withOperatorOptions(func(o *operator.Options) {
		shortLinks(o)
		o.Policy.ForcedRefreshMinInterval = 0
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	names := f.createMany("suspend", 2)
	kept, lost := names[0], names[1]
	f.waitAllReady(names, 30*time.Second)
	f.g.Expect(f.sim.CallCount("DescribeURedisBackupURL")).To(Equal(2))
	keptSecret, err := f.secret(kept)
	f.g.Expect(err).NotTo(HaveOccurred())

	for _, name := range names {
		f.setSuspend(name, true)
	}
	cond := f.eventuallyReadyAs(kept, metav1.ConditionTrue, uredisv1alpha1.ReasonSuspended)
	export := f.get(kept)
	expiry := export.Status.ExpiresAt.Time
	next := export.Status.NextRefreshTime.Time
	f.g.Expect(cond.Message).To(ContainSubstring("suspended"))
	f.g.Expect(cond.Message).To(ContainSubstring("valid until " + expiry.UTC().Format(time.RFC3339)))
	f.g.Expect(next).To(BeTemporally("<", expiry), "the planned refresh comes before the expiry")
	// kstatus sees a Ready resource; Argo CD says Suspended, with Ready's
	// reason and message.
	view := f.gitopsViewOf(kept)
	f.g.Expect(view.kstatus.Status).To(Equal(status.CurrentStatus))
	f.g.Expect(view.argocd).To(Equal(argocd.Health{Status: argocd.Suspended, Message: cond.Reason + ": " + cond.Message}))
	f.g.Expect(findCondition(view.export, uredisv1alpha1.ConditionReconciling)).To(BeNil())
	f.g.Expect(findCondition(view.export, uredisv1alpha1.ConditionStalled)).To(BeNil())

	// A forced refresh is acknowledged and declined.
	f.annotate(kept, uredisv1alpha1.AnnotationRefreshRequestedAt, "while-suspended")
	f.g.Eventually(func() string { return f.get(kept).Status.LastHandledRefreshRequest }).WithTimeout(10 * time.Second).Should(Equal("while-suspended"))
	f.g.Eventually(f.eventNotes).Should(ContainElement(ContainSubstring("the resource is suspended")))

	// The other resource's Secret is deleted: not written again, and Ready
	// says the Secret lost the link.
	lostSecret, err := f.secret(lost)
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(f.c.Delete(f.ctx, lostSecret)).To(Succeed())
	cond = f.eventuallyReadyAs(lost, metav1.ConditionFalse, uredisv1alpha1.ReasonSuspended)
	f.g.Expect(cond.Message).To(ContainSubstring("no longer holds the link"))
	f.g.Expect(findCondition(f.get(lost), uredisv1alpha1.ConditionStalled)).NotTo(BeNil())

	// Through the planned refresh and up to the expiry, Ready stays True;
	// it turns False soon after it: the wake-up is planned a second after
	// the expiry, and the reconcile, the status write and this poll take
	// their time on a loaded machine, so 5 s.
	var leftTrue time.Time
	for deadline := expiry.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ready := f.ready(kept); ready != nil && ready.Status == metav1.ConditionTrue {
			f.g.Expect(ready.Reason).To(Equal(uredisv1alpha1.ReasonSuspended))
			continue
		}
		leftTrue = time.Now()
		break
	}
	f.g.Expect(leftTrue.IsZero()).To(BeFalse(), "Ready still True 10 s after the link expired at %s", expiry)
	t.Logf("planned refresh at %s, link expired at %s; Ready left True %v later", next.Format(time.RFC3339), expiry.Format(time.RFC3339), leftTrue.Sub(expiry).Round(10*time.Millisecond))
	f.g.Expect(leftTrue).NotTo(BeTemporally("<", expiry), "Ready turned False while the link was valid")
	f.g.Expect(leftTrue).To(BeTemporally("<=", expiry.Add(5*time.Second)), "Ready must leave True within 5 s of the expiry")
	cond = f.ready(kept)
	f.g.Expect(conditionSummary(cond)).To(HavePrefix("False/" + uredisv1alpha1.ReasonSuspended))
	f.g.Expect(cond.Message).To(ContainSubstring("expired at " + expiry.UTC().Format(time.RFC3339)))
	f.g.Eventually(f.eventSummaries).Should(ContainElement("Warning/LinkExpired/" + kept))
	view = f.gitopsViewOf(kept)
	f.g.Expect(view.kstatus.Status).To(Equal(status.FailedStatus), "Stalled: only resuming brings a link")
	f.g.Expect(view.argocd.Status).To(Equal(argocd.Suspended))

	// Nothing was called or written for either resource.
	f.g.Expect(f.sim.CallCount("")).To(Equal(2), "no call while suspended")
	after, err := f.secret(kept)
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(after.ResourceVersion).To(Equal(keptSecret.ResourceVersion), "the Secret is not written while suspended")
	_, err = f.secret(lost)
	f.g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the deleted Secret is not written again while suspended: %v", err)

	// Resuming after the expiry, or with the Secret gone, refreshes at
	// once: one call each.
	for _, name := range names {
		f.setSuspend(name, false)
	}
	for _, name := range names {
		f.eventuallyReadyAs(name, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed)
		f.g.Expect(callsFor(f.sim, name)).To(Equal(2), "one call on creation, one on the resume")
	}
	secret, err := f.secret(lost)
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(download(string(secret.Data["backupPath"]))).To(Equal("content"))
}

// TestResumeRefreshesOnlyWhatIsDue: resuming with a fresh link costs no
// call and keeps the planned refresh; resuming once the planned refresh has
// passed, with the link still valid, refreshes at once.
func TestResumeRefreshesOnlyWhatIsDue(t *testing.T) {
	// Long enough that the setup (two links, two suspensions, the resume
	// of the fresh one) ends well before the planned refresh (about 40 s
	// after the link), even on a loaded machine; the test then waits for
	// it.
	const lifetime = 60 * time.Second
	f := newFixture(t, withLinkLifetime(lifetime), withBackups("resume", 2), withOperatorOptions(shortLinks))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	names := f.createMany("resume", 2)
	fresh, due := names[0], names[1]
	f.waitAllReady(names, 30*time.Second)
	for _, name := range names {
		f.setSuspend(name, true)
	}
	for _, name := range names {
		f.eventuallyReadyAs(name, metav1.ConditionTrue, uredisv1alpha1.ReasonSuspended)
	}

	// A fresh link: the resume costs nothing and keeps the plan.
	before := f.get(fresh).Status
	f.setSuspend(fresh, false)
	cond := f.eventuallyReadyAs(fresh, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed)
	f.g.Expect(cond.Message).To(HavePrefix("resumed: "))
	f.g.Consistently(func() int { return callsFor(f.sim, fresh) }).WithTimeout(2*time.Second).Should(Equal(1), "no call to resume with a fresh link")
	after := f.get(fresh).Status
	f.g.Expect(after.NextRefreshTime.Time).To(Equal(before.NextRefreshTime.Time))
	f.g.Expect(after.ExpiresAt.Time).To(Equal(before.ExpiresAt.Time))
	f.g.Expect(after.ObservedGeneration).To(Equal(f.get(fresh).Generation))

	// Past the planned refresh, the link still valid: one call at once.
	st := f.get(due).Status
	f.g.Expect(time.Until(st.NextRefreshTime.Time)).To(BeNumerically(">", 0), "the test must suspend before the planned refresh")
	time.Sleep(time.Until(st.NextRefreshTime.Time) + 500*time.Millisecond)
	f.g.Expect(time.Now()).To(BeTemporally("<", st.ExpiresAt.Add(-2*time.Second)), "the link must still be valid")
	f.g.Expect(callsFor(f.sim, due)).To(Equal(1), "no refresh while suspended")
	resumed := time.Now()
	f.setSuspend(due, false)
	f.g.Eventually(func() int { return callsFor(f.sim, due) }).WithTimeout(3 * time.Second).Should(Equal(2))
	t.Logf("resumed %v after the planned refresh; refreshed %v later", resumed.Sub(st.NextRefreshTime.Time).Round(10*time.Millisecond), time.Since(resumed).Round(10*time.Millisecond))
	f.eventuallyReadyAs(due, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed)
	f.g.Expect(f.get(due).Status.ExpiresAt.Time).To(BeTemporally(">", st.ExpiresAt.Time))
}
