package controllers

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
)

// The functions in this file decide what the status says. They are pure:
// the reconciler passes in the clock's reading and the planned times.

// refreshed records a successful refresh.
func refreshed(export *uredisv1alpha1.RedisBackupExport, backupID string, link cloud.BackupLink, nextRefresh time.Time) {
	st := &export.Status
	st.BackupID = backupID
	st.BackupPath = link.URL
	st.ExpiresAt = timePtr(link.ExpiresAt)
	st.LastRefreshTime = timePtr(link.ObtainedAt)
	st.NextRefreshTime = timePtr(nextRefresh)
	st.SecretName = export.TargetSecretName()
	st.ObservedGeneration = export.Generation
	st.FailureCount = 0
	st.LastFailureTime = nil
	setReady(export, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed,
		fmt.Sprintf("Secret %q holds a link valid until %s; next refresh at %s",
			st.SecretName, formatTime(link.ExpiresAt), formatTime(nextRefresh)))
}

// failure describes a failed refresh attempt for failed().
type failure struct {
	err error
	// reason is the Ready condition's reason.
	reason string
	// retryAt is the next attempt; zero when only a change made by the user
	// (a watched Secret, the spec) should trigger one.
	retryAt time.Time
}

// failed records a failed attempt. A link still valid for the current spec
// keeps the resource Ready when the failure is transient: consumers can go on
// using it, and the condition says that refreshing is failing. Once that
// link has expired, the condition says so.
func failed(export *uredisv1alpha1.RedisBackupExport, f failure, now time.Time) {
	st := &export.Status
	st.FailureCount++
	st.LastFailureTime = timePtr(now)
	st.NextRefreshTime = nil
	if !f.retryAt.IsZero() {
		st.NextRefreshTime = timePtr(f.retryAt)
	}
	message := failureMessage(f)
	switch state := linkStateAt(export, now); {
	case !transientReason(f.reason):
		setReady(export, metav1.ConditionFalse, f.reason, message)
	case state == linkValid:
		setReady(export, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing,
			fmt.Sprintf("the current link stays valid until %s, but refreshing it failed: %s", formatTime(st.ExpiresAt.Time), message))
	case state == linkExpired:
		setReady(export, metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired,
			fmt.Sprintf("the link in Secret %q expired at %s and refreshing it failed: %s", st.SecretName, formatTime(st.ExpiresAt.Time), message))
	default:
		setReady(export, metav1.ConditionFalse, f.reason, message)
	}
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

// transientReason: failures that retrying may fix without the user.
func transientReason(reason string) bool {
	return reason == uredisv1alpha1.ReasonProviderUnavailable || reason == uredisv1alpha1.ReasonLinkTooShort ||
		reason == uredisv1alpha1.ReasonNoBackupFound
}

// stalledReasons need the user to change something before progress resumes.
var stalledReasons = map[string]bool{
	uredisv1alpha1.ReasonProviderRejected:      true,
	uredisv1alpha1.ReasonCredentialsNotFound:   true,
	uredisv1alpha1.ReasonCredentialsKeyMissing: true,
	uredisv1alpha1.ReasonCredentialsValueEmpty: true,
	uredisv1alpha1.ReasonCredentialsNotAllowed: true,
	uredisv1alpha1.ReasonCredentialsRejected:   true,
	uredisv1alpha1.ReasonSecretConflict:        true,
}

// setProgressConditions derives Reconciling and Stalled from Ready, in the
// "abnormal-true" style kstatus, Flux and Argo CD health checks read: both
// are absent while Ready is True.
func setProgressConditions(export *uredisv1alpha1.RedisBackupExport) {
	conditions := &export.Status.Conditions
	ready := meta.FindStatusCondition(*conditions, uredisv1alpha1.ConditionReady)
	if ready == nil || ready.Status == metav1.ConditionTrue {
		meta.RemoveStatusCondition(conditions, uredisv1alpha1.ConditionReconciling)
		meta.RemoveStatusCondition(conditions, uredisv1alpha1.ConditionStalled)
		return
	}
	set, clear := uredisv1alpha1.ConditionReconciling, uredisv1alpha1.ConditionStalled
	if stalledReasons[ready.Reason] {
		set, clear = clear, set
	}
	meta.RemoveStatusCondition(conditions, clear)
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type: set, Status: metav1.ConditionTrue, Reason: ready.Reason, Message: ready.Message, ObservedGeneration: export.Generation,
	})
}

// isCredentialsRetCode: RetCodes 170-174 mean the provider refused the
// credentials themselves (missing or wrong signature, unknown key or token).
func isCredentialsRetCode(err error) bool {
	code, ok := cloud.RetCodeOf(err)
	return ok && code >= 170 && code <= 174
}

// maxErrorText bounds the error text put in a condition: a provider's
// message can be long (a condition message is capped at 32 KiB, and a status
// patch that exceeds it would fail and lose the failure's bookkeeping).
const maxErrorText = 1024

func failureMessage(f failure) string {
	message := truncate(f.err.Error(), maxErrorText)
	if code, ok := cloud.RetCodeOf(f.err); ok && f.reason == uredisv1alpha1.ReasonCredentialsRejected {
		message = fmt.Sprintf("%s; RetCode %d means the credentials were refused: check the key pair (and token) in the credentials Secret", message, code)
	} else if ok && f.reason == uredisv1alpha1.ReasonProviderRejected {
		message = fmt.Sprintf("%s; RetCode %d is not retried quickly: fix the spec, the credentials or the account's permissions", message, code)
	}
	if !f.retryAt.IsZero() {
		message += "; next attempt at " + formatTime(f.retryAt)
	}
	return message
}

// classifyFailure maps an error from a refresh attempt to a condition reason
// and tells whether only the user can fix it.
func classifyFailure(err error) (reason string, waitsOnUser bool) {
	var credsErr *credentialsError
	var conflict *conflictError
	var tooShort *linkTooShortError
	var noBackup *noBackupError
	switch {
	case errors.As(err, &noBackup):
		return uredisv1alpha1.ReasonNoBackupFound, false
	case errors.As(err, &credsErr):
		return credsErr.reason, true
	case errors.As(err, &conflict):
		return uredisv1alpha1.ReasonSecretConflict, true
	case errors.As(err, &tooShort):
		return uredisv1alpha1.ReasonLinkTooShort, false
	case isCredentialsRetCode(err):
		return uredisv1alpha1.ReasonCredentialsRejected, true
	case cloud.Classify(err) == cloud.Permanent:
		return uredisv1alpha1.ReasonProviderRejected, true
	default:
		return uredisv1alpha1.ReasonProviderUnavailable, false
	}
}

// linkTooShortError is a link that expires before it could be of use.
type linkTooShortError struct {
	lifetime, minimum time.Duration
}

func (e *linkTooShortError) Error() string {
	return fmt.Sprintf("the API returned a link valid for %s, less than the minimum useful lifetime of %s", e.lifetime, e.minimum)
}

func setReady(export *uredisv1alpha1.RedisBackupExport, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&export.Status.Conditions, metav1.Condition{
		Type:               uredisv1alpha1.ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: export.Generation,
	})
}

func timePtr(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}
