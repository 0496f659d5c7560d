package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// linkData is what a Secret carries, before key names are applied.
type linkData struct {
	backupPath, innerBackupPath, backupID string
	expiresAt                             time.Time
}

// secretData is the contract content of the target Secret, under the key
// names the spec chose.
func secretData(export *uredisv1alpha1.RedisBackupExport, link linkData) map[string][]byte {
	keys := keyNames(export.Spec.Target.Keys)
	data := map[string][]byte{
		keys.BackupPath: []byte(link.backupPath),
		keys.ExpiresAt:  []byte(formatTime(link.expiresAt)),
		keys.BackupID:   []byte(link.backupID),
		keys.Region:     []byte(export.Spec.Region),
	}
	if link.innerBackupPath != "" {
		data[keys.InnerBackupPath] = []byte(link.innerBackupPath)
	}
	return data
}

// keyNames fills in the default key names.
func keyNames(k uredisv1alpha1.SecretKeys) uredisv1alpha1.SecretKeys {
	return uredisv1alpha1.SecretKeys{
		BackupPath:      defaultString(k.BackupPath, uredisv1alpha1.KeyBackupPath),
		ExpiresAt:       defaultString(k.ExpiresAt, uredisv1alpha1.KeyExpiresAt),
		BackupID:        defaultString(k.BackupID, uredisv1alpha1.KeyBackupID),
		Region:          defaultString(k.Region, uredisv1alpha1.KeyRegion),
		InnerBackupPath: defaultString(k.InnerBackupPath, uredisv1alpha1.KeyInnerBackupPath),
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// dataHash is a stable digest of a Secret's data.
func dataHash(data map[string][]byte) string {
	h := sha256.New()
	for _, key := range slices.Sorted(maps.Keys(data)) {
		fmt.Fprintf(h, "%d:%s%d:", len(key), key, len(data[key]))
		h.Write(data[key])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// ownsSecret reports whether secret was created for this very resource.
func ownsSecret(secret *corev1.Secret, export *uredisv1alpha1.RedisBackupExport) bool {
	return metav1.IsControlledBy(secret, export) || secret.Annotations[uredisv1alpha1.AnnotationExportUID] == string(export.UID)
}

// secretInSync reports whether secret holds exactly the link in the
// resource's status, unedited, shaped as the current spec asks.
func secretInSync(secret *corev1.Secret, export *uredisv1alpha1.RedisBackupExport) bool {
	status := export.Status
	if secret == nil || status.BackupPath == "" || status.ExpiresAt == nil || !ownsSecret(secret, export) {
		return false
	}
	want := secretData(export, linkData{backupPath: status.BackupPath, backupID: status.BackupID, expiresAt: status.ExpiresAt.Time})
	for key, value := range want {
		if !holds(secret, key, value) {
			return false
		}
	}
	shaped := secret.DeepCopy()
	shapeMetadata(shaped, export, secret.Annotations[uredisv1alpha1.AnnotationDataHash])
	return unedited(secret) && metadataEqual(secret, shaped)
}

// writeSecret creates or updates the target Secret with data. current is the
// cached Secret of that name, nil when the cache has none; the cache only
// holds Secrets this operator manages.
func (r *RedisBackupExportReconciler) writeSecret(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, current *corev1.Secret, data map[string][]byte) error {
	if current == nil {
		return r.createSecret(ctx, export, data)
	}
	if !ownsSecret(current, export) {
		return newConflictError(export)
	}
	desired := current.DeepCopy()
	shapeSecret(desired, export, data)
	// Equal metadata means the hash the operator wrote is that of data.
	if metadataEqual(current, desired) && unedited(current) {
		return nil
	}
	// A merge patch without a resourceVersion: the cache may lag behind by a
	// write, and ownership was checked above. The cache holds no values, so
	// the patch sets every key of data and removes any other.
	base := current.DeepCopy()
	base.Data = dataKeys(current)
	return refusedWrite(export, r.Patch(ctx, desired, client.MergeFrom(base)))
}

func (r *RedisBackupExportReconciler) createSecret(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, data map[string][]byte) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: export.TargetSecretName(), Namespace: export.Namespace},
		Type:       corev1.SecretTypeOpaque,
	}
	shapeSecret(secret, export, data)
	err := r.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		return r.classifyExistingSecret(ctx, export)
	}
	return refusedWrite(export, err)
}

// classifyExistingSecret explains a failed create: either a Secret we do
// not own, or our own one that the cache has not seen yet (a retry fixes).
func (r *RedisBackupExportReconciler) classifyExistingSecret(ctx context.Context, export *uredisv1alpha1.RedisBackupExport) error {
	existing := &corev1.Secret{}
	key := types.NamespacedName{Namespace: export.Namespace, Name: export.TargetSecretName()}
	if err := r.APIReader.Get(ctx, key, existing); err != nil {
		return err
	}
	if ownsSecret(existing, export) && existing.Labels[uredisv1alpha1.LabelManagedBy] == uredisv1alpha1.ManagedByValue {
		return errCacheLagging
	}
	return newConflictError(export)
}

// shapeSecret sets everything the operator decides about a Secret: data,
// the spec's labels and annotations (added to, never replacing, what others
// put there), the operator's own label and annotations, and the owner
// reference that the creation policy asks for.
func shapeSecret(secret *corev1.Secret, export *uredisv1alpha1.RedisBackupExport, data map[string][]byte) {
	shapeMetadata(secret, export, dataHash(data))
	secret.Data = data
	secret.StringData = nil
}

// shapeMetadata is shapeSecret without the data, whose hash it is given.
func shapeMetadata(secret *corev1.Secret, export *uredisv1alpha1.RedisBackupExport, hash string) {
	target := export.Spec.Target
	secret.Labels = mergeMaps(secret.Labels, target.Labels, map[string]string{uredisv1alpha1.LabelManagedBy: uredisv1alpha1.ManagedByValue})
	secret.Annotations = mergeMaps(secret.Annotations, target.Annotations, map[string]string{
		uredisv1alpha1.AnnotationDataHash:  hash,
		uredisv1alpha1.AnnotationExportUID: string(export.UID),
	})
	secret.OwnerReferences = slices.DeleteFunc(secret.OwnerReferences, func(ref metav1.OwnerReference) bool { return ref.UID == export.UID })
	if target.CreationPolicy != uredisv1alpha1.CreationPolicyOrphan {
		secret.OwnerReferences = append(secret.OwnerReferences, *metav1.NewControllerRef(export, uredisv1alpha1.GroupVersion.WithKind("RedisBackupExport")))
	}
}

func mergeMaps(base map[string]string, overlays ...map[string]string) map[string]string {
	merged := maps.Clone(base)
	if merged == nil {
		merged = map[string]string{}
	}
	for _, overlay := range overlays {
		maps.Copy(merged, overlay)
	}
	return merged
}

// metadataEqual compares what shapeMetadata decides.
func metadataEqual(a, b *corev1.Secret) bool {
	return maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		slices.EqualFunc(a.OwnerReferences, b.OwnerReferences, func(x, y metav1.OwnerReference) bool {
			return x.UID == y.UID && ptr.Equal(x.Controller, y.Controller)
		})
}
