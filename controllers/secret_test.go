package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

func TestSecretInSync(t *testing.T) {
	export := exportWithLink()
	good := func() *corev1.Secret {
		data := secretData(export, linkData{backupPath: export.Status.BackupPath, innerBackupPath: "https://inner.example.com/x", backupID: "b", expiresAt: export.Status.ExpiresAt.Time})
		secret := &corev1.Secret{}
		shapeSecret(secret, export, data)
		return secret
	}
	tests := []struct {
		name   string
		mutate func(*corev1.Secret)
		want   bool
	}{
		{"untouched", func(*corev1.Secret) {}, true},
		{"link edited", func(s *corev1.Secret) { s.Data[uredisv1alpha1.KeyBackupPath] = []byte("https://evil.example.com/") }, false},
		{"inner link edited", func(s *corev1.Secret) { s.Data[uredisv1alpha1.KeyInnerBackupPath] = []byte("x") }, false},
		{"key added", func(s *corev1.Secret) { s.Data["extra"] = []byte("x") }, false},
		{"owned by another resource", func(s *corev1.Secret) {
			s.OwnerReferences[0].UID = "other"
			s.Annotations[uredisv1alpha1.AnnotationExportUID] = "other"
		}, false},
		{"owner reference removed by someone", func(s *corev1.Secret) { s.OwnerReferences = nil }, false},
		{"someone else's label added", func(s *corev1.Secret) { s.Labels["team"] = "a" }, true},
		{"spec label removed by someone", func(s *corev1.Secret) { delete(s.Labels, "app") }, false},
		{"hash annotation removed", func(s *corev1.Secret) { s.Annotations = nil }, false},
	}
	for _, tt := range tests {
		secret := good()
		tt.mutate(secret)
		if got := secretInSync(secret, export); got != tt.want {
			t.Errorf("%s: secretInSync() = %v, want %v", tt.name, got, tt.want)
		}
	}
	if secretInSync(nil, export) {
		t.Error("a missing Secret is not in sync")
	}
}

func TestDataHashIsStableAndUnambiguous(t *testing.T) {
	a := map[string][]byte{"ab": []byte("c"), "x": []byte("1")}
	b := map[string][]byte{"a": []byte("bc"), "x": []byte("1")}
	if dataHash(a) != dataHash(map[string][]byte{"x": []byte("1"), "ab": []byte("c")}) {
		t.Error("the hash must not depend on map order")
	}
	if dataHash(a) == dataHash(b) {
		t.Error("moving bytes between key and value must change the hash")
	}
}

func TestShapeSecret(t *testing.T) {
	export := exportWithLink()
	export.Spec.Target.Keys = uredisv1alpha1.SecretKeys{BackupPath: "BACKUP_URL", ExpiresAt: "BACKUP_EXPIRES_AT"}
	export.Spec.Target.Annotations = map[string]string{"reloader": "yes"}
	data := secretData(export, linkData{backupPath: "https://x.example.com/", backupID: "b", expiresAt: now})
	if string(data["BACKUP_URL"]) != "https://x.example.com/" || string(data["BACKUP_EXPIRES_AT"]) != "2026-11-27T10:00:00Z" || string(data["backupId"]) != "b" {
		t.Fatalf("renamed keys not applied: %v", data)
	}
	if _, ok := data["innerBackupPath"]; ok {
		t.Fatal("innerBackupPath only when the API returned one")
	}

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}}}
	shapeSecret(secret, export, data)
	if secret.Labels["team"] != "a" || secret.Labels["app"] != "restore" || secret.Labels[uredisv1alpha1.LabelManagedBy] != uredisv1alpha1.ManagedByValue {
		t.Errorf("labels = %v", secret.Labels)
	}
	if secret.Annotations["reloader"] != "yes" || secret.Annotations[uredisv1alpha1.AnnotationExportUID] != "uid-1" || secret.Annotations[uredisv1alpha1.AnnotationDataHash] != dataHash(data) {
		t.Errorf("annotations = %v", secret.Annotations)
	}
	if len(secret.OwnerReferences) != 1 || !*secret.OwnerReferences[0].Controller || !*secret.OwnerReferences[0].BlockOwnerDeletion {
		t.Fatalf("Owner policy wants a controller reference: %+v", secret.OwnerReferences)
	}

	export.Spec.Target.CreationPolicy = uredisv1alpha1.CreationPolicyOrphan
	shapeSecret(secret, export, data)
	if len(secret.OwnerReferences) != 0 {
		t.Fatalf("Orphan policy must drop the owner reference: %+v", secret.OwnerReferences)
	}
	if !ownsSecret(secret, export) {
		t.Fatal("an orphaned Secret is still recognised as the resource's own")
	}
}
