package controllers

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/rollout"
	"github.com/dezai/uredis-backup-operator/internal/schedule"
)

// attempt is what one reconcile found and did: a new link, a failure, or
// neither (nothing was due).
type attempt struct {
	now time.Time
	// jitter is a random number in [0, 1) for this attempt's timing.
	jitter float64
	// link and backupID are set when a refresh succeeded and was written.
	link     *cloud.BackupLink
	backupID string
	// err is set when a refresh failed.
	err error
	// secretVersion is the target Secret's resourceVersion when the attempt
	// wrote it, or found it holding the status' link.
	secretVersion string
	// secretLost: a failed attempt left the target Secret without the
	// status' link (deleted or edited, and not restored), so the link is
	// no use to consumers however long it stays valid.
	secretLost bool
	// secretInSync: the target Secret held the status' link when the
	// attempt began.
	secretInSync bool
	// restarts are the rollout restarts the new link led to (restart.go).
	restarts []uredisv1alpha1.RolloutRestart
}

// outcomes turns attempts into status. It is the one place that decides
// conditions, status fields and the requeue, so that success, failure and
// waiting can never disagree; it reads no clock and draws no random number.
type outcomes struct {
	policy    schedule.Policy
	transient schedule.Backoff
	permanent schedule.Backoff
	// omitLink keeps the link out of status.backupPath.
	omitLink bool
}

// summarize records a into export's status and returns how long to wait
// before the next visit (0: only an event brings the resource back).
func (o outcomes) summarize(export *uredisv1alpha1.RedisBackupExport, a attempt) time.Duration {
	// Written out before observedGeneration moves, which older statuses
	// used for it.
	export.Status.LinkGeneration = linkGeneration(export.Status)
	if a.secretVersion != "" {
		export.Status.SecretResourceVersion = a.secretVersion
	}
	switch {
	case a.link != nil:
		o.succeeded(export, a)
	case a.err != nil:
		o.failed(export, a)
	case export.Spec.Suspend:
		markSuspended(export, a)
	default:
		if !markExpired(export, a.now) {
			markResumed(export)
		}
	}
	// The kstatus convention: the generation this attempt finished with,
	// whatever its outcome.
	export.Status.ObservedGeneration = export.Generation
	export.Status.SpecDigest = specDigest(export.Spec)
	export.Status.RolloutRestarts = rollout.Record(export.Status.RolloutRestarts, export.Spec.RolloutRestartTargets, a.restarts)
	progressConditions(&export.Status.Conditions, export.Generation)
	if o.omitLink {
		export.Status.BackupPath = ""
	}
	return requeueAfter(export, a.now)
}

// succeeded records a new link.
func (o outcomes) succeeded(export *uredisv1alpha1.RedisBackupExport, a attempt) {
	link := a.link
	next := o.policy.RefreshTime(link.ObtainedAt, link.ExpiresAt, refreshBefore(export.Spec.BackupSelection), a.jitter)
	st := &export.Status
	st.BackupID = a.backupID
	st.BackupPath = link.URL
	st.ExpiresAt = timePtr(link.ExpiresAt)
	st.LastRefreshTime = timePtr(link.ObtainedAt)
	st.NextRefreshTime = timePtr(next)
	st.SecretName = export.TargetSecretName()
	st.LinkGeneration = export.Generation
	st.FailureCount = 0
	st.LastFailureTime = nil
	message := fmt.Sprintf("Secret %q holds a link valid until %s; next refresh at %s",
		st.SecretName, formatTime(link.ExpiresAt), formatTime(next))
	if link.Field == cloud.FieldBackupURL {
		message += "; the link is the API's BackupURL field, as BackupPath held no usable link"
	}
	setReady(export, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed, message)
}

// failed records a failed attempt and plans the retry. A link still valid
// for the current spec keeps the resource Ready when the failure is
// transient: consumers can go on using it, and the condition says that
// refreshing is failing. Once that link has expired, the condition says so.
func (o outcomes) failed(export *uredisv1alpha1.RedisBackupExport, a attempt) {
	reason := reasonFor(a.err)
	kind, _ := kindOf(reason)
	st := &export.Status
	st.FailureCount++
	st.LastFailureTime = timePtr(a.now)
	st.NextRefreshTime = nil
	retryAt := o.retryAt(export, kind, a)
	if !retryAt.IsZero() {
		st.NextRefreshTime = timePtr(retryAt)
	}
	message := failureMessage(a.err, reason, retryAt)
	switch state := linkStateAt(export, a.now); {
	case kind.class != transient:
		setReady(export, metav1.ConditionFalse, reason, message)
	case state == linkValid && !a.secretLost:
		setReady(export, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing,
			fmt.Sprintf("the current link stays valid until %s, but refreshing it failed: %s", formatTime(st.ExpiresAt.Time), message))
	case state == linkExpired:
		setReady(export, metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired,
			fmt.Sprintf("the link in Secret %q expired at %s and refreshing it failed: %s", st.SecretName, formatTime(st.ExpiresAt.Time), message))
	default:
		setReady(export, metav1.ConditionFalse, reason, message)
	}
}

// retryAt plans the next attempt after a failure of kind; zero when only an
// event should bring one.
func (o outcomes) retryAt(export *uredisv1alpha1.RedisBackupExport, kind failureKind, a attempt) time.Time {
	var validUntil time.Time
	if linkStateAt(export, a.now) == linkValid {
		validUntil = export.Status.ExpiresAt.Time
	}
	return o.retryAfter(kind, export.Status.FailureCount, validUntil, a)
}

// retryAfter plans the attempt after the failures-th consecutive failure
// (this one included) of kind; validUntil is the expiry of a link still
// valid, zero without one.
func (o outcomes) retryAfter(kind failureKind, failures int32, validUntil time.Time, a attempt) time.Time {
	switch kind.retry {
	case retryWithBackoff:
		delay := o.transient.Delay(failures, a.jitter)
		if !validUntil.IsZero() {
			delay = o.policy.RetryDelay(delay, validUntil.Sub(a.now))
		}
		return a.now.Add(delay)
	case retrySlowly:
		return a.now.Add(o.permanent.Delay(failures, a.jitter))
	default:
		return time.Time{}
	}
}

// requeueAfter is the wait until the planned attempt, but while a link is
// valid no later than a second after its expiry, so that the status turns
// the moment the link stops working, whatever the plan. A suspended
// resource plans no attempt: it is woken only for the expiry.
func requeueAfter(export *uredisv1alpha1.RedisBackupExport, now time.Time) time.Duration {
	var validUntil time.Time
	if linkStateAt(export, now) == linkValid {
		validUntil = export.Status.ExpiresAt.Time
	}
	next := export.Status.NextRefreshTime
	if export.Spec.Suspend {
		next = nil
	}
	return requeueUntil(next, validUntil, now)
}

// requeueUntil is requeueAfter's rule for a planned attempt at next (nil:
// none) and a link valid until validUntil (zero: none).
func requeueUntil(next *metav1.Time, validUntil, now time.Time) time.Duration {
	var wait time.Duration
	if next != nil {
		wait = max(next.Sub(now), time.Second)
	}
	if !validUntil.IsZero() {
		if untilExpiry := validUntil.Sub(now) + time.Second; wait == 0 || untilExpiry < wait {
			wait = untilExpiry
		}
	}
	return wait
}

// markExpired turns a Ready resource whose link has expired, while a retry
// is still pending, into Ready=False. It reports whether it changed anything.
func markExpired(export *uredisv1alpha1.RedisBackupExport, now time.Time) bool {
	ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || linkStateAt(export, now) != linkExpired {
		return false
	}
	st := export.Status
	setReady(export, metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired,
		fmt.Sprintf("the link in Secret %q expired at %s and no new one has been obtained yet", st.SecretName, formatTime(st.ExpiresAt.Time)))
	return true
}

// markSuspended tells, while spec.suspend is true, whether the Secret
// still holds a working link: Ready stays True until that link expires (or
// the Secret loses it), then turns False. status.nextRefreshTime keeps the
// planned refresh, so that resuming knows whether it is due.
func markSuspended(export *uredisv1alpha1.RedisBackupExport, a attempt) {
	st := export.Status
	secret := export.TargetSecretName()
	switch state := linkStateAt(export, a.now); {
	case state == linkValid && a.secretInSync:
		setReady(export, metav1.ConditionTrue, uredisv1alpha1.ReasonSuspended,
			fmt.Sprintf("%s; the link in Secret %q stays valid until %s", suspendedText, secret, formatTime(st.ExpiresAt.Time)))
	case state == linkValid:
		setReady(export, metav1.ConditionFalse, uredisv1alpha1.ReasonSuspended,
			fmt.Sprintf("%s; Secret %q no longer holds the link (deleted or edited), which is not written again until then (it would have stayed valid until %s)", suspendedText, secret, formatTime(st.ExpiresAt.Time)))
	case state == linkExpired:
		setReady(export, metav1.ConditionFalse, uredisv1alpha1.ReasonSuspended,
			fmt.Sprintf("%s; the link in Secret %q expired at %s, and resuming obtains a new one at once", suspendedText, secret, formatTime(st.ExpiresAt.Time)))
	default:
		setReady(export, metav1.ConditionFalse, uredisv1alpha1.ReasonSuspended,
			fmt.Sprintf("%s; no link has been obtained for the current spec, and resuming obtains one at once", suspendedText))
	}
}

// suspendedText begins the Ready message of a suspended resource of either
// kind.
const suspendedText = "suspended (spec.suspend: true): no API call and no write of the Secret until it is resumed"

// markResumed: a resource resumed with its link still valid and its
// planned refresh (or retry) not due yet is Ready as it was before the
// suspension: Refreshed, or RefreshFailing when the failures the status
// counts were not ended by a success (the suspension keeps the failure
// count and the planned retry, not the failure's reason).
func markResumed(export *uredisv1alpha1.RedisBackupExport) {
	ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	st := export.Status
	if ready == nil || ready.Reason != uredisv1alpha1.ReasonSuspended || ready.Status != metav1.ConditionTrue || st.NextRefreshTime == nil {
		return
	}
	if st.FailureCount > 0 {
		last := ""
		if st.LastFailureTime != nil {
			last = ", the last at " + formatTime(st.LastFailureTime.Time)
		}
		setReady(export, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing,
			fmt.Sprintf("resumed: the current link stays valid until %s, but refreshing it failed (%d attempts in a row%s); next attempt at %s",
				formatTime(st.ExpiresAt.Time), st.FailureCount, last, formatTime(st.NextRefreshTime.Time)))
		return
	}
	setReady(export, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed,
		fmt.Sprintf("resumed: Secret %q holds a link valid until %s; next refresh at %s",
			st.SecretName, formatTime(st.ExpiresAt.Time), formatTime(st.NextRefreshTime.Time)))
}

// specDigest is a digest of everything in the spec but suspend and
// rolloutRestartTargets: two generations with the same digest ask for the
// same link and Secret (the targets matter only at the next change).
func specDigest(spec uredisv1alpha1.RedisBackupExportSpec) string {
	spec.Suspend = false
	spec.RolloutRestartTargets = nil
	return digest(spec)
}

// followSuspendToggle carries the last attempt's verdict and link over to a
// generation that changed nothing but spec.suspend or
// spec.rolloutRestartTargets (its spec digest is the one recorded for
// status.observedGeneration), so that suspending, resuming or editing the
// restart targets is not a spec change: it neither costs a call (nor a new
// link, nor restarts) nor makes the link one of an older spec. Statuses
// without a digest are left as they are.
func followSuspendToggle(export *uredisv1alpha1.RedisBackupExport) {
	st := &export.Status
	if st.ObservedGeneration == export.Generation || st.SpecDigest == "" || st.SpecDigest != specDigest(export.Spec) {
		return
	}
	observed := st.ObservedGeneration
	if st.LinkGeneration = linkGeneration(*st); st.LinkGeneration == observed {
		st.LinkGeneration = export.Generation
	}
	for i := range st.Conditions {
		if st.Conditions[i].ObservedGeneration == observed {
			st.Conditions[i].ObservedGeneration = export.Generation
		}
	}
	st.ObservedGeneration = export.Generation
}

type linkState int

const (
	noLink linkState = iota
	linkValid
	linkExpired
)

// linkStateAt tells whether status holds a link for the current spec and
// whether it is still valid at now.
func linkStateAt(export *uredisv1alpha1.RedisBackupExport, now time.Time) linkState {
	switch {
	case !linkForCurrentSpec(export):
		return noLink
	case now.Before(export.Status.ExpiresAt.Time):
		return linkValid
	default:
		return linkExpired
	}
}

func linkForCurrentSpec(export *uredisv1alpha1.RedisBackupExport) bool {
	st := export.Status
	return st.ExpiresAt != nil && linkGeneration(st) == export.Generation
}

// linkGeneration is the generation the current link was obtained for.
// Statuses written before status.linkGeneration existed recorded it in
// observedGeneration, which then moved only on success.
func linkGeneration(st uredisv1alpha1.RedisBackupExportStatus) int64 {
	if st.LinkGeneration == 0 && st.BackupPath != "" {
		return st.ObservedGeneration
	}
	return st.LinkGeneration
}

// progressConditions derives Reconciling and Stalled from Ready, in the
// "abnormal-true" style kstatus, Flux and Argo CD health checks read: both
// are absent while Ready is True. For either kind.
func progressConditions(conditions *[]metav1.Condition, generation int64) {
	ready := meta.FindStatusCondition(*conditions, uredisv1alpha1.ConditionReady)
	if ready == nil || ready.Status == metav1.ConditionTrue {
		meta.RemoveStatusCondition(conditions, uredisv1alpha1.ConditionReconciling)
		meta.RemoveStatusCondition(conditions, uredisv1alpha1.ConditionStalled)
		return
	}
	set, clear := uredisv1alpha1.ConditionReconciling, uredisv1alpha1.ConditionStalled
	if kind, ok := kindOf(ready.Reason); ok && kind.class != transient {
		set, clear = clear, set
	}
	meta.RemoveStatusCondition(conditions, clear)
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type: set, Status: metav1.ConditionTrue, Reason: ready.Reason, Message: ready.Message, ObservedGeneration: generation,
	})
}

// expiryEvent: a Ready condition that deserves the LinkExpired Event,
// whether a failing retry or the wake-up at the expiry noticed it, and
// whether the resource is suspended or not. For either kind.
func expiryEvent(ready *metav1.Condition, expired bool) bool {
	return ready.Reason == uredisv1alpha1.ReasonLinkExpired || (ready.Reason == uredisv1alpha1.ReasonSuspended && expired)
}

// notable is an Event worth recording about an attempt.
type notable struct {
	eventType, reason, note string
}

// eventFor decides whether an attempt deserves an Event: a failure that
// changes the Ready condition (the first one, or a new reason), a link that
// expires, a success that ends a failure or brings another backup. A
// routine refresh, or a new resource's first link, tells a person nothing
// the status does not, and would cost the API server a write per resource
// (a fourth beside the resource, its Secret and its status). before is the
// Ready condition and backupID the status' backup before the attempt.
func eventFor(before *metav1.Condition, backupID string, export *uredisv1alpha1.RedisBackupExport, a attempt) (notable, bool) {
	after := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	if after == nil {
		return notable{}, false
	}
	changed := before == nil || before.Status != after.Status || before.Reason != after.Reason
	switch {
	case changed && expiryEvent(after, linkStateAt(export, a.now) == linkExpired):
		return notable{corev1.EventTypeWarning, uredisv1alpha1.ReasonLinkExpired, after.Message}, true
	case a.link != nil:
		recovered := before != nil && changed
		if !recovered && (backupID == "" || backupID == a.backupID) {
			return notable{}, false
		}
		return notable{corev1.EventTypeNormal, "Refreshed", fmt.Sprintf("Secret %s holds a new link to backup %s, valid until %s",
			export.TargetSecretName(), a.backupID, formatTime(a.link.ExpiresAt))}, true
	case a.err != nil:
		if !changed {
			return notable{}, false
		}
		return notable{corev1.EventTypeWarning, "RefreshFailed", truncate(a.err.Error(), maxErrorText)}, true
	}
	return notable{}, false
}

// maxErrorText bounds the error text put in a condition: a provider's
// message can be long (a condition message is capped at 32 KiB, and a status
// patch that exceeds it would fail and lose the failure's bookkeeping).
const maxErrorText = 1024

func failureMessage(err error, reason string, retryAt time.Time) string {
	message := truncate(err.Error(), maxErrorText)
	if code, ok := cloud.RetCodeOf(err); ok && reason == uredisv1alpha1.ReasonCredentialsRejected {
		message = fmt.Sprintf("%s; RetCode %d means the credentials were refused: check the key pair (and token) in the credentials Secret", message, code)
	} else if ok && reason == uredisv1alpha1.ReasonProviderRejected {
		message = fmt.Sprintf("%s; RetCode %d is not retried quickly: fix the spec, the credentials or the account's permissions", message, code)
	}
	if !retryAt.IsZero() {
		message += "; next attempt at " + formatTime(retryAt)
	}
	return message
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func setReady(export *uredisv1alpha1.RedisBackupExport, status metav1.ConditionStatus, reason, message string) {
	readyCondition(&export.Status.Conditions, export.Generation, status, reason, message)
}

// readyCondition is setReady on a resource of either kind.
func readyCondition(conditions *[]metav1.Condition, generation int64, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type:               uredisv1alpha1.ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

func timePtr(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}
