package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// The Secret contract: these keys are stable and documented in the README.
const (
	KeyBackupPath      = "backupPath"
	KeyExpiresAt       = "expiresAt"
	KeyBackupID        = "backupId"
	KeyRegion          = "region"
	KeyInnerBackupPath = "innerBackupPath"

	// LabelManagedBy marks the Secrets this operator writes; its cache holds
	// only Secrets with this label.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value.
	ManagedByValue = "uredis-backup-operator"
	// AnnotationDataHash holds a hash of the Secret's data, so that edits are
	// detected and workloads can roll when the link changes.
	AnnotationDataHash = "uredis.dezai.com/data-hash"
)

// errCacheLagging: our own Secret exists but the cache has not seen it yet.
var errCacheLagging = errors.New("the target Secret exists but is not in the cache yet")

// conflictError reports a target Secret the resource does not own.
type conflictError struct{ message string }

func (e *conflictError) Error() string { return e.message }

func newConflictError(export *uredisv1alpha1.RedisBackupExport) *conflictError {
	return &conflictError{message: fmt.Sprintf(
		"Secret %q already exists and is not managed by this RedisBackupExport; it is left untouched: delete it or set spec.target.name to another name",
		export.TargetSecretName())}
}

// secretData is the contract content of the target Secret.
func secretData(export *uredisv1alpha1.RedisBackupExport, backupPath, innerBackupPath string, expiresAt time.Time) map[string][]byte {
	data := map[string][]byte{
		KeyBackupPath: []byte(backupPath),
		KeyExpiresAt:  []byte(formatTime(expiresAt)),
		KeyBackupID:   []byte(export.Spec.BackupID),
		KeyRegion:     []byte(export.Spec.Region),
	}
	if innerBackupPath != "" {
		data[KeyInnerBackupPath] = []byte(innerBackupPath)
	}
	return data
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

// secretInSync reports whether secret holds exactly the link in the
// resource's status, unedited, for the current spec.
func secretInSync(secret *corev1.Secret, export *uredisv1alpha1.RedisBackupExport) bool {
	status := export.Status
	if secret == nil || status.BackupPath == "" || status.ExpiresAt == nil || !metav1.IsControlledBy(secret, export) {
		return false
	}
	want := secretData(export, status.BackupPath, "", status.ExpiresAt.Time)
	for key, value := range want {
		if string(secret.Data[key]) != string(value) {
			return false
		}
	}
	return secret.Annotations[AnnotationDataHash] == dataHash(secret.Data)
}

// writeSecret creates or updates the target Secret with data. current is the
// cached Secret of that name, nil when the cache has none; the cache only
// holds Secrets this operator manages.
func (r *RedisBackupExportReconciler) writeSecret(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, current *corev1.Secret, data map[string][]byte) error {
	if current == nil {
		return r.createSecret(ctx, export, data)
	}
	if !metav1.IsControlledBy(current, export) {
		return newConflictError(export)
	}
	desired := current.DeepCopy()
	r.shapeSecret(desired, data)
	if err := controllerutil.SetControllerReference(export, desired, r.Scheme()); err != nil {
		return err
	}
	if secretsEqual(current, desired) {
		return nil
	}
	// A merge patch without a resourceVersion: the cache may lag behind by a
	// write, and ownership was checked above.
	return r.Patch(ctx, desired, client.MergeFrom(current))
}

func (r *RedisBackupExportReconciler) createSecret(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, data map[string][]byte) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: export.TargetSecretName(), Namespace: export.Namespace},
		Type:       corev1.SecretTypeOpaque,
	}
	r.shapeSecret(secret, data)
	if err := controllerutil.SetControllerReference(export, secret, r.Scheme()); err != nil {
		return err
	}
	err := r.Create(ctx, secret)
	if apierrors.IsAlreadyExists(err) {
		return r.classifyExistingSecret(ctx, export)
	}
	return err
}

// classifyExistingSecret explains a failed create: either a Secret we do
// not own, or our own one that the cache has not seen yet (a retry fixes).
func (r *RedisBackupExportReconciler) classifyExistingSecret(ctx context.Context, export *uredisv1alpha1.RedisBackupExport) error {
	existing := &corev1.Secret{}
	key := types.NamespacedName{Namespace: export.Namespace, Name: export.TargetSecretName()}
	if err := r.APIReader.Get(ctx, key, existing); err != nil {
		return err
	}
	if metav1.IsControlledBy(existing, export) && existing.Labels[LabelManagedBy] == ManagedByValue {
		return errCacheLagging
	}
	return newConflictError(export)
}

// shapeSecret sets the operator-owned parts of a Secret.
func (r *RedisBackupExportReconciler) shapeSecret(secret *corev1.Secret, data map[string][]byte) {
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	secret.Labels[LabelManagedBy] = ManagedByValue
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[AnnotationDataHash] = dataHash(data)
	secret.Data = data
	secret.StringData = nil
}

func secretsEqual(a, b *corev1.Secret) bool {
	return maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		maps.EqualFunc(a.Data, b.Data, func(x, y []byte) bool { return string(x) == string(y) }) &&
		slices.EqualFunc(a.OwnerReferences, b.OwnerReferences, func(x, y metav1.OwnerReference) bool {
			return x.UID == y.UID && x.Controller != nil && y.Controller != nil && *x.Controller == *y.Controller
		})
}
