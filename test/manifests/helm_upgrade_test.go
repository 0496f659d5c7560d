package manifests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// upgradeProbeField is the property the upgrade test adds to the CRD's
// spec schema, in a copy of the chart.
const upgradeProbeField = "helmUpgradeProbe"

// TestChartInstallUpgradeUninstall installs the chart with the helm CLI on a
// control plane of its own (the shared one has the CRD already, installed
// without Helm), upgrades it with a copy of the chart whose CRD gains a
// field, and checks that the API server's CRD has it and keeps a value in
// it; then uninstalls it and checks that the CRD, and a RedisBackupExport
// created in between, are still there (crds.keep, the default), while the
// rest of the release is gone. Installed again with crds.keep=false, an
// uninstall deletes the CRD and the resource.
func TestChartInstallUpgradeUninstall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	controlPlane := &envtest.Environment{}
	cfg, err := controlPlane.Start()
	if err != nil {
		_ = controlPlane.Stop()
		t.Fatalf("starting a control plane for helm: %v", err)
	}
	t.Cleanup(func() {
		if err := controlPlane.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(os.WriteFile(kubeconfig, controlPlane.KubeConfig, 0o600)).To(Succeed())
	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	helmOK := func(args ...string) {
		t.Helper()
		stdout, stderr, err := runHelm(t, kubeconfig, args...)
		if err != nil {
			t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
		}
	}
	const release, namespace = "ubo", "uredis-backup-operator-system"
	crdName := "redisbackupexports.uredis.dezai.com"
	getCRD := func() (*apiextensionsv1.CustomResourceDefinition, error) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		return crd, c.Get(ctx, types.NamespacedName{Name: crdName}, crd)
	}
	deployment := types.NamespacedName{Namespace: namespace, Name: chartPrefix + "controller-manager"}

	// The chart as it is, kubeVersion included: hack/build-control-plane.sh
	// stamps the release into kube-apiserver as release builds are.
	requireKubeVersion(t, cfg)
	chart := chartCopy(t)

	t.Log("helm install")
	helmOK("install", release, chart, "--namespace", namespace, "--create-namespace")
	crd, err := getCRD()
	g.Expect(err).NotTo(HaveOccurred(), "helm install did not create the CRD")
	g.Expect(crd.Annotations).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
	g.Expect(c.Get(ctx, deployment, &appsv1.Deployment{})).To(Succeed())
	g.Expect(specProperties(crd)).NotTo(HaveKey(upgradeProbeField))
	waitEstablished(t, getCRD)

	// A resource made between install and upgrade, from the sample.
	export := readObjects(t, "config/samples/uredis_v1alpha1_redisbackupexport.yaml")[0]
	export.SetNamespace(namespace)
	g.Expect(c.Create(ctx, export)).To(Succeed())
	exportKey := client.ObjectKeyFromObject(export)

	t.Log("helm upgrade, with a CRD that gained a field")
	upgraded := chartCopy(t)
	addCRDField(t, upgraded)
	helmOK("upgrade", release, upgraded, "--namespace", namespace)
	crd, err = getCRD()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(specProperties(crd)).To(HaveKey(upgradeProbeField), "helm upgrade did not change the CRD")
	// The API server keeps a value in the new field (an unknown field
	// would be pruned).
	g.Eventually(func(g Gomega) {
		current := &unstructured.Unstructured{}
		current.SetGroupVersionKind(export.GroupVersionKind())
		g.Expect(c.Get(ctx, exportKey, current)).To(Succeed())
		g.Expect(unstructured.SetNestedField(current.Object, "kept", "spec", upgradeProbeField)).To(Succeed())
		g.Expect(c.Update(ctx, current)).To(Succeed())
		g.Expect(c.Get(ctx, exportKey, current)).To(Succeed())
		g.Expect(current.Object["spec"]).To(HaveKeyWithValue(upgradeProbeField, "kept"))
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())

	t.Log("helm uninstall, with crds.keep")
	helmOK("uninstall", release, "--namespace", namespace)
	// The uninstall happened: the Deployment is gone.
	g.Expect(apierrors.IsNotFound(c.Get(ctx, deployment, &appsv1.Deployment{}))).To(BeTrue(), "helm uninstall left the Deployment")
	crd, err = getCRD()
	g.Expect(err).NotTo(HaveOccurred(), "helm uninstall deleted the CRD despite crds.keep")
	g.Expect(crd.DeletionTimestamp).To(BeNil())
	g.Expect(c.Get(ctx, exportKey, export.DeepCopy())).To(Succeed(), "the RedisBackupExport did not survive the uninstall")

	t.Log("helm install with crds.keep=false, and helm uninstall")
	// The kept CRD still carries the release's ownership: the release of
	// the same name takes it back.
	helmOK("install", release, chart, "--namespace", namespace, "--set", "crds.keep=false")
	crd, err = getCRD()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(crd.Annotations).NotTo(HaveKey("helm.sh/resource-policy"))
	helmOK("uninstall", release, "--namespace", namespace)
	g.Eventually(func() bool {
		_, err := getCRD()
		return apierrors.IsNotFound(err)
	}).WithTimeout(30*time.Second).WithPolling(200*time.Millisecond).Should(BeTrue(), "the CRD outlived the uninstall with crds.keep=false")
	// Its kind is no longer served (or, for a client that has not
	// noticed, the resource is not found).
	err = c.Get(ctx, exportKey, export.DeepCopy())
	g.Expect(apierrors.IsNotFound(err) || meta.IsNoMatchError(err)).To(BeTrue(), "the RedisBackupExport outlived its CRD: %v", err)
}

// waitEstablished waits until the CRD serves its resource.
func waitEstablished(t *testing.T, get func() (*apiextensionsv1.CustomResourceDefinition, error)) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		crd, err := get()
		g.Expect(err).NotTo(HaveOccurred())
		var established bool
		for _, condition := range crd.Status.Conditions {
			established = established || (condition.Type == apiextensionsv1.Established && condition.Status == apiextensionsv1.ConditionTrue)
		}
		g.Expect(established).To(BeTrue())
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// specProperties are the properties of spec in the CRD's first version.
func specProperties(crd *apiextensionsv1.CustomResourceDefinition) map[string]apiextensionsv1.JSONSchemaProps {
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties
}

// requireKubeVersion fails unless the control plane reports a Kubernetes
// version the chart's kubeVersion (>=1.32) accepts. An unstamped
// kube-apiserver reports v0.0.0-master, which Helm refuses the chart for:
// hack/build-control-plane.sh rebuilds such a binary.
func requireKubeVersion(t *testing.T, cfg *rest.Config) {
	t.Helper()
	discovery, err := discovery.NewDiscoveryClientForConfig(cfg)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	info, err := discovery.ServerVersion()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	version, err := utilversion.ParseSemantic(info.GitVersion)
	if err != nil || !version.AtLeast(utilversion.MajorMinor(1, 32)) {
		t.Fatalf("the control plane reports Kubernetes %q, which the chart's kubeVersion refuses; run make control-plane to rebuild it with its version stamped", info.GitVersion)
	}
}

// chartCopy copies the chart into a temporary directory and returns it.
func chartCopy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "uredis-backup-operator")
	NewWithT(t).Expect(os.CopyFS(dir, os.DirFS(filepath.Join(repoRoot, chartDir)))).To(Succeed())
	return dir
}

// addCRDField adds upgradeProbeField, a string, to the spec of every
// version of the CRD in the chart in dir. The CRD template is YAML from its
// `spec:` line to its closing `{{- end }}` (hack/chart-gen writes it so).
func addCRDField(t *testing.T, dir string) {
	t.Helper()
	g := NewWithT(t)
	templates, err := filepath.Glob(filepath.Join(dir, "templates", "crds", "redisbackupexports.*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(templates).To(HaveLen(1))
	content, err := os.ReadFile(templates[0])
	g.Expect(err).NotTo(HaveOccurred())
	text := string(content)
	start, end := strings.Index(text, "\nspec:\n"), strings.LastIndex(text, "{{- end }}")
	g.Expect(start).To(BeNumerically(">", 0), "no spec: in %s", templates[0])
	g.Expect(end).To(BeNumerically(">", start))

	var spec map[string]any
	g.Expect(yaml.Unmarshal([]byte(text[start:end]), &spec)).To(Succeed())
	versions, _, _ := unstructured.NestedSlice(spec, "spec", "versions")
	g.Expect(versions).NotTo(BeEmpty())
	for _, v := range versions {
		g.Expect(unstructured.SetNestedField(v.(map[string]any),
			map[string]any{"type": "string", "description": "Added by the upgrade test."},
			"schema", "openAPIV3Schema", "properties", "spec", "properties", upgradeProbeField)).To(Succeed())
	}
	g.Expect(unstructured.SetNestedSlice(spec, versions, "spec", "versions")).To(Succeed())
	changed, err := yaml.Marshal(spec)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(templates[0], []byte(text[:start+1]+string(changed)+text[end:]), 0o644)).To(Succeed())
}
