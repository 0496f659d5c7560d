// Package manifests proves that the install manifests in config/ are real:
// every kustomization builds, every object it produces is accepted by a real
// kube-apiserver (envtest, server-side dry-run), the manager's Deployment
// meets the restricted Pod Security Standard, and its RBAC cannot silently
// grow. leastprivilege_test.go applies the default and the namespaced
// installs' RBAC and admission policy for real and runs the operator under
// the manager's own identity.
//
// The Helm chart (charts/uredis-backup-operator) is held to the same, and to
// config/: helm_test.go renders it with the helm CLI and compares it with
// kustomize's output, and installs and upgrades it on a control plane of its
// own.
//
// The tests need the envtest binaries (KUBEBUILDER_ASSETS), the kustomize
// binary (KUSTOMIZE) and the helm binary (HELM); `make test` provides them.
package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dezai/uredis-backup-operator/internal/testenv"
)

// fieldOwner is the field manager of everything these tests apply.
const fieldOwner = "manifest-test"

var (
	env *testenv.Env
	// repoRoot is the repository's root directory (two levels up from here).
	repoRoot string
	// kustomize is the kustomize binary.
	kustomize string
	// helm is the helm binary.
	helm string
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(false)))
	var err error
	if repoRoot, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if kustomize, err = findTool("KUSTOMIZE", "kustomize"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if helm, err = findTool("HELM", "helm"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	// Stand-ins for the Prometheus Operator's ServiceMonitor and
	// PrometheusRule CRDs, which config/prometheus and config/alerts need
	// and envtest does not have: same group, kind and scope, but a schema
	// that accepts any spec.
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
		Paths: []string{
			filepath.Join(repoRoot, "test", "testdata", "servicemonitor-crd.yaml"),
			filepath.Join(repoRoot, "test", "testdata", "prometheusrule-crd.yaml"),
		},
		ErrorIfPathMissing: true,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "installing the Prometheus Operator CRDs:", err)
	} else {
		code = m.Run()
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}

// findTool returns the binary that `make test` passes in the environment
// variable (a relative path is taken from the repository root): KUSTOMIZE
// for bin/kustomize-<version>, HELM for bin/helm-<version>.
func findTool(variable, name string) (string, error) {
	bin := os.Getenv(variable)
	if bin == "" {
		return "", fmt.Errorf("%s is not set: run through `make test`, which builds bin/%s-<version> and passes its path", variable, name)
	}
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(repoRoot, bin)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s=%s: %w (run through `make test`)", variable, os.Getenv(variable), err)
	}
	return bin, nil
}

// kustomizationFileNames are the names kustomize recognises.
var kustomizationFileNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// kustomizations returns every directory under config/ that holds a
// kustomization, relative to the repository root (config/crd, ...).
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(filepath.Join(repoRoot, "config"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !slices.Contains(kustomizationFileNames, d.Name()) {
			return err
		}
		rel, err := filepath.Rel(repoRoot, filepath.Dir(path))
		dirs = append(dirs, filepath.ToSlash(rel))
		return err
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return dirs
}

// build runs `kustomize build` on dir (relative to the repository root) and
// returns the objects it prints.
func build(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	return buildAt(t, filepath.Join(repoRoot, dir))
}

// buildAt is build for an absolute directory.
func buildAt(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(kustomize, "build", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr.String())
	}
	objects, err := decodeObjects(&stdout)
	if err != nil {
		t.Fatalf("decoding the output of kustomize build %s: %v", dir, err)
	}
	return objects
}

// decodeObjects reads a stream of YAML documents into unstructured objects.
func decodeObjects(r io.Reader) ([]*unstructured.Unstructured, error) {
	decoder := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objects []*unstructured.Unstructured
	for {
		var doc map[string]any
		if err := decoder.Decode(&doc); errors.Is(err, io.EOF) {
			return objects, nil
		} else if err != nil {
			return nil, err
		}
		if len(doc) > 0 {
			objects = append(objects, &unstructured.Unstructured{Object: doc})
		}
	}
}

// readObjects reads the objects of a YAML file relative to the repository root.
func readObjects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(repoRoot, file))
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	objects, err := decodeObjects(bytes.NewReader(content))
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "decoding %s", file)
	return objects
}

// ofKind returns the objects of the given kind.
// findObject is the object of kind, namespace and name among objects, or
// nil.
func findObject(objects []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range ofKind(objects, kind) {
		if o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return nil
}

func ofKind(objects []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var matching []*unstructured.Unstructured
	for _, o := range objects {
		if o.GetKind() == kind {
			matching = append(matching, o)
		}
	}
	return matching
}

// single returns the one object of the given kind, failing otherwise.
func single(t *testing.T, objects []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	matching := ofKind(objects, kind)
	if len(matching) != 1 {
		t.Fatalf("want exactly one %s, got %d", kind, len(matching))
	}
	return matching[0]
}

// typed converts an unstructured object into a typed one.
func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("converting %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// describe names an object in failure messages.
func describe(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", o.GetKind(), ns, o.GetName())
	}
	return fmt.Sprintf("%s %s", o.GetKind(), o.GetName())
}
