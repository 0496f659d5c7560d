package plugin

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// krewPlugin is the part of a krew plugin manifest the test reads.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		ShortDescription string `json:"shortDescription"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

// TestKrewManifest checks plugins/krew/rbe.yaml: once its placeholders are
// filled in, a krew manifest for `kubectl rbe`, one archive per platform,
// each with its own checksum placeholder.
func TestKrewManifest(t *testing.T) {
	raw, err := os.ReadFile("../../plugins/krew/rbe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	placeholders := map[string]bool{}
	filled := regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).ReplaceAllStringFunc(string(raw), func(p string) string {
		name := p[2 : len(p)-1]
		placeholders[name] = true
		if name == "VERSION" {
			return "v9.9.9"
		}
		// All digits: a checksum that YAML would read as a number unless
		// quoted.
		return fmt.Sprintf("%064d", len(placeholders))
	})
	var manifest krewPlugin
	if err := yaml.Unmarshal([]byte(filled), &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || manifest.Kind != "Plugin" {
		t.Errorf("apiVersion %q, kind %q", manifest.APIVersion, manifest.Kind)
	}
	// kubectl finds kubectl-rbe as `kubectl rbe`: krew's name is the part
	// after kubectl-.
	if manifest.Metadata.Name != "rbe" || manifest.Spec.Version != "v9.9.9" || manifest.Spec.ShortDescription == "" {
		t.Errorf("name %q, version %q, shortDescription %q", manifest.Metadata.Name, manifest.Spec.Version, manifest.Spec.ShortDescription)
	}
	if len(manifest.Spec.Platforms) < 5 {
		t.Fatalf("%d platforms", len(manifest.Spec.Platforms))
	}
	checksums := map[string]bool{}
	for _, p := range manifest.Spec.Platforms {
		goos, goarch := p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]
		wantURI := fmt.Sprintf("https://github.com/dezai/uredis-backup-operator/releases/download/v9.9.9/kubectl-rbe_v9.9.9_%s_%s.tar.gz", goos, goarch)
		wantBin := "kubectl-rbe"
		if goos == "windows" {
			wantBin += ".exe"
		}
		if p.URI != wantURI || p.Bin != wantBin {
			t.Errorf("%s/%s: uri %q bin %q, want %q and %q", goos, goarch, p.URI, p.Bin, wantURI, wantBin)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(p.SHA256) || checksums[p.SHA256] {
			t.Errorf("%s/%s: sha256 %q is not a placeholder of its own", goos, goarch, p.SHA256)
		}
		checksums[p.SHA256] = true
		if !placeholders["SHA256_"+strings.ToUpper(goos+"_"+goarch)] {
			t.Errorf("%s/%s: no ${SHA256_%s_%s} placeholder", goos, goarch, strings.ToUpper(goos), strings.ToUpper(goarch))
		}
	}
}
