package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
	"github.com/dezai/uredis-backup-operator/internal/testenv"
)

// The ClusterRedisBackupExport tests need a manager that watches every
// namespace (the cluster controller does not run with --watch-namespaces),
// so they do not run in parallel: Go runs them before any parallel test
// starts, each with its own manager and simulator, and each deletes its
// cluster-scoped resources when it ends so that the next one's simulator
// counts only its own calls.

const testSelectorLabel = "uredis.dezai.com/crbe-test"

type clusterFixture struct {
	t   *testing.T
	g   Gomega
	ctx context.Context
	c   client.Client
	sim *simulator.Server
	// id is unique per test: the label value selecting its namespaces and
	// the suffix of its names.
	id      string
	credsNS string
	opts    operator.Options
	stop    func()
}

func newClusterFixture(t *testing.T, opts ...fixtureOption) *clusterFixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &clusterFixture{t: t, g: NewWithT(t), ctx: ctx, c: env.Client}
	f.credsNS = namespaceFor(t.Name())
	f.id = f.credsNS
	f.g.Expect(f.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.credsNS}})).To(Succeed())
	f.g.Expect(f.c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cloud-credentials", Namespace: f.credsNS},
		StringData: map[string]string{"publicKey": publicKey, "privateKey": privateKey},
	})).To(Succeed())

	simCfg := simulator.Config{
		Accounts:     []simulator.Account{{PublicKey: publicKey, PrivateKey: privateKey}},
		Backups:      []simulator.Backup{{ID: backupID, Region: region, Zone: zone, GroupID: "mfweUQnQ", Content: []byte("backup one")}},
		LinkLifetime: time.Hour,
	}
	o := operator.DefaultOptions()
	o.MetricsBindAddress, o.HealthProbeBindAddress = "0", "0"
	o.AllowHTTPEndpoint = true
	o.InProcessTestManagers = true
	o.KubeAPIQPS, o.KubeAPIBurst = 500, 1000
	for _, opt := range opts {
		opt(&simCfg, &o)
	}
	sim, err := simulator.Start(simCfg)
	f.g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(sim.Close)
	f.sim = sim
	o.APIEndpoint = sim.URL()
	f.opts = o
	f.stop = f.startManager()
	// Registered after the manager's stop, so run before it (cleanups run
	// last-in first-out): the resources go while their manager still runs,
	// and no later test's manager sees them.
	t.Cleanup(f.deleteAll)
	return f
}

func (f *clusterFixture) startManager() func() {
	mgr, err := operator.NewManager(env.Config, f.opts)
	f.g.Expect(err).NotTo(HaveOccurred())
	return testenv.StartManager(f.t, f.ctx, mgr)
}

func (f *clusterFixture) restartManager() {
	f.stop()
	f.stop = f.startManager()
}

// deleteAll deletes the test's ClusterRedisBackupExports and
// RedisBackupExports and waits until they are gone.
func (f *clusterFixture) deleteAll() {
	ctx := context.Background()
	var clusters uredisv1alpha1.ClusterRedisBackupExportList
	_ = f.c.List(ctx, &clusters)
	for _, c := range clusters.Items {
		if strings.HasSuffix(c.Name, f.id) {
			_ = f.c.Delete(ctx, &c)
		}
	}
	var exports uredisv1alpha1.RedisBackupExportList
	_ = f.c.List(ctx, &exports, client.MatchingLabels{testSelectorLabel: f.id})
	for _, e := range exports.Items {
		_ = f.c.Delete(ctx, &e)
	}
	NewWithT(f.t).Eventually(func() int {
		var left uredisv1alpha1.ClusterRedisBackupExportList
		_ = f.c.List(ctx, &left)
		n := 0
		for _, c := range left.Items {
			if strings.HasSuffix(c.Name, f.id) {
				n++
			}
		}
		return n
	}).WithTimeout(10 * time.Second).Should(BeZero())
}

// namespace creates a namespace, selected by the test's resources when
// labelled.
func (f *clusterFixture) namespace(prefix string, labelled bool) string {
	f.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%s", prefix, f.id)}}
	if labelled {
		ns.Labels = map[string]string{testSelectorLabel: f.id}
	}
	f.g.Expect(f.c.Create(f.ctx, ns)).To(Succeed())
	return ns.Name
}

func (f *clusterFixture) setLabel(namespace string, labelled bool) {
	f.t.Helper()
	ns := &corev1.Namespace{}
	f.g.Expect(f.c.Get(f.ctx, types.NamespacedName{Name: namespace}, ns)).To(Succeed())
	patch := client.MergeFrom(ns.DeepCopy())
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	if labelled {
		ns.Labels[testSelectorLabel] = f.id
	} else {
		delete(ns.Labels, testSelectorLabel)
	}
	f.g.Expect(f.c.Patch(f.ctx, ns, patch)).To(Succeed())
}

// create creates a ClusterRedisBackupExport named <name>-<id> selecting
// the test's labelled namespaces, and returns its name.
func (f *clusterFixture) create(name string, mutate ...func(*uredisv1alpha1.ClusterRedisBackupExport)) string {
	f.t.Helper()
	export := &uredisv1alpha1.ClusterRedisBackupExport{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-" + f.id},
		Spec: uredisv1alpha1.ClusterRedisBackupExportSpec{
			BackupSelection: uredisv1alpha1.BackupSelection{BackupID: backupID, Region: region, Zone: zone},
			CredentialsRef: uredisv1alpha1.ClusterCredentialsReference{
				CredentialsReference: uredisv1alpha1.CredentialsReference{Name: "cloud-credentials"}, Namespace: f.credsNS,
			},
			Target:            uredisv1alpha1.TargetSecret{Name: "backup-link"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{testSelectorLabel: f.id}},
		},
	}
	for _, m := range mutate {
		m(export)
	}
	f.g.Expect(f.c.Create(f.ctx, export)).To(Succeed())
	return export.Name
}

func (f *clusterFixture) get(name string) *uredisv1alpha1.ClusterRedisBackupExport {
	export := &uredisv1alpha1.ClusterRedisBackupExport{}
	f.g.Expect(f.c.Get(f.ctx, types.NamespacedName{Name: name}, export)).To(Succeed())
	return export
}

func (f *clusterFixture) ready(name string) string {
	export := &uredisv1alpha1.ClusterRedisBackupExport{}
	if err := f.c.Get(f.ctx, types.NamespacedName{Name: name}, export); err != nil {
		return err.Error()
	}
	return conditionSummary(meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady))
}

func (f *clusterFixture) eventuallyReady(name string) *uredisv1alpha1.ClusterRedisBackupExport {
	f.t.Helper()
	f.g.Eventually(func() string { return f.ready(name) }).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(HavePrefix("True/Refreshed"))
	return f.get(name)
}

func (f *clusterFixture) eventuallyNotReady(name, reason string) *uredisv1alpha1.ClusterRedisBackupExport {
	f.t.Helper()
	f.g.Eventually(func() string { return f.ready(name) }).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).
		Should(HavePrefix("False/"+reason), "waiting for Ready=False/%s", reason)
	return f.get(name)
}

func (f *clusterFixture) secret(namespace, name string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := f.c.Get(f.ctx, types.NamespacedName{Namespace: namespace, Name: name}, secret)
	return secret, err
}

// link is the link the namespace's Secret holds ("" without one).
func (f *clusterFixture) link(namespace string) string {
	secret, err := f.secret(namespace, "backup-link")
	if err != nil {
		return ""
	}
	return string(secret.Data["backupPath"])
}

// TestClusterExportOneCallPerRefreshFor50Namespaces: 50 namespaces get the
// link of one call, and each refresh is again one call, whatever their
// number.
func TestClusterExportOneCallPerRefreshFor50Namespaces(t *testing.T) {
	const lifetime = 12 * time.Second
	f := newClusterFixture(t, withLinkLifetime(lifetime), withOperatorOptions(func(o *operator.Options) {
		o.Policy.MinMargin, o.Policy.MinUsefulLifetime = 2*time.Second, 4*time.Second
	}))
	var namespaces []string
	for i := range 50 {
		namespaces = append(namespaces, f.namespace(fmt.Sprintf("fan%02d", i), true))
	}
	name := f.create("fifty")
	export := f.eventuallyReady(name)
	f.g.Expect(export.Status.NamespacesSelected).To(BeEquivalentTo(50))
	f.g.Expect(export.Status.NamespacesWritten).To(BeEquivalentTo(50))
	f.g.Expect(successfulCalls(f.sim)).To(Equal(1), "one call for 50 namespaces")
	first := f.link(namespaces[0])
	f.g.Expect(first).To(HavePrefix(f.sim.URL() + "download/" + backupID))
	for _, ns := range namespaces {
		secret, err := f.secret(ns, "backup-link")
		f.g.Expect(err).NotTo(HaveOccurred())
		f.g.Expect(string(secret.Data["backupPath"])).To(Equal(first), ns)
		f.g.Expect(secret.Annotations).To(HaveKeyWithValue(uredisv1alpha1.AnnotationExportUID, string(export.UID)))
		f.g.Expect(metav1.IsControlledBy(secret, export)).To(BeTrue(), "owned by the cluster resource")
		f.g.Expect(secret.Type).To(Equal(corev1.SecretTypeOpaque))
	}
	f.g.Expect(download(first)).To(Equal("backup one"))
	// The link itself is nowhere in the cluster resource.
	f.g.Expect(fmt.Sprintf("%+v", export.Status)).NotTo(ContainSubstring(first))

	// Two refreshes: every namespace gets each new link, one call each.
	links := map[string]bool{first: true}
	f.g.Eventually(func() int {
		last := f.link(namespaces[49])
		if last != "" && f.link(namespaces[0]) == last {
			links[last] = true
		}
		return len(links)
	}).WithTimeout(4 * lifetime).WithPolling(200 * time.Millisecond).Should(Equal(3))
	f.g.Eventually(func() string { return f.ready(name) }).WithTimeout(5 * time.Second).Should(HavePrefix("True/Refreshed"))
	current := f.link(namespaces[0])
	for _, ns := range namespaces {
		f.g.Expect(f.link(ns)).To(Equal(current), ns)
	}
	f.g.Expect(successfulCalls(f.sim)).To(Equal(len(links)), "exactly one call per refresh")
	f.g.Expect(f.sim.CallCount("")).To(Equal(len(links)))
}

// TestClusterExportFollowsNamespaces: a namespace labelled later gets the
// link at once without a call; one unlabelled loses the Secret the operator
// created there (handed to the garbage collector), and a Secret of that
// name the operator did not create stays as it is.
func TestClusterExportFollowsNamespaces(t *testing.T) {
	f := newClusterFixture(t)
	a, b := f.namespace("first", true), f.namespace("second", true)
	foreignNS := f.namespace("foreign", true)
	f.g.Expect(f.c.Create(f.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "backup-link", Namespace: foreignNS},
		StringData: map[string]string{"mine": "yes"},
	})).To(Succeed())
	later := f.namespace("later", false)
	name := f.create("follow")
	f.eventuallyNotReady(name, uredisv1alpha1.ReasonSecretConflict)
	f.g.Expect(f.link(a)).NotTo(BeEmpty())
	f.g.Expect(successfulCalls(f.sim)).To(Equal(1))

	// Labelled: the current link, no call.
	f.setLabel(later, true)
	f.g.Eventually(func() string { return f.link(later) }).WithTimeout(10 * time.Second).Should(Equal(f.link(a)))
	f.g.Eventually(func() int32 { return f.get(name).Status.NamespacesWritten }).WithTimeout(10 * time.Second).Should(BeEquivalentTo(3))
	f.g.Expect(successfulCalls(f.sim)).To(Equal(1), "a namespace that starts to match costs no call while the link is fresh")

	// Unlabelled: the Secret is emptied and its owner reference points
	// at no existing object, so the garbage collector deletes it (envtest
	// runs none: the test checks what it acts on).
	export := f.get(name)
	f.setLabel(b, false)
	f.setLabel(foreignNS, false)
	f.g.Eventually(func() map[string][]byte {
		s, _ := f.secret(b, "backup-link")
		return s.Data
	}).WithTimeout(10 * time.Second).Should(BeEmpty())
	// The link goes first; the owner reference in a second patch.
	var released *corev1.Secret
	f.g.Eventually(func() []metav1.OwnerReference {
		released, _ = f.secret(b, "backup-link")
		return released.OwnerReferences
	}).WithTimeout(10 * time.Second).Should(ContainElement(HaveField("UID", Not(Equal(export.UID)))))
	f.g.Expect(released.OwnerReferences).To(HaveLen(1))
	ref := released.OwnerReferences[0]
	f.g.Expect(ref.Kind).To(Equal("ClusterRedisBackupExport"))
	f.g.Expect(ref.UID).NotTo(Equal(export.UID), "the owner reference must be dangling for the garbage collector")
	f.g.Expect(metav1.IsControlledBy(released, export)).To(BeFalse())
	f.g.Eventually(func() string { return f.ready(name) }).WithTimeout(10 * time.Second).Should(HavePrefix("True/Refreshed"))
	st := f.get(name).Status
	f.g.Expect(st.NamespacesSelected).To(BeEquivalentTo(2))
	f.g.Expect(st.NamespacesWritten).To(BeEquivalentTo(2))
	foreign, err := f.secret(foreignNS, "backup-link")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(foreign.Data).To(Equal(map[string][]byte{"mine": []byte("yes")}), "a Secret the operator did not create is never touched")
	f.g.Expect(foreign.OwnerReferences).To(BeEmpty())

	// Selected again: the released Secret is the resource's own again.
	f.setLabel(b, true)
	f.g.Eventually(func() string { return f.link(b) }).WithTimeout(10 * time.Second).Should(Equal(f.link(a)))
	again, _ := f.secret(b, "backup-link")
	f.g.Expect(metav1.IsControlledBy(again, export)).To(BeTrue())
	f.g.Expect(again.OwnerReferences).To(HaveLen(1))
	f.g.Expect(successfulCalls(f.sim)).To(Equal(1))
}

// TestClusterExportForeignSecretInOneNamespace: a Secret the operator did
// not create blocks one namespace, reported in the bounded failure list;
// the others get the link.
func TestClusterExportForeignSecretInOneNamespace(t *testing.T) {
	f := newClusterFixture(t)
	var namespaces []string
	for i := range 8 {
		namespaces = append(namespaces, f.namespace(fmt.Sprintf("ns%d", i), true))
	}
	// Seven foreign Secrets: more failures than the status lists.
	for _, ns := range namespaces[1:] {
		f.g.Expect(f.c.Create(f.ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "backup-link", Namespace: ns},
			StringData: map[string]string{"owner": "somebody else"},
		})).To(Succeed())
	}
	name := f.create("foreign")
	export := f.eventuallyNotReady(name, uredisv1alpha1.ReasonSecretConflict)
	st := export.Status
	f.g.Expect(st.NamespacesWritten).To(BeEquivalentTo(1))
	f.g.Expect(st.NamespaceFailureCount).To(BeEquivalentTo(7))
	f.g.Expect(st.NamespaceFailures).To(HaveLen(uredisv1alpha1.MaxNamespaceFailures))
	f.g.Expect(st.NamespaceFailures[0].Namespace).To(Equal(namespaces[1]))
	f.g.Expect(st.NamespaceFailures[0].Reason).To(Equal(uredisv1alpha1.ReasonSecretConflict))
	f.g.Expect(meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionStalled)).NotTo(BeNil())
	f.g.Expect(meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady).Message).To(ContainSubstring("and 2 more"))
	f.g.Expect(download(f.link(namespaces[0]))).To(Equal("backup one"))
	for _, ns := range namespaces[1:] {
		secret, err := f.secret(ns, "backup-link")
		f.g.Expect(err).NotTo(HaveOccurred())
		f.g.Expect(secret.Data).To(Equal(map[string][]byte{"owner": []byte("somebody else")}))
		f.g.Expect(secret.OwnerReferences).To(BeEmpty())
	}
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(3*time.Second).Should(Equal(1), "conflicts cost no call")

	// The foreign Secrets gone, the namespaces get the link, no call.
	for _, ns := range namespaces[1:] {
		secret, _ := f.secret(ns, "backup-link")
		f.g.Expect(f.c.Delete(f.ctx, secret)).To(Succeed())
	}
	export = f.eventuallyReady(name)
	f.g.Expect(export.Status.NamespacesWritten).To(BeEquivalentTo(8))
	f.g.Expect(export.Status.NamespaceFailures).To(BeEmpty())
	f.g.Expect(f.sim.CallCount("")).To(Equal(1))
}

// TestClusterAndNamespacedExportsNeverFight: whoever created the Secret
// owns it; the other reports SecretConflict, both ways.
func TestClusterAndNamespacedExportsNeverFight(t *testing.T) {
	f := newClusterFixture(t)
	first, second := f.namespace("rbe-first", true), f.namespace("crbe-first", false)
	newExport := func(ns string) *uredisv1alpha1.RedisBackupExport {
		f.g.Expect(f.c.Create(f.ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "cloud-credentials", Namespace: ns},
			StringData: map[string]string{"publicKey": publicKey, "privateKey": privateKey},
		})).To(Succeed())
		return &uredisv1alpha1.RedisBackupExport{
			ObjectMeta: metav1.ObjectMeta{Name: "namespaced", Namespace: ns, Labels: map[string]string{testSelectorLabel: f.id}},
			Spec: uredisv1alpha1.RedisBackupExportSpec{
				BackupSelection: uredisv1alpha1.BackupSelection{BackupID: backupID, Region: region, Zone: zone},
				CredentialsRef:  &uredisv1alpha1.CredentialsReference{Name: "cloud-credentials"},
				Target:          uredisv1alpha1.TargetSecret{Name: "backup-link"},
			},
		}
	}
	rbeReady := func(ns string) string {
		e := &uredisv1alpha1.RedisBackupExport{}
		if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: ns, Name: "namespaced"}, e); err != nil {
			return err.Error()
		}
		return conditionSummary(meta.FindStatusCondition(e.Status.Conditions, uredisv1alpha1.ConditionReady))
	}

	// The namespaced resource first.
	f.g.Expect(f.c.Create(f.ctx, newExport(first))).To(Succeed())
	f.g.Eventually(func() string { return rbeReady(first) }).WithTimeout(30 * time.Second).Should(HavePrefix("True/"))
	rbeLink := f.link(first)
	name := f.create("interplay")
	export := f.eventuallyNotReady(name, uredisv1alpha1.ReasonSecretConflict)
	f.g.Expect(export.Status.NamespaceFailures).To(ConsistOf(HaveField("Namespace", first)))
	f.g.Expect(export.Status.NamespaceFailures[0].Message).To(ContainSubstring("not managed by this ClusterRedisBackupExport"))
	f.g.Expect(f.link(first)).To(Equal(rbeLink), "the cluster resource leaves the namespaced one's Secret alone")

	// The cluster resource first.
	f.setLabel(second, true)
	f.g.Eventually(func() string { return f.link(second) }).WithTimeout(10 * time.Second).ShouldNot(BeEmpty())
	clusterLink := f.link(second)
	f.g.Expect(f.c.Create(f.ctx, newExport(second))).To(Succeed())
	f.g.Eventually(func() string { return rbeReady(second) }).WithTimeout(30 * time.Second).Should(HavePrefix("False/" + uredisv1alpha1.ReasonSecretConflict))
	f.g.Expect(rbeReady(second)).To(ContainSubstring("not managed by this RedisBackupExport"))
	secret, err := f.secret(second, "backup-link")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(string(secret.Data["backupPath"])).To(Equal(clusterLink))
	f.g.Expect(metav1.IsControlledBy(secret, export)).To(BeTrue())
	f.g.Expect(rbeReady(first)).To(HavePrefix("True/"), "the first namespaced resource is unaffected")
}

// TestClusterExportCredentialsMissingThenRejected: missing credentials cost
// no call and recover when created; rejected ones are not retried hot and
// no Secret is written.
func TestClusterExportCredentialsMissingThenRejected(t *testing.T) {
	f := newClusterFixture(t)
	ns := f.namespace("creds", true)
	missing := f.create("missing", func(e *uredisv1alpha1.ClusterRedisBackupExport) { e.Spec.CredentialsRef.Name = "later-credentials" })
	export := f.eventuallyNotReady(missing, uredisv1alpha1.ReasonCredentialsNotFound)
	f.g.Expect(meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionStalled)).NotTo(BeNil())
	f.g.Expect(meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady).Message).To(ContainSubstring(`"later-credentials" not found in namespace "` + f.credsNS + `"`))
	f.g.Expect(f.sim.CallCount("")).To(BeZero())
	_, err := f.secret(ns, "backup-link")
	f.g.Expect(apierrors.IsNotFound(err)).To(BeTrue())

	f.g.Expect(f.c.Create(f.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "later-credentials", Namespace: f.credsNS},
		StringData: map[string]string{"publicKey": publicKey, "privateKey": "wrong-private-key"},
	})).To(Succeed())
	export = f.eventuallyNotReady(missing, uredisv1alpha1.ReasonCredentialsRejected)
	message := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady).Message
	f.g.Expect(message).To(ContainSubstring("RetCode 171"))
	f.g.Expect(message).NotTo(ContainSubstring("wrong-private-key"))
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(5*time.Second).WithPolling(time.Second).
		Should(BeNumerically("<=", 2), "rejected credentials must not be retried hot")
	_, err = f.secret(ns, "backup-link")
	f.g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "no Secret without a link")

	// Fixed credentials recover at once.
	secret, err := f.secret(f.credsNS, "later-credentials")
	f.g.Expect(err).NotTo(HaveOccurred())
	secret.Data["privateKey"] = []byte(privateKey)
	f.g.Expect(f.c.Update(f.ctx, secret)).To(Succeed())
	f.eventuallyReady(missing)
	f.g.Expect(download(f.link(ns))).To(Equal("backup one"))
}

// TestClusterExportRestartWithFreshLinks: a restarted operator makes no
// call while the link is fresh, reads it back from a Secret, and hands it to
// a namespace that starts to match.
func TestClusterExportRestartWithFreshLinks(t *testing.T) {
	f := newClusterFixture(t)
	var namespaces []string
	for i := range 5 {
		namespaces = append(namespaces, f.namespace(fmt.Sprintf("restart%d", i), true))
	}
	name := f.create("restart")
	before := f.eventuallyReady(name).Status
	f.g.Expect(f.sim.CallCount("")).To(Equal(1))

	f.restartManager()
	late := f.namespace("after-restart", true)
	f.g.Eventually(func() string { return f.link(late) }).WithTimeout(15 * time.Second).Should(Equal(f.link(namespaces[0])))
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(3*time.Second).Should(Equal(1), "no call after a restart while the link is fresh")
	after := f.eventuallyReady(name).Status
	f.g.Expect(after.ExpiresAt).To(Equal(before.ExpiresAt))
	f.g.Expect(after.NamespacesWritten).To(BeEquivalentTo(6))
}

// TestClusterExportAdmission: invalid specs are refused, each with its
// rule's message.
func TestClusterExportAdmission(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	valid := func() map[string]any {
		return map[string]any{
			"backupId": backupID, "region": region,
			"credentialsRef":    map[string]any{"name": "c", "namespace": "ops"},
			"namespaceSelector": map[string]any{"matchLabels": map[string]any{"team": "a"}},
		}
	}
	with := func(kv ...any) map[string]any {
		spec := valid()
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(spec, kv[i].(string))
			} else {
				spec[kv[i].(string)] = kv[i+1]
			}
		}
		return spec
	}
	tests := []struct {
		name    string
		spec    map[string]any
		message string
	}{
		{"no namespaces", with("namespaceSelector", nil), "select the namespaces that receive the Secret: set namespaceSelector, namespaces, or both"},
		{"an empty namespace list", with("namespaceSelector", nil, "namespaces", []any{}), "select the namespaces that receive the Secret"},
		{"both backupId and latest", with("latest", map[string]any{"groupId": "g1"}), "set exactly one of backupId (a fixed backup) and latest"},
		{"neither backupId nor latest", with("backupId", nil), "set exactly one of backupId (a fixed backup) and latest"},
		{"credentials without a namespace", with("credentialsRef", map[string]any{"name": "c"}), "spec.credentialsRef.namespace: Required value"},
		{"credentials without a name", with("credentialsRef", map[string]any{"namespace": "ops"}), "spec.credentialsRef.name: Required value"},
		{"a private key from a TLS key", with("credentialsRef", map[string]any{"name": "c", "namespace": "ops", "privateKeyKey": "tls.key"}), "spec.credentialsRef.privateKeyKey in body should match"},
		{"an invalid namespace name", with("namespaces", []any{"Not_A_Namespace"}), "spec.namespaces[0] in body should match"},
		{"a namespace listed twice", with("namespaces", []any{"a", "a"}), "Duplicate value"},
		{"slaveZone without regionFlag", with("slaveZone", "cn-bj2-05"), "slaveZone may only be set together with regionFlag: true"},
		{"groupId differs from latest.groupId", with("backupId", nil, "latest", map[string]any{"groupId": "g1"}, "groupId", "g2"), "groupId must equal latest.groupId"},
		{"refreshBefore zero", with("refreshBefore", "0s"), "refreshBefore must be a duration of at least 1s"},
		{"no region", with("region", nil), "spec.region: Required value"},
		{"managed-by label", with("target", map[string]any{"labels": map[string]any{"app.kubernetes.io/managed-by": "me"}}), "the label app.kubernetes.io/managed-by is set by the operator"},
		{"two Secret keys with one name", with("target", map[string]any{"keys": map[string]any{"backupPath": "URL", "innerBackupPath": "URL"}}), "the Secret's keys must all be different"},
		{"a template of another Secret type", with("target", map[string]any{"template": map[string]any{"type": "kubernetes.io/service-account-token", "data": map[string]any{"k": "x"}}}), `spec.target.template.type: Unsupported value: "kubernetes.io/service-account-token"`},
		{"a template key with a space", with("target", map[string]any{"template": map[string]any{"data": map[string]any{"rclone conf": "x"}}}), "every key of template.data must be a valid Secret key"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := &unstructured.Unstructured{Object: map[string]any{"spec": tt.spec}}
			obj.SetGroupVersionKind(uredisv1alpha1.ClusterGroupVersionKind)
			obj.SetName(fmt.Sprintf("invalid-%d", i))
			err := env.Client.Create(ctx, obj)
			g.Expect(err).To(HaveOccurred(), "the API server must refuse it")
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
			g.Expect(err.Error()).To(ContainSubstring(tt.message))
		})
	}
	// The valid spec is admitted: the rules above fail for their own reason.
	// So is a suspended one with a template.
	for i, spec := range []map[string]any{valid(), with("suspend", true, "target", map[string]any{"template": map[string]any{
		"mergePolicy": "Merge", "data": map[string]any{"curl.conf": "url = {{ .backupPath | quote }}"},
	}})} {
		obj := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		obj.SetGroupVersionKind(uredisv1alpha1.ClusterGroupVersionKind)
		obj.SetName(fmt.Sprintf("admission-valid-%d", i))
		g.Expect(env.Client.Create(ctx, obj, client.DryRunAll)).To(Succeed())
	}
}

// update changes a ClusterRedisBackupExport's spec, retrying on conflicts
// with the operator's status writes.
func (f *clusterFixture) update(name string, mutate func(*uredisv1alpha1.ClusterRedisBackupExport)) {
	f.t.Helper()
	f.g.Expect(updateObject(f.ctx, f.c, types.NamespacedName{Name: name}, mutate)).To(Succeed())
}

func (f *clusterFixture) setSuspend(name string, suspend bool) {
	f.t.Helper()
	f.update(name, func(e *uredisv1alpha1.ClusterRedisBackupExport) { e.Spec.Suspend = suspend })
}

// eventuallyReadyAs waits until Ready has the given status and reason, and
// returns its summary.
func (f *clusterFixture) eventuallyReadyAs(name string, st metav1.ConditionStatus, reason string) string {
	f.t.Helper()
	f.g.Eventually(func() string { return f.ready(name) }).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).
		Should(HavePrefix(string(st)+"/"+reason), "waiting for Ready=%s/%s", st, reason)
	return f.ready(name)
}

// events are the Events about the named resource (a cluster-scoped
// object's Events are recorded in the default namespace).
func (f *clusterFixture) events(name string) []string {
	var list eventsv1.EventList
	f.g.Expect(f.c.List(f.ctx, &list, client.InNamespace(metav1.NamespaceDefault))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "ClusterRedisBackupExport" && e.Regarding.Name == name {
			out = append(out, e.Type+"/"+e.Reason+": "+e.Note)
		}
	}
	return out
}

// versions are the resourceVersions of the named Secret in namespaces.
func (f *clusterFixture) versions(secret string, namespaces ...string) []string {
	var out []string
	for _, ns := range namespaces {
		s, err := f.secret(ns, secret)
		f.g.Expect(err).NotTo(HaveOccurred())
		out = append(out, s.ResourceVersion)
	}
	return out
}

// TestClusterExportSuspend: a suspended ClusterRedisBackupExport makes no
// call across its planned refresh and writes nothing: not to a namespace
// labelled meanwhile, and a namespace unlabelled meanwhile keeps its
// Secret. Ready stays True while every namespace holds the link and turns
// False within 2 s of the expiry. Resuming once the refresh is due makes
// one call at once and fans the new link out, a newly labelled namespace
// included; resuming after the expiry makes one call too.
func TestClusterExportSuspend(t *testing.T) {
	// Long enough that the suspension lands well before the planned
	// refreshes (about 20 s after the links), even on a loaded machine.
	const lifetime = 30 * time.Second
	f := newClusterFixture(t, withLinkLifetime(lifetime), withBackups("csuspend", 2), withOperatorOptions(shortLinks))
	a, b := f.namespace("held-a", true), f.namespace("held-b", true)
	late := f.namespace("late", false)
	// expiring lists its namespaces, so that labelling late concerns due
	// only.
	expiring := f.create("expiring", func(e *uredisv1alpha1.ClusterRedisBackupExport) {
		e.Spec.BackupID = "csuspend-000"
		e.Spec.NamespaceSelector, e.Spec.Namespaces = nil, []string{a, b}
	})
	due := f.create("due", func(e *uredisv1alpha1.ClusterRedisBackupExport) {
		e.Spec.BackupID = "csuspend-001"
		e.Spec.Target.Name = "due-link"
	})
	f.eventuallyReady(expiring)
	f.eventuallyReady(due)
	f.g.Expect([]int{callsFor(f.sim, "csuspend-000"), callsFor(f.sim, "csuspend-001")}).To(Equal([]int{1, 1}))
	dueLink := func(ns string) string {
		s, err := f.secret(ns, "due-link")
		if err != nil {
			return ""
		}
		return string(s.Data["backupPath"])
	}
	firstDueLink := dueLink(a)

	f.setSuspend(expiring, true)
	f.setSuspend(due, true)
	ready := f.eventuallyReadyAs(expiring, metav1.ConditionTrue, uredisv1alpha1.ReasonSuspended)
	f.g.Expect(ready).To(ContainSubstring("all 2 selected namespaces hold the link"))
	f.eventuallyReadyAs(due, metav1.ConditionTrue, uredisv1alpha1.ReasonSuspended)
	heldVersions := f.versions("backup-link", a, b)
	st := f.get(expiring).Status
	f.g.Expect(st.ObservedGeneration).To(Equal(f.get(expiring).Generation))
	expiry := st.ExpiresAt.Time
	dueStatus := f.get(due).Status
	f.g.Expect(time.Until(dueStatus.NextRefreshTime.Time)).To(BeNumerically(">", 0), "the test must suspend before the planned refresh")

	// Labelled while suspended: nothing written there. Unlabelled while
	// suspended: the Secret stays as it is.
	f.setLabel(late, true)
	f.setLabel(b, false)
	f.g.Eventually(func() string { return f.ready(due) }).WithTimeout(10 * time.Second).
		Should(And(HavePrefix("False/"+uredisv1alpha1.ReasonSuspended), ContainSubstring("1 of 2 selected namespaces hold the link")))
	f.g.Expect(f.get(due).Status.NamespacesSelected).To(BeEquivalentTo(2))
	f.g.Consistently(func() string { return dueLink(late) }).WithTimeout(2 * time.Second).Should(BeEmpty())
	f.g.Expect(dueLink(b)).To(Equal(firstDueLink), "a namespace no longer selected keeps its Secret until the resume")

	// Past both planned refreshes, the links still valid: no call.
	wait := time.Until(dueStatus.NextRefreshTime.Time)
	if other := time.Until(st.NextRefreshTime.Time); other > wait {
		wait = other
	}
	time.Sleep(wait + 500*time.Millisecond)
	f.g.Expect(time.Now()).To(BeTemporally("<", dueStatus.ExpiresAt.Add(-2*time.Second)), "the link must still be valid")
	f.g.Expect(f.sim.CallCount("")).To(Equal(2), "no call while suspended")
	f.g.Expect(f.ready(expiring)).To(HavePrefix("True/" + uredisv1alpha1.ReasonSuspended))
	f.g.Expect(dueLink(late)).To(BeEmpty())

	// Resumed once due: one call at once, and every selected namespace
	// gets the new link; the unselected one loses its Secret now.
	resumed := time.Now()
	f.setSuspend(due, false)
	f.g.Eventually(func() int { return callsFor(f.sim, "csuspend-001") }).WithTimeout(3 * time.Second).Should(Equal(2))
	t.Logf("resumed %v after the planned refresh; refreshed %v later", resumed.Sub(dueStatus.NextRefreshTime.Time).Round(10*time.Millisecond), time.Since(resumed).Round(10*time.Millisecond))
	f.eventuallyReady(due)
	f.g.Expect(dueLink(late)).NotTo(Equal(firstDueLink))
	f.g.Expect(dueLink(late)).To(Equal(dueLink(a)))
	f.g.Expect(download(dueLink(late))).To(Equal("content"))
	f.g.Eventually(func() map[string][]byte {
		s, _ := f.secret(b, "due-link")
		return s.Data
	}).WithTimeout(10 * time.Second).Should(BeEmpty())

	// The other one stays Ready until its link expires, then turns False
	// within 2 s (woken at the expiry, no other visit planned).
	var leftTrue time.Time
	for deadline := expiry.Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r := f.ready(expiring); strings.HasPrefix(r, "True/") {
			f.g.Expect(r).To(HavePrefix("True/" + uredisv1alpha1.ReasonSuspended))
			continue
		}
		leftTrue = time.Now()
		break
	}
	f.g.Expect(leftTrue.IsZero()).To(BeFalse(), "Ready still True 10 s after the link expired at %s", expiry)
	t.Logf("link expired at %s; Ready left True %v later", expiry.Format(time.RFC3339), leftTrue.Sub(expiry).Round(10*time.Millisecond))
	f.g.Expect(leftTrue).NotTo(BeTemporally("<", expiry), "Ready turned False while the link was valid")
	f.g.Expect(leftTrue).To(BeTemporally("<=", expiry.Add(2*time.Second)), "Ready must leave True within 2 s of the expiry")
	ready = f.ready(expiring)
	f.g.Expect(ready).To(And(HavePrefix("False/"+uredisv1alpha1.ReasonSuspended), ContainSubstring("expired at "+expiry.UTC().Format(time.RFC3339))))
	export := f.get(expiring)
	f.g.Expect(meta.IsStatusConditionTrue(export.Status.Conditions, uredisv1alpha1.ConditionStalled)).To(BeTrue(), "only resuming brings a link")
	f.g.Eventually(func() []string { return f.events(expiring) }).Should(ContainElement(HavePrefix("Warning/" + uredisv1alpha1.ReasonLinkExpired)))
	f.g.Expect(callsFor(f.sim, "csuspend-000")).To(Equal(1), "no call while suspended")
	f.g.Expect(f.versions("backup-link", a, b)).To(Equal(heldVersions), "no write while suspended")

	// Resumed after the expiry: one call, every namespace written.
	f.setSuspend(expiring, false)
	export = f.eventuallyReady(expiring)
	f.g.Expect(callsFor(f.sim, "csuspend-000")).To(Equal(2))
	f.g.Expect(export.Status.ExpiresAt.Time).To(BeTemporally(">", expiry))
	f.g.Expect(f.link(a)).To(Equal(f.link(b)))
	f.g.Expect(download(f.link(b))).To(Equal("content"))
}

// TestClusterExportTemplated: one call renders the template once, and
// every namespace gets the same rendering; a template that cannot work
// costs no call, and one that fails only on the real link leaves every
// Secret as it was without quoting the link; a restarted operator reads a
// templated link back from a Secret (its hash covers the expiry) and makes
// no call.
func TestClusterExportTemplated(t *testing.T) {
	f := newClusterFixture(t, withBackups("ctmpl", 1))
	var namespaces []string
	for i := range 3 {
		namespaces = append(namespaces, f.namespace(fmt.Sprintf("tmpl%d", i), true))
	}
	template := &uredisv1alpha1.SecretTemplate{Data: map[string]uredisv1alpha1.TemplateText{
		"curl.conf":   "url = {{ .backupPath | quote }}\noutput = \"{{ .backupId }}.rdb\"",
		"restore.env": "BACKUP_EXPIRES_AT={{ .expiresAtUnix }}\nBACKUP_REGION={{ .region | upper }}\n" + `INNER_SET={{ ne .innerBackupPath "" }}` + "\nEXPIRES={{ .expiresAt }}",
	}}
	name := f.create("templated", func(e *uredisv1alpha1.ClusterRedisBackupExport) { e.Spec.Target.Template = template })
	// Broken from the start: found on the placeholder link, no call.
	broken := f.create("broken", func(e *uredisv1alpha1.ClusterRedisBackupExport) {
		e.Spec.Target.Name = "broken-link"
		e.Spec.Target.Template = &uredisv1alpha1.SecretTemplate{Data: map[string]uredisv1alpha1.TemplateText{"url": "{{ .backupURL }}"}}
	})
	export := f.eventuallyReady(name)
	f.g.Expect(f.sim.CallCount("")).To(Equal(1), "one call renders every namespace's Secret")
	st := export.Status
	want := map[string]string{
		"restore.env": fmt.Sprintf("BACKUP_EXPIRES_AT=%d\nBACKUP_REGION=%s\nINNER_SET=true\nEXPIRES=%s", st.ExpiresAt.Unix(), strings.ToUpper(region), st.ExpiresAt.UTC().Format(time.RFC3339)),
	}
	var first *corev1.Secret
	for _, ns := range namespaces {
		secret, err := f.secret(ns, "backup-link")
		f.g.Expect(err).NotTo(HaveOccurred())
		f.g.Expect(dataKeys(secret)).To(Equal([]string{"curl.conf", "restore.env"}), "Replace: the templated keys only")
		f.g.Expect(string(secret.Data["restore.env"])).To(Equal(want["restore.env"]))
		f.g.Expect(secret.Annotations).To(HaveKeyWithValue(uredisv1alpha1.AnnotationDataHash, st.DataHash))
		if first == nil {
			first = secret
		}
		f.g.Expect(secret.Data).To(Equal(first.Data), "the same rendering in every namespace")
	}
	curl := string(first.Data["curl.conf"])
	f.g.Expect(curl).To(HaveSuffix(`output = "` + backupID + `.rdb"`))
	link := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(curl, "\n", 2)[0], `url = "`), `"`)
	f.g.Expect(download(link)).To(Equal("backup one"))
	f.g.Expect(fmt.Sprintf("%+v", st)).NotTo(ContainSubstring(link))

	brokenReady := f.eventuallyReadyAs(broken, metav1.ConditionFalse, uredisv1alpha1.ReasonTemplateInvalid)
	f.g.Expect(brokenReady).To(And(ContainSubstring(`key "url"`), ContainSubstring("backupURL")))
	f.g.Expect(meta.IsStatusConditionTrue(f.get(broken).Status.Conditions, uredisv1alpha1.ConditionStalled)).To(BeTrue())
	for _, ns := range namespaces {
		_, err := f.secret(ns, "broken-link")
		f.g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing written for an invalid template")
	}

	// Restarted: the templated link is read back from a Secret, no call,
	// and a namespace labelled now gets the same rendering.
	f.restartManager()
	late := f.namespace("tmpl-late", true)
	f.g.Eventually(func() map[string][]byte {
		s, _ := f.secret(late, "backup-link")
		return s.Data
	}).WithTimeout(15 * time.Second).Should(Equal(first.Data))
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(3*time.Second).Should(Equal(1), "no call after a restart while the templated link is fresh")
	f.g.Expect(f.eventuallyReady(name).Status.NamespacesWritten).To(BeEquivalentTo(4))
	namespaces = append(namespaces, late)
	versions := f.versions("backup-link", namespaces...)

	// An invalid edit: no call, every Secret untouched.
	f.update(name, func(e *uredisv1alpha1.ClusterRedisBackupExport) {
		e.Spec.Target.Template = &uredisv1alpha1.SecretTemplate{Data: map[string]uredisv1alpha1.TemplateText{"url": "{{ .backupPath "}}
	})
	f.g.Expect(f.eventuallyReadyAs(name, metav1.ConditionFalse, uredisv1alpha1.ReasonTemplateInvalid)).To(ContainSubstring(`key "url" does not parse`))
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(2*time.Second).Should(Equal(1), "an invalid template costs no call")
	f.g.Expect(f.versions("backup-link", namespaces...)).To(Equal(versions))

	// Fails only on the real link (the simulator's host has a port, the
	// placeholder's none): one call, every Secret untouched, the link in
	// no message or Event. (Another backup, so that no answer of the last
	// seconds is shared and a call is needed.)
	f.update(name, func(e *uredisv1alpha1.ClusterRedisBackupExport) {
		e.Spec.BackupID = "ctmpl-000"
		e.Spec.Target.Template = &uredisv1alpha1.SecretTemplate{Data: map[string]uredisv1alpha1.TemplateText{
			"url": "{{ .backupPath }}\n{{ if contains \":\" (urlParse .backupPath).host }}{{ fail .backupPath }}{{ end }}",
		}}
	})
	f.g.Eventually(func() string { return f.ready(name) }).WithTimeout(10 * time.Second).Should(ContainSubstring(`key "url" fails to render at line 2`))
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(3*time.Second).Should(Equal(2), "one call, and no retry loop")
	f.g.Expect(f.versions("backup-link", namespaces...)).To(Equal(versions), "every Secret keeps the last good rendering")
	linkPrefix := f.sim.URL() + "download/"
	export = f.get(name)
	f.g.Expect(fmt.Sprintf("%+v", export.Status)).NotTo(Or(ContainSubstring(linkPrefix), ContainSubstring("Signature")))
	f.g.Expect(strings.Join(f.events(name), "\n")).NotTo(Or(ContainSubstring(linkPrefix), ContainSubstring("Signature")))
	f.g.Expect(f.events(name)).To(ContainElement(HavePrefix("Warning/" + uredisv1alpha1.ReasonTemplateInvalid)))
}

// TestClusterExportInvalidSelectorReleasesNothing: a selector the API
// server admits but no namespace list can use (an operator "in", a typo of
// In) is reported, and no Secret is emptied for it.
func TestClusterExportInvalidSelectorReleasesNothing(t *testing.T) {
	f := newClusterFixture(t)
	a, b := f.namespace("first", true), f.namespace("second", true)
	name := f.create("typo")
	f.eventuallyReady(name)
	link := f.link(a)
	f.g.Expect(link).NotTo(BeEmpty())
	f.g.Expect(updateObject(f.ctx, f.c, types.NamespacedName{Name: name}, func(e *uredisv1alpha1.ClusterRedisBackupExport) {
		e.Spec.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: testSelectorLabel, Operator: "in", Values: []string{f.id}},
		}}
	})).To(Succeed())
	f.eventuallyNotReady(name, uredisv1alpha1.ReasonNamespaceSelectorInvalid)
	f.g.Consistently(func() []string { return []string{f.link(a), f.link(b)} }).WithTimeout(3*time.Second).
		Should(Equal([]string{link, link}), "no Secret is released for a selector that cannot be used")
}

// TestClusterExportOrphanTakenBackKeepsItsSecret: with creationPolicy
// Orphan, a released Secret taken back loses the owner reference that
// handed it to the garbage collector.
func TestClusterExportOrphanTakenBackKeepsItsSecret(t *testing.T) {
	f := newClusterFixture(t)
	a, b := f.namespace("first", true), f.namespace("second", true)
	name := f.create("orphan", func(e *uredisv1alpha1.ClusterRedisBackupExport) {
		e.Spec.Target.CreationPolicy = uredisv1alpha1.CreationPolicyOrphan
	})
	f.eventuallyReady(name)
	f.setLabel(b, false)
	f.g.Eventually(func() []metav1.OwnerReference {
		s, _ := f.secret(b, "backup-link")
		return s.OwnerReferences
	}).WithTimeout(10*time.Second).Should(HaveLen(1), "released: handed to the garbage collector")
	f.setLabel(b, true)
	f.g.Eventually(func() string { return f.link(b) }).WithTimeout(10 * time.Second).Should(Equal(f.link(a)))
	f.g.Eventually(func() []metav1.OwnerReference {
		s, _ := f.secret(b, "backup-link")
		return s.OwnerReferences
	}).WithTimeout(10*time.Second).Should(BeEmpty(), "taken back under Orphan: no owner reference, dangling or not")
}
