package manifests

// The least-privilege installs on a real API server. Each install's RBAC and
// admission policy are applied for real, from kustomize's output, and the
// manager's identity is played by impersonating its ServiceAccount: the
// tests check that a stolen token of the manager's pod cannot write Secrets
// the operator does not write (and that the admission policy, not RBAC, is
// what refuses), and that the real operator, running in-process under that
// very identity, still does all its work.

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
	"github.com/dezai/uredis-backup-operator/internal/testenv"
)

// leastPrivilegeInstalls are the kustomizations that install the operator
// for a cluster: each must hold the manager's Secret writes to the
// operator's own Secrets, and the operator must work under each.
var leastPrivilegeInstalls = []string{"config/default", "config/namespaced"}

// appliedKinds are the kinds the tests below apply for real: whatever
// decides what the manager's identity may do.
var appliedKinds = []string{
	"Namespace", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
	"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}

// skippedKinds are the kinds of an install that are not applied: testenv
// installs the CRD from the same file, the manager runs in-process instead
// of the Deployment, and the metrics Service grants nothing.
var skippedKinds = []string{"CustomResourceDefinition", "Deployment", "Service"}

// policyWaitTimeout bounds the wait for a new admission policy (and RBAC) to
// take effect in the API server.
const policyWaitTimeout = 30 * time.Second

// installation is one install applied to the API server.
type installation struct {
	dir        string
	objects    []*unstructured.Unstructured
	deployment *appsv1.Deployment
	// account is the manager's ServiceAccount, username its user name.
	account  types.NamespacedName
	username string
	// policy and binding are the names of the admission policy and its
	// binding.
	policy, binding string
	// watchNamespaces is --watch-namespaces of the Deployment; empty for
	// all namespaces.
	watchNamespaces []string
	// managerConfig and manager act as the manager's ServiceAccount.
	managerConfig *rest.Config
	manager       client.Client
}

// install applies dir's RBAC and admission policy for real, and removes them
// again when the test ends (Namespaces stay: envtest never finishes
// deleting one).
func install(t *testing.T, dir string) *installation {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	in := &installation{dir: dir, objects: build(t, dir)}
	in.deployment = typed[appsv1.Deployment](t, single(t, in.objects, "Deployment"))
	in.account = types.NamespacedName{Namespace: in.deployment.Namespace, Name: in.deployment.Spec.Template.Spec.ServiceAccountName}
	in.username = fmt.Sprintf("system:serviceaccount:%s:%s", in.account.Namespace, in.account.Name)
	in.policy = single(t, in.objects, "ValidatingAdmissionPolicy").GetName()
	in.binding = single(t, in.objects, "ValidatingAdmissionPolicyBinding").GetName()
	in.watchNamespaces = managerOptions(t, managerContainer(t, in.deployment)).WatchNamespaces

	// The namespaces the install lives in, or expects (the watched ones).
	ensureNamespaces(t, in.objects)
	for _, o := range in.objects {
		switch {
		case o.GetKind() == "Namespace" || slices.Contains(skippedKinds, o.GetKind()):
			continue
		case !slices.Contains(appliedKinds, o.GetKind()):
			t.Fatalf("%s renders %s: decide whether it changes what the manager may do, and add its kind to appliedKinds or skippedKinds", dir, describe(o))
		}
		o := o.DeepCopy()
		g.Expect(env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(fieldOwner), client.ForceOwnership)).
			To(Succeed(), "applying %s", describe(o))
		t.Cleanup(func() {
			if err := env.Client.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %s: %v", describe(o), err)
			}
		})
	}

	in.managerConfig = rest.CopyConfig(env.Config)
	in.managerConfig.Impersonate = rest.ImpersonationConfig{
		UserName: in.username,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + in.account.Namespace, "system:authenticated"},
	}
	var err error
	in.manager, err = client.New(in.managerConfig, client.Options{Scheme: operator.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	// The API server sees the requests as the manager's ServiceAccount.
	review := &authenticationv1.SelfSubjectReview{}
	g.Expect(in.manager.Create(ctx, review)).To(Succeed())
	g.Expect(review.Status.UserInfo.Username).To(Equal(in.username))
	return in
}

// managerOptions are the operator's options as the container's arguments
// set them.
func managerOptions(t *testing.T, c corev1.Container) operator.Options {
	t.Helper()
	opts := operator.DefaultOptions()
	flags := flag.NewFlagSet("manager", flag.ContinueOnError)
	opts.BindFlags(flags)
	(&zap.Options{}).BindFlags(flags)
	flags.String("kubeconfig", "", "")
	flags.SetOutput(io.Discard)
	if err := flags.Parse(c.Args); err != nil {
		t.Fatalf("the manager's args %q: %v", c.Args, err)
	}
	return opts
}

// writableNamespace is a namespace where the install's RBAC lets the
// manager create and patch Secrets, and where the refusals are tried: with
// cluster-wide rights, kube-system, the prize of a stolen token.
func (in *installation) writableNamespace() string {
	if len(in.watchNamespaces) > 0 {
		return in.watchNamespaces[0]
	}
	return "kube-system"
}

// refusedByPolicy matches the error of a request the install's admission
// policy refused, with a message holding because.
func (in *installation) refusedByPolicy(because string) OmegaMatcher {
	return And(
		WithTransform(apierrors.IsForbidden, BeTrue()),
		MatchError(ContainSubstring(fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request", in.policy, in.binding))),
		MatchError(ContainSubstring(because)),
	)
}

// refusedByRBAC matches the error of a request RBAC refused the manager.
func (in *installation) refusedByRBAC(verb string) OmegaMatcher {
	return And(
		WithTransform(apierrors.IsForbidden, BeTrue()),
		MatchError(ContainSubstring(fmt.Sprintf("User %q cannot %s resource \"secrets\"", in.username, verb))),
	)
}

// The policy's messages (config/policy/secret_writes_policy.yaml).
const (
	mayNotDelete       = "may not delete Secrets"
	onlyOpaque         = "may only write Secrets of type Opaque"
	onlyMarked         = "may only write Secrets labelled app.kubernetes.io/managed-by=uredis-backup-operator and annotated with a non-empty uredis.dezai.com/export-uid"
	onlyWhatItWrote    = "may only change Secrets it wrote"
	markedExportUID    = "0b8e3c1e-0000-4000-8000-00000000c0de"
	policyProbeMessage = onlyOpaque + ", not kubernetes.io/service-account-token"
)

// secret is a Secret as the tests write it: managed carries the operator's
// label and annotation.
func secret(namespace, name string, secretType corev1.SecretType, managed bool) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Type:       secretType,
		Data:       map[string][]byte{"backupPath": []byte("https://example.invalid/backup")},
	}
	if managed {
		s.Labels = map[string]string{uredisv1alpha1.LabelManagedBy: uredisv1alpha1.ManagedByValue}
		s.Annotations = map[string]string{uredisv1alpha1.AnnotationExportUID: markedExportUID}
	}
	return s
}

// tokenSecret asks for a token of the namespace's default ServiceAccount,
// carrying the marks of a managed Secret: only its type is wrong.
func tokenSecret(namespace, name string) *corev1.Secret {
	s := secret(namespace, name, corev1.SecretTypeServiceAccountToken, true)
	s.Annotations[corev1.ServiceAccountNameKey] = "default"
	s.Data = nil
	return s
}

// waitForPolicy waits until the API server enforces the install's policy
// (and RBAC) for the manager: a new ValidatingAdmissionPolicy takes a moment
// to be loaded.
func (in *installation) waitForPolicy(t *testing.T) {
	t.Helper()
	probe := tokenSecret(in.writableNamespace(), "lp-policy-probe")
	NewWithT(t).Eventually(func() error {
		return in.manager.Create(context.Background(), probe.DeepCopy(), client.DryRunAll)
	}).WithTimeout(policyWaitTimeout).WithPolling(200*time.Millisecond).
		Should(in.refusedByPolicy(policyProbeMessage), "the admission policy %s never refused the manager a token Secret", in.policy)
}

// TestLeastPrivilegeInstalls applies each install's RBAC and admission
// policy, then checks as the manager's ServiceAccount that Secret writes
// outside the operator's own Secrets are refused by the policy, and that
// the operator still turns a RedisBackupExport Ready and writes its link.
func TestLeastPrivilegeInstalls(t *testing.T) {
	for _, dir := range leastPrivilegeInstalls {
		t.Run(dir, func(t *testing.T) {
			in := install(t, dir)
			t.Run("the admission policy is in force", in.waitForPolicy)
			t.Run("the manager cannot write Secrets it does not manage", in.testRefusals)
			t.Run("the manager may write its own Secrets, dry run or not", in.testAllowedWrites)
			t.Run("the manager cannot delete Secrets", in.testDelete)
			t.Run("the manager may only restart workloads", in.testWorkloads)
			if len(in.watchNamespaces) > 0 {
				t.Run("RBAC confines the manager to the watched namespaces", in.testConfined)
			}
			t.Run("the operator works end to end under this identity", in.testEndToEnd)
		})
	}
}

// testRefusals tries what a stolen token would, each as a real request and
// as a server-side dry run, and checks that the policy refuses it while the
// same request passes for a cluster administrator (dry run), so that
// the request itself is valid and the refusal is about who sends it.
func (in *installation) testRefusals(t *testing.T) {
	ctx := context.Background()
	ns := in.writableNamespace()
	foreign := secret(ns, "lp-foreign", corev1.SecretTypeOpaque, false)
	managed := secret(ns, "lp-managed", corev1.SecretTypeOpaque, true)
	for _, s := range []*corev1.Secret{foreign, managed} {
		NewWithT(t).Expect(env.Client.Create(ctx, s.DeepCopy())).To(Succeed())
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), s) })
	}
	refusedNames := []string{"lp-token", "lp-unmarked", "lp-label-only", "lp-empty-uid"}
	// Should the policy let them through after all, they go again.
	t.Cleanup(func() {
		for _, name := range refusedNames {
			_ = env.Client.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
		}
	})
	// Each request is sent as is, or as a server-side dry run.
	mergePatch := func(target *corev1.Secret, patch string) func(client.Client, bool) error {
		return func(c client.Client, dry bool) error {
			var opts []client.PatchOption
			if dry {
				opts = append(opts, client.DryRunAll)
			}
			return c.Patch(ctx, target.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(patch)), opts...)
		}
	}
	create := func(s *corev1.Secret) func(client.Client, bool) error {
		return func(c client.Client, dry bool) error {
			var opts []client.CreateOption
			if dry {
				opts = append(opts, client.DryRunAll)
			}
			return c.Create(ctx, s.DeepCopy(), opts...)
		}
	}
	emptyUID := secret(ns, "lp-empty-uid", corev1.SecretTypeOpaque, true)
	emptyUID.Annotations[uredisv1alpha1.AnnotationExportUID] = ""
	labelOnly := secret(ns, "lp-label-only", corev1.SecretTypeOpaque, true)
	labelOnly.Annotations = nil

	attempts := []struct {
		name    string
		request func(c client.Client, dryRun bool) error
		because string
	}{
		{"create a service account token Secret", create(tokenSecret(ns, "lp-token")), policyProbeMessage},
		{"create an Opaque Secret without the operator's label and annotation", create(secret(ns, "lp-unmarked", corev1.SecretTypeOpaque, false)), onlyMarked},
		{"create an Opaque Secret with the label but no export-uid annotation", create(labelOnly), onlyMarked},
		{"create an Opaque Secret with an empty export-uid annotation", create(emptyUID), onlyMarked},
		{"patch the data of a foreign Secret", mergePatch(foreign, `{"data":{"backupPath":"aGlqYWNrZWQ="}}`), onlyWhatItWrote},
		{"take a foreign Secret over by adding the label and annotation", mergePatch(foreign, fmt.Sprintf(
			`{"metadata":{"labels":{%q:%q},"annotations":{%q:%q}},"data":{"backupPath":"aGlqYWNrZWQ="}}`,
			uredisv1alpha1.LabelManagedBy, uredisv1alpha1.ManagedByValue, uredisv1alpha1.AnnotationExportUID, markedExportUID)), onlyWhatItWrote},
		{"remove the label from a managed Secret", mergePatch(managed, fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, uredisv1alpha1.LabelManagedBy)), onlyMarked},
		{"empty the export-uid annotation of a managed Secret", mergePatch(managed, fmt.Sprintf(`{"metadata":{"annotations":{%q:""}}}`, uredisv1alpha1.AnnotationExportUID)), onlyMarked},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(a.request(in.manager, false)).To(in.refusedByPolicy(a.because), "as the manager")
			g.Expect(a.request(in.manager, true)).To(in.refusedByPolicy(a.because), "as the manager, server-side dry run")
			g.Expect(a.request(env.Client, true)).To(Succeed(), "as a cluster administrator, server-side dry run")
		})
	}
	// Nothing the refused requests asked for happened.
	g := NewWithT(t)
	got := &corev1.Secret{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(foreign), got)).To(Succeed())
	g.Expect(got.Labels).NotTo(HaveKey(uredisv1alpha1.LabelManagedBy))
	g.Expect(got.Data).To(Equal(foreign.Data))
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(managed), got)).To(Succeed())
	g.Expect(got.Labels).To(Equal(managed.Labels))
	g.Expect(got.Annotations).To(Equal(managed.Annotations))
	for _, name := range refusedNames {
		err := env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &corev1.Secret{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Secret %s/%s exists: %v", ns, name, err)
	}
}

// testAllowedWrites checks that the policy lets through every write of the
// shape the operator sends: a create of a managed Secret and patches of it
// (merge patches, and JSON patches with a resourceVersion precondition),
// each also as a server-side dry run.
func (in *installation) testAllowedWrites(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := in.writableNamespace()
	created := secret(ns, "lp-created", corev1.SecretTypeOpaque, true)
	g.Expect(in.manager.Create(ctx, created.DeepCopy(), client.DryRunAll)).To(Succeed(), "dry-run create")
	g.Expect(in.manager.Create(ctx, created)).To(Succeed(), "create")
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), created) })

	merge := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"uredis.dezai.com/data-hash":"0"}},"data":{"backupPath":"aHR0cHM6Ly9leGFtcGxlLmludmFsaWQvbmV3"}}`))
	g.Expect(in.manager.Patch(ctx, created.DeepCopy(), merge, client.DryRunAll)).To(Succeed(), "dry-run merge patch")
	g.Expect(in.manager.Patch(ctx, created, merge)).To(Succeed(), "merge patch")

	jsonPatch := func() client.Patch {
		return client.RawPatch(types.JSONPatchType, fmt.Appendf(nil,
			`[{"op":"test","path":"/metadata/resourceVersion","value":%q},{"op":"replace","path":"/data/backupPath","value":%q}]`,
			created.ResourceVersion, base64.StdEncoding.EncodeToString([]byte("https://example.invalid/newer"))))
	}
	g.Expect(in.manager.Patch(ctx, created.DeepCopy(), jsonPatch(), client.DryRunAll)).To(Succeed(), "dry-run JSON patch")
	g.Expect(in.manager.Patch(ctx, created, jsonPatch())).To(Succeed(), "JSON patch")
	g.Expect(string(created.Data["backupPath"])).To(Equal("https://example.invalid/newer"))
}

// testDelete: RBAC as shipped does not let the manager delete Secrets, and
// should some other role let it, the policy still refuses.
func (in *installation) testDelete(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := in.writableNamespace()
	victim := secret(ns, "lp-victim", corev1.SecretTypeOpaque, true)
	g.Expect(env.Client.Create(ctx, victim)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), victim) })

	g.Expect(in.manager.Delete(ctx, victim.DeepCopy())).To(in.refusedByRBAC("delete"), "RBAC as the install ships it")

	// A role that grants delete on Secrets, bound to the manager.
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lp-delete-secrets"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"delete"}}},
	}
	roleBinding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lp-delete-secrets"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: in.account.Namespace, Name: in.account.Name}},
	}
	for _, o := range []client.Object{role, roleBinding} {
		g.Expect(env.Client.Create(ctx, o)).To(Succeed())
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
	// RBAC takes a moment too; dry runs, so that nothing is deleted if the
	// policy fails to refuse.
	g.Eventually(func() error { return in.manager.Delete(ctx, victim.DeepCopy(), client.DryRunAll) }).
		WithTimeout(policyWaitTimeout).WithPolling(200 * time.Millisecond).Should(in.refusedByPolicy(mayNotDelete))
	g.Expect(in.manager.Delete(ctx, victim.DeepCopy())).To(in.refusedByPolicy(mayNotDelete))
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(victim), &corev1.Secret{})).To(Succeed(), "the Secret is still there")
}

// testConfined: outside the watched namespaces, the namespaced install
// grants the manager nothing on Secrets.
func (in *installation) testConfined(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	g.Expect(in.manager.Create(ctx, tokenSecret("kube-system", "lp-token"), client.DryRunAll)).To(in.refusedByRBAC("create"))
	g.Expect(in.manager.Create(ctx, secret("kube-system", "lp-created", corev1.SecretTypeOpaque, true), client.DryRunAll)).To(in.refusedByRBAC("create"))
	g.Expect(in.manager.Get(ctx, types.NamespacedName{Namespace: "kube-system", Name: "any"}, &corev1.Secret{})).To(in.refusedByRBAC("get"))
	g.Expect(in.manager.List(ctx, &corev1.SecretList{})).To(in.refusedByRBAC("list"), "cluster-wide")
	g.Expect(in.manager.List(ctx, &corev1.SecretList{}, client.InNamespace(in.watchNamespaces[0]))).To(Succeed(), "in a watched namespace")
}

// Backups the simulator knows, and its account.
const (
	lpPublicKey  = "least-privilege-public-key"
	lpPrivateKey = "least-privilege-private-key"
	lpBackupID   = "5d0c4b1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"
	lpOtherID    = "6e1d5c2b-3c4d-5e6f-9a01-b2c3d4e5f6a7"
	lpRegion     = "cn-bj2"
	lpZone       = "cn-bj2-04"
)

// testEndToEnd runs the operator in-process as the manager's ServiceAccount,
// with the options the install's Deployment passes (leader election and
// --watch-namespaces included), against the simulator: a RedisBackupExport
// turns Ready with its link in the target Secret (a create), a scraper with
// the install's metrics-reader role gets its series from the secure metrics
// endpoint, and a changed spec gets a new link into the same Secret (a
// patch).
func (in *installation) testEndToEnd(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := "least-privilege-e2e"
	if len(in.watchNamespaces) > 0 {
		ns = in.watchNamespaces[0]
	}
	createNamespace(t, ns, nil)

	sim, err := simulator.Start(simulator.Config{
		Accounts: []simulator.Account{{PublicKey: lpPublicKey, PrivateKey: lpPrivateKey}},
		Backups: []simulator.Backup{
			{ID: lpBackupID, Region: lpRegion, Zone: lpZone, Content: []byte("backup one")},
			{ID: lpOtherID, Region: lpRegion, Zone: lpZone, Content: []byte("backup two")},
		},
		LinkLifetime: time.Hour,
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(sim.Close)

	opts := managerOptions(t, managerContainer(t, in.deployment))
	g.Expect(opts.LeaderElection).To(BeTrue(), "the Deployment elects a leader")
	// What the pod would get from its namespace, and the test's endpoints.
	opts.OperatorNamespace = in.account.Namespace
	opts.LeaderElectionNamespace = in.account.Namespace
	opts.APIEndpoint, opts.AllowHTTPEndpoint = sim.URL(), true
	// The metrics as the Deployment serves them, on loopback: each scrape
	// is reviewed by the API server at the request of the manager's
	// ServiceAccount.
	g.Expect(opts.MetricsSecure).To(BeTrue(), "the Deployment serves the metrics securely")
	metricsAddr := freeLoopbackAddress(t)
	opts.MetricsBindAddress, opts.HealthProbeBindAddress = metricsAddr, "0"
	opts.InProcessTestManagers = true

	// The Lease outlives the manager (it does not release it on stop): the
	// next install's manager would wait for it to expire.
	t.Cleanup(func() {
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: in.account.Namespace, Name: operator.LeaderElectionID}}
		if err := env.Client.Delete(context.Background(), lease); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting the leader election Lease: %v", err)
		}
	})
	mgr, err := operator.NewManager(in.managerConfig, opts)
	g.Expect(err).NotTo(HaveOccurred())
	testenv.StartManager(t, ctx, mgr)

	credentials := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lp-cloud-credentials"},
		StringData: map[string]string{"publicKey": lpPublicKey, "privateKey": lpPrivateKey},
	}
	g.Expect(env.Client.Create(ctx, credentials)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), credentials) })
	// A workload to restart when the backup changes.
	restored := lpWorkloads(ns, "lp-restore")[0].(*appsv1.Deployment)
	g.Expect(env.Client.Create(ctx, restored)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), restored) })
	export := &uredisv1alpha1.RedisBackupExport{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lp-nightly"},
		Spec: uredisv1alpha1.RedisBackupExportSpec{
			BackupSelection: uredisv1alpha1.BackupSelection{BackupID: lpBackupID, Region: lpRegion, Zone: lpZone},
			CredentialsRef:  &uredisv1alpha1.CredentialsReference{Name: credentials.Name},
			RolloutRestartTargets: []uredisv1alpha1.RolloutRestartTarget{
				{Kind: uredisv1alpha1.RolloutRestartDeployment, Name: restored.Name},
			},
		},
	}
	g.Expect(env.Client.Create(ctx, export)).To(Succeed())
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), export) })

	// holdsLink checks that the export is Ready and its Secret holds the
	// link to backupID.
	holdsLink := func(g Gomega, backupID string) {
		current := &uredisv1alpha1.RedisBackupExport{}
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(export), current)).To(Succeed())
		ready := meta.FindStatusCondition(current.Status.Conditions, uredisv1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil(), "no Ready condition yet")
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "Ready: %s: %s", ready.Reason, ready.Message)
		g.Expect(current.Status.BackupID).To(Equal(backupID))
		target := &corev1.Secret{}
		g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: current.TargetSecretName()}, target)).To(Succeed())
		g.Expect(target.Type).To(Equal(corev1.SecretTypeOpaque))
		g.Expect(target.Labels).To(HaveKeyWithValue(uredisv1alpha1.LabelManagedBy, uredisv1alpha1.ManagedByValue))
		g.Expect(target.Annotations).To(HaveKeyWithValue(uredisv1alpha1.AnnotationExportUID, string(current.UID)))
		g.Expect(string(target.Data[uredisv1alpha1.KeyBackupID])).To(Equal(backupID))
		g.Expect(string(target.Data[uredisv1alpha1.KeyBackupPath])).To(And(HavePrefix(sim.URL()+"download/"+backupID+"?"), Equal(current.Status.BackupPath)))
	}
	g.Eventually(func(g Gomega) { holdsLink(g, lpBackupID) }).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "the first link")

	in.scrapeAsMetricsReader(t, ns, metricsAddr, fmt.Sprintf(`uredis_backup_export_ready_status{condition="True",name=%q,namespace=%q} 1`, export.Name, ns))

	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current := &uredisv1alpha1.RedisBackupExport{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(export), current); err != nil {
			return err
		}
		current.Spec.BackupID = lpOtherID
		return env.Client.Update(ctx, current)
	})).To(Succeed())
	g.Eventually(func(g Gomega) { holdsLink(g, lpOtherID) }).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "the link after the spec changed")
	// The new backup restarted the Deployment, under this identity and the
	// admission policy.
	g.Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(restored), restored)).To(Succeed())
		g.Expect(restored.Spec.Template.Annotations).To(HaveKey(uredisv1alpha1.AnnotationRestartedFor))
		g.Expect(restored.Generation).To(Equal(int64(2)))
	}).WithTimeout(10*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "the restart after the backup changed")
	g.Expect(eventsWithReason(ctx, ns, uredisv1alpha1.EventRolloutRestartFailed)).To(BeEmpty())
}

// eventsWithReason are the notes of the Events of reason in ns.
func eventsWithReason(ctx context.Context, ns, reason string) []string {
	var list eventsv1.EventList
	if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return []string{err.Error()}
	}
	var notes []string
	for _, e := range list.Items {
		if e.Reason == reason {
			notes = append(notes, e.Note)
		}
	}
	return notes
}

// scrapeAsMetricsReader binds the install's metrics-reader ClusterRole to a
// new ServiceAccount in ns and scrapes the manager's metrics at addr with a
// token of it, until the answer is 200 and holds series. The manager lets
// it through only once the API server has authenticated the token
// (TokenReview) and authorized the account (SubjectAccessReview), both
// asked as the manager's ServiceAccount: without metrics-auth-role the
// answer stays 500.
func (in *installation) scrapeAsMetricsReader(t *testing.T, ns, addr, series string) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	var reader string
	for _, o := range ofKind(in.objects, "ClusterRole") {
		if strings.HasSuffix(o.GetName(), "metrics-reader") {
			reader = o.GetName()
		}
	}
	g.Expect(reader).NotTo(BeEmpty(), "%s has no metrics-reader ClusterRole", in.dir)

	const scraper = "lp-metrics-scraper"
	token, err := testenv.ServiceAccountToken(ctx, env.Client, ns, scraper)
	g.Expect(err).NotTo(HaveOccurred())
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: reader + "-" + scraper},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: scraper}},
	}
	g.Expect(env.Client.Create(ctx, binding)).To(Succeed())
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), binding)
		_ = env.Client.Delete(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: scraper}})
	})

	// The certificate is the one made at startup, which the shipped
	// ServiceMonitor does not verify either.
	scrapeClient := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}, // loopback, the certificate made at startup
	}
	var status int
	var body string
	g.Eventually(func(g Gomega) {
		req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
		g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := scrapeClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		g.Expect(err).NotTo(HaveOccurred())
		status, body = resp.StatusCode, string(raw)
		g.Expect(status).To(Equal(http.StatusOK), "%s", body)
		g.Expect(body).To(ContainSubstring(series))
	}).WithTimeout(30*time.Second).WithPolling(500*time.Millisecond).Should(Succeed(),
		"a scrape with %s's token, bound to %s: last answer %d", scraper, reader, status)
}

// freeLoopbackAddress finds a port nobody listens on, for the manager's
// metrics.
func freeLoopbackAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestInstallsCarryTheAdmissionPolicy checks, in the rendered installs, that
// the admission policy is there, refuses (Deny, failing closed), covers
// every Secret write, and applies to the very ServiceAccount the Deployment
// runs as. TestLeastPrivilegeInstalls proves on the API server that it
// works; this names what is wrong when it does not.
func TestInstallsCarryTheAdmissionPolicy(t *testing.T) {
	for _, dir := range leastPrivilegeInstalls {
		t.Run(dir, func(t *testing.T) {
			g := NewWithT(t)
			objects := build(t, dir)
			policy := typed[admissionregistrationv1.ValidatingAdmissionPolicy](t, single(t, objects, "ValidatingAdmissionPolicy"))
			binding := typed[admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, single(t, objects, "ValidatingAdmissionPolicyBinding"))
			g.Expect(binding.Spec.PolicyName).To(Equal(policy.Name))
			g.Expect(binding.Spec.ValidationActions).To(Equal([]admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}))
			g.Expect(binding.Spec.ParamRef).To(BeNil())
			g.Expect(binding.Spec.MatchResources).To(BeNil(), "the binding must cover every namespace")
			g.Expect(policy.Spec.FailurePolicy).To(HaveValue(Equal(admissionregistrationv1.Fail)))

			g.Expect(policy.Spec.MatchConstraints).NotTo(BeNil())
			g.Expect(policy.Spec.MatchConstraints.ResourceRules).To(ContainElement(And(
				HaveField("APIGroups", ContainElement("")),
				HaveField("Resources", ContainElement("secrets")),
				HaveField("Operations", ContainElements(
					admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete)),
			)))

			d := typed[appsv1.Deployment](t, single(t, objects, "Deployment"))
			account := d.Spec.Template.Spec.ServiceAccountName
			var expressions []string
			for _, c := range policy.Spec.MatchConditions {
				expressions = append(expressions, c.Expression)
			}
			g.Expect(expressions).To(ConsistOf(
				"request.userInfo.username.startsWith('system:serviceaccount:')",
				fmt.Sprintf("request.userInfo.username.endsWith(':' + '%s')", account),
			), "the policy must apply to the ServiceAccount %s the Deployment runs as", account)
		})
	}
}

// TestNamespacedInstallWiring checks config/namespaced: the manager's rights
// on Secrets and its resources come only from RoleBindings, in exactly the
// namespaces --watch-namespaces lists; its one cluster-wide binding grants
// nothing but creating TokenReviews and SubjectAccessReviews (metrics).
func TestNamespacedInstallWiring(t *testing.T) {
	g := NewWithT(t)
	objects := build(t, "config/namespaced")
	d := typed[appsv1.Deployment](t, single(t, objects, "Deployment"))
	account := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: d.Namespace, Name: d.Spec.Template.Spec.ServiceAccountName}
	watched := managerOptions(t, managerContainer(t, d)).WatchNamespaces
	g.Expect(watched).NotTo(BeEmpty(), "config/namespaced must set --watch-namespaces")

	managerRole := ""
	for _, o := range ofKind(objects, "ClusterRole") {
		if strings.HasSuffix(o.GetName(), "manager-role") {
			managerRole = o.GetName()
		}
	}
	g.Expect(managerRole).NotTo(BeEmpty(), "no manager-role ClusterRole")

	clusterRoles := map[string]*rbacv1.ClusterRole{}
	for _, o := range ofKind(objects, "ClusterRole") {
		clusterRoles[o.GetName()] = typed[rbacv1.ClusterRole](t, o)
	}

	var bound []string
	var metricsAuth int
	for _, b := range bindings(t, objects) {
		if !slices.ContainsFunc(b.subjects, func(s rbacv1.Subject) bool { return s == account }) {
			continue
		}
		if b.namespace == "" {
			// The one cluster-wide binding: TokenReviews and
			// SubjectAccessReviews, cluster-scoped, for the metrics
			// endpoint's authentication and authorization.
			g.Expect(b.roleRef.Kind).To(Equal("ClusterRole"))
			g.Expect(b.roleRef.Name).To(HaveSuffix("metrics-auth-role"), "%s grants the manager cluster-wide rights", b.name)
			role := clusterRoles[b.roleRef.Name]
			g.Expect(role).NotTo(BeNil(), "%s binds a missing ClusterRole %s", b.name, b.roleRef.Name)
			if role != nil {
				expectExactly(g, role.Rules, metricsAuthRules, "the cluster-wide "+b.roleRef.Name)
			}
			metricsAuth++
			continue
		}
		switch {
		case b.roleRef.Kind == "ClusterRole" && b.roleRef.Name == managerRole:
			bound = append(bound, b.namespace)
		case b.roleRef.Kind == "Role" && strings.HasSuffix(b.roleRef.Name, "leader-election-role"):
			g.Expect(b.namespace).To(Equal(d.Namespace), "the leader election Role is bound outside the operator's namespace")
		default:
			t.Errorf("%s binds %s %s to the manager", b.name, b.roleRef.Kind, b.roleRef.Name)
		}
	}
	g.Expect(bound).To(ConsistOf(watched), "the namespaces with a RoleBinding of %s and --watch-namespaces differ", managerRole)
	g.Expect(metricsAuth).To(Equal(1), "the manager needs metrics-auth-role, bound once, to guard its metrics")
}

// TestEgressNetworkPolicy checks the egress example: it selects the
// manager's pods in the operator's namespace, limits egress only, and every
// rule names its peers and ports. It is not part of config/default.
func TestEgressNetworkPolicy(t *testing.T) {
	g := NewWithT(t)
	const dir = "config/network-policy"
	g.Expect(kustomizations(t)).To(ContainElement(dir))
	g.Expect(ofKind(build(t, "config/default"), "NetworkPolicy")).To(BeEmpty(), "the example's placeholder addresses would cut the manager off")

	policy := typed[networkingv1.NetworkPolicy](t, single(t, build(t, dir), "NetworkPolicy"))
	d := managerDeployment(t)
	g.Expect(policy.Namespace).To(Equal(d.Namespace))
	g.Expect(policy.Spec.PodSelector.MatchExpressions).To(BeEmpty())
	g.Expect(policy.Spec.PodSelector.MatchLabels).NotTo(BeEmpty())
	for key, value := range policy.Spec.PodSelector.MatchLabels {
		g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue(key, value), "the NetworkPolicy does not select the manager's pods")
	}
	g.Expect(policy.Spec.PolicyTypes).To(Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeEgress}))
	g.Expect(policy.Spec.Egress).To(HaveLen(3), "DNS, the API server and the cloud API")
	var dns bool
	for i, rule := range policy.Spec.Egress {
		g.Expect(rule.To).NotTo(BeEmpty(), "egress rule %d allows every destination", i)
		g.Expect(rule.Ports).NotTo(BeEmpty(), "egress rule %d allows every port", i)
		for _, peer := range rule.To {
			if peer.IPBlock != nil {
				g.Expect(peer.IPBlock.CIDR).NotTo(BeElementOf("0.0.0.0/0", "::/0"), "egress rule %d allows every address", i)
			}
		}
		for _, port := range rule.Ports {
			if port.Port != nil && port.Port.IntValue() == 53 {
				dns = true
			}
		}
	}
	g.Expect(dns).To(BeTrue(), "no egress rule for DNS")
}
