package integration

import (
	"context"
	"fmt"
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
		{name: "neither backupId nor latest", spec: specWithout("backupId"), message: `set exactly one of backupId (a fixed backup) and latest`},
		{name: "both backupId and latest", spec: specWith("latest", map[string]any{"groupId": "g1"}), message: `set exactly one of backupId (a fixed backup) and latest`},
		{name: "latest without groupId", spec: latestSpec(map[string]any{}), message: `spec.latest.groupId: Required value`},
		{name: "latest with an unknown backupType", spec: latestSpec(map[string]any{"groupId": "g1", "backupType": "Nightly"}), message: `spec.latest.backupType: Unsupported value: "Nightly"`},
		{name: "groupId differs from latest.groupId", spec: withKey(latestSpec(map[string]any{"groupId": "g1"}), "groupId", "g2"), message: `groupId must equal latest.groupId`},
		{name: "refreshBefore not a duration", spec: specWith("refreshBefore", "soon"), message: `refreshBefore must be a duration of at least 1s`},
		{name: "refreshBefore too long", spec: specWith("refreshBefore", strings.Repeat("0", 40)+"1h"), message: `refreshBefore may have at most 32 characters`},
		{name: "refreshBefore zero", spec: specWith("refreshBefore", "0s"), message: `refreshBefore must be a duration of at least 1s`},
		{name: "unknown creationPolicy", spec: specWith("target", map[string]any{"creationPolicy": "Merge"}), message: `spec.target.creationPolicy: Unsupported value: "Merge"`},
		{name: "two Secret keys with one name", spec: specWith("target", map[string]any{"keys": map[string]any{"backupPath": "URL", "innerBackupPath": "URL"}}), message: `the Secret's keys must all be different`},
		{name: "renamed key clashing with a default", spec: specWith("target", map[string]any{"keys": map[string]any{"backupPath": "region"}}), message: `the Secret's keys must all be different`},
		{name: "invalid Secret key", spec: specWith("target", map[string]any{"keys": map[string]any{"backupPath": "BACKUP URL"}}), message: `spec.target.keys.backupPath in body should match`},
		{name: "managed-by label", spec: specWith("target", map[string]any{"labels": map[string]any{"app.kubernetes.io/managed-by": "me"}}), message: `the label app.kubernetes.io/managed-by is set by the operator`},
		{name: "operator annotation", spec: specWith("target", map[string]any{"annotations": map[string]any{"uredis.dezai.com/data-hash": "x"}}), message: `annotations under uredis.dezai.com/ are set by the operator`},
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
		{name: "credentials Secret name invalid", spec: specWith("credentialsRef", map[string]any{"name": "Not_A_Name"}), message: `spec.credentialsRef.name in body should match`},
		{name: "empty key name", spec: specWith("credentialsRef", map[string]any{"name": "c", "privateKeyKey": ""}), message: `spec.credentialsRef.privateKeyKey in body should be at least 1 chars long`},
		{name: "target name invalid", spec: specWith("target", map[string]any{"name": "UPPER"}), message: `spec.target.name in body should match`},
		{name: "target is the credentials Secret", spec: specWith("target", map[string]any{"name": "cloud-credentials"}), message: `the target Secret must not be the credentials Secret`},
		{name: "default target is the credentials Secret", spec: validSpec(), objName: "cloud-credentials", message: `the target Secret must not be the credentials Secret`},
		{name: "public key taken from a token key", spec: specWith("credentialsRef", map[string]any{"name": "c", "publicKeyKey": "token"}), message: `spec.credentialsRef.publicKeyKey in body should match`},
		{name: "private key taken from a TLS key", spec: specWith("credentialsRef", map[string]any{"name": "c", "privateKeyKey": "tls.key"}), message: `spec.credentialsRef.privateKeyKey in body should match`},
		{name: "security token taken from a service account token", spec: specWith("credentialsRef", map[string]any{"name": "c", "securityTokenKey": "token"}), message: `spec.credentialsRef.securityTokenKey in body should match`},
		{name: "label key with a space", spec: specWith("target", map[string]any{"labels": map[string]any{"team name": "a"}}), message: `every label key must be a valid Kubernetes label key`},
		{name: "label key too long", spec: specWith("target", map[string]any{"labels": map[string]any{strings.Repeat("k", 64): "a"}}), message: `every label key must be a valid Kubernetes label key`},
		{name: "label value too long", spec: specWith("target", map[string]any{"labels": map[string]any{"team": strings.Repeat("v", 64)}}), message: `spec.target.labels.team: Too long: may not be more than 63 bytes`},
		{name: "label value with a slash", spec: specWith("target", map[string]any{"labels": map[string]any{"team": "a/b"}}), message: `spec.target.labels.team in body should match`},
		{name: "annotation key invalid", spec: specWith("target", map[string]any{"annotations": map[string]any{"-bad": "x"}}), message: `every annotation key must be a valid Kubernetes annotation key`},
		{name: "annotation value too long", spec: specWith("target", map[string]any{"annotations": map[string]any{"note": strings.Repeat("v", 4097)}}), message: `spec.target.annotations.note: Too long: may not be more than 4096 bytes`},
		{name: "regionFlag not a boolean", spec: specWith("regionFlag", "yes"), message: `spec.regionFlag: Invalid value: "string": spec.regionFlag in body must be of type boolean`},
		{name: "template without data", spec: specWith("target", map[string]any{"template": map[string]any{"mergePolicy": "Merge"}}), message: `spec.target.template.data: Required value`},
		{name: "template with empty data", spec: specWith("target", map[string]any{"template": map[string]any{"data": map[string]any{}}}), message: `spec.target.template.data: Invalid value: 0: spec.target.template.data in body should have at least 1 properties`},
		{name: "template key with a space", spec: specWith("target", map[string]any{"template": map[string]any{"data": map[string]any{"rclone conf": "x"}}}), message: `every key of template.data must be a valid Secret key`},
		{name: "template key ..", spec: specWith("target", map[string]any{"template": map[string]any{"data": map[string]any{"..data": "x"}}}), message: `every key of template.data must be a valid Secret key`},
		{name: "template too long", spec: specWith("target", map[string]any{"template": map[string]any{"data": map[string]any{"k": strings.Repeat("x", 16385)}}}), message: `spec.target.template.data.k: Too long: may not be more than 16384 bytes`},
		{name: "template of another Secret type", spec: specWith("target", map[string]any{"template": map[string]any{"type": "kubernetes.io/service-account-token", "data": map[string]any{"k": "x"}}}), message: `spec.target.template.type: Unsupported value: "kubernetes.io/service-account-token"`},
		{name: "unknown mergePolicy", spec: specWith("target", map[string]any{"template": map[string]any{"mergePolicy": "Append", "data": map[string]any{"k": "x"}}}), message: `spec.target.template.mergePolicy: Unsupported value: "Append"`},
		{name: "suspend not a boolean", spec: specWith("suspend", "yes"), message: `spec.suspend: Invalid value: "string": spec.suspend in body must be of type boolean`},
		{name: "restart target of an unknown kind", spec: specWith("rolloutRestartTargets", []any{map[string]any{"kind": "CronJob", "name": "app"}}), message: `spec.rolloutRestartTargets[0].kind: Unsupported value: "CronJob": supported values: "Deployment", "StatefulSet", "DaemonSet"`},
		{name: "restart target without a kind", spec: specWith("rolloutRestartTargets", []any{map[string]any{"name": "app"}}), message: `spec.rolloutRestartTargets[0].kind: Required value`},
		{name: "restart target with an empty name", spec: specWith("rolloutRestartTargets", []any{map[string]any{"kind": "Deployment", "name": ""}}), message: `spec.rolloutRestartTargets[0].name in body should be at least 1 chars long`},
		{name: "restart target without a name", spec: specWith("rolloutRestartTargets", []any{map[string]any{"kind": "Deployment"}}), message: `spec.rolloutRestartTargets[0].name: Required value`},
		{name: "restart target name invalid", spec: specWith("rolloutRestartTargets", []any{map[string]any{"kind": "Deployment", "name": "App_1"}}), message: `spec.rolloutRestartTargets[0].name in body should match`},
		{name: "restart target with an unknown trigger", spec: specWith("rolloutRestartTargets", []any{map[string]any{"kind": "Deployment", "name": "app", "on": "SecretChanged"}}), message: `spec.rolloutRestartTargets[0].on: Unsupported value: "SecretChanged": supported values: "BackupChanged", "LinkChanged"`},
		{name: "restart target twice", spec: specWith("rolloutRestartTargets", []any{
			map[string]any{"kind": "Deployment", "name": "app"}, map[string]any{"kind": "Deployment", "name": "app", "on": "LinkChanged"},
		}), message: `spec.rolloutRestartTargets[1]: Duplicate value: {"kind":"Deployment","name":"app"}`},
		{name: "too many restart targets", spec: specWith("rolloutRestartTargets", restartTargets(17)), message: `spec.rolloutRestartTargets: Too many: 17: must have at most 16 items`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			obj := &unstructured.Unstructured{Object: map[string]any{"spec": tt.spec}}
			obj.SetGroupVersionKind(uredisv1alpha1.GroupVersionKind)
			obj.SetNamespace(ns)
			obj.SetName(tt.objName)
			if tt.objName == "" {
				obj.SetName(fmt.Sprintf("invalid-%d", i))
			}
			err := env.Client.Create(ctx, obj)
			g.Expect(err).To(HaveOccurred(), "the API server accepted an invalid resource")
			g.Expect(err.Error()).To(ContainSubstring(tt.message))
		})
	}

	// And valid specs close to the rejected ones are accepted, so the table
	// tests the rules and not something else.
	for i, spec := range []map[string]any{
		specWith("slaveZone", "cn-bj2-05", "regionFlag", true, "suspend", true),
		withKey(latestSpec(map[string]any{"groupId": "g1", "backupType": "Auto"}), "groupId", "g1"),
		specWith("credentialsRef", map[string]any{"name": "c", "publicKeyKey": "UCLOUD_PUBLIC_KEY", "privateKeyKey": "ucloud.private-key", "securityTokenKey": "SecurityToken"}),
		specWith("refreshBefore", "1h30m", "target", map[string]any{
			"creationPolicy": "Orphan",
			"keys":           map[string]any{"backupPath": "BACKUP_URL", "region": "backupPath"},
			"labels":         map[string]any{"team": "a", "example.com/tier": "", "x": strings.Repeat("v", 63)},
			"annotations":    map[string]any{"reloader.stakater.com/match": "true", "Example.com/Note": strings.Repeat("n", 4096)},
		}),
		specWith("target", map[string]any{"template": map[string]any{
			"type": "Opaque", "mergePolicy": "Merge",
			"data": map[string]any{"curl.conf": strings.Repeat("x", 16384), "RESTORE_ENV": "{{ .backupPath }}", ".dotfile": "", "a-b_c.d": "x"},
		}}),
		// 16 targets; one name for two kinds.
		specWith("rolloutRestartTargets", append(restartTargets(14),
			map[string]any{"kind": "StatefulSet", "name": "app-0", "on": "LinkChanged"}, map[string]any{"kind": "DaemonSet", "name": "app-0", "on": "BackupChanged"})),
	} {
		valid := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		valid.SetGroupVersionKind(uredisv1alpha1.GroupVersionKind)
		valid.SetNamespace(ns)
		valid.SetName(fmt.Sprintf("valid-%d", i))
		g.Expect(env.Client.Create(ctx, valid)).To(Succeed())
	}
}

// restartTargets is n Deployments app-0, app-1...
func restartTargets(n int) []any {
	targets := make([]any, 0, n)
	for i := range n {
		targets = append(targets, map[string]any{"kind": "Deployment", "name": fmt.Sprintf("app-%d", i)})
	}
	return targets
}

func latestSpec(latest map[string]any) map[string]any {
	spec := specWithout("backupId")
	spec["latest"] = latest
	return spec
}

func withKey(spec map[string]any, key string, value any) map[string]any {
	spec[key] = value
	return spec
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
