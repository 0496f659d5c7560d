package integration

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// TestAdmissionRejectsInvalidSpecs sends invalid resources to the real API
// server and checks that each is refused with its rule's message.
func TestAdmissionRejectsInvalidSpecs(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespaceFor(t.Name())
	g.Expect(env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())

	long := strings.Repeat("a", 65)
	tests := []struct {
		name    string
		spec    map[string]any
		objName string
		message string
	}{
		{name: "no backupId", spec: specWithout("backupId"), message: `spec.backupId: Required value`},
		{name: "empty backupId", spec: specWith("backupId", ""), message: `spec.backupId: Invalid value: "": spec.backupId in body should be at least 1 chars long`},
		{name: "backupId too long", spec: specWith("backupId", long), message: `spec.backupId: Too long: may not be more than 64 bytes`},
		{name: "backupId with a slash", spec: specWith("backupId", "../etc"), message: `spec.backupId in body should match`},
		{name: "no region", spec: specWithout("region"), message: `spec.region: Required value`},
		{name: "empty region", spec: specWith("region", ""), message: `spec.region in body should be at least 1 chars long`},
		{name: "region with upper case", spec: specWith("region", "CN-BJ2"), message: `spec.region in body should match`},
		{name: "region too long", spec: specWith("region", strings.Repeat("a", 33)), message: `spec.region: Too long: may not be more than 32 bytes`},
		{name: "zone with a space", spec: specWith("zone", "cn bj2"), message: `spec.zone in body should match`},
		{name: "projectId too long", spec: specWith("projectId", long), message: `spec.projectId: Too long`},
		{name: "slaveZone without regionFlag", spec: specWith("slaveZone", "cn-bj2-05"), message: `slaveZone may only be set together with regionFlag: true`},
		{name: "slaveZone with regionFlag false", spec: specWith("slaveZone", "cn-bj2-05", "regionFlag", false), message: `slaveZone may only be set together with regionFlag: true`},
		{name: "slaveZone equal to zone", spec: specWith("slaveZone", "cn-bj2-04", "regionFlag", true), message: `slaveZone must differ from zone`},
		{name: "no credentialsRef", spec: specWithout("credentialsRef"), message: `spec.credentialsRef: Required value`},
		{name: "credentials Secret name invalid", spec: specWith("credentialsRef", map[string]any{"name": "Not_A_Name"}), message: `spec.credentialsRef.name in body should match`},
		{name: "empty key name", spec: specWith("credentialsRef", map[string]any{"name": "c", "privateKeyKey": ""}), message: `spec.credentialsRef.privateKeyKey in body should be at least 1 chars long`},
		{name: "target name invalid", spec: specWith("target", map[string]any{"name": "UPPER"}), message: `spec.target.name in body should match`},
		{name: "target is the credentials Secret", spec: specWith("target", map[string]any{"name": "cloud-credentials"}), message: `the target Secret must not be the credentials Secret`},
		{name: "default target is the credentials Secret", spec: validSpec(), objName: "cloud-credentials", message: `the target Secret must not be the credentials Secret`},
		{name: "regionFlag not a boolean", spec: specWith("regionFlag", "yes"), message: `spec.regionFlag: Invalid value: "string": spec.regionFlag in body must be of type boolean`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := &unstructured.Unstructured{Object: map[string]any{"spec": tt.spec}}
			obj.SetGroupVersionKind(uredisv1alpha1.GroupVersion.WithKind("RedisBackupExport"))
			obj.SetNamespace(ns)
			obj.SetName(tt.objName)
			if tt.objName == "" {
				obj.SetName("invalid-" + string(rune('a'+i)))
			}
			err := env.Client.Create(ctx, obj)
			g.Expect(err).To(HaveOccurred(), "the API server accepted an invalid resource")
			g.Expect(err.Error()).To(ContainSubstring(tt.message))
		})
	}

	// And the valid base spec is accepted, so the table tests the rules.
	valid := &unstructured.Unstructured{Object: map[string]any{"spec": specWith("slaveZone", "cn-bj2-05", "regionFlag", true)}}
	valid.SetGroupVersionKind(uredisv1alpha1.GroupVersion.WithKind("RedisBackupExport"))
	valid.SetNamespace(ns)
	valid.SetName("valid")
	g.Expect(env.Client.Create(ctx, valid)).To(Succeed())
}

func validSpec() map[string]any {
	return map[string]any{
		"backupId":       backupID,
		"region":         region,
		"zone":           zone,
		"credentialsRef": map[string]any{"name": "cloud-credentials"},
	}
}

// specWith returns the valid spec with the given key/value pairs set.
func specWith(kv ...any) map[string]any {
	spec := validSpec()
	for i := 0; i < len(kv); i += 2 {
		spec[kv[i].(string)] = kv[i+1]
	}
	return spec
}

func specWithout(key string) map[string]any {
	spec := validSpec()
	delete(spec, key)
	return spec
}
