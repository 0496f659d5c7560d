package controllers

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// summarizeCluster is summarize for a ClusterRedisBackupExport: it records
// the attempt and the fan-out into the status, with the same failure kinds,
// retry rules and conditions as a RedisBackupExport, and returns how long
// to wait before the next visit.
func (o outcomes) summarizeCluster(export *uredisv1alpha1.ClusterRedisBackupExport, a attempt, spec string, held *heldLink, fan fanOut) time.Duration {
	st := &export.Status
	switch {
	case a.link != nil:
		next := o.policy.RefreshTime(a.link.ObtainedAt, a.link.ExpiresAt, refreshBefore(export.Spec.BackupSelection), a.jitter)
		st.BackupID = a.backupID
		st.ExpiresAt = timePtr(a.link.ExpiresAt)
		st.LastRefreshTime = timePtr(a.link.ObtainedAt)
		st.NextRefreshTime = timePtr(next)
		st.LinkSpec = spec
		st.DataHash = held.hash
		st.FailureCount = 0
		st.LastFailureTime = nil
	case a.err != nil:
		kind, _ := kindOf(reasonFor(a.err))
		st.FailureCount++
		st.LastFailureTime = timePtr(a.now)
		st.NextRefreshTime = nil
		if retryAt := o.retryAfter(kind, st.FailureCount, clusterValidUntil(export, spec, a.now), a); !retryAt.IsZero() {
			st.NextRefreshTime = timePtr(retryAt)
		}
	}
	st.SecretName = export.TargetSecretName()
	st.NamespacesSelected = int32(fan.selected) //nolint:gosec // bounded by the number of namespaces
	st.NamespacesWritten = int32(fan.written)   //nolint:gosec // likewise
	st.NamespaceFailures, st.NamespaceFailureCount = boundedFailures(fan.failures)
	if status, reason, message, ok := clusterReadiness(export, spec, a, fan); ok {
		readyCondition(&st.Conditions, export.Generation, status, reason, message)
	}
	st.ObservedGeneration = export.Generation
	progressConditions(&st.Conditions, export.Generation)
	next := st.NextRefreshTime
	if export.Spec.Suspend {
		// Kept for the resume, but no visit is planned for it: only the
		// expiry wakes a suspended resource.
		next = nil
	}
	return requeueUntil(next, clusterValidUntil(export, spec, a.now), a.now)
}

// clusterValidUntil is the expiry of a link for the current spec that is
// still valid at now; zero without one.
func clusterValidUntil(export *uredisv1alpha1.ClusterRedisBackupExport, spec string, now time.Time) time.Time {
	if !clusterHasLink(export, spec) || !now.Before(export.Status.ExpiresAt.Time) {
		return time.Time{}
	}
	return export.Status.ExpiresAt.Time
}

// clusterHasLink: the status holds a link obtained for the current spec
// (digest spec), valid or not.
func clusterHasLink(export *uredisv1alpha1.ClusterRedisBackupExport, spec string) bool {
	st := export.Status
	return st.ExpiresAt != nil && st.LinkSpec == spec
}

// clusterLinkExpired: the status holds a link for the current spec, and it
// has expired at now.
func clusterLinkExpired(export *uredisv1alpha1.ClusterRedisBackupExport, spec string, now time.Time) bool {
	return clusterHasLink(export, spec) && clusterValidUntil(export, spec, now).IsZero()
}

// clusterReadiness decides the Ready condition from the status (already
// holding the attempt's link or failure) and the fan-out: a suspension
// comes first, then a failure of the link, then namespaces that failed,
// then namespaces not written yet. ok is false when nothing was attempted
// and nothing expired: the condition stays as it is (for example,
// credentials still rejected).
func clusterReadiness(export *uredisv1alpha1.ClusterRedisBackupExport, spec string, a attempt, fan fanOut) (status metav1.ConditionStatus, reason, message string, ok bool) {
	if export.Spec.Suspend {
		status, message = suspendedReadiness(export, spec, a.now, fan)
		return status, uredisv1alpha1.ReasonSuspended, message, true
	}
	st := export.Status
	validUntil := clusterValidUntil(export, spec, a.now)
	expired := clusterLinkExpired(export, spec, a.now)
	failure := ""
	if a.err != nil {
		reason = reasonFor(a.err)
		failure = failureMessage(a.err, reason, timeOf(st.NextRefreshTime))
	}
	kind, _ := kindOf(reason)
	written := fmt.Sprintf("%d of %d selected namespaces hold the link in Secret %q", fan.written, fan.selected, st.SecretName)
	switch {
	case a.err != nil && expired && kind.class == transient:
		return metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired,
			fmt.Sprintf("the link expired at %s and refreshing it failed: %s", formatTime(st.ExpiresAt.Time), failure), true
	case a.err != nil && (kind.class != transient || validUntil.IsZero()):
		return metav1.ConditionFalse, reason, failure, true
	case validUntil.IsZero() && expired:
		return metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired,
			fmt.Sprintf("the link expired at %s and no new one has been obtained yet", formatTime(st.ExpiresAt.Time)), true
	case validUntil.IsZero():
		return "", "", "", false
	case st.NamespaceFailureCount > 0:
		return metav1.ConditionFalse, st.NamespaceFailures[0].Reason,
			fmt.Sprintf("%s; %d failed: %s (status.namespaceFailures says why)", written, st.NamespaceFailureCount, describeFailures(st.NamespaceFailures, st.NamespaceFailureCount)), true
	case fan.selectionErr != nil:
		reason := reasonFor(fan.selectionErr)
		return metav1.ConditionFalse, reason, failureMessage(fan.selectionErr, reason, time.Time{}), true
	case fan.selected == 0:
		return metav1.ConditionFalse, uredisv1alpha1.ReasonNoNamespaceSelected,
			"no existing namespace matches spec.namespaceSelector or spec.namespaces: create or label a namespace, or change the spec", true
	case fan.written < fan.selected:
		return metav1.ConditionFalse, uredisv1alpha1.ReasonNamespacesPending, written + "; the others are being written", true
	case a.err != nil:
		return metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing,
			fmt.Sprintf("the current link stays valid until %s in all %d selected namespaces, but refreshing it failed: %s", formatTime(validUntil), fan.selected, failure), true
	}
	return metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed,
		fmt.Sprintf("Secret %q holds a link valid until %s in all %d selected namespaces; next refresh at %s",
			st.SecretName, formatTime(validUntil), fan.selected, formatTime(timeOf(st.NextRefreshTime))), true
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// suspendedReadiness is Ready while spec.suspend is true, as markSuspended
// has it for a RedisBackupExport: True while every selected namespace
// holds a link that works (the fan-out only looked), False once that link
// expires, or while some namespace lacks it (selected, emptied or edited
// since the suspension), which nothing writes until the resume.
func suspendedReadiness(export *uredisv1alpha1.ClusterRedisBackupExport, spec string, now time.Time, fan fanOut) (metav1.ConditionStatus, string) {
	st := export.Status
	validUntil := clusterValidUntil(export, spec, now)
	switch {
	case !validUntil.IsZero() && fan.selected > 0 && fan.written == fan.selected:
		return metav1.ConditionTrue, fmt.Sprintf("%s; all %d selected namespaces hold the link in Secret %q, valid until %s",
			suspendedText, fan.selected, st.SecretName, formatTime(validUntil))
	case !validUntil.IsZero() && fan.selected == 0:
		return metav1.ConditionFalse, fmt.Sprintf("%s; no existing namespace is selected, and the link stays valid until %s",
			suspendedText, formatTime(validUntil))
	case !validUntil.IsZero():
		message := fmt.Sprintf("%s; %d of %d selected namespaces hold the link in Secret %q, valid until %s; the others get it when the resource is resumed",
			suspendedText, fan.written, fan.selected, st.SecretName, formatTime(validUntil))
		if st.NamespaceFailureCount > 0 {
			message += fmt.Sprintf("; %d failed: %s (status.namespaceFailures says why)", st.NamespaceFailureCount, describeFailures(st.NamespaceFailures, st.NamespaceFailureCount))
		}
		return metav1.ConditionFalse, message
	case clusterLinkExpired(export, spec, now):
		return metav1.ConditionFalse, fmt.Sprintf("%s; the link in Secret %q expired at %s, and resuming obtains a new one at once",
			suspendedText, st.SecretName, formatTime(st.ExpiresAt.Time))
	}
	return metav1.ConditionFalse, fmt.Sprintf("%s; no link has been obtained for the current spec, and resuming obtains one at once", suspendedText)
}
