package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// namespaceView is what the caches show of a ClusterRedisBackupExport's
// namespaces.
type namespaceView struct {
	// selected are the existing, not terminating, namespaces the spec
	// selects, by name.
	selected []string
	// secrets are the cached managed Secrets of the target's name, by
	// namespace.
	secrets map[string]*metav1.PartialObjectMetadata
	// created are the cached Secrets the resource created, anywhere.
	created []*metav1.PartialObjectMetadata
}

// observeNamespaces reads the namespaces and the managed Secrets from the
// caches. An invalid selector is a failure with its reason; nothing is
// selected then.
func (r *ClusterRedisBackupExportReconciler) observeNamespaces(ctx context.Context, export *uredisv1alpha1.ClusterRedisBackupExport) (namespaceView, error) {
	view := namespaceView{secrets: map[string]*metav1.PartialObjectMetadata{}}
	var created metav1.PartialObjectMetadataList
	created.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := r.List(ctx, &created, client.MatchingFields{indexSecretOwnerUID: string(export.UID)}); err != nil {
		return view, err
	}
	for i := range created.Items {
		view.created = append(view.created, &created.Items[i])
	}
	var namespaces metav1.PartialObjectMetadataList
	namespaces.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := r.List(ctx, &namespaces); err != nil {
		return view, err
	}
	selected, err := selectNamespaces(export.Spec, namespaces.Items)
	if err != nil {
		return view, err
	}
	view.selected = selected
	name := export.TargetSecretName()
	for _, ns := range selected {
		secret := secretMetadataObject()
		err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, secret)
		switch {
		case err == nil:
			view.secrets[ns] = secret
		case !apierrors.IsNotFound(err):
			return view, err
		}
	}
	return view, nil
}

// selectNamespaces returns, sorted, the namespaces of spec.namespaces and
// those spec.namespaceSelector matches, among the existing ones that are not
// being deleted.
func selectNamespaces(spec uredisv1alpha1.ClusterRedisBackupExportSpec, namespaces []metav1.PartialObjectMetadata) ([]string, error) {
	selector := labels.Nothing()
	if spec.NamespaceSelector != nil {
		var err error
		if selector, err = metav1.LabelSelectorAsSelector(spec.NamespaceSelector); err != nil {
			return nil, newFailure(uredisv1alpha1.ReasonNamespaceSelectorInvalid, "spec.namespaceSelector is not a valid label selector: %v", err)
		}
	}
	var selected []string
	for _, ns := range namespaces {
		if ns.DeletionTimestamp != nil {
			continue
		}
		if slices.Contains(spec.Namespaces, ns.Name) || selector.Matches(labels.Set(ns.Labels)) {
			selected = append(selected, ns.Name)
		}
	}
	slices.Sort(selected)
	return selected, nil
}

// fanOut is what writing the link into the selected namespaces found.
type fanOut struct {
	selected int
	// written namespaces hold the link (now or already).
	written int
	// failures by namespace: failureErrors (a conflict, a refused write).
	failures map[string]error
	// apiErr is the first Kubernetes API error (a conflict, an outage):
	// the reconcile is retried.
	apiErr error
	// lagging: a Secret the operator just wrote is not in the cache yet.
	lagging bool
	// selectionErr: the namespaces could not be selected (an invalid
	// selector); nothing was written or released.
	selectionErr error
}

// fanOut writes held into the target Secret of every selected namespace
// that does not hold it, at most fanOutWorkers at a time. A namespace
// whose Secret already holds it costs no request. Without write (a
// suspended resource) it only finds out which namespaces hold it, and which
// hold a Secret the resource may not write.
func (r *ClusterRedisBackupExportReconciler) fanOut(ctx context.Context, export *uredisv1alpha1.ClusterRedisBackupExport, view namespaceView, held *heldLink, write bool) fanOut {
	result := fanOut{selected: len(view.selected), failures: map[string]error{}}
	shape := shapeDigest(export.Spec.Target)
	writer := secretWriter{client: r.Client, reader: r.APIReader, ownWrites: r.ownWrites}
	var mu sync.Mutex
	var group errgroup.Group
	group.SetLimit(fanOutWorkers)
	for _, ns := range view.selected {
		group.Go(func() error {
			written, lagging, err := r.writeNamespace(ctx, writer, clusterTarget(export, ns), view.secrets[ns], held, shape, write)
			mu.Lock()
			defer mu.Unlock()
			var failure *failureError
			switch {
			case errors.As(err, &failure):
				result.failures[ns] = err
			case err != nil && result.apiErr == nil:
				result.apiErr = err
			case written:
				result.written++
				result.lagging = result.lagging || lagging
			}
			return nil
		})
	}
	_ = group.Wait() // every namespace's error is in result
	return result
}

// writeNamespace brings one namespace's Secret to held (unless !write):
// written reports that it holds it, lagging that the cache does not show
// the write yet.
func (r *ClusterRedisBackupExportReconciler) writeNamespace(ctx context.Context, writer secretWriter, t secretTarget, cached *metav1.PartialObjectMetadata, held *heldLink, shape string, write bool) (written, lagging bool, err error) {
	switch {
	case cached != nil && !ownsSecret(cached, t.owner):
		return false, false, newConflictError(t)
	case cached == nil && r.foreignSecretExists(ctx, t.key):
		return false, false, newConflictError(t)
	case cached == nil && r.recentlyWritten(t.key, held.hash, shape):
		return true, true, nil
	case cached != nil:
		inSync, err := r.inSync(ctx, t, cached, held, shape)
		if err != nil || inSync {
			return inSync, false, err
		}
	}
	if !write {
		return false, false, nil
	}
	version, err := writer.write(ctx, t, cached, secretContent{data: held.data, hash: held.hash}, false)
	if err != nil {
		return false, false, err
	}
	r.verified.Store(t.key, verifiedSecret{owner: t.owner.GetUID(), resourceVersion: version, hash: held.hash, shape: shape, at: r.Clock.Now()})
	return true, false, nil
}

// foreignSecretExists: the identity cache of unmanaged Secrets holds one of
// that name, so a create would fail; no request is made for it.
func (r *ClusterRedisBackupExportReconciler) foreignSecretExists(ctx context.Context, key types.NamespacedName) bool {
	return r.SecretMetadata.Get(ctx, key, secretMetadataObject()) == nil
}

// recentlyWritten: the operator wrote this very data there moments ago, and
// the cache has not caught up.
func (r *ClusterRedisBackupExportReconciler) recentlyWritten(key types.NamespacedName, hash, shape string) bool {
	v, ok := r.verified.Load(key)
	if !ok {
		return false
	}
	w := v.(verifiedSecret)
	return w.hash == hash && w.shape == shape && r.Clock.Since(w.at) < cacheLagRecheck
}

// inSync reports whether a Secret the resource owns holds held's data in
// the shape the spec asks for. The cached metadata and what the operator
// last wrote or checked there usually prove it; a Secret changed since (or
// unknown since a restart) is read once.
func (r *ClusterRedisBackupExportReconciler) inSync(ctx context.Context, t secretTarget, cached *metav1.PartialObjectMetadata, held *heldLink, shape string) (bool, error) {
	hash := held.hash
	if cached.Annotations[uredisv1alpha1.AnnotationDataHash] != hash || !ownerAsWanted(cached, t) {
		return false, nil
	}
	if v, ok := r.verified.Load(t.key); ok {
		if w := v.(verifiedSecret); w.resourceVersion == cached.ResourceVersion && w.hash == hash && w.shape == shape {
			return true, nil
		}
	}
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, t.key, secret); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if !ownsSecret(secret, t.owner) || contentHash(t.spec, secret.Data, held.expiresAt) != hash || !shapedAsWanted(secret, t, hash) {
		return false, nil
	}
	r.verified.Store(t.key, verifiedSecret{owner: t.owner.GetUID(), resourceVersion: secret.ResourceVersion, hash: hash, shape: shape, at: r.Clock.Now()})
	return true, nil
}

// release empties the Secrets the resource created in namespaces it no
// longer selects (or under a name it no longer uses), and hands them to the
// garbage collector: their owner reference is replaced by one to a
// resource that does not exist (releasedOwnerReference), which the garbage
// collector deletes them for, under its own identity. The manager itself
// may not delete Secrets (config/policy). Secrets it did not create are
// never touched.
func (r *ClusterRedisBackupExportReconciler) release(ctx context.Context, export *uredisv1alpha1.ClusterRedisBackupExport, view namespaceView) error {
	name := export.TargetSecretName()
	var errs []error
	for _, cached := range view.created {
		_, selected := slices.BinarySearch(view.selected, cached.Namespace)
		if (selected && cached.Name == name) || cached.Annotations[uredisv1alpha1.AnnotationDataHash] == releasedHash {
			continue
		}
		errs = append(errs, r.releaseSecret(ctx, export, client.ObjectKeyFromObject(cached)))
	}
	return errors.Join(errs...)
}

func (r *ClusterRedisBackupExportReconciler) releaseSecret(ctx context.Context, export *uredisv1alpha1.ClusterRedisBackupExport, key types.NamespacedName) error {
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, key, secret); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !ownsSecret(secret, export) {
		return nil
	}
	// Two patches: the link goes first, in a patch any API server allows;
	// the owner reference that hands the Secret to the garbage collector
	// second, which an API server with the OwnerReferencesPermissionEnforcement
	// admission plugin refuses (changing owner references there needs
	// delete, which the manager lacks). Refused, the Secret stays, empty,
	// until the resource is deleted.
	emptied := secret.DeepCopy()
	emptied.Data = map[string][]byte{}
	emptied.Annotations = mergeMaps(emptied.Annotations, map[string]string{uredisv1alpha1.AnnotationDataHash: releasedHash})
	if err := r.Patch(ctx, emptied, client.MergeFromWithOptions(secret, client.MergeFromWithOptimisticLock{})); err != nil {
		return withoutServerText(clusterTarget(export, key.Namespace), err)
	}
	r.ownWrites.Put(emptied.ResourceVersion, struct{}{})
	r.verified.Delete(key)
	released := emptied.DeepCopy()
	released.OwnerReferences = slices.DeleteFunc(released.OwnerReferences, func(ref metav1.OwnerReference) bool { return isOwnReference(ref, export) })
	released.OwnerReferences = append(released.OwnerReferences, releasedOwnerReference(export))
	logger := log.FromContext(ctx).WithValues("namespace", key.Namespace, "secret", key.Name)
	if err := r.Patch(ctx, released, client.MergeFromWithOptions(emptied, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsInvalid(err) {
			logger.Info("emptied the Secret of a namespace no longer selected; the API server refused to hand it to the garbage collector, so it stays, empty, until the resource is deleted", "status", apierrors.ReasonForError(err))
			return nil
		}
		return withoutServerText(clusterTarget(export, key.Namespace), err)
	}
	r.ownWrites.Put(released.ResourceVersion, struct{}{})
	logger.Info("released the Secret of a namespace no longer selected")
	return nil
}

// releasedHash marks a released Secret: the hash of no data.
var releasedHash = dataHash(map[string][]byte{})

// releasedUID is the UID of the owner reference of a released Secret: no
// object has it.
func releasedUID(owner metav1.Object) types.UID {
	return owner.GetUID() + "-released"
}

// releasedOwnerReference names owner's kind and name with a UID no object
// has: to the garbage collector the owner is gone, and the Secret is
// deleted.
func releasedOwnerReference(export *uredisv1alpha1.ClusterRedisBackupExport) metav1.OwnerReference {
	gvk := uredisv1alpha1.ClusterGroupVersionKind
	return metav1.OwnerReference{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: export.Name, UID: releasedUID(export)}
}

// linkSpecDigest digests what a link and its Secret data depend on: the
// backup, the credentials, the Secret's key names and its template (a new
// template needs a new link: the status does not keep the link to render
// again). spec.suspend is not in it, so that suspending or resuming is
// not a spec change. Without a template the digest is what it was before
// templates existed.
func linkSpecDigest(spec uredisv1alpha1.ClusterRedisBackupExportSpec) string {
	return digest(struct {
		Backup      uredisv1alpha1.BackupSelection
		Credentials uredisv1alpha1.ClusterCredentialsReference
		Keys        uredisv1alpha1.SecretKeys
		Template    *uredisv1alpha1.SecretTemplate `json:",omitempty"`
	}{spec.BackupSelection, spec.CredentialsRef, spec.Target.Keys, spec.Target.Template})
}

// shapeDigest digests what a Secret's metadata depends on.
func shapeDigest(target uredisv1alpha1.TargetSecret) string {
	return digest(struct {
		Labels      map[string]uredisv1alpha1.LabelValue
		Annotations map[string]uredisv1alpha1.AnnotationValue
		Policy      uredisv1alpha1.CreationPolicy
	}{target.Labels, target.Annotations, target.CreationPolicy})
}

func digest(v any) string {
	body, err := json.Marshal(v) // plain structs, maps with string keys: never fails
	if err != nil {
		panic(fmt.Sprintf("digesting %T: %v", v, err))
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:16])
}

// boundedFailures lists the first MaxNamespaceFailures failures by
// namespace name, and counts them all.
func boundedFailures(failures map[string]error) ([]uredisv1alpha1.NamespaceFailure, int32) {
	namespaces := make([]string, 0, len(failures))
	for ns := range failures {
		namespaces = append(namespaces, ns)
	}
	slices.Sort(namespaces)
	var listed []uredisv1alpha1.NamespaceFailure
	for _, ns := range namespaces[:min(len(namespaces), uredisv1alpha1.MaxNamespaceFailures)] {
		err := failures[ns]
		listed = append(listed, uredisv1alpha1.NamespaceFailure{Namespace: ns, Reason: reasonFor(err), Message: truncate(err.Error(), 256)})
	}
	return listed, int32(len(failures)) //nolint:gosec // bounded by the number of namespaces
}
