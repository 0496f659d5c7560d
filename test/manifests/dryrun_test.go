package manifests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// currentNamespace plays the part of kubectl's current namespace: namespaced
// objects that a kustomization leaves without a namespace (config/samples)
// go there, as with `kubectl apply -k <dir> -n <namespace>`.
const currentNamespace = "manifest-test-current"

// TestServerSideDryRun applies every object of every kustomization to the
// API server with server-side apply in dry-run mode: the server validates
// each one against its schema (and the CRD's validation rules) and runs the
// admission chain, without persisting anything.
func TestServerSideDryRun(t *testing.T) {
	dirs := kustomizations(t)
	built := make(map[string][]*unstructured.Unstructured, len(dirs))
	for _, dir := range dirs {
		built[dir] = build(t, dir)
	}
	// A dry-run Namespace is not persisted, and the objects meant to go
	// into it would be rejected without it: create those for real.
	for _, dir := range dirs {
		ensureNamespaces(t, built[dir])
	}
	createNamespace(t, currentNamespace, nil)

	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			for _, o := range built[dir] {
				t.Run(o.GetKind()+" "+o.GetName(), func(t *testing.T) { dryRunApply(t, o) })
			}
		})
	}
}

// TestPrometheusComponentWhenEnabled enables config/prometheus the way
// config/default/kustomization.yaml documents (uncommenting ../prometheus),
// in a copy of config/, and checks that the ServiceMonitor then lands next
// to the metrics Service, selects it, names one of its ports and scrapes it
// over HTTPS with a bearer token.
func TestPrometheusComponentWhenEnabled(t *testing.T) {
	g := NewWithT(t)
	objects := buildDefaultWith(t, "../prometheus")
	monitor := single(t, objects, "ServiceMonitor")
	service := single(t, objects, "Service")
	g.Expect(monitor.GetNamespace()).To(Equal(service.GetNamespace()), "the ServiceMonitor must be in the Service's namespace")

	selector, _, _ := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
	g.Expect(selector).NotTo(BeEmpty())
	for key, value := range selector {
		g.Expect(service.GetLabels()).To(HaveKeyWithValue(key, value), "the ServiceMonitor's selector does not select the metrics Service")
	}
	endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
	g.Expect(endpoints).NotTo(BeEmpty())
	var portNames []string
	for _, port := range typed[corev1.Service](t, service).Spec.Ports {
		portNames = append(portNames, port.Name)
	}
	for _, endpoint := range endpoints {
		endpoint := endpoint.(map[string]any)
		g.Expect(portNames).To(ContainElement(endpoint["port"]), "the ServiceMonitor scrapes a port the Service does not have")
		// The manager serves HTTPS to authenticated, authorized clients
		// only: the scrape must speak TLS and carry a token.
		g.Expect(endpoint).To(HaveKeyWithValue("scheme", "https"))
		g.Expect(endpoint).To(HaveKeyWithValue("bearerTokenFile", "/var/run/secrets/kubernetes.io/serviceaccount/token"))
		g.Expect(endpoint).To(HaveKey("tlsConfig"))
	}

	ensureNamespaces(t, objects)
	for _, o := range objects {
		dryRunApply(t, o)
	}
}

// TestManagerPodMeetsRestrictedPodSecurity creates (dry-run) a Pod from the
// manager Deployment's pod template in a namespace enforcing the restricted
// Pod Security Standard: the API server's PodSecurity admission rejects
// any pod that does not comply.
func TestManagerPodMeetsRestrictedPodSecurity(t *testing.T) {
	const namespace = "manifest-test-restricted"
	createNamespace(t, namespace, map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	})
	expectRestrictedPodSecurity(t, namespace, managerDeployment(t).Spec.Template)
}

// expectRestrictedPodSecurity creates (dry-run) a Pod from template in
// namespace, which must enforce the restricted Pod Security Standard, and
// expects it admitted; and, as the control, the same pod without its
// security contexts rejected.
func expectRestrictedPodSecurity(t *testing.T, namespace string, template corev1.PodTemplateSpec) {
	t.Helper()
	podFromTemplate := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "manager", Namespace: namespace, Labels: template.Labels, Annotations: template.Annotations},
			Spec:       *template.Spec.DeepCopy(),
		}
	}

	t.Run("the manager pod is admitted", func(t *testing.T) {
		NewWithT(t).Expect(env.Client.Create(context.Background(), podFromTemplate(), client.DryRunAll, client.FieldOwner(fieldOwner))).
			To(Succeed(), "the manager's pod template violates the restricted Pod Security Standard")
	})

	// The control: without its security contexts the same pod is rejected,
	// so the admission above really was enforced.
	t.Run("the pod without its security contexts is rejected", func(t *testing.T) {
		pod := podFromTemplate()
		pod.Spec.SecurityContext = nil
		for i := range pod.Spec.Containers {
			pod.Spec.Containers[i].SecurityContext = nil
		}
		err := env.Client.Create(context.Background(), pod, client.DryRunAll, client.FieldOwner(fieldOwner))
		NewWithT(t).Expect(err).To(MatchError(ContainSubstring("violates PodSecurity")))
	})
}

// dryRunApply server-side applies o in dry-run mode, in currentNamespace
// when it is namespaced and has no namespace of its own.
func dryRunApply(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	g := NewWithT(t)
	o = o.DeepCopy()
	if o.GetNamespace() == "" {
		namespaced, err := env.Client.IsObjectNamespaced(o)
		g.Expect(err).NotTo(HaveOccurred(), "the API server does not know %s (%s)", describe(o), o.GetAPIVersion())
		if namespaced {
			o.SetNamespace(currentNamespace)
		}
	}
	err := env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(fieldOwner), client.DryRunAll)
	g.Expect(err).NotTo(HaveOccurred(), "server-side dry-run of %s", describe(o))
}

// ensureNamespaces creates (for real, with server-side apply) the Namespaces
// among objects, then any other namespace the objects name: those an install
// expects to exist without creating them (config/namespaced binds roles in
// the namespaces the operator watches, config/argocd patches Argo CD's).
func ensureNamespaces(t *testing.T, objects []*unstructured.Unstructured) {
	t.Helper()
	for _, ns := range ofKind(objects, "Namespace") {
		NewWithT(t).Expect(env.Client.Apply(context.Background(), client.ApplyConfigurationFromUnstructured(ns.DeepCopy()), client.FieldOwner(fieldOwner))).
			To(Succeed(), "creating %s", describe(ns))
	}
	for _, o := range objects {
		if ns := o.GetNamespace(); ns != "" {
			createNamespace(t, ns, nil)
		}
	}
}

// buildDefaultWith builds config/default with the optional resources its
// kustomization.yaml offers as commented lines (such as "../prometheus")
// enabled, the way it tells users to: in a copy of config/.
func buildDefaultWith(t *testing.T, components ...string) []*unstructured.Unstructured {
	t.Helper()
	g := NewWithT(t)
	dir := t.TempDir()
	g.Expect(os.CopyFS(dir, os.DirFS(filepath.Join(repoRoot, "config")))).To(Succeed())
	kustomization := filepath.Join(dir, "default", "kustomization.yaml")
	content, err := os.ReadFile(kustomization)
	g.Expect(err).NotTo(HaveOccurred())
	enabled := string(content)
	for _, component := range components {
		commented := "# - " + component
		g.Expect(enabled).To(ContainSubstring(commented),
			"config/default/kustomization.yaml no longer offers %s as a commented resource; update this test", component)
		enabled = strings.Replace(enabled, commented, "- "+component, 1)
	}
	g.Expect(os.WriteFile(kustomization, []byte(enabled), 0o644)).To(Succeed())
	return buildAt(t, filepath.Join(dir, "default"))
}

// createNamespace creates a namespace with the given labels (if it does not
// exist yet).
func createNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := env.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}
