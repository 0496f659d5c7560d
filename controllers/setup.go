package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/expiring"
)

// Field indexes over RedisBackupExports, used to find the resources a
// Secret event concerns.
const (
	indexCredentialsSecret = "uredis.dezai.com/credentials-secret" //nolint:gosec // an index name, not a credential
	indexTargetSecret      = "uredis.dezai.com/target-secret"      //nolint:gosec // an index name, not a credential
)

// indexSecretOwnerUID indexes the managed Secrets by their export-uid
// annotation: the Secrets a ClusterRedisBackupExport created.
const indexSecretOwnerUID = uredisv1alpha1.AnnotationExportUID

// SetupWithManager registers the reconciler. Its watches are complete when
// it returns: the RedisBackupExports and the Secrets the operator manages
// come from the manager's cache, the metadata of every other Secret from
// r.SecretMetadata (started by the manager like any cache). No reconcile
// ever waits for a cache to sync: the controller starts once all have.
func (r *RedisBackupExportReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrentReconciles int) error {
	if r.SecretMetadata == nil {
		return errors.New("the reconciler needs a Secret metadata cache")
	}
	if r.credentials == nil {
		r.credentials = newCredentialStore(r.APIReader)
	}
	if r.recent == nil {
		// Far longer than a cache lags behind a write.
		r.recent = newExportStatuses(30*time.Second, time.Now)
	}
	if r.ownWrites == nil {
		// Far longer than a watch event takes to arrive.
		r.ownWrites = expiring.New[string, struct{}](2*time.Minute, time.Now)
	}
	if r.share == nil {
		r.share = newFairShare(maxConcurrentReconciles)
	}
	r.outcomes = outcomes{policy: r.Policy, transient: r.TransientBackoff, permanent: r.PermanentBackoff, omitLink: r.OmitLinkFromStatus}
	if err := indexExports(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("redisbackupexport").
		// Status writes bump neither generation nor annotations, so the
		// reconciler's own status patches do not wake it up again.
		For(&uredisv1alpha1.RedisBackupExport{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// The managed Secrets, by their metadata only (secretcache.go). The
		// operator's own writes to a Secret would only wake it to find
		// the Secret in sync.
		Owns(&corev1.Secret{}, builder.OnlyMetadata, builder.WithPredicates(r.notOwnSecretWrite())).
		// A managed Secret deleted: also the resources that only name it
		// (an Orphan policy's Secret has no owner reference; another
		// resource may be waiting for the name to be free).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.exportsReferencingSecret), builder.OnlyMetadata, builder.WithPredicates(deletionsOnly())).
		// Every other Secret, by its metadata: credentials appearing or
		// changing, a foreign Secret freeing a target name.
		WatchesRawSource(source.Kind(r.SecretMetadata, secretMetadataObject(),
			handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, secret *metav1.PartialObjectMetadata) []reconcile.Request {
				return r.exportsReferencingSecret(ctx, secret)
			}))).
		// Refreshes that fairShare turned away, when a place frees up.
		WatchesRawSource(source.Channel(r.share.wake, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}).
		Complete(r)
}

func indexExports(ctx context.Context, indexer client.FieldIndexer) error {
	// Only resources that a Secret event can help are indexed: a Ready
	// resource has no use for a credentials Secret changing, and needs its
	// target Secret's events only when no owner reference brings them. This
	// keeps the indexes (a set of keys per value) small at any scale.
	indexes := map[string]client.IndexerFunc{
		indexCredentialsSecret: func(o client.Object) []string {
			export := o.(*uredisv1alpha1.RedisBackupExport)
			switch {
			case isReady(export):
				return nil
			case export.Spec.CredentialsRef != nil:
				return []string{export.Spec.CredentialsRef.Name}
			default:
				return []string{operatorCredentialsIndex}
			}
		},
		indexTargetSecret: func(o client.Object) []string {
			export := o.(*uredisv1alpha1.RedisBackupExport)
			if isReady(export) && export.Spec.Target.CreationPolicy != uredisv1alpha1.CreationPolicyOrphan {
				return nil
			}
			return []string{export.TargetSecretName()}
		},
	}
	for name, extract := range indexes {
		if err := indexer.IndexField(ctx, &uredisv1alpha1.RedisBackupExport{}, name, extract); err != nil {
			return fmt.Errorf("indexing RedisBackupExports by %s: %w", name, err)
		}
	}
	return nil
}

// exportsReferencingSecret maps a Secret event to the resources that use the
// Secret as credentials or as their target (a foreign Secret that blocked a
// target may have gone away).
func (r *RedisBackupExportReconciler) exportsReferencingSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	queries := [][]client.ListOption{
		{client.InNamespace(secret.GetNamespace()), client.MatchingFields{indexCredentialsSecret: secret.GetName()}},
		{client.InNamespace(secret.GetNamespace()), client.MatchingFields{indexTargetSecret: secret.GetName()}},
	}
	if o := r.OperatorCredentials; o != nil && o.Secret == client.ObjectKeyFromObject(secret) {
		// The operator's own credentials changed: every resource using them.
		queries = append(queries, []client.ListOption{client.MatchingFields{indexCredentialsSecret: operatorCredentialsIndex}})
	}
	var requests []reconcile.Request
	for _, query := range queries {
		var exports uredisv1alpha1.RedisBackupExportList
		if err := r.List(ctx, &exports, query...); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing RedisBackupExports for a Secret event")
			continue
		}
		for _, export := range exports.Items {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&export)})
		}
	}
	return requests
}

// notOwnSecretWrite drops the events of a managed Secret that the operator
// caused itself: creations, and updates to a resourceVersion it wrote.
// Deletions and anyone else's edits pass. (An event that arrives before the
// write's answer passes too, and wakes the resource to find it in sync.)
func (r *RedisBackupExportReconciler) notOwnSecretWrite() predicate.Funcs {
	return notOwnWrite(r.ownWrites)
}

// notOwnWrite is notOwnSecretWrite for the writes recorded in ownWrites.
func notOwnWrite(ownWrites *expiring.Map[string, struct{}]) predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			_, own := ownWrites.Get(e.ObjectNew.GetResourceVersion())
			return !own
		},
	}
}

// deletionsOnly lets through only deletions.
func deletionsOnly() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func isReady(export *uredisv1alpha1.RedisBackupExport) bool {
	return meta.IsStatusConditionTrue(export.Status.Conditions, uredisv1alpha1.ConditionReady)
}
