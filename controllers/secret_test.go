package controllers

import (
	"reflect"
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
		// The same Secret as the operator's cache holds it.
		cached, err := CacheManagedSecret(secret.DeepCopy())
		if err != nil {
			t.Fatal(err)
		}
		if got := secretInSync(cached.(*corev1.Secret), export); got != tt.want {
			t.Errorf("%s, from the cache: secretInSync() = %v, want %v", tt.name, got, tt.want)
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

func TestCacheManagedSecret(t *testing.T) {
	export := exportWithLink()
	data := secretData(export, linkData{backupPath: export.Status.BackupPath, backupID: "b", expiresAt: export.Status.ExpiresAt.Time})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}}}
	shapeSecret(secret, export, data)
	secret.Data["huge"] = make([]byte, 512<<10)

	obj, err := CacheManagedSecret(secret.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	cachedSecret := obj.(*corev1.Secret)
	if cachedSecret.ManagedFields != nil || cachedSecret.Data != nil {
		t.Error("managedFields or data kept in the cache")
	}
	if len(cachedSecret.Annotations[cachedData]) > 400 {
		t.Errorf("the cache keeps %d bytes of a Secret's data, want a few dozen per key", len(cachedSecret.Annotations[cachedData]))
	}
	if observedDataHash(cachedSecret) != dataHash(secret.Data) {
		t.Error("the cache must record the hash of the data the API server holds")
	}
	if unedited(cachedSecret) {
		t.Error("a key added by someone is an edit")
	}
	if keys := dataKeys(cachedSecret); len(keys) != len(secret.Data) || keys["huge"] != nil {
		t.Errorf("the patch base must name every key the API server holds, with no value: %v", keys)
	}

	delete(secret.Data, "huge")
	obj, _ = CacheManagedSecret(secret.DeepCopy())
	cachedSecret = obj.(*corev1.Secret)
	if !unedited(cachedSecret) || !holds(cachedSecret, uredisv1alpha1.KeyBackupPath, []byte(export.Status.BackupPath)) ||
		holds(cachedSecret, uredisv1alpha1.KeyBackupPath, []byte("other")) || holds(cachedSecret, "Path", []byte(export.Status.BackupPath)) {
		t.Error("a cached Secret must compare as its data would")
	}
	if !ownSecretWrite(&corev1.Secret{}, cachedSecret) {
		t.Error("the operator's own write, seen through the cache, must be recognised")
	}
	again, _ := CacheManagedSecret(cachedSecret.DeepCopy())
	if !reflect.DeepEqual(again, cachedSecret) {
		t.Error("the transform must be idempotent: informers may hand it an object it already transformed")
	}

	// Anyone can put the annotation on a Secret; without this process's
	// mark it is overwritten, never believed.
	forged := secret.DeepCopy()
	forged.Annotations[cachedData] = "x:" + secret.Annotations[uredisv1alpha1.AnnotationDataHash] + ":backupPath=" + digest([]byte("https://elsewhere.example.com/")) + ";"
	forged.Data[uredisv1alpha1.KeyBackupPath] = []byte("https://tampered.example.com/")
	obj, _ = CacheManagedSecret(forged)
	if c := obj.(*corev1.Secret); unedited(c) || holds(c, uredisv1alpha1.KeyBackupPath, []byte("https://elsewhere.example.com/")) {
		t.Error("a forged cache annotation was believed")
	}
}
