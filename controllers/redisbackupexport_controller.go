// Package controllers holds the RedisBackupExport reconciler. It is kept
// thin: timing decisions live in internal/schedule, status wording in
// status.go, and the cloud API behind the BackupLinkResolver interface.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/expiring"
	"github.com/dezai/uredis-backup-operator/internal/metrics"
	"github.com/dezai/uredis-backup-operator/internal/schedule"
	"github.com/dezai/uredis-backup-operator/internal/secrettemplate"
)

// BackupLinkResolver is the part of the cloud client the reconciler uses.
// An answer another resource obtained with the same credentials at most
// maxAge ago may be returned instead of a new call (cloud.SharedResolver).
type BackupLinkResolver interface {
	ResolveBackupLink(ctx context.Context, creds cloud.Credentials, req cloud.BackupURLRequest, maxAge time.Duration) (cloud.BackupLink, error)
	ListBackups(ctx context.Context, creds cloud.Credentials, req cloud.ListBackupsRequest) ([]cloud.Backup, error)
}

// shareWindow is how old another resource's answer for the same backup and
// credentials may be and still be taken instead of a call of our own.
const shareWindow = 15 * time.Second

// RedisBackupExportReconciler keeps each RedisBackupExport's link fresh in
// its target Secret.
type RedisBackupExportReconciler struct {
	// Client reads RedisBackupExports and managed Secrets from the cache and
	// writes through to the API server.
	client.Client
	// APIReader reads uncached: credentials Secrets, and a target Secret the
	// cache cannot see because another party owns it.
	APIReader client.Reader
	// SecretMetadata is a cache of the identity (name, resourceVersion) of
	// the Secrets the operator does not manage, to notice credentials
	// Secrets appearing or changing without caching their data. Its events
	// reach the controller through the watch SetupWithManager registers.
	SecretMetadata cache.Cache
	Cloud          BackupLinkResolver
	Clock          clock.PassiveClock
	Policy         schedule.Policy
	// TransientBackoff paces retries after outages; PermanentBackoff after
	// errors only the user can fix (slowly: credentials or permissions can
	// change outside the cluster).
	TransientBackoff schedule.Backoff
	PermanentBackoff schedule.Backoff
	// Jitter returns a random number in [0, 1).
	Jitter func() float64
	// Events records Refreshed and RefreshFailed events.
	Events events.EventRecorder
	// OperatorCredentials, when configured, serve resources without
	// spec.credentialsRef in the namespaces they allow.
	OperatorCredentials *OperatorCredentials

	// OmitLinkFromStatus keeps status.backupPath empty: the link lives only
	// in the target Secret, and a Secret deleted during an outage cannot be
	// restored from the status.
	OmitLinkFromStatus bool

	outcomes    outcomes
	credentials *credentialStore
	// share keeps one namespace from holding every worker on the cloud
	// API's budget.
	share *fairShare
	// ownWrites holds the resourceVersions of the Secrets the operator
	// wrote in the last minutes, whose events it need not act upon.
	ownWrites *expiring.Map[string, struct{}]
	// rejectedWith remembers, per resource, the credentials Secret's
	// resourceVersion when the provider last rejected the resource, so that
	// a credentials change retries at once and anything else waits.
	rejectedWith sync.Map
	// recent holds the statuses written in the last seconds, see
	// recentStatuses.
	recent *recentStatuses[*uredisv1alpha1.RedisBackupExport, uredisv1alpha1.RedisBackupExportStatus]
}

// +kubebuilder:rbac:groups=uredis.dezai.com,resources=redisbackupexports,verbs=get;list;watch
// +kubebuilder:rbac:groups=uredis.dezai.com,resources=redisbackupexports/status,verbs=patch
// +kubebuilder:rbac:groups=uredis.dezai.com,resources=redisbackupexports/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// Reconcile brings one RedisBackupExport's Secret and status up to date and
// schedules the next visit.
func (r *RedisBackupExportReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	export := &uredisv1alpha1.RedisBackupExport{}
	if err := r.Get(ctx, req.NamespacedName, export); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !export.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // the Secret goes with it through its owner reference
	}
	r.recent.freshest(export)
	original := export.DeepCopy()
	followSuspendToggle(export)

	secret, err := r.cachedTargetSecret(ctx, export)
	if err != nil {
		return ctrl.Result{}, err
	}
	inSync, verified, err := r.targetInSync(ctx, export, secret)
	if err != nil {
		return ctrl.Result{}, err
	}
	source, sourceErr := r.credentialSourceFor(ctx, export)
	if isKubernetesAPIError(sourceErr) {
		return ctrl.Result{}, sourceErr
	}
	credentialsVersion := r.credentialsVersion(ctx, source)
	a := attempt{now: r.Clock.Now(), jitter: r.Jitter(), secretVersion: verified, secretInSync: inSync}
	decision := schedule.Decide(r.Policy, r.observe(export, inSync, credentialsVersion, a.now))
	log.FromContext(ctx).V(1).Info("decided", "action", decision.Action.String(), "reason", decision.Reason)

	switch {
	case decision.Action == schedule.Refresh:
		previous := previousLink(export)
		var written string
		a.backupID, a.link, written, a.err = r.refresh(ctx, export, secret, credentialAccess{source, sourceErr, credentialsVersion}, decision.Forced)
		if written != "" {
			a.secretVersion = written
		}
		if errors.Is(a.err, errBudgetBusy) {
			// Other refreshes hold this namespace's share of the cloud
			// API's budget, or all of it: come back when one is done
			// (fairShare wakes it), without recording anything.
			return ctrl.Result{RequeueAfter: busyRetryDelay(a.jitter)}, nil
		}
		if isKubernetesAPIError(a.err) {
			return ctrl.Result{}, a.err
		}
		if a.link != nil {
			// Before the status write: should it fail, the next attempt
			// finds the restarts done (restart.go), rather than missing.
			a.restarts = r.restartTargets(ctx, export, previous, a)
		}
		if err := r.restoreSecret(ctx, export, secret, inSync, &a); isKubernetesAPIError(err) {
			return ctrl.Result{}, err
		}
		// A force-refresh request is handled by this attempt, whatever its
		// outcome: retrying it outside the backoff would be a hot loop.
		export.Status.LastHandledRefreshRequest = refreshRequest(export)
	case decision.Declined != schedule.NotDeclined:
		export.Status.LastHandledRefreshRequest = refreshRequest(export)
		r.Events.Eventf(export, nil, corev1.EventTypeNormal, uredisv1alpha1.EventRefreshRequestDeclined, "Refresh", "%s", r.declineNote(decision))
	}
	requeue := r.outcomes.summarize(export, a)
	r.report(ctx, original, export, a, credentialsVersion)
	return ctrl.Result{RequeueAfter: requeue}, r.patchStatus(ctx, original, export)
}

// declineNote tells why a force-refresh request was acknowledged without a
// refresh. It names no time, so that repeated requests make one Event
// series rather than one Event each.
func (r *RedisBackupExportReconciler) declineNote(decision schedule.Decision) string {
	switch decision.Declined {
	case schedule.DeclinedCredentialsRejected:
		return uredisv1alpha1.RefreshRequestDeclinedPrefix + "the provider rejected the credentials, and only new credentials (or the planned retry) bring another attempt"
	case schedule.DeclinedSuspended:
		return uredisv1alpha1.RefreshRequestDeclinedPrefix + "the resource is suspended (spec.suspend: true); resuming refreshes at once if the refresh is due"
	}
	return uredisv1alpha1.RefreshRequestDeclinedPrefix + fmt.Sprintf("forced refreshes come at least %s after the last attempt; the link in status is unchanged", r.Policy.ForcedRefreshMinInterval)
}

// observe gathers what schedule.Decide needs.
func (r *RedisBackupExportReconciler) observe(export *uredisv1alpha1.RedisBackupExport, secretInSync bool, credentialsVersion string, now time.Time) schedule.Observation {
	st := export.Status
	ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady)
	obs := schedule.Observation{
		Now:              now,
		SpecChanged:      specChanged(export),
		HasLink:          linkForCurrentSpec(export),
		SecretInSync:     secretInSync,
		RefreshRequested: refreshRequest(export) != "" && refreshRequest(export) != st.LastHandledRefreshRequest,
		Suspended:        export.Spec.Suspend,
	}
	// Which credentials the provider rejected is known only if this
	// process saw it; after a restart, a spec change or a forced refresh
	// may try the current ones (the attempt records them).
	rejected, rejectionSeen := r.rejectedWith.Load(client.ObjectKeyFromObject(export))
	observeAttempts(&obs, ready, rejectedCredentials{rejected, rejectionSeen}, credentialsVersion,
		attemptTimes{st.LastRefreshTime, st.LastFailureTime, st.ExpiresAt, st.NextRefreshTime})
	return obs
}

// rejectedCredentials is the credentials version a provider last rejected
// (rejectedWith), if this process saw it.
type rejectedCredentials struct {
	version any
	seen    bool
}

// attemptTimes are the status' times schedule.Decide reads.
type attemptTimes struct {
	lastRefresh, lastFailure, expiresAt, next *metav1.Time
}

// observeAttempts fills in what schedule.Decide needs from the last
// attempts, for either kind: the failure the Ready condition records
// (failed: nil when it records none of the link's), the credentials the
// provider rejected, and the times.
func observeAttempts(obs *schedule.Observation, failed *metav1.Condition, rejected rejectedCredentials, credentialsVersion string, times attemptTimes) {
	var lastFailure failureKind
	failing := false
	if failed != nil && failed.Status == metav1.ConditionFalse {
		lastFailure, failing = kindOf(failed.Reason)
	}
	obs.WaitingOnUser = failing && lastFailure.retryOnCredentialsChange
	obs.CredentialsRefused = failing && lastFailure.onlyCredentialsFix && rejected.seen
	obs.CredentialsChanged = rejected.seen && rejected.version.(string) != credentialsVersion
	obs.CheapToRecheck = failing && lastFailure.beforeAnyCall
	for _, t := range []*metav1.Time{times.lastRefresh, times.lastFailure} {
		if t != nil && t.After(obs.LastAttempt) {
			obs.LastAttempt = t.Time
		}
	}
	if times.expiresAt != nil {
		obs.ExpiresAt = times.expiresAt.Time
	}
	if times.next != nil {
		obs.NextAttempt = times.next.Time
	}
}

// specChanged: the spec's generation is not the one the last finished
// attempt was for. The Ready condition carries that generation, as
// status.observedGeneration does; statuses written before
// observedGeneration moved on failures have it only there.
func specChanged(export *uredisv1alpha1.RedisBackupExport) bool {
	ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	return ready == nil || ready.ObservedGeneration != export.Generation
}

// refreshRequest is the pending force-refresh request, as the status
// records it once handled.
func refreshRequest(export *uredisv1alpha1.RedisBackupExport) string {
	return uredisv1alpha1.HandledRefreshRequest(export.Annotations[uredisv1alpha1.AnnotationRefreshRequestedAt])
}

func readyReason(export *uredisv1alpha1.RedisBackupExport) string {
	if ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady); ready != nil {
		return ready.Reason
	}
	return ""
}

// refresh obtains a new link and writes it into the Secret; it returns the
// Secret's new resourceVersion with the link.
func (r *RedisBackupExportReconciler) refresh(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, secret *metav1.PartialObjectMetadata, creds credentialAccess, forced bool) (string, *cloud.BackupLink, string, error) {
	backup, link, err := r.fetchLink(ctx, export, secret, creds, forced)
	if err != nil {
		return "", nil, "", err
	}
	content, err := contentFor(exportTarget(export), linkData{
		backupPath: link.URL, innerBackupPath: link.InnerURL, backupID: backup.id, expiresAt: link.ExpiresAt,
	})
	if err != nil {
		// A template that fails on the real link: the link is dropped and
		// the Secret left as it is.
		return "", nil, "", err
	}
	version, err := r.writeSecret(ctx, export, secret, content, false)
	if err != nil {
		return "", nil, "", err
	}
	return backup.id, &link, version, nil
}

// restoreSecret puts the link of the status back into a Secret that was
// deleted or edited, when the attempt to replace it with a new one failed
// but that link still works: consumers keep a working link through an
// outage, and Ready=True (RefreshFailing) stays true to the Secret. Only
// errors of the Kubernetes API are returned; a Secret that cannot be
// written (someone else's, refused) stays as it is and the failure
// already recorded says why.
func (r *RedisBackupExportReconciler) restoreSecret(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, secret *metav1.PartialObjectMetadata, inSync bool, a *attempt) error {
	st := export.Status
	if a.err == nil || inSync || linkStateAt(export, a.now) != linkValid {
		return nil
	}
	a.secretLost = true
	content, ok := restorable(export)
	if !ok {
		return nil
	}
	version, err := r.writeSecret(ctx, export, secret, content, false)
	if err == nil {
		a.secretVersion, a.secretLost = version, false
		log.FromContext(ctx).Info("restored the Secret with the link still valid", "expiresAt", formatTime(st.ExpiresAt.Time))
	}
	if isKubernetesAPIError(err) {
		return err
	}
	return nil
}

// restorable is what puts the status' link back into the Secret; false
// when there is nothing to put back: the link is kept out of status, the
// template uses the internal link (which the status never keeps), or the
// template fails on the link.
func restorable(export *uredisv1alpha1.RedisBackupExport) (secretContent, bool) {
	if export.Status.BackupPath == "" || readsInternalLink(export.Spec.Target.Template) {
		// The status keeps neither the link (--link-in-status=false) nor
		// ever the internal link: a template that uses it would render a
		// Secret that does not work.
		return secretContent{}, false
	}
	content, err := contentFor(exportTarget(export), statusLink(export))
	return content, err == nil
}

// report counts and logs an attempt's outcome, records its Event when it
// deserves one (eventFor), and remembers the credentials a provider
// rejected. original is the resource as it was before the attempt.
func (r *RedisBackupExportReconciler) report(ctx context.Context, original, export *uredisv1alpha1.RedisBackupExport, a attempt, credentialsVersion string) {
	before := meta.FindStatusCondition(original.Status.Conditions, uredisv1alpha1.ConditionReady)
	if e, ok := eventFor(before, original.Status.BackupID, export, a); ok {
		r.Events.Eventf(export, nil, e.eventType, e.reason, "Refresh", "%s", e.note)
	}
	key := client.ObjectKeyFromObject(export)
	st := export.Status
	switch {
	case a.link != nil:
		metrics.ObserveRefresh(true, uredisv1alpha1.ReasonRefreshed)
		r.rejectedWith.Delete(key)
		log.FromContext(ctx).Info("refreshed link", "expiresAt", formatTime(a.link.ExpiresAt),
			"nextRefresh", formatTime(st.NextRefreshTime.Time), "field", a.link.Field)
	case a.err != nil:
		reportFailure(ctx, a.err, st.FailureCount, &r.rejectedWith, key, credentialsVersion)
	}
}

// reportFailure counts and logs a failed attempt of either kind, and
// remembers in rejectedWith, under key, the credentials a provider
// rejected.
func reportFailure(ctx context.Context, err error, failureCount int32, rejectedWith *sync.Map, key any, credentialsVersion string) {
	reason := reasonFor(err)
	metrics.ObserveRefresh(false, reason)
	if kind, _ := kindOf(reason); kind.retryOnCredentialsChange {
		rejectedWith.Store(key, credentialsVersion)
	}
	logger := log.FromContext(ctx)
	if code, ok := cloud.RetCodeOf(err); ok {
		logger = logger.WithValues("retCode", code)
	}
	logger.Info("refresh failed", "reason", reason, "error", truncate(err.Error(), maxErrorText), "failureCount", failureCount)
}

func refreshBefore(spec uredisv1alpha1.BackupSelection) time.Duration {
	if spec.RefreshBefore == nil {
		return 0
	}
	return spec.RefreshBefore.Duration
}

// fetchLink checks that the target Secret is ours to write, then asks the
// API for a link. The check comes first so that a name clash costs no quota.
func (r *RedisBackupExportReconciler) fetchLink(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, secret *metav1.PartialObjectMetadata, access credentialAccess, forced bool) (chosenBackup, cloud.BackupLink, error) {
	if err := checkTemplates(export.Spec.Target, export.Spec.BackupSelection, r.Clock.Now()); err != nil {
		return chosenBackup{}, cloud.BackupLink{}, err
	}
	if err := r.checkTargetWritable(ctx, export, secret); err != nil {
		return chosenBackup{}, cloud.BackupLink{}, err
	}
	links := linkFetcher{cloud: r.Cloud, credentials: r.credentials, share: r.share, policy: r.Policy}
	return links.fetch(ctx, client.ObjectKeyFromObject(export), export.Spec.BackupSelection, access, forced,
		func() error { return r.tryTargetWrite(ctx, export, secret) })
}

// linkFetcher obtains links from the cloud API, for resources of either
// kind.
type linkFetcher struct {
	cloud       BackupLinkResolver
	credentials *credentialStore
	share       *fairShare
	policy      schedule.Policy
}

// fetch loads the credentials, takes a place on the cloud API's budget for
// key, runs beforeCall (a check that could still make the link useless),
// then asks the API for a link to the backup spec selects.
func (f linkFetcher) fetch(ctx context.Context, key types.NamespacedName, spec uredisv1alpha1.BackupSelection, access credentialAccess, forced bool, beforeCall func() error) (chosenBackup, cloud.BackupLink, error) {
	if access.err != nil {
		return chosenBackup{}, cloud.BackupLink{}, access.err
	}
	creds, err := f.credentials.Load(ctx, access.source, access.version)
	if err != nil {
		return chosenBackup{}, cloud.BackupLink{}, err
	}
	release, ok := f.share.acquire(key)
	if !ok {
		return chosenBackup{}, cloud.BackupLink{}, errBudgetBusy
	}
	defer release()
	if err := beforeCall(); err != nil {
		return chosenBackup{}, cloud.BackupLink{}, err
	}
	backup, err := f.chooseBackup(ctx, spec, creds)
	if err != nil {
		return chosenBackup{}, cloud.BackupLink{}, err
	}
	maxAge := shareWindow
	if forced {
		maxAge = 0 // a forced refresh wants a link of its own
	}
	link, err := f.cloud.ResolveBackupLink(ctx, creds, backupURLRequest(spec, backup), maxAge)
	if err != nil {
		return chosenBackup{}, cloud.BackupLink{}, err
	}
	if f.policy.TooShort(link.ObtainedAt, link.ExpiresAt) {
		return chosenBackup{}, cloud.BackupLink{}, newLinkTooShortError(link.ExpiresAt.Sub(link.ObtainedAt), f.policy.MinUsefulLifetime)
	}
	return backup, link, nil
}

// checkTargetWritable refuses a target Secret owned by someone else. The
// cache only holds managed Secrets, so a foreign one is looked up directly,
// but only after a clash was seen: a first sync costs no extra read.
func (r *RedisBackupExportReconciler) checkTargetWritable(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, secret *metav1.PartialObjectMetadata) error {
	if secret != nil {
		if !ownsSecret(secret, export) {
			return newConflictError(exportTarget(export))
		}
		return nil
	}
	ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	if ready == nil || ready.Reason != uredisv1alpha1.ReasonSecretConflict {
		return nil
	}
	err := r.classifyExistingSecret(ctx, export)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func backupURLRequest(spec uredisv1alpha1.BackupSelection, backup chosenBackup) cloud.BackupURLRequest {
	groupID := spec.GroupID
	if spec.Latest != nil {
		groupID = spec.Latest.GroupID
	}
	return cloud.BackupURLRequest{
		Region:        spec.Region,
		Zone:          backup.zone,
		ProjectID:     spec.ProjectID,
		BackupID:      backup.id,
		GroupID:       groupID,
		RegionFlag:    spec.RegionFlag != nil && *spec.RegionFlag,
		SlaveZone:     spec.SlaveZone,
		IsCrossRegion: spec.IsCrossRegion != nil && *spec.IsCrossRegion,
	}
}

// tryTargetWrite has the API server validate the Secret write before the
// API call, with a server-side dry-run, when the Secret's metadata may have
// changed shape: a first attempt or a spec change with labels or
// annotations, and every attempt after the API server found the target
// invalid. A write that cannot succeed then costs no quota.
func (r *RedisBackupExportReconciler) tryTargetWrite(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, secret *metav1.PartialObjectMetadata) error {
	target := export.Spec.Target
	shapeChanged := specChanged(export) && len(target.Labels)+len(target.Annotations) > 0
	if !shapeChanged && readyReason(export) != uredisv1alpha1.ReasonTargetInvalid {
		return nil
	}
	fields := secrettemplate.Placeholder(export.Spec.BackupID, export.Spec.Region, r.Clock.Now())
	placeholder, err := contentFor(exportTarget(export), linkData{backupPath: fields.BackupPath, innerBackupPath: fields.InnerBackupPath, backupID: fields.BackupID, expiresAt: fields.ExpiresAt})
	if err != nil {
		return err
	}
	_, err = r.writeSecret(ctx, export, secret, placeholder, true)
	return err
}

// credentialAccess is what a refresh needs to get at the credentials.
type credentialAccess struct {
	source credentialSource
	// err: the source itself is unusable (operator credentials refused).
	err error
	// version of the credentials Secret, see credentialsVersion.
	version string
}

// credentialsVersion is the credentials Secret's resourceVersion from the
// metadata cache; "" when the cache does not hold it (it does not exist, or
// its creation has not reached the cache yet: the credentials are then read
// from the API server); "static" for credentials from the operator's
// environment.
func (r *RedisBackupExportReconciler) credentialsVersion(ctx context.Context, source credentialSource) string {
	return credentialsVersion(ctx, r.SecretMetadata, source)
}

func credentialsVersion(ctx context.Context, secretMetadata cache.Cache, source credentialSource) string {
	if source.static != nil {
		return "static"
	}
	if source.secret.Name == "" {
		return ""
	}
	meta := secretMetadataObject()
	if err := secretMetadata.Get(ctx, source.secret, meta); err != nil {
		return ""
	}
	return meta.ResourceVersion
}

func (r *RedisBackupExportReconciler) patchStatus(ctx context.Context, original, export *uredisv1alpha1.RedisBackupExport) error {
	return patchStatus(ctx, r.Client, original, export, equality.Semantic.DeepEqual(original.Status, export.Status), r.recent)
}

// patchStatus writes obj's status, unless unchanged, as a merge patch from
// original, and remembers it in recent.
func patchStatus[O client.Object, S any](ctx context.Context, c client.Client, original, obj O, unchanged bool, recent *recentStatuses[O, S]) error {
	if unchanged {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(original)); err != nil {
		return err
	}
	recent.remember(obj)
	return nil
}

// forget drops what is remembered about a deleted resource.
func (r *RedisBackupExportReconciler) forget(key types.NamespacedName) {
	r.rejectedWith.Delete(key)
}

// readsInternalLink: one of the template's keys names the internal link
// (conservatively: by the field's name anywhere in its text).
func readsInternalLink(t *uredisv1alpha1.SecretTemplate) bool {
	if t == nil {
		return false
	}
	for _, text := range t.Data {
		if strings.Contains(string(text), "innerBackupPath") {
			return true
		}
	}
	return false
}
