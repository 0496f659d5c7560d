package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// The Secrets the operator manages are cached as metadata only: the API
// server never sends their data to the operator's watch, and the cache keeps
// only the handful of fields the reconciler reads. Anyone who can label a
// Secret can make the cache hold it; this way a labelled Secret costs a few
// hundred bytes however large its data, labels or annotations are.
//
// The reconciler never needs a value back. A Secret whose resourceVersion is
// the one recorded in status.secretResourceVersion, when the operator last
// wrote (or checked) it, is that write: any edit by anyone changes the
// resourceVersion, and only then is the Secret read, once, to check it
// (knownInSync, targetInSync).

// maxCachedValue bounds each label or annotation value the cache keeps: the
// operator's own values (a UID, a 32-character hash) are shorter.
const maxCachedValue = 64

// cachedAnnotations are the only annotations of a managed Secret the cache
// keeps.
var cachedAnnotations = []string{uredisv1alpha1.AnnotationDataHash, uredisv1alpha1.AnnotationExportUID}

// CacheManagedSecret is the cache transform of the managed Secrets' metadata:
// it keeps the identity, the managed-by label, the operator's annotations and
// the controller reference, and drops everything else. Informers hand a
// transform a fresh object (and may hand it one it already transformed: it
// is idempotent).
func CacheManagedSecret(obj any) (any, error) {
	secret, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	compact := identity(secret)
	compact.DeletionTimestamp = secret.DeletionTimestamp
	if value := secret.Labels[uredisv1alpha1.LabelManagedBy]; value == uredisv1alpha1.ManagedByValue {
		compact.Labels = map[string]string{uredisv1alpha1.LabelManagedBy: value}
	}
	for _, key := range cachedAnnotations {
		if value, found := secret.Annotations[key]; found && len(value) <= maxCachedValue {
			if compact.Annotations == nil {
				compact.Annotations = make(map[string]string, len(cachedAnnotations))
			}
			compact.Annotations[key] = value
		}
	}
	if ref := metav1.GetControllerOfNoCopy(secret); ref != nil && (ref.Kind == uredisv1alpha1.GroupVersionKind.Kind || ref.Kind == uredisv1alpha1.ClusterGroupVersionKind.Kind) && len(ref.Name) <= 253 {
		compact.OwnerReferences = []metav1.OwnerReference{*ref}
	}
	return compact, nil
}

// CacheSecretIdentity is the cache transform of the Secrets the operator
// does not manage: their bare identity (name, namespace, UID,
// resourceVersion), enough to notice one appearing, changing or going.
func CacheSecretIdentity(obj any) (any, error) {
	secret, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	return identity(secret), nil
}

func identity(secret *metav1.PartialObjectMetadata) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: secret.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:            secret.Name,
			Namespace:       secret.Namespace,
			UID:             secret.UID,
			ResourceVersion: secret.ResourceVersion,
		},
	}
}

// secretMetadataObject is an empty Secret metadata object to read into.
func secretMetadataObject() *metav1.PartialObjectMetadata {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return meta
}

// cachedTargetSecret returns the metadata of the resource's target Secret
// if the cache holds it (that is, if it carries the managed-by label).
func (r *RedisBackupExportReconciler) cachedTargetSecret(ctx context.Context, export *uredisv1alpha1.RedisBackupExport) (*metav1.PartialObjectMetadata, error) {
	secret := secretMetadataObject()
	err := r.Get(ctx, types.NamespacedName{Namespace: export.Namespace, Name: export.TargetSecretName()}, secret)
	if err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return secret, nil
}
