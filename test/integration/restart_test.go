package integration

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// The rollout restart tests run against the real API server, which has no
// controllers: a restarted workload's pods do not roll, but its pod
// template changes, and with it metadata.generation, once per patch that
// changes the spec. The generation is how the tests count restarts.

// workload creates a minimal valid workload of kind in the fixture's
// namespace.
func (f *fixture) workload(kind uredisv1alpha1.RolloutRestartKind, name string) {
	f.t.Helper()
	labels := map[string]string{"app": name}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"team": "restore"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.example/app:1",
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nightly"}}}},
		}}},
	}
	selector := &metav1.LabelSelector{MatchLabels: labels}
	meta := metav1.ObjectMeta{Name: name, Namespace: f.ns}
	var obj client.Object
	switch kind {
	case uredisv1alpha1.RolloutRestartDeployment:
		obj = &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: selector, Template: template}}
	case uredisv1alpha1.RolloutRestartStatefulSet:
		obj = &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{ServiceName: name, Selector: selector, Template: template}}
	case uredisv1alpha1.RolloutRestartDaemonSet:
		obj = &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{Selector: selector, Template: template}}
	}
	f.g.Expect(f.c.Create(f.ctx, obj)).To(Succeed())
}

// podTemplate returns a workload's generation and pod template.
func (f *fixture) podTemplate(kind uredisv1alpha1.RolloutRestartKind, name string) (int64, corev1.PodTemplateSpec) {
	key := types.NamespacedName{Namespace: f.ns, Name: name}
	switch kind {
	case uredisv1alpha1.RolloutRestartDeployment:
		d := &appsv1.Deployment{}
		f.g.Expect(f.c.Get(f.ctx, key, d)).To(Succeed())
		return d.Generation, d.Spec.Template
	case uredisv1alpha1.RolloutRestartStatefulSet:
		s := &appsv1.StatefulSet{}
		f.g.Expect(f.c.Get(f.ctx, key, s)).To(Succeed())
		return s.Generation, s.Spec.Template
	default:
		d := &appsv1.DaemonSet{}
		f.g.Expect(f.c.Get(f.ctx, key, d)).To(Succeed())
		return d.Generation, d.Spec.Template
	}
}

// restarts counts a workload's restarts: its generation less one.
func (f *fixture) restarts(target uredisv1alpha1.RolloutRestartTarget) int {
	generation, _ := f.podTemplate(target.Kind, target.Name)
	return int(generation - 1)
}

// expectRestarts waits until each target has been restarted as often as
// want says, then checks that it stays so for a while: no second patch for
// the same change.
func (f *fixture) expectRestarts(want map[uredisv1alpha1.RolloutRestartTarget]int, why string) {
	f.t.Helper()
	count := func() map[uredisv1alpha1.RolloutRestartTarget]int {
		got := map[uredisv1alpha1.RolloutRestartTarget]int{}
		for target := range want {
			got[target] = f.restarts(target)
		}
		return got
	}
	f.g.Eventually(count).WithTimeout(20*time.Second).WithPolling(100*time.Millisecond).Should(Equal(want), why)
	f.g.Consistently(count).WithTimeout(1500*time.Millisecond).WithPolling(100*time.Millisecond).Should(Equal(want), why+": and no more")
}

// restartEvents are the notes of the Events of reason about the named
// target.
func (f *fixture) restartEvents(reason, target string) []string {
	var notes []string
	for _, e := range f.events() {
		if e.Reason == reason && e.Related != nil && e.Related.Name == target {
			notes = append(notes, fmt.Sprintf("%s/%s x%d: %s", e.Type, e.Regarding.Name, seriesCount(e.Series), e.Note))
		}
	}
	return notes
}

// seriesCount is how many times an Event was recorded: once, or as
// often as its series says.
func seriesCount(s *eventsv1.EventSeries) int32 {
	if s == nil {
		return 1
	}
	return s.Count
}

func target(kind uredisv1alpha1.RolloutRestartKind, name string, on uredisv1alpha1.RolloutRestartTrigger) uredisv1alpha1.RolloutRestartTarget {
	return uredisv1alpha1.RolloutRestartTarget{Kind: kind, Name: name, On: on}
}

// forceRefresh asks for a refresh and waits until it is handled.
func (f *fixture) forceRefresh(name, value string) {
	f.t.Helper()
	f.annotate(name, uredisv1alpha1.AnnotationRefreshRequestedAt, value)
	f.g.Eventually(func() string { return f.get(name).Status.LastHandledRefreshRequest }).WithTimeout(20 * time.Second).Should(Equal(value))
}

// withNightlyBackups gives the simulator instance g1 with one backup,
// nightly-1, a day old.
func withNightlyBackups() fixtureOption {
	return withSimulator(func(c *simulator.Config) {
		c.Backups = append(c.Backups, simulator.Backup{ID: "nightly-1", Region: region, Zone: zone, GroupID: "g1", Type: "Auto", Time: time.Now().Add(-24 * time.Hour), Content: []byte("one")})
	})
}

func onLatest(e *uredisv1alpha1.RedisBackupExport) {
	e.Spec.BackupID = ""
	e.Spec.Latest = &uredisv1alpha1.LatestBackup{GroupID: "g1"}
}

// workloads creates the workload of each target.
func (f *fixture) workloads(targets ...uredisv1alpha1.RolloutRestartTarget) {
	f.t.Helper()
	for _, w := range targets {
		f.workload(w.Kind, w.Name)
	}
}

// createWithWorkloads creates the targets' workloads and a resource named
// name restarting them.
func (f *fixture) createWithWorkloads(name string, targets ...uredisv1alpha1.RolloutRestartTarget) {
	f.t.Helper()
	f.workloads(targets...)
	f.create(f.newExport(name, withTargets(targets...)))
}

func withTargets(targets ...uredisv1alpha1.RolloutRestartTarget) func(*uredisv1alpha1.RedisBackupExport) {
	return func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.RolloutRestartTargets = targets }
}

// TestRolloutRestartWhenTheBackupChanges: the first link restarts nothing;
// a routine refresh restarts only the LinkChanged target; a newer backup
// that spec.latest picks, and a spec edit that names another backup,
// restart every target once; a spec edit that keeps the backup restarts
// only the LinkChanged one; editing the targets costs nothing. Each restart
// is one patch of the two annotations, and nothing else in the workload
// changes; Ready stays True throughout.
func TestRolloutRestartWhenTheBackupChanges(t *testing.T) {
	f := newFixture(t, withNightlyBackups(), withForcedRefreshInterval(0))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	deployment := target(uredisv1alpha1.RolloutRestartDeployment, "reads-once", "") // the default: BackupChanged
	statefulSet := target(uredisv1alpha1.RolloutRestartStatefulSet, "cache", uredisv1alpha1.RestartOnBackupChanged)
	daemonSet := target(uredisv1alpha1.RolloutRestartDaemonSet, "env-vars", uredisv1alpha1.RestartOnLinkChanged)
	all := []uredisv1alpha1.RolloutRestartTarget{deployment, statefulSet, daemonSet}
	f.workloads(all...)
	_, templateBefore := f.podTemplate(deployment.Kind, deployment.Name)
	f.create(f.newExport("nightly", onLatest, withTargets(all...)))
	export := f.eventuallyReady("nightly")
	f.g.Expect(export.Status.BackupID).To(Equal("nightly-1"))
	f.g.Expect(export.Spec.RolloutRestartTargets[0].On).To(Equal(uredisv1alpha1.RestartOnBackupChanged), "the API server defaults on")
	deployment.On = uredisv1alpha1.RestartOnBackupChanged
	restarted := map[uredisv1alpha1.RolloutRestartTarget]int{deployment: 0, statefulSet: 0, daemonSet: 0}
	f.expectRestarts(restarted, "the first link restarts nothing")
	f.g.Expect(f.get("nightly").Status.RolloutRestarts).To(BeEmpty())

	// A routine refresh: a new link to the same backup (a second later, so
	// that it expires later).
	expiry := export.Status.ExpiresAt.Time
	time.Sleep(1100 * time.Millisecond)
	f.forceRefresh("nightly", "routine")
	f.g.Expect(f.get("nightly").Status.ExpiresAt.Time).To(BeTemporally(">", expiry))
	restarted[daemonSet]++
	f.expectRestarts(restarted, "a routine refresh restarts only the LinkChanged target")
	f.g.Expect(f.restartEvents(uredisv1alpha1.EventRolloutRestarted, daemonSet.Name)).To(ConsistOf(
		HavePrefix("Normal/nightly x1: restarted DaemonSet env-vars: the Secret holds a new link to backup nightly-1, valid until")))

	// spec.latest picks a newer backup.
	f.sim.AddBackup(simulator.Backup{ID: "nightly-2", Region: region, Zone: zone, GroupID: "g1", Type: "Auto", Time: time.Now(), Content: []byte("two")})
	f.forceRefresh("nightly", "newer-backup")
	export = f.get("nightly")
	f.g.Expect(export.Status.BackupID).To(Equal("nightly-2"))
	restarted[deployment]++
	restarted[statefulSet]++
	restarted[daemonSet]++
	f.expectRestarts(restarted, "a newer backup restarts every target once")
	f.g.Eventually(f.restartEvents).WithArguments(uredisv1alpha1.EventRolloutRestarted, statefulSet.Name).Should(ConsistOf(
		"Normal/nightly x1: restarted StatefulSet cache: the Secret holds a link to backup nightly-2 (was nightly-1)"))
	generation, template := f.podTemplate(deployment.Kind, deployment.Name)
	restartedFor := template.Annotations[uredisv1alpha1.AnnotationRestartedFor]
	f.g.Expect(restartedFor).To(MatchRegexp(`^[0-9a-f]{32}$`))
	at, err := time.Parse(time.RFC3339, template.Annotations[uredisv1alpha1.AnnotationRestartedAt])
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(at).To(BeTemporally("~", time.Now(), 10*time.Second))
	// Nothing but the two annotations changed.
	delete(template.Annotations, uredisv1alpha1.AnnotationRestartedAt)
	delete(template.Annotations, uredisv1alpha1.AnnotationRestartedFor)
	f.g.Expect(template).To(Equal(templateBefore))
	f.g.Expect(generation).To(Equal(int64(2)))
	// The status records each target's last restart.
	f.g.Eventually(func() []uredisv1alpha1.RolloutRestart { return f.get("nightly").Status.RolloutRestarts }).Should(HaveLen(3))
	records := f.get("nightly").Status.RolloutRestarts
	for i, w := range all {
		f.g.Expect(records[i].Kind).To(Equal(w.Kind))
		f.g.Expect(records[i].Name).To(Equal(w.Name))
		f.g.Expect(records[i].BackupID).To(Equal("nightly-2"))
	}
	f.g.Expect(records[0].For).To(Equal(restartedFor))
	f.g.Expect(records[0].At.Time).To(BeTemporally("==", at))

	// A spec edit that names another backup.
	f.updateSpec("nightly", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.Latest, e.Spec.BackupID = nil, otherID })
	f.g.Eventually(func() string { return f.get("nightly").Status.BackupID }).WithTimeout(20 * time.Second).Should(Equal(otherID))
	restarted[deployment]++
	restarted[statefulSet]++
	restarted[daemonSet]++
	f.expectRestarts(restarted, "a spec edit that changes the backup restarts every target once")

	// A spec edit that keeps the backup: the link to its cross-region copy
	// is a new link (a new call), to the same backup.
	calls := f.sim.CallCount("DescribeURedisBackupURL")
	f.updateSpec("nightly", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.IsCrossRegion = ptr.To(true) })
	f.g.Eventually(func() int { return f.sim.CallCount("DescribeURedisBackupURL") }).WithTimeout(20 * time.Second).Should(Equal(calls + 1))
	f.g.Eventually(func() int64 { return f.get("nightly").Status.LinkGeneration }).Should(Equal(f.get("nightly").Generation))
	restarted[daemonSet]++
	f.expectRestarts(restarted, "a spec edit that keeps the backup restarts only the LinkChanged target")

	// Editing the targets is not a spec change: no call, no restart; the
	// status forgets the target no longer listed.
	calls = f.sim.CallCount("")
	f.updateSpec("nightly", withTargets(deployment, daemonSet))
	f.g.Eventually(func() []uredisv1alpha1.RolloutRestart { return f.get("nightly").Status.RolloutRestarts }).Should(HaveLen(2))
	f.expectRestarts(restarted, "editing the targets restarts nothing")
	f.g.Expect(f.sim.CallCount("")).To(Equal(calls), "editing the targets costs no call")

	ready := f.ready("nightly")
	f.g.Expect(conditionSummary(ready)).To(HavePrefix("True/" + uredisv1alpha1.ReasonRefreshed))
	f.g.Expect(f.get("nightly").Status.ObservedGeneration).To(Equal(f.get("nightly").Generation))
	// No Event, log or condition carries the link.
	link := string(mustSecret(f, "nightly").Data[uredisv1alpha1.KeyBackupPath])
	for _, note := range f.eventNotes() {
		f.g.Expect(note).NotTo(ContainSubstring(link))
		f.g.Expect(note).NotTo(ContainSubstring("Signature"))
	}
}

func mustSecret(f *fixture, name string) *corev1.Secret {
	f.t.Helper()
	secret, err := f.secret(name)
	f.g.Expect(err).NotTo(HaveOccurred())
	return secret
}

// TestRolloutRestartNotOnOperatorRestart: an operator restart with fresh
// links restarts nothing (nor calls anything); the next change restarts
// each target once.
func TestRolloutRestartNotOnOperatorRestart(t *testing.T) {
	// The refresh request after the restart must be declined however long
	// the test takes to get there.
	f := newFixture(t, withForcedRefreshInterval(time.Hour))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	deployment := target(uredisv1alpha1.RolloutRestartDeployment, "app", uredisv1alpha1.RestartOnBackupChanged)
	daemonSet := target(uredisv1alpha1.RolloutRestartDaemonSet, "agent", uredisv1alpha1.RestartOnLinkChanged)
	f.createWithWorkloads("nightly", deployment, daemonSet)
	f.eventuallyReady("nightly")
	// A change first, so that the restart annotations are on the targets
	// when the operator restarts.
	f.updateSpec("nightly", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = otherID })
	f.expectRestarts(map[uredisv1alpha1.RolloutRestartTarget]int{deployment: 1, daemonSet: 1}, "the spec edit")
	calls := f.sim.CallCount("")

	f.restartManager()
	// A refresh request the new manager declines (the last attempt is less
	// than --forced-refresh-min-interval old) shows that it has looked at
	// the resource.
	f.forceRefresh("nightly", "after-the-operator-restart")
	f.g.Eventually(f.eventNotes).Should(ContainElement(ContainSubstring("refresh request acknowledged without a refresh")))
	f.expectRestarts(map[uredisv1alpha1.RolloutRestartTarget]int{deployment: 1, daemonSet: 1}, "an operator restart")
	f.g.Expect(f.sim.CallCount("")).To(Equal(calls), "fresh links: no call")

	// The restarted operator restarts the targets at the next change, once.
	f.updateSpec("nightly", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = backupID })
	f.expectRestarts(map[uredisv1alpha1.RolloutRestartTarget]int{deployment: 2, daemonSet: 2}, "the next change after the operator restart")
}

// TestRolloutRestartNotOnFailedRefresh: refreshes that fail restart
// nothing, however many; the refresh that then succeeds restarts the
// LinkChanged target once, and the BackupChanged one not at all (same
// backup).
func TestRolloutRestartNotOnFailedRefresh(t *testing.T) {
	// 30-second links: an answer is shared for at most a tenth of its
	// lifetime, so that after 3 s every retry calls the API again.
	const lifetime = 30 * time.Second
	f := newFixture(t, withLinkLifetime(lifetime), withForcedRefreshInterval(0), withOperatorOptions(func(o *operator.Options) {
		shortLinks(o)
		o.TransientBackoff.Base = time.Second
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	deployment := target(uredisv1alpha1.RolloutRestartDeployment, "app", uredisv1alpha1.RestartOnBackupChanged)
	daemonSet := target(uredisv1alpha1.RolloutRestartDaemonSet, "agent", uredisv1alpha1.RestartOnLinkChanged)
	f.createWithWorkloads("nightly", deployment, daemonSet)
	first := f.eventuallyReady("nightly").Status
	time.Sleep(time.Until(first.LastRefreshTime.Add(lifetime/10 + time.Second)))

	// Every call fails until the faults are cleared.
	f.sim.SetFaultRate(1, simulator.Fault{Kind: simulator.FaultRetCode}, simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 503})
	f.forceRefresh("nightly", "during-an-outage")
	f.g.Expect(conditionSummary(f.ready("nightly"))).To(HavePrefix("True/"+uredisv1alpha1.ReasonRefreshFailing), "the fault happened")
	f.g.Eventually(func() uredisv1alpha1.RedisBackupExportStatus { return f.get("nightly").Status }).WithTimeout(20*time.Second).Should(HaveField("FailureCount", BeNumerically(">=", 3)), "retries failed too")
	f.expectRestarts(map[uredisv1alpha1.RolloutRestartTarget]int{deployment: 0, daemonSet: 0}, "failed refreshes")

	f.sim.ClearFaults()
	f.g.Eventually(func() string { return conditionSummary(f.ready("nightly")) }).WithTimeout(30 * time.Second).Should(HavePrefix("True/" + uredisv1alpha1.ReasonRefreshed))
	f.g.Expect(f.get("nightly").Status.ExpiresAt.Time).To(BeTemporally(">", first.ExpiresAt.Time))
	f.g.Expect(successfulCalls(f.sim)).To(Equal(2))
	f.expectRestarts(map[uredisv1alpha1.RolloutRestartTarget]int{deployment: 0, daemonSet: 1}, "the refresh that succeeded")
}

// statusWriteFailer loses the status write that first records a new
// rollout restart, as a busy or briefly unreachable API server would, as
// often as it is armed (once to begin with): the restarts are done, and the
// status does not say so. It also counts the operator's patches of
// workloads, by kind.
type statusWriteFailer struct {
	client.Client
	mu       sync.Mutex
	armed    int
	injected int
	// recorded is what the last status write that went through recorded:
	// each target's restarted-for digest.
	recorded []string
	patches  map[string]int
}

func newStatusWriteFailer() *statusWriteFailer { return &statusWriteFailer{armed: 1} }

func (c *statusWriteFailer) arm() { c.mu.Lock(); defer c.mu.Unlock(); c.armed++ }

func (c *statusWriteFailer) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.injected }

func (c *statusWriteFailer) workloadPatches() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.patches)
}

func (c *statusWriteFailer) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if kind := obj.GetObjectKind().GroupVersionKind(); kind.Group == "apps" {
		c.mu.Lock()
		if c.patches == nil {
			c.patches = map[string]int{}
		}
		c.patches[kind.Kind+"/"+obj.GetName()]++
		c.mu.Unlock()
	}
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *statusWriteFailer) Status() client.SubResourceWriter {
	return &failingStatusWriter{SubResourceWriter: c.Client.Status(), parent: c}
}

type failingStatusWriter struct {
	client.SubResourceWriter
	parent *statusWriteFailer
}

func (w *failingStatusWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	export, ok := obj.(*uredisv1alpha1.RedisBackupExport)
	var records []string
	if ok {
		for _, r := range export.Status.RolloutRestarts {
			records = append(records, fmt.Sprintf("%s/%s=%s", r.Kind, r.Name, r.For))
		}
	}
	w.parent.mu.Lock()
	fail := ok && w.parent.armed > 0 && !slices.Equal(records, w.parent.recorded)
	if fail {
		w.parent.armed--
		w.parent.injected++
	}
	w.parent.mu.Unlock()
	if fail {
		// The next attempt comes a second later at least, so that a second
		// restart would carry another restarted-at, and make another
		// generation of the workload, and a forced retry gets a link with
		// another expiry.
		time.Sleep(1100 * time.Millisecond)
		return apierrors.NewServiceUnavailable("injected by the test: the status write is lost")
	}
	err := w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
	if ok && err == nil {
		w.parent.mu.Lock()
		w.parent.recorded = records
		w.parent.mu.Unlock()
	}
	return err
}

// TestRolloutRestartAtMostOnceAcrossALostStatusWrite: the attempt that
// restarts the targets fails to write its status; the next attempt finds
// the targets already restarted for this change (their restarted-for
// annotation) and records them without patching them again. So too for a
// forced refresh, whose retry gets a new link (a forced refresh takes no
// shared answer) with another expiry: the LinkChanged target is restarted
// once for it.
func TestRolloutRestartAtMostOnceAcrossALostStatusWrite(t *testing.T) {
	failer := newStatusWriteFailer()
	f := newFixture(t, withForcedRefreshInterval(0), withOperatorOptions(func(o *operator.Options) {
		o.WrapClient = func(c client.Client) client.Client { failer.Client = c; return failer }
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	deployment := target(uredisv1alpha1.RolloutRestartDeployment, "app", uredisv1alpha1.RestartOnBackupChanged)
	statefulSet := target(uredisv1alpha1.RolloutRestartStatefulSet, "db", uredisv1alpha1.RestartOnBackupChanged)
	daemonSet := target(uredisv1alpha1.RolloutRestartDaemonSet, "agent", uredisv1alpha1.RestartOnLinkChanged)
	all := []uredisv1alpha1.RolloutRestartTarget{deployment, statefulSet, daemonSet}
	f.createWithWorkloads("nightly", all...)
	f.eventuallyReady("nightly")

	f.updateSpec("nightly", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = otherID })
	f.g.Eventually(func() string { return f.get("nightly").Status.BackupID }).WithTimeout(20 * time.Second).Should(Equal(otherID))
	f.g.Expect(failer.count()).To(Equal(1), "the status write of the attempt that restarted was lost")
	restarted := map[uredisv1alpha1.RolloutRestartTarget]int{deployment: 1, statefulSet: 1, daemonSet: 1}
	f.expectRestarts(restarted, "a lost status write")
	f.g.Expect(failer.workloadPatches()).To(Equal(map[string]int{"Deployment/app": 1, "StatefulSet/db": 1, "DaemonSet/agent": 1}), "one patch each")
	_, template := f.podTemplate(deployment.Kind, deployment.Name)
	// Recorded by the next attempt, which found the restart done.
	records := f.get("nightly").Status.RolloutRestarts
	f.g.Expect(records).To(HaveLen(3))
	f.g.Expect(records[0].For).To(Equal(template.Annotations[uredisv1alpha1.AnnotationRestartedFor]))
	f.g.Expect(records[0].At.UTC().Format(time.RFC3339)).To(Equal(template.Annotations[uredisv1alpha1.AnnotationRestartedAt]), "the time of the one restart")
	for _, w := range all {
		f.g.Expect(f.restartEvents(uredisv1alpha1.EventRolloutRestarted, w.Name)).To(ConsistOf(ContainSubstring(" x1: ")), "one RolloutRestarted Event for %s", w.Name)
	}

	// A forced refresh, a second or more after the last link so that its
	// link expires later, whose status write is lost too: its retry is
	// forced as well, and makes a call of its own.
	st := f.get("nightly").Status
	time.Sleep(time.Until(st.LastRefreshTime.Add(2 * time.Second)))
	failer.arm()
	calls := f.sim.CallCount("DescribeURedisBackupURL")
	f.forceRefresh("nightly", "forced")
	f.g.Expect(failer.count()).To(Equal(2), "the status write of the forced refresh was lost")
	f.g.Expect(f.sim.CallCount("DescribeURedisBackupURL")).To(Equal(calls+2), "the forced refresh and its forced retry each made a call")
	restarted[daemonSet]++
	f.expectRestarts(restarted, "a forced refresh whose status write was lost restarts the LinkChanged target once")
	f.g.Expect(failer.workloadPatches()).To(Equal(map[string]int{"Deployment/app": 1, "StatefulSet/db": 1, "DaemonSet/agent": 2}))
	// The restart was for the lost attempt's link, and the retry's link
	// expires later: a digest of the new expiry would have restarted the
	// target again.
	export := f.get("nightly")
	f.g.Expect(export.Status.ExpiresAt.Time).To(BeTemporally(">", st.ExpiresAt.Time))
	notes := f.restartEvents(uredisv1alpha1.EventRolloutRestarted, daemonSet.Name)
	f.g.Expect(notes).To(HaveLen(2))
	f.g.Expect(notes).To(HaveEach(ContainSubstring(" x1: ")))
	f.g.Expect(notes).To(ContainElement(ContainSubstring("the Secret holds a new link to backup " + otherID + ", valid until")))
	f.g.Expect(notes).NotTo(ContainElement(ContainSubstring("valid until "+export.Status.ExpiresAt.UTC().Format(time.RFC3339))), "the restart was for the link of the lost attempt, not the retry's")
	_, template = f.podTemplate(daemonSet.Kind, daemonSet.Name)
	f.g.Expect(export.Status.RolloutRestarts).To(HaveLen(3))
	f.g.Expect(export.Status.RolloutRestarts[2].For).To(Equal(template.Annotations[uredisv1alpha1.AnnotationRestartedFor]))
	f.g.Expect(export.Status.RolloutRestarts[2].At.UTC().Format(time.RFC3339)).To(Equal(template.Annotations[uredisv1alpha1.AnnotationRestartedAt]))
}

// lockWorkload has the API server refuse every update of the named
// Deployment in the fixture's namespace with 403 Forbidden, as RBAC or an
// admission policy would, through a ValidatingAdmissionPolicy of its own.
func (f *fixture) lockWorkload(name string) {
	f.t.Helper()
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "lock-" + f.ns},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: f.ns}},
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
				}}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("object.metadata.name != %q", name),
				Reason:     ptr.To(metav1.StatusReasonForbidden),
				Message:    "locked by the test",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: policy.Name, ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		f.g.Expect(f.c.Create(f.ctx, o)).To(Succeed())
		f.t.Cleanup(func() { _ = f.c.Delete(context.Background(), o) })
	}
	// The policy takes a moment to be in force: until a dry run is refused.
	locked := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name}}
	f.g.Eventually(func() error {
		return f.c.Patch(f.ctx, locked, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"template":{"metadata":{"annotations":{"probe":"x"}}}}}`)), client.DryRunAll)
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(WithTransform(apierrors.IsForbidden, BeTrue()))
}

// TestRolloutRestartMissingOrRefusedTarget: a target that does not exist
// and one whose patch is refused each get a Warning Event naming them,
// once; the others are restarted, Ready stays True, and nothing is retried
// until the next change, which restarts the target that now exists.
func TestRolloutRestartMissingOrRefusedTarget(t *testing.T) {
	f := newFixture(t)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	present := target(uredisv1alpha1.RolloutRestartDeployment, "present", uredisv1alpha1.RestartOnBackupChanged)
	missing := target(uredisv1alpha1.RolloutRestartStatefulSet, "missing", uredisv1alpha1.RestartOnBackupChanged)
	locked := target(uredisv1alpha1.RolloutRestartDeployment, "locked", uredisv1alpha1.RestartOnBackupChanged)
	f.workload(present.Kind, present.Name)
	f.workload(locked.Kind, locked.Name)
	f.lockWorkload(locked.Name)
	f.create(f.newExport("nightly", withTargets(missing, locked, present)))
	f.eventuallyReady("nightly")

	f.updateSpec("nightly", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = otherID })
	f.g.Eventually(f.restartEvents).WithArguments(uredisv1alpha1.EventRolloutRestartTargetMissing, missing.Name).WithTimeout(20 * time.Second).Should(ConsistOf(
		`Warning/nightly x1: StatefulSet "missing", a rollout restart target, does not exist in namespace "` + f.ns + `": it is not restarted for this change; the next change tries again`))
	f.g.Eventually(f.restartEvents).WithArguments(uredisv1alpha1.EventRolloutRestartFailed, locked.Name).Should(ConsistOf(
		ContainSubstring(`restarting Deployment "locked" was refused (403 Forbidden): the operator needs get and patch on deployments (apps)`)))
	f.g.Expect(f.restartEvents(uredisv1alpha1.EventRolloutRestartFailed, locked.Name)[0]).NotTo(ContainSubstring("locked by the test"), "not the server's text")
	f.expectRestarts(map[uredisv1alpha1.RolloutRestartTarget]int{present: 1, locked: 0}, "the target that exists and may be patched")
	f.g.Expect(conditionSummary(f.ready("nightly"))).To(HavePrefix("True/" + uredisv1alpha1.ReasonRefreshed))
	export := f.get("nightly")
	f.g.Expect(export.Status.RolloutRestarts).To(HaveLen(1))
	f.g.Expect(export.Status.RolloutRestarts[0].Name).To(Equal(present.Name))

	// No retry loop: no call, no Event recorded again (an Event recorded
	// again counts up its series), no second attempt.
	calls := f.sim.CallCount("")
	f.workload(missing.Kind, missing.Name) // appearing is no change
	warnings := func() []string {
		return append(f.restartEvents(uredisv1alpha1.EventRolloutRestartTargetMissing, missing.Name), f.restartEvents(uredisv1alpha1.EventRolloutRestartFailed, locked.Name)...)
	}
	once := warnings()
	f.g.Expect(once).To(HaveEach(ContainSubstring(" x1: ")))
	f.g.Consistently(warnings).WithTimeout(3 * time.Second).Should(Equal(once))
	f.g.Expect(f.sim.CallCount("")).To(Equal(calls))
	f.expectRestarts(map[uredisv1alpha1.RolloutRestartTarget]int{present: 1, missing: 0, locked: 0}, "nothing is retried")

	// The next change restarts the target that now exists.
	f.updateSpec("nightly", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = backupID })
	f.expectRestarts(map[uredisv1alpha1.RolloutRestartTarget]int{present: 2, missing: 1, locked: 0}, "the next change")
}

// TestRolloutRestartNotWhileSuspended: a suspended resource restarts
// nothing, whatever happens to its spec; resuming fetches the link of the
// new backup, and that change restarts the target once.
func TestRolloutRestartNotWhileSuspended(t *testing.T) {
	f := newFixture(t, withForcedRefreshInterval(0))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	deployment := target(uredisv1alpha1.RolloutRestartDeployment, "app", uredisv1alpha1.RestartOnBackupChanged)
	daemonSet := target(uredisv1alpha1.RolloutRestartDaemonSet, "agent", uredisv1alpha1.RestartOnLinkChanged)
	f.createWithWorkloads("nightly", deployment, daemonSet)
	f.eventuallyReady("nightly")

	f.setSuspend("nightly", true)
	f.eventuallyReadyAs("nightly", metav1.ConditionTrue, uredisv1alpha1.ReasonSuspended)
	f.updateSpec("nightly", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.BackupID = otherID })
	f.forceRefresh("nightly", "while-suspended")
	f.eventuallyReadyAs("nightly", metav1.ConditionFalse, uredisv1alpha1.ReasonSuspended)
	f.expectRestarts(map[uredisv1alpha1.RolloutRestartTarget]int{deployment: 0, daemonSet: 0}, "while suspended")
	f.g.Expect(f.sim.CallCount("")).To(Equal(1), "no call while suspended")

	f.setSuspend("nightly", false)
	f.g.Eventually(func() string { return f.get("nightly").Status.BackupID }).WithTimeout(20 * time.Second).Should(Equal(otherID))
	f.expectRestarts(map[uredisv1alpha1.RolloutRestartTarget]int{deployment: 1, daemonSet: 1}, "the resume brought the new backup")
}
