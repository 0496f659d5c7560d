package controllers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
)

// This file declares every way an attempt can fail, once: the reason on the
// Ready condition, who can end the failure, how it is retried and whether it
// is found before any call to the cloud API. summarize (outcome.go) reads
// nothing else to decide conditions and retries.

// failureClass says who or what can end a failure.
type failureClass int

const (
	// transient: retrying may fix it without anyone's help. While a valid
	// link exists the resource stays Ready (RefreshFailing); otherwise
	// Reconciling=True.
	transient failureClass = iota
	// waitingOnUser: only a change the operator watches ends it (the
	// credentials Secret, a clashing Secret, the spec). Stalled=True.
	waitingOnUser
	// stalled: the provider or the operator's configuration refused, and
	// what would change that is not watched (account permissions, namespace
	// labels). Stalled=True, retried slowly.
	stalled
)

// retryPolicy says when the next attempt after a failure happens.
type retryPolicy int

const (
	// retryWithBackoff: TransientBackoff, capped while a link is still valid
	// by a fraction of the time it has left (schedule.Policy.RetryDelay).
	retryWithBackoff retryPolicy = iota
	// retrySlowly: PermanentBackoff.
	retrySlowly
	// retryOnChange: no timed retry; a watch event (or a spec change)
	// brings the resource back.
	retryOnChange
)

// failureKind is what is known about one failure reason.
type failureKind struct {
	class failureClass
	retry retryPolicy
	// beforeAnyCall: found before the cloud API is called, so looking again
	// on any event costs no quota.
	beforeAnyCall bool
	// retryOnCredentialsChange: new credentials (a changed Secret) are
	// tried at once instead of waiting for the slow retry.
	retryOnCredentialsChange bool
	// onlyCredentialsFix: nothing but new credentials can end the failure,
	// so neither a spec change nor a forced refresh skips the slow retry.
	onlyCredentialsFix bool
}

// failureKinds holds every failure reason of the Ready condition.
var failureKinds = map[string]failureKind{
	uredisv1alpha1.ReasonProviderUnavailable: {class: transient, retry: retryWithBackoff},
	uredisv1alpha1.ReasonLinkTooShort:        {class: transient, retry: retryWithBackoff},
	uredisv1alpha1.ReasonNoBackupFound:       {class: transient, retry: retryWithBackoff},

	uredisv1alpha1.ReasonCredentialsNotFound:   {class: waitingOnUser, retry: retryOnChange, beforeAnyCall: true},
	uredisv1alpha1.ReasonCredentialsKeyMissing: {class: waitingOnUser, retry: retryOnChange, beforeAnyCall: true},
	uredisv1alpha1.ReasonCredentialsValueEmpty: {class: waitingOnUser, retry: retryOnChange, beforeAnyCall: true},
	uredisv1alpha1.ReasonSecretConflict:        {class: waitingOnUser, retry: retryOnChange, beforeAnyCall: true},
	uredisv1alpha1.ReasonCredentialsInvalid:    {class: waitingOnUser, retry: retryOnChange, beforeAnyCall: true},
	// A server-side dry-run finds it again before any call.
	uredisv1alpha1.ReasonTargetInvalid: {class: waitingOnUser, retry: retryOnChange, beforeAnyCall: true},
	// Found before any call when the template does not parse or fails on a
	// placeholder link; one that fails only on the real link is found
	// after the call, and each visit (only events bring one) calls again.
	uredisv1alpha1.ReasonTemplateInvalid: {class: waitingOnUser, retry: retryOnChange, beforeAnyCall: true},
	// Not a failed attempt (none is made while suspended), but a Ready
	// False that only the user ends, by resuming: Stalled, no timed retry,
	// and a resumed resource looks again at once.
	uredisv1alpha1.ReasonSuspended: {class: waitingOnUser, retry: retryOnChange, beforeAnyCall: true},

	// Namespace labels are not watched: look again now and then.
	uredisv1alpha1.ReasonCredentialsNotAllowed: {class: stalled, retry: retrySlowly, beforeAnyCall: true},
	uredisv1alpha1.ReasonCredentialsRejected:   {class: stalled, retry: retrySlowly, retryOnCredentialsChange: true, onlyCredentialsFix: true},
	// Admission, quota or RBAC: fixed outside the resource, not watched.
	uredisv1alpha1.ReasonSecretWriteRefused: {class: stalled, retry: retrySlowly},
	uredisv1alpha1.ReasonProviderRejected:   {class: stalled, retry: retrySlowly, retryOnCredentialsChange: true},

	// ClusterRedisBackupExport only. Namespaces are watched.
	uredisv1alpha1.ReasonNamespacesPending:        {class: transient, retry: retryWithBackoff},
	uredisv1alpha1.ReasonNoNamespaceSelected:      {class: waitingOnUser, retry: retryOnChange, beforeAnyCall: true},
	uredisv1alpha1.ReasonNamespaceSelectorInvalid: {class: waitingOnUser, retry: retryOnChange, beforeAnyCall: true},
}

// kindOf returns the failureKind of a Ready reason; ok is false for reasons
// that are not failures (Refreshed, RefreshFailing, LinkExpired). It is only
// asked about a Ready condition that is False.
func kindOf(reason string) (failureKind, bool) {
	kind, ok := failureKinds[reason]
	return kind, ok
}

// failureError is a failure the controller itself found, carrying its
// Ready reason. Its message is safe for conditions and events: it names
// keys and objects, never a value.
type failureError struct {
	reason  string
	message string
}

func (e *failureError) Error() string { return e.message }

func newFailure(reason, format string, args ...any) *failureError {
	return &failureError{reason: reason, message: fmt.Sprintf(format, args...)}
}

func newConflictError(t secretTarget) *failureError {
	return newFailure(uredisv1alpha1.ReasonSecretConflict,
		"Secret %q already exists and is not managed by this %s; it is left untouched: delete it or set spec.target.name to another name",
		t.key.Name, t.gvk.Kind)
}

func newLinkTooShortError(lifetime, minimum time.Duration) *failureError {
	return newFailure(uredisv1alpha1.ReasonLinkTooShort,
		"the API returned a link valid for %s, less than the minimum useful lifetime of %s", lifetime, minimum)
}

func newNoBackupError(groupID string, backupType uredisv1alpha1.BackupType) *failureError {
	return newFailure(uredisv1alpha1.ReasonNoBackupFound, "instance %q has no successful backup of type %s", groupID, backupType)
}

// reasonFor maps an attempt's error to its Ready reason. Which cloud errors
// mean what is the cloud client's knowledge (cloud.CredentialsRejected,
// cloud.Classify).
func reasonFor(err error) string {
	var failure *failureError
	switch {
	case errors.As(err, &failure):
		return failure.reason
	case cloud.CredentialsRejected(err):
		return uredisv1alpha1.ReasonCredentialsRejected
	case cloud.Classify(err) == cloud.Permanent:
		return uredisv1alpha1.ReasonProviderRejected
	default:
		return uredisv1alpha1.ReasonProviderUnavailable
	}
}

// refusedWrite turns the API server refusing a Secret write for good (an
// admission webhook or policy, a quota, the operator's RBAC, a Secret too
// large) into a failure with its own reason, so that it is reported and
// retried slowly instead of ending every attempt as an API error: such an
// attempt must still turn Ready at the expiry. The API server's message is
// left out: a webhook's text could repeat what it was sent.
func refusedWrite(t secretTarget, err error) error {
	fields := invalidFields(err)
	switch {
	case err == nil:
		return nil
	case apierrors.IsInvalid(err) && len(fields) > 0:
		// The API server's own validation names the fields at fault; an
		// admission policy's refusal (also a 422) names none, and is a
		// refused write below.
		return newFailure(uredisv1alpha1.ReasonTargetInvalid,
			"the API server found Secret %q as spec.target describes it invalid (invalid: %s): fix spec.target; nothing is retried until the spec changes",
			t.key.Name, strings.Join(fields, ", "))
	case apierrors.IsForbidden(err), apierrors.IsInvalid(err), apierrors.IsRequestEntityTooLargeError(err), apierrors.IsBadRequest(err):
		var status apierrors.APIStatus
		errors.As(err, &status)
		return newFailure(uredisv1alpha1.ReasonSecretWriteRefused,
			"the API server refused to write Secret %q (%d %s): check admission webhooks and policies, quotas, and the operator's RBAC in namespace %q",
			t.key.Name, status.Status().Code, status.Status().Reason, t.key.Namespace)
	default:
		return withoutServerText(t, err)
	}
}

// withoutServerText replaces the message of an API server error about the
// target Secret (a conflict, an outage, a webhook's 500) with its code and
// reason: the error ends up in controller-runtime's log, and a webhook's
// text could repeat what it was sent. Its kind (IsConflict...) is kept.
func withoutServerText(t secretTarget, err error) error {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err
	}
	st := status.Status()
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: st.Status, Code: st.Code, Reason: st.Reason,
		Message: fmt.Sprintf("writing Secret %q: the API server answered %d %s", t.key.Name, st.Code, st.Reason),
	}}
}

// invalidFields names (up to 8 of) the fields a 422 answer found invalid,
// without the API server's messages, which may quote values.
func invalidFields(err error) []string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return nil
	}
	var fields []string
	for _, cause := range status.Status().Details.Causes {
		if cause.Field != "" && !slices.Contains(fields, cause.Field) && len(fields) < 8 {
			fields = append(fields, cause.Field)
		}
	}
	return fields
}

// errCacheLagging: our own Secret exists but the cache has not seen it yet.
var errCacheLagging = errors.New("the target Secret exists but is not in the cache yet")

// isKubernetesAPIError reports errors from the API server (conflicts,
// outages) and a cache that lags behind our own writes: they end the
// reconcile without a status write, and the controller's rate-limited
// requeue retries.
func isKubernetesAPIError(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) || errors.Is(err, errCacheLagging)
}

// restartFailure names why restarting a target failed, as the reason and
// note of its Warning Event: the target does not exist, or reading or
// patching it failed (RBAC, an admission policy, the API server). The note
// has the HTTP code and reason, not the server's text. Neither is retried
// until the next change, and neither touches Ready: the link in the Secret
// is as good either way.
func restartFailure(export *uredisv1alpha1.RedisBackupExport, target uredisv1alpha1.RolloutRestartTarget, err error) (reason, note string) {
	const later = "it is not restarted for this change; the next change tries again"
	var status apierrors.APIStatus
	switch {
	case apierrors.IsNotFound(err):
		return uredisv1alpha1.EventRolloutRestartTargetMissing,
			fmt.Sprintf("%s %q, a rollout restart target, does not exist in namespace %q: %s", target.Kind, target.Name, export.Namespace, later)
	case apierrors.IsForbidden(err):
		return uredisv1alpha1.EventRolloutRestartFailed,
			fmt.Sprintf("restarting %s %q was refused (403 Forbidden): the operator needs get and patch on %s (apps) in namespace %q, and its admission policy lets it change only the restart annotations; %s",
				target.Kind, target.Name, kindPlural(target.Kind), export.Namespace, later)
	case errors.As(err, &status):
		return uredisv1alpha1.EventRolloutRestartFailed,
			fmt.Sprintf("restarting %s %q failed: the API server answered %d %s; %s", target.Kind, target.Name, status.Status().Code, status.Status().Reason, later)
	default:
		return uredisv1alpha1.EventRolloutRestartFailed,
			fmt.Sprintf("restarting %s %q failed: the API server could not be reached; %s", target.Kind, target.Name, later)
	}
}
