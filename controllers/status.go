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
func refreshed(export *uredisv1alpha1.RedisBackupExport, link cloud.BackupLink, nextRefresh time.Time) {
	st := &export.Status
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
// using it, and the condition says that refreshing is failing.
func failed(export *uredisv1alpha1.RedisBackupExport, f failure, now time.Time, linkValid bool) {
	st := &export.Status
	st.FailureCount++
	st.LastFailureTime = timePtr(now)
	st.NextRefreshTime = nil
	if !f.retryAt.IsZero() {
		st.NextRefreshTime = timePtr(f.retryAt)
	}
	message := failureMessage(f)
	if f.reason == uredisv1alpha1.ReasonProviderUnavailable && linkValid {
		setReady(export, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing,
			fmt.Sprintf("the current link stays valid until %s, but refreshing it failed: %s", formatTime(st.ExpiresAt.Time), message))
		return
	}
	setReady(export, metav1.ConditionFalse, f.reason, message)
}

func failureMessage(f failure) string {
	message := f.err.Error()
	if code, ok := cloud.RetCodeOf(f.err); ok && f.reason == uredisv1alpha1.ReasonProviderRejected {
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
	switch {
	case errors.As(err, &credsErr):
		return credsErr.reason, true
	case errors.As(err, &conflict):
		return uredisv1alpha1.ReasonSecretConflict, true
	case errors.As(err, &tooShort):
		return uredisv1alpha1.ReasonLinkTooShort, false
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
