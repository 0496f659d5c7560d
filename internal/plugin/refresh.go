package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// Outcome is how the operator answered a force-refresh request.
type Outcome int

const (
	// Refreshed: a new link was obtained and written into the Secret.
	Refreshed Outcome = iota + 1
	// Failed: the operator tried and failed; the Ready condition says why.
	Failed
	// Declined: the operator acknowledged the request without trying
	// (forced refreshes are rationed, or the credentials stay rejected).
	Declined
)

// RefreshError is a request the operator did not turn into a new link, or
// did not answer in time.
type RefreshError struct {
	Outcome Outcome // 0 for a timeout
	Message string
}

func (e *RefreshError) Error() string { return e.Message }

// Answer is the operator's answer to one request.
type Answer struct {
	Outcome Outcome
	// Export is the resource as it was when the answer was seen.
	Export *uredisv1alpha1.RedisBackupExport
}

// Refresh sets the force-refresh annotation to a new value and, with wait,
// waits at most timeout for the operator to acknowledge that value, then
// reports the new link's expiry or, as an error, why there is none.
func (p *Plugin) Refresh(ctx context.Context, name string, wait bool, timeout time.Duration) error {
	before, value, err := p.requestRefresh(ctx, name)
	if err != nil {
		return err
	}
	if !wait {
		_, err := fmt.Fprintf(p.Out, "redisbackupexport/%s: refresh requested (%s=%s)\n", name, uredisv1alpha1.AnnotationRefreshRequestedAt, value)
		return err
	}
	answer, err := p.waitForAnswer(ctx, before, value, timeout)
	if err != nil {
		return err
	}
	if err := p.answerError(ctx, answer); err != nil {
		return err
	}
	_, err = fmt.Fprintf(p.Out, "redisbackupexport/%s refreshed: %s\n", name, describeLink(answer.Export, p.Clock.Now()))
	return err
}

// describeLink tells when the resource's link expires and the next refresh
// is planned.
func describeLink(export *uredisv1alpha1.RedisBackupExport, now time.Time) string {
	st := export.Status
	if st.ExpiresAt == nil {
		return "no link"
	}
	text := fmt.Sprintf("link to backup %s valid until %s (%s left)", orNone(st.BackupID), formatTime(st.ExpiresAt.Time), timeLeft(st.ExpiresAt, now))
	if st.NextRefreshTime != nil {
		text += ", next refresh at " + formatTime(st.NextRefreshTime.Time)
	}
	return text
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// requestRefresh sets the annotation to a value never used before (the
// time, to the nanosecond) and returns the resource as the patch left it:
// what the answer is compared with.
func (p *Plugin) requestRefresh(ctx context.Context, name string) (*uredisv1alpha1.RedisBackupExport, string, error) {
	value := p.Clock.Now().UTC().Format(time.RFC3339Nano)
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{uredisv1alpha1.AnnotationRefreshRequestedAt: value}}})
	if err != nil {
		return nil, "", err
	}
	export := &uredisv1alpha1.RedisBackupExport{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace}}
	if err := p.Client.Patch(ctx, export, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return nil, "", p.apiError(err, "requesting a refresh of", name)
	}
	return export, value, nil
}

// waitForAnswer polls the resource until status.lastHandledRefreshRequest
// holds the request's value (or a later request's, which answers it too),
// for at most timeout.
func (p *Plugin) waitForAnswer(ctx context.Context, before *uredisv1alpha1.RedisBackupExport, value string, timeout time.Duration) (Answer, error) {
	deadline := p.Clock.Now().Add(timeout)
	for {
		export, err := p.getExport(ctx, before.Name)
		if err != nil {
			return Answer{}, err
		}
		if handled(export, value) {
			return Answer{Outcome: classify(before, export), Export: export}, nil
		}
		if !p.Clock.Now().Before(deadline) {
			return Answer{}, &RefreshError{Message: fmt.Sprintf(
				"timed out after %s: the operator has not acknowledged refresh request %q (status.lastHandledRefreshRequest is %q; Ready: %s). Is the operator running and watching namespace %s? The request stays set and is handled when it is",
				timeout, value, export.Status.LastHandledRefreshRequest, readySummary(export), export.Namespace)}
		}
		select {
		case <-ctx.Done():
			return Answer{}, ctx.Err()
		case <-p.Clock.After(min(p.pollInterval(), deadline.Sub(p.Clock.Now()))):
		}
	}
}

// handled: the status acknowledges the request, or a later one that
// replaced it in the annotation (the operator's answer covers both).
func handled(export *uredisv1alpha1.RedisBackupExport, value string) bool {
	last := export.Status.LastHandledRefreshRequest
	if last == uredisv1alpha1.HandledRefreshRequest(value) {
		return true
	}
	current := export.Annotations[uredisv1alpha1.AnnotationRefreshRequestedAt]
	return current != value && current != "" && last == uredisv1alpha1.HandledRefreshRequest(current)
}

// classify compares the status after the answer with the status when the
// request was made: a new link, a new failure, or neither (declined).
func classify(before, after *uredisv1alpha1.RedisBackupExport) Outcome {
	b, a := before.Status, after.Status
	switch {
	case a.LastRefreshTime != nil && (!sameTime(a.LastRefreshTime, b.LastRefreshTime) || !sameTime(a.ExpiresAt, b.ExpiresAt)):
		return Refreshed
	case a.LastFailureTime != nil && (!sameTime(a.LastFailureTime, b.LastFailureTime) || a.FailureCount != b.FailureCount):
		return Failed
	default:
		return Declined
	}
}

func sameTime(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

// answerError is nil for a new link, otherwise the reason there is none.
func (p *Plugin) answerError(ctx context.Context, answer Answer) error {
	export := answer.Export
	switch answer.Outcome {
	case Refreshed:
		return nil
	case Failed:
		return &RefreshError{Outcome: Failed, Message: fmt.Sprintf("the refresh failed: %s", readySummary(export))}
	default:
		why := p.declineNote(ctx, export)
		if why == "" {
			why = "forced refreshes come at least --forced-refresh-min-interval after the last attempt, none while the provider rejects the credentials, and none while the resource is suspended"
		}
		last := lastAttempt(export)
		if !last.IsZero() {
			why += fmt.Sprintf(" (last attempt %s ago)", duration.HumanDuration(max(p.Clock.Now().Sub(last), 0)))
		}
		return &RefreshError{Outcome: Declined, Message: "the operator declined the refresh request: " + why}
	}
}

func lastAttempt(export *uredisv1alpha1.RedisBackupExport) time.Time {
	var last time.Time
	for _, t := range []*metav1.Time{export.Status.LastRefreshTime, export.Status.LastFailureTime} {
		if t != nil && t.After(last) {
			last = t.Time
		}
	}
	return last
}

// declineNote is the note of the newest RefreshRequestDeclined Event of the
// resource, or "" when there is none or Events cannot be read (a user
// allowed only get and patch on the resource).
func (p *Plugin) declineNote(ctx context.Context, export *uredisv1alpha1.RedisBackupExport) string {
	events := &eventsv1.EventList{}
	err := p.Client.List(ctx, events, client.InNamespace(export.Namespace),
		client.MatchingFields{"regarding.name": export.Name, "reason": uredisv1alpha1.EventRefreshRequestDeclined})
	if err != nil {
		return ""
	}
	var newest *eventsv1.Event
	var newestAt time.Time
	for i := range events.Items {
		e := &events.Items[i]
		if e.Regarding.UID != export.UID {
			continue
		}
		if at := eventTime(e); newest == nil || at.After(newestAt) {
			newest, newestAt = e, at
		}
	}
	if newest == nil {
		return ""
	}
	return strings.TrimPrefix(newest.Note, uredisv1alpha1.RefreshRequestDeclinedPrefix)
}

func eventTime(e *eventsv1.Event) time.Time {
	times := []time.Time{e.EventTime.Time, e.DeprecatedLastTimestamp.Time, e.CreationTimestamp.Time}
	if e.Series != nil {
		times = append(times, e.Series.LastObservedTime.Time)
	}
	return slices.MaxFunc(times, func(a, b time.Time) int { return a.Compare(b) })
}

// readySummary is the Ready condition as "Status/Reason: message".
func readySummary(export *uredisv1alpha1.RedisBackupExport) string {
	ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	if ready == nil {
		return "no Ready condition yet"
	}
	return fmt.Sprintf("%s/%s: %s", ready.Status, ready.Reason, ready.Message)
}

func (p *Plugin) getExport(ctx context.Context, name string) (*uredisv1alpha1.RedisBackupExport, error) {
	export := &uredisv1alpha1.RedisBackupExport{}
	if err := p.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: name}, export); err != nil {
		return nil, p.apiError(err, "reading", name)
	}
	return export, nil
}

// apiError words an API server error about the named resource.
func (p *Plugin) apiError(err error, doing, name string) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("redisbackupexport %q not found in namespace %s", name, p.Namespace)
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return fmt.Errorf("%s redisbackupexport %s/%s: %s", doing, p.Namespace, name, status.Status().Message)
	}
	return fmt.Errorf("%s redisbackupexport %s/%s: %w", doing, p.Namespace, name, err)
}
