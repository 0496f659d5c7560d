package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// repoRoot is the repository's root, from this package's directory.
const repoRoot = "../.."

func TestCRDTemplateKeepsTheSpecVerbatim(t *testing.T) {
	source := filepath.Join(repoRoot, "config/crd/bases/uredis.dezai.com_redisbackupexports.yaml")
	raw, err := os.ReadFile(source)
	if err != nil {
		t.Fatal(err)
	}
	name, content, err := crdTemplate(repoRoot, source)
	if err != nil {
		t.Fatal(err)
	}
	if name != "redisbackupexports.uredis.dezai.com" {
		t.Errorf("name %q", name)
	}
	text := string(content)
	spec := string(raw[strings.Index(string(raw), "\nspec:\n")+1:])
	if !strings.Contains(text, spec) {
		t.Error("the template does not hold the CRD's spec as controller-gen wrote it")
	}
	for _, want := range []string{"{{- if .Values.crds.enabled }}\n", "    {{- if .Values.crds.keep }}\n", "    helm.sh/resource-policy: keep\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("the template lacks %q", want)
		}
	}
}

// TestGeneratorRefusesWhatItCannotCarry feeds the generator sources it
// must refuse rather than carry into the chart wrongly.
func TestGeneratorRefusesWhatItCannotCarry(t *testing.T) {
	write := func(t *testing.T, path, content string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("a CRD spec holding a template action", func(t *testing.T) {
		root := t.TempDir()
		file := write(t, filepath.Join(root, "crd.yaml"), "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: a.b\nspec:\n  group: b\n  description: '{{ oops }}'\n")
		if _, _, err := crdTemplate(root, file); err == nil || !strings.Contains(err.Error(), "template action") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a CRD with a top-level key the template would drop", func(t *testing.T) {
		root := t.TempDir()
		file := write(t, filepath.Join(root, "crd.yaml"), "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: a.b\nspec:\n  group: b\nstatus:\n  acceptedNames: {}\n")
		if _, _, err := crdTemplate(root, file); err == nil || !strings.Contains(err.Error(), "top-level keys") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("an admission policy that no longer names the manager as expected", func(t *testing.T) {
		policy, err := os.ReadFile(filepath.Join(repoRoot, "config/policy/secret_writes_policy.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		changed := strings.Replace(string(policy), "username.endsWith(':' + 'controller-manager')", "username == 'system:serviceaccount:x:controller-manager'", 1)
		if changed == string(policy) {
			t.Fatal("the policy's match condition changed: update this test")
		}
		write(t, filepath.Join(root, "config/policy/secret_writes_policy.yaml"), changed)
		if _, err := admissionPolicyTemplate(root); err == nil || !strings.Contains(err.Error(), "is-the-manager") {
			t.Errorf("got %v", err)
		}
	})
}

func TestAdmissionPolicyTemplateMatchesTheReleasesAccount(t *testing.T) {
	content, err := admissionPolicyTemplate(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	text := string(content)
	if want := `endsWith(':' + '` + serviceAccount + `')`; strings.Count(text, want) != 1 {
		t.Errorf("want %s once in\n%s", want, text)
	}
	if strings.Contains(text, "'controller-manager'") {
		t.Error("the template still names config/'s account")
	}
}

// TestValuesTable checks that docs/helm.md's table lists every key of
// values.yaml, and refuses a value without a description or a default.
func TestValuesTable(t *testing.T) {
	dir := filepath.Join(repoRoot, chartDir)
	table, err := valuesTable(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	for key := range values {
		if !strings.Contains(table, "| `"+key+"` |") && !strings.Contains(table, "| `"+key+".") {
			t.Errorf("the values table does not list %s", key)
		}
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot, helmDoc))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), table) {
		t.Errorf("%s does not hold the current values table: run make manifests", helmDoc)
	}

	for name, c := range map[string]struct{ schema, values, want string }{
		"no description": {`{"properties": {"a": {"type": "string"}}}`, "a: x\n", "a has no description"},
		"no default":     {`{"properties": {"a": {"type": "string", "description": "A."}}}`, "{}\n", "a has no default"},
		"not in schema":  {`{"properties": {}}`, "b: 1\n", "values.yaml sets b"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for file, content := range map[string]string{"values.schema.json": c.schema, "values.yaml": c.values} {
				if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := valuesTable(dir); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want %q", err, c.want)
			}
		})
	}
}
