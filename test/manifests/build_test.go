package manifests

import (
	"testing"

	. "github.com/onsi/gomega"
)

// TestEveryKustomizationBuilds runs `kustomize build` on every kustomization
// under config/, found by walking the tree (a new one is covered without
// touching this test).
func TestEveryKustomizationBuilds(t *testing.T) {
	dirs := kustomizations(t)
	// The other tests read config/default and config/rbac: make sure the
	// walk found them rather than passing on an empty list.
	NewWithT(t).Expect(dirs).To(ContainElements("config/default", "config/rbac"))
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			g := NewWithT(t)
			objects := build(t, dir)
			g.Expect(objects).NotTo(BeEmpty(), "kustomize build %s printed no objects", dir)
			for _, o := range objects {
				g.Expect(o.GetAPIVersion()).NotTo(BeEmpty(), "an object of %s has no apiVersion", dir)
				g.Expect(o.GetKind()).NotTo(BeEmpty(), "an object of %s has no kind", dir)
				g.Expect(o.GetName()).NotTo(BeEmpty(), "a %s of %s has no name", o.GetKind(), dir)
			}
		})
	}
}
