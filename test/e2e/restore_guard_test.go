package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

const restoreRBAC = "../../config/samples/restore/rbac.yaml"

// restoreGuard is the sample restore Job's access to the API server in
// namespace ns: its ServiceAccount, Role and RoleBinding from rbac.yaml,
// and a token of that ServiceAccount.
type restoreGuard struct {
	// env is what the Job's download step has: its token, the cluster's
	// CA and its namespace where a pod has them, the API server, and the
	// names the Job sets.
	env   map[string]string
	token string
}

// newRestoreGuard applies the sample's rbac.yaml in ns and asks the API
// server for a token of its ServiceAccount, as the Job's projected volume
// does.
func newRestoreGuard(ctx context.Context, t *testing.T, g Gomega, ns string) restoreGuard {
	t.Helper()
	raw, err := os.ReadFile(restoreRBAC)
	g.Expect(err).NotTo(HaveOccurred())
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		o := &unstructured.Unstructured{}
		g.Expect(yaml.Unmarshal(doc, &o.Object)).To(Succeed())
		o.SetNamespace(ns)
		g.Expect(env.Client.Create(ctx, o)).To(Succeed(), "creating %s %s from rbac.yaml", o.GetKind(), o.GetName())
	}
	clientset, err := kubernetes.NewForConfig(env.Config)
	g.Expect(err).NotTo(HaveOccurred())
	expiration := int64(600)
	request, err := clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "redis-restore",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiration}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	dir := t.TempDir()
	for name, content := range map[string][]byte{"token": []byte(request.Status.Token), "ca.crt": env.Config.CAData, "namespace": []byte(ns)} {
		g.Expect(os.WriteFile(filepath.Join(dir, name), content, 0o600)).To(Succeed())
	}
	return restoreGuard{
		token: request.Status.Token,
		env: map[string]string{
			"SERVICE_ACCOUNT_DIR": dir,
			"KUBERNETES_API":      env.Config.Host,
			"EXPORT_NAME":         "nightly",
			"LINK_SECRET":         linkSecret,
		},
	}
}

// with returns the guard's environment plus more.
func (r restoreGuard) with(more map[string]string) map[string]string {
	all := map[string]string{}
	for _, m := range []map[string]string{r.env, more} {
		for k, v := range m {
			all[k] = v
		}
	}
	return all
}

// expectLeastPrivilege checks, with the guard's token against the real
// API server's RBAC, that the Role allows get and patch on the export and
// get on its Secret, and nothing else: no other export or Secret, no list.
func (r restoreGuard) expectLeastPrivilege(ctx context.Context, g Gomega, ns string) {
	cfg := rest.AnonymousClientConfig(env.Config)
	cfg.BearerToken = r.token
	c, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	export := &uredisv1alpha1.RedisBackupExport{}
	g.Expect(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "nightly"}, export)).To(Succeed())
	g.Expect(c.Patch(ctx, export, client.RawPatch(types.MergePatchType, []byte(`{}`)))).To(Succeed())
	secret := &unstructured.Unstructured{}
	secret.SetAPIVersion("v1")
	secret.SetKind("Secret")
	g.Expect(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: linkSecret}, secret)).To(Succeed())

	forbidden := func(err error, what string) {
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%s must be forbidden, got %v", what, err)
	}
	forbidden(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "another"}, &uredisv1alpha1.RedisBackupExport{}), "get on another export")
	forbidden(c.List(ctx, &uredisv1alpha1.RedisBackupExportList{}, client.InNamespace(ns)), "list exports")
	forbidden(c.Delete(ctx, export), "delete the export")
	forbidden(c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "cloud-credentials"}, secret.DeepCopy()), "get the credentials Secret")
	forbidden(c.Patch(ctx, secret.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{}`))), "patch the link Secret")
}

// successfulCalls counts DescribeURedisBackupURL calls answered with RetCode 0.
func successfulCalls(sim *simulator.Server) int {
	n := 0
	for _, call := range sim.Calls() {
		if call.Action == "DescribeURedisBackupURL" && call.RetCode == 0 {
			n++
		}
	}
	return n
}
