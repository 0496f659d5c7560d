package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8sschema "k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/testenv"
)

// The write-cost comparison asks what one create and one status patch of
// a RedisBackupExport cost the API server, against the same writes of a
// ConfigMap carrying the same payload, and against two bench-only copies
// of the CRD: one without its CEL rules (CEL's share of the difference),
// one without any schema (what any custom resource costs, whatever its
// schema).

// The kinds compared, in the order they are measured in each round.
const (
	kindExport      = "RedisBackupExport"
	kindExportNoCEL = "RedisBackupExport without CEL rules"
	kindSchemaless  = "the same custom resource without a schema"
	kindConfigMap   = "ConfigMap"
)

// The API groups of the bench-only copies of the CRD.
var copyGroups = map[string]string{
	kindExportNoCEL: "nocel.bench.uredis.dezai.com",
	kindSchemaless:  "schemaless.bench.uredis.dezai.com",
}

// WriteCost is the comparison: per kind, the time N creates took, then the
// time N status patches took, by the same writers, once per round.
type WriteCost struct {
	N     int
	Kinds []WriteCostKind
}

// WriteCostKind is one kind's timings, one per round.
type WriteCostKind struct {
	Name             string
	Creates, Patches []time.Duration
}

// Total is the median round's creates plus patches.
func (k WriteCostKind) Total() time.Duration { return Median(k.Creates) + Median(k.Patches) }

// Kind finds a kind's timings by name.
func (w WriteCost) Kind(name string) (WriteCostKind, bool) {
	for _, k := range w.Kinds {
		if k.Name == name {
			return k, true
		}
	}
	return WriteCostKind{}, false
}

// writeCost measures rounds rounds of n objects of each kind, after one
// unrecorded warm-up round of each.
func (h *Harness) writeCost(ctx context.Context, n, rounds int) (WriteCost, error) {
	if err := h.installCopy(ctx, kindExportNoCEL, func(schema map[string]any) error {
		if withoutRules(schema) == 0 {
			return fmt.Errorf("the CRD has no x-kubernetes-validations rules to remove")
		}
		return nil
	}); err != nil {
		return WriteCost{}, fmt.Errorf("installing the CRD copy without rules: %w", err)
	}
	if err := h.installCopy(ctx, kindSchemaless, func(schema map[string]any) error {
		clear(schema)
		open := map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}
		schema["type"] = "object"
		schema["properties"] = map[string]any{"spec": open, "status": maps.Clone(open)}
		return nil
	}); err != nil {
		return WriteCost{}, fmt.Errorf("installing the CRD copy without a schema: %w", err)
	}
	out := WriteCost{N: n, Kinds: []WriteCostKind{{Name: kindExport}, {Name: kindExportNoCEL}, {Name: kindSchemaless}, {Name: kindConfigMap}}}
	for round := -1; round < rounds; round++ {
		for i := range out.Kinds {
			k := &out.Kinds[i]
			size := n
			if round < 0 {
				size = min(n, 500) // the warm-up
			}
			creates, patches, err := h.writeRound(ctx, k.Name, size)
			if err != nil {
				return out, fmt.Errorf("%s: %w", k.Name, err)
			}
			if round < 0 {
				continue
			}
			h.logf("  round %d, %s: %d creates %s, %d status patches %s", round+1, k.Name, n, round10ms(creates), n, round10ms(patches))
			k.Creates, k.Patches = append(k.Creates, creates), append(k.Patches, patches)
		}
	}
	return out, nil
}

func round10ms(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

// writeRound creates n objects of a kind in a fresh namespace, then patches
// each one's status, with the writers of the first sync; it deletes them
// before it returns.
func (h *Harness) writeRound(ctx context.Context, kind string, n int) (creates, patches time.Duration, err error) {
	ns, err := h.createNamespace(ctx, "writes")
	if err != nil {
		return 0, 0, err
	}
	objects := make([]client.Object, n)
	for i := range n {
		if objects[i], err = writeCostObject(kind, ns, i); err != nil {
			return 0, 0, err
		}
	}
	start := time.Now()
	if err := parallel(ctx, n, h.cfg.Concurrency, func(ctx context.Context, i int) error {
		return h.client.Create(ctx, objects[i])
	}); err != nil {
		return 0, 0, err
	}
	creates = time.Since(start)
	start = time.Now()
	if err := parallel(ctx, n, h.cfg.Concurrency, func(ctx context.Context, i int) error {
		patch, err := statusPatch(kind, objects[i])
		if err != nil {
			return err
		}
		if kind == kindConfigMap {
			return h.client.Patch(ctx, objects[i], client.RawPatch(types.MergePatchType, patch))
		}
		return h.client.Status().Patch(ctx, objects[i], client.RawPatch(types.MergePatchType, patch))
	}); err != nil {
		return 0, 0, err
	}
	patches = time.Since(start)
	return creates, patches, deleteAllOf(ctx, h.client, objects[0], ns)
}

// writeCostObject is the i-th object of a kind: a benchmark resource, the
// same under the rule-less copy's group, or a ConfigMap holding its spec
// as JSON.
func writeCostObject(kind, ns string, i int) (client.Object, error) {
	export := newExport(ns, i, 0)
	switch kind {
	case kindExport:
		return export, nil
	case kindExportNoCEL, kindSchemaless:
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(export)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{Object: content}
		u.SetAPIVersion(copyGroups[kind] + "/" + uredisv1alpha1.GroupVersion.Version)
		u.SetKind("RedisBackupExport")
		return u, nil
	default:
		spec, err := json.Marshal(export.Spec)
		if err != nil {
			return nil, err
		}
		return &corev1.ConfigMap{ObjectMeta: export.ObjectMeta, Data: map[string]string{"spec": string(spec)}}, nil
	}
}

// statusPatch is the status a first sync writes, as a merge patch: into
// the status of a resource, into the data of a ConfigMap.
func statusPatch(kind string, obj client.Object) ([]byte, error) {
	export := newExport(obj.GetNamespace(), 0, 0)
	export.Name, export.Generation = obj.GetName(), 1
	now := time.Now()
	status := floorStatus(export, cloud.BackupLink{
		URL:        "https://backup.example.invalid/" + obj.GetNamespace() + "/" + obj.GetName() + "?Expires=1900000000&Signature=" + strings.Repeat("s", 64),
		ExpiresAt:  now.Add(longLinks),
		ObtainedAt: now,
	})
	if kind != kindConfigMap {
		return json.Marshal(map[string]any{"status": status})
	}
	encoded, err := json.Marshal(status)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"data": map[string]string{"status": string(encoded)}})
}

// installCopy installs the shipped CRD under the API group of kind, its
// schema changed by schema, and waits until it serves.
func (h *Harness) installCopy(ctx context.Context, kind string, schema func(map[string]any) error) error {
	group := copyGroups[kind]
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "crd", "bases", "uredis.dezai.com_redisbackupexports.yaml"))
	if err != nil {
		return err
	}
	var content map[string]any
	if err := yaml.Unmarshal(raw, &content); err != nil {
		return err
	}
	versions, _, _ := unstructured.NestedSlice(content, "spec", "versions")
	if len(versions) != 1 {
		return fmt.Errorf("the CRD has %d versions, want one", len(versions))
	}
	openAPI, _, _ := unstructured.NestedMap(versions[0].(map[string]any), "schema", "openAPIV3Schema")
	if err := schema(openAPI); err != nil {
		return err
	}
	if err := unstructured.SetNestedMap(versions[0].(map[string]any), openAPI, "schema", "openAPIV3Schema"); err != nil {
		return err
	}
	if err := unstructured.SetNestedSlice(content, versions, "spec", "versions"); err != nil {
		return err
	}
	crd := &unstructured.Unstructured{Object: content}
	plural, _, _ := unstructured.NestedString(content, "spec", "names", "plural")
	crd.SetName(plural + "." + group)
	crd.SetResourceVersion("")
	if err := unstructured.SetNestedField(content, group, "spec", "group"); err != nil {
		return err
	}
	if err := h.client.Create(ctx, crd); err != nil {
		return err
	}
	gvk := k8sschema.GroupVersionKind{Group: group, Version: uredisv1alpha1.GroupVersion.Version, Kind: "RedisBackupExportList"}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk)
		// The client's REST mapper looks a kind up again when it misses.
		return h.client.List(ctx, list, client.InNamespace("default")) == nil, nil
	})
}

// withoutRules deletes every x-kubernetes-validations in a schema tree and
// says how many it deleted.
func withoutRules(node any) int {
	removed := 0
	switch v := node.(type) {
	case map[string]any:
		if _, ok := v["x-kubernetes-validations"]; ok {
			delete(v, "x-kubernetes-validations")
			removed++
		}
		for _, child := range v {
			removed += withoutRules(child)
		}
	case []any:
		for _, child := range v {
			removed += withoutRules(child)
		}
	}
	return removed
}
