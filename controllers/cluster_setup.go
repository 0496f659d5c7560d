package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/expiring"
)

// SetupWithManager registers the reconciler. It needs the manager's cache
// to see every namespace: the Namespaces (metadata), and the managed
// Secrets everywhere.
func (r *ClusterRedisBackupExportReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrentReconciles int) error {
	if r.SecretMetadata == nil {
		return errors.New("the reconciler needs a Secret metadata cache")
	}
	r.credentials = newCredentialStore(r.APIReader)
	r.recent = newRecentStatuses(30*time.Second, time.Now,
		func(e *uredisv1alpha1.ClusterRedisBackupExport) *uredisv1alpha1.ClusterRedisBackupExportStatus {
			return &e.Status
		},
		(*uredisv1alpha1.ClusterRedisBackupExportStatus).DeepCopy)
	r.ownWrites = expiring.New[string, struct{}](2*time.Minute, time.Now)
	r.share = newFairShare(maxConcurrentReconciles)
	r.outcomes = outcomes{policy: r.Policy, transient: r.TransientBackoff, permanent: r.PermanentBackoff}
	err := mgr.GetFieldIndexer().IndexField(context.Background(), secretMetadataObject(), indexSecretOwnerUID, func(o client.Object) []string {
		if uid := o.GetAnnotations()[uredisv1alpha1.AnnotationExportUID]; uid != "" {
			return []string{uid}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("indexing managed Secrets by their resource: %w", err)
	}
	namespace := &metav1.PartialObjectMetadata{}
	namespace.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return ctrl.NewControllerManagedBy(mgr).
		Named("clusterredisbackupexport").
		For(&uredisv1alpha1.ClusterRedisBackupExport{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// The managed Secrets, by metadata, but for the operator's own
		// writes: the resource that created one, or that wants its name.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.exportsForSecret), builder.OnlyMetadata,
			builder.WithPredicates(notOwnWrite(r.ownWrites))).
		// Every other Secret's identity: credentials, and foreign Secrets
		// holding (or freeing) a target name.
		WatchesRawSource(source.Kind(r.SecretMetadata, secretMetadataObject(),
			handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, secret *metav1.PartialObjectMetadata) []reconcile.Request {
				return r.exportsForSecret(ctx, secret)
			}))).
		// Namespaces created, deleted or relabelled.
		Watches(namespace, handler.EnqueueRequestsFromMapFunc(r.allExports), builder.OnlyMetadata,
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesRawSource(source.Channel(r.share.wake, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}).
		Complete(r)
}

// exportsForSecret maps a Secret event to the resources that created the
// Secret, use it as credentials, or write Secrets of its name. There are
// few ClusterRedisBackupExports: they are all looked at.
func (r *ClusterRedisBackupExportReconciler) exportsForSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	uid := secret.GetAnnotations()[uredisv1alpha1.AnnotationExportUID]
	return r.exportsWhere(ctx, func(e *uredisv1alpha1.ClusterRedisBackupExport) bool {
		ref := e.Spec.CredentialsRef
		return string(e.UID) == uid || e.TargetSecretName() == secret.GetName() ||
			(ref.Namespace == secret.GetNamespace() && ref.Name == secret.GetName())
	})
}

// allExports maps a Namespace event to every resource: any may select it.
func (r *ClusterRedisBackupExportReconciler) allExports(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.exportsWhere(ctx, func(*uredisv1alpha1.ClusterRedisBackupExport) bool { return true })
}

func (r *ClusterRedisBackupExportReconciler) exportsWhere(ctx context.Context, match func(*uredisv1alpha1.ClusterRedisBackupExport) bool) []reconcile.Request {
	var exports uredisv1alpha1.ClusterRedisBackupExportList
	if err := r.List(ctx, &exports, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing ClusterRedisBackupExports for an event")
		return nil
	}
	var requests []reconcile.Request
	for i := range exports.Items {
		if match(&exports.Items[i]) {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&exports.Items[i])})
		}
	}
	return requests
}
