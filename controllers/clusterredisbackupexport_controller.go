package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/expiring"
	"github.com/dezai/uredis-backup-operator/internal/metrics"
	"github.com/dezai/uredis-backup-operator/internal/schedule"
)

// ClusterRedisBackupExportReconciler keeps each ClusterRedisBackupExport's
// link fresh in a Secret in every namespace it selects: one cloud API call
// per refresh, then one Secret write per namespace. It shares with the
// RedisBackupExportReconciler the call (linkFetcher), the credentials
// (credentialStore), the Secret writes (secretWriter), the failure reasons
// (errors.go) and the timing (schedule, outcomes).
type ClusterRedisBackupExportReconciler struct {
	// Client reads ClusterRedisBackupExports, Namespaces (metadata) and
	// managed Secrets (metadata) from the cache and writes through.
	client.Client
	// APIReader reads uncached: credentials, and a managed Secret whose
	// data must be checked.
	APIReader client.Reader
	// SecretMetadata is the identity cache of the Secrets the operator does
	// not manage (see RedisBackupExportReconciler.SecretMetadata).
	SecretMetadata   cache.Cache
	Cloud            BackupLinkResolver
	Clock            clock.PassiveClock
	Policy           schedule.Policy
	TransientBackoff schedule.Backoff
	PermanentBackoff schedule.Backoff
	Jitter           func() float64
	Events           events.EventRecorder

	outcomes    outcomes
	credentials *credentialStore
	share       *fairShare
	ownWrites   *expiring.Map[string, struct{}]
	recent      *recentStatuses[*uredisv1alpha1.ClusterRedisBackupExport, uredisv1alpha1.ClusterRedisBackupExportStatus]
	// links holds, per resource name, the Secret data of its current link
	// (heldLink): the status never holds the link, so after a restart it
	// is read back from one of the Secrets.
	links sync.Map
	// verified holds, per Secret (types.NamespacedName), what the operator
	// last wrote there or checked (verifiedSecret).
	verified sync.Map
	// rejectedWith: as on RedisBackupExportReconciler, per resource name.
	rejectedWith sync.Map
}

// heldLink is the data every selected namespace's Secret gets: the default
// keys, or the template rendered once for the link expiring at expiresAt.
type heldLink struct {
	uid       types.UID
	hash      string
	data      map[string][]byte
	expiresAt time.Time
}

// verifiedSecret is a Secret known to hold data of hash, shaped as a spec
// target of digest shape asks, at resourceVersion.
type verifiedSecret struct {
	owner           types.UID
	resourceVersion string
	hash, shape     string
	at              time.Time
}

// fanOutWorkers bounds the Secret writes of one reconcile in flight.
const fanOutWorkers = 32

// +kubebuilder:rbac:groups=uredis.dezai.com,resources=clusterredisbackupexports,verbs=get;list;watch
// +kubebuilder:rbac:groups=uredis.dezai.com,resources=clusterredisbackupexports/status,verbs=patch
// +kubebuilder:rbac:groups=uredis.dezai.com,resources=clusterredisbackupexports/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Reconcile obtains the link when it is due, writes it into every selected
// namespace that does not hold it, releases the Secrets of namespaces that
// are no longer selected, and schedules the next visit.
func (r *ClusterRedisBackupExportReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	export := &uredisv1alpha1.ClusterRedisBackupExport{}
	if err := r.Get(ctx, req.NamespacedName, export); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !export.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the Secrets go with it through their owner references
	}
	r.recent.freshest(export)
	original := export.DeepCopy()

	view, viewErr := r.observeNamespaces(ctx, export)
	if isKubernetesAPIError(viewErr) {
		return ctrl.Result{}, viewErr
	}
	source := credentialSource{
		secret: types.NamespacedName{Namespace: export.Spec.CredentialsRef.Namespace, Name: export.Spec.CredentialsRef.Name},
		ref:    export.Spec.CredentialsRef.CredentialsReference,
	}
	credentialsVersion := credentialsVersion(ctx, r.SecretMetadata, source)
	a := attempt{now: r.Clock.Now(), jitter: r.Jitter()}
	spec := linkSpecDigest(export.Spec)
	held, err := r.heldLink(ctx, export, spec, view)
	if err != nil {
		return ctrl.Result{}, err
	}
	decision := schedule.Decide(r.Policy, r.observe(export, spec, held != nil, credentialsVersion, a.now))
	log.FromContext(ctx).V(1).Info("decided", "action", decision.Action.String(), "reason", decision.Reason)
	if decision.Action == schedule.Refresh {
		link, busy := r.refresh(ctx, export, view, viewErr, credentialAccess{source: source, version: credentialsVersion}, decision.Forced, &a)
		if busy {
			// As on a RedisBackupExport: back when a place is free,
			// without recording anything.
			return ctrl.Result{RequeueAfter: busyRetryDelay(a.jitter)}, nil
		}
		if link != nil {
			held = link
		}
	}
	var fan fanOut
	if held != nil && clusterLinkValid(export, spec, a) {
		// Suspended, it only looks: which namespaces hold the link.
		fan = r.fanOut(ctx, export, view, held, !export.Spec.Suspend)
	} else {
		fan = fanOut{selected: len(view.selected)}
	}
	fan.selectionErr = viewErr
	var releaseErr error
	if !export.Spec.Suspend && viewErr == nil {
		// Suspended, a namespace that stops matching keeps its Secret
		// until the resource is resumed. Without a view of the selected
		// namespaces (an invalid selector), none is released: an edit
		// with a typo must not empty every Secret.
		releaseErr = r.release(ctx, export, view)
	}
	requeue := r.outcomes.summarizeCluster(export, a, spec, held, fan)
	r.report(ctx, original, export, a, spec, credentialsVersion)
	if err := r.patchStatus(ctx, original, export); err != nil {
		return ctrl.Result{}, err
	}
	if err := errors.Join(fan.apiErr, releaseErr); err != nil {
		return ctrl.Result{}, err
	}
	if fan.lagging && (requeue == 0 || requeue > cacheLagRecheck) {
		requeue = cacheLagRecheck
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// cacheLagRecheck is when a resource comes back to check Secrets it wrote
// that the cache did not show yet.
const cacheLagRecheck = 5 * time.Second

// refresh fetches a new link with one call and records the outcome in a;
// on success it returns the data every Secret gets, the template rendered
// once for all of them. busy: the cloud API's budget has no place free, and
// nothing was attempted.
func (r *ClusterRedisBackupExportReconciler) refresh(ctx context.Context, export *uredisv1alpha1.ClusterRedisBackupExport, view namespaceView, viewErr error, access credentialAccess, forced bool, a *attempt) (held *heldLink, busy bool) {
	if err := checkTemplates(export.Spec.Target, export.Spec.BackupSelection, a.now); err != nil {
		a.err = err
		return nil, false
	}
	if viewErr == nil && len(view.selected) == 0 {
		viewErr = newFailure(uredisv1alpha1.ReasonNoNamespaceSelected,
			"no existing namespace matches spec.namespaceSelector or spec.namespaces, so no link is fetched: create or label a namespace, or change the spec")
	}
	if viewErr != nil {
		a.err = viewErr
		return nil, false
	}
	links := linkFetcher{cloud: r.Cloud, credentials: r.credentials, share: r.share, policy: r.Policy}
	backup, link, err := links.fetch(ctx, types.NamespacedName{Name: export.Name}, export.Spec.BackupSelection, access, forced, func() error { return nil })
	if errors.Is(err, errBudgetBusy) {
		return nil, true
	}
	if err != nil {
		a.err = err
		return nil, false
	}
	content, err := contentFor(clusterTarget(export, ""), linkData{
		backupPath: link.URL, innerBackupPath: link.InnerURL, backupID: backup.id, expiresAt: link.ExpiresAt,
	})
	if err != nil {
		// A template that fails on the real link: the link is dropped,
		// and every Secret keeps what it holds.
		a.err = err
		return nil, false
	}
	a.backupID, a.link = backup.id, &link
	held = &heldLink{uid: export.UID, hash: content.hash, data: content.data, expiresAt: link.ExpiresAt}
	r.links.Store(export.Name, held)
	return held, false
}

// clusterTarget is the target Secret of export in namespace.
func clusterTarget(export *uredisv1alpha1.ClusterRedisBackupExport, namespace string) secretTarget {
	return secretTarget{
		owner: export, gvk: uredisv1alpha1.ClusterGroupVersionKind,
		key:  types.NamespacedName{Namespace: namespace, Name: export.TargetSecretName()},
		spec: export.Spec.Target, region: export.Spec.Region,
	}
}

// clusterLinkValid: the status holds a link for the current spec that has
// not expired (a new one included).
func clusterLinkValid(export *uredisv1alpha1.ClusterRedisBackupExport, spec string, a attempt) bool {
	return a.link != nil || !clusterValidUntil(export, spec, a.now).IsZero()
}

// heldLink returns the current link's Secret data: remembered, or read back
// from a Secret that holds it (after a restart), checked against the hash
// in status so that no edited Secret can pass another link on to the other
// namespaces. nil when the status holds no link for the current spec, or no
// Secret holds it any more.
func (r *ClusterRedisBackupExportReconciler) heldLink(ctx context.Context, export *uredisv1alpha1.ClusterRedisBackupExport, spec string, view namespaceView) (*heldLink, error) {
	st := export.Status
	if st.DataHash == "" || st.LinkSpec != spec || st.ExpiresAt == nil {
		return nil, nil
	}
	if v, ok := r.links.Load(export.Name); ok {
		if held := v.(*heldLink); held.uid == export.UID && held.hash == st.DataHash {
			return held, nil
		}
	}
	const maxReads = 3 // a few Secrets edited by their tenants do not cost a read each
	reads := 0
	for _, ns := range view.selected {
		cached := view.secrets[ns]
		if cached == nil || !ownsSecret(cached, export) || cached.Annotations[uredisv1alpha1.AnnotationDataHash] != st.DataHash {
			continue
		}
		if reads++; reads > maxReads {
			break
		}
		secret := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cached), secret); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		if !ownsSecret(secret, export) || contentHash(export.Spec.Target, secret.Data, st.ExpiresAt.Time) != st.DataHash {
			continue
		}
		held := &heldLink{uid: export.UID, hash: st.DataHash, data: secret.Data, expiresAt: st.ExpiresAt.Time}
		r.links.Store(export.Name, held)
		return held, nil
	}
	return nil, nil
}

// observe gathers what schedule.Decide needs. Failures of single
// namespaces are not the link's: they never ask for a call.
func (r *ClusterRedisBackupExportReconciler) observe(export *uredisv1alpha1.ClusterRedisBackupExport, spec string, held bool, credentialsVersion string, now time.Time) schedule.Observation {
	st := export.Status
	ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady)
	obs := schedule.Observation{
		Now: now,
		// A new generation that changes what the link depends on; a change
		// of the namespaces, labels or annotations needs no new link.
		SpecChanged:  (ready == nil || ready.ObservedGeneration != export.Generation) && st.LinkSpec != spec,
		HasLink:      clusterHasLink(export, spec),
		SecretInSync: held,
		Suspended:    export.Spec.Suspend,
	}
	if ready != nil && !linkReason(export, spec, ready.Reason, now) {
		ready = nil
	}
	rejected, rejectionSeen := r.rejectedWith.Load(export.Name)
	observeAttempts(&obs, ready, rejectedCredentials{rejected, rejectionSeen}, credentialsVersion,
		attemptTimes{st.LastRefreshTime, st.LastFailureTime, st.ExpiresAt, st.NextRefreshTime})
	return obs
}

// linkReason: a Ready reason that says something about the link, and so
// may ask for a call. Namespaces failing or not written yet do not, nor
// does a suspension while the link for the current spec is still valid:
// resuming then writes that link where it is missing, and calls only if
// the refresh is due. A suspension without a valid link is re-checked at
// once on resume, as on a RedisBackupExport.
func linkReason(export *uredisv1alpha1.ClusterRedisBackupExport, spec, reason string, now time.Time) bool {
	switch reason {
	case uredisv1alpha1.ReasonSecretConflict, uredisv1alpha1.ReasonSecretWriteRefused, uredisv1alpha1.ReasonTargetInvalid, uredisv1alpha1.ReasonNamespacesPending:
		return false
	case uredisv1alpha1.ReasonSuspended:
		return clusterValidUntil(export, spec, now).IsZero()
	}
	return true
}

// report counts and logs an attempt's outcome, records an Event when the
// Ready condition changes, and remembers rejected credentials. Neither
// names the link.
func (r *ClusterRedisBackupExportReconciler) report(ctx context.Context, original, export *uredisv1alpha1.ClusterRedisBackupExport, a attempt, spec, credentialsVersion string) {
	logger := log.FromContext(ctx)
	switch {
	case a.link != nil:
		metrics.ObserveRefresh(true, uredisv1alpha1.ReasonRefreshed)
		r.rejectedWith.Delete(export.Name)
		logger.Info("refreshed link", "expiresAt", formatTime(a.link.ExpiresAt), "namespaces", export.Status.NamespacesSelected)
	case a.err != nil:
		reportFailure(ctx, a.err, export.Status.FailureCount, &r.rejectedWith, export.Name, credentialsVersion)
	}
	before := meta.FindStatusCondition(original.Status.Conditions, uredisv1alpha1.ConditionReady)
	after := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	if after == nil || (before != nil && before.Status == after.Status && before.Reason == after.Reason) {
		return
	}
	switch {
	case after.Status == metav1.ConditionFalse:
		reason := after.Reason
		if expiryEvent(after, clusterLinkExpired(export, spec, a.now)) {
			reason = uredisv1alpha1.ReasonLinkExpired
		}
		r.Events.Eventf(export, nil, corev1.EventTypeWarning, reason, "Refresh", "%s", truncate(after.Message, maxErrorText))
	case before != nil:
		r.Events.Eventf(export, nil, corev1.EventTypeNormal, after.Reason, "Refresh", "%s", truncate(after.Message, maxErrorText))
	}
}

func (r *ClusterRedisBackupExportReconciler) patchStatus(ctx context.Context, original, export *uredisv1alpha1.ClusterRedisBackupExport) error {
	return patchStatus(ctx, r.Client, original, export, equality.Semantic.DeepEqual(original.Status, export.Status), r.recent)
}

// forget drops what is remembered about a deleted resource.
func (r *ClusterRedisBackupExportReconciler) forget(name string) {
	r.rejectedWith.Delete(name)
	v, ok := r.links.LoadAndDelete(name)
	if !ok {
		return
	}
	uid := v.(*heldLink).uid
	r.verified.Range(func(key, value any) bool {
		if value.(verifiedSecret).owner == uid {
			r.verified.Delete(key)
		}
		return true
	})
}

// describeFailures lists failed namespaces for a condition message.
func describeFailures(failures []uredisv1alpha1.NamespaceFailure, count int32) string {
	text := ""
	for i, f := range failures {
		if i > 0 {
			text += "; "
		}
		text += fmt.Sprintf("%s (%s)", f.Namespace, f.Reason)
	}
	if more := int(count) - len(failures); more > 0 {
		text += fmt.Sprintf("; and %d more", more)
	}
	return text
}
