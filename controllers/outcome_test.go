package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/schedule"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// testOutcomes: transient retries from 5 s doubling to 5 min, permanent
// ones from 5 min; jitter 0.999999 makes a backoff delay its full value
// less a second of truncation.
var testOutcomes = outcomes{
	policy:    schedule.DefaultPolicy(),
	transient: schedule.Backoff{Base: 5 * time.Second, Max: 5 * time.Minute},
	permanent: schedule.Backoff{Base: 5 * time.Minute, Max: time.Hour},
}

const fullJitter = 0.999999

// exportWithLink is a Ready resource at generation 1 whose link expires in
// an hour, after two failed attempts.
func exportWithLink() *uredisv1alpha1.RedisBackupExport {
	export := &uredisv1alpha1.RedisBackupExport{
		ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "ns", UID: "uid-1", Generation: 1},
		Spec: uredisv1alpha1.RedisBackupExportSpec{BackupSelection: uredisv1alpha1.BackupSelection{BackupID: "b", Region: "r"}, Target: uredisv1alpha1.TargetSecret{
			Name: "target", Labels: map[string]uredisv1alpha1.LabelValue{"app": "restore"},
		}},
		Status: uredisv1alpha1.RedisBackupExportStatus{
			BackupID:           "b",
			BackupPath:         "https://old.example.com/x",
			ExpiresAt:          timePtr(now.Add(time.Hour)),
			NextRefreshTime:    timePtr(now.Add(40 * time.Minute)),
			SecretName:         "target",
			ObservedGeneration: 1,
			LinkGeneration:     1,
			FailureCount:       2,
		},
	}
	setReady(export, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed, "fresh")
	return export
}

var (
	outage       = &cloud.HTTPStatusError{Action: "DescribeURedisBackupURL", StatusCode: 503}
	refused      = &cloud.APIError{Action: "DescribeURedisBackupURL", RetCode: 20003, Message: "failed to get info"}
	badSignature = &cloud.APIError{Action: "DescribeURedisBackupURL", RetCode: 171, Message: "signature error"}
)

func expiresIn(d time.Duration) func(*uredisv1alpha1.RedisBackupExport) {
	return func(e *uredisv1alpha1.RedisBackupExport) { e.Status.ExpiresAt = timePtr(now.Add(d)) }
}

// TestSummarize covers every path through summarize: the conditions, the
// planned attempt and the requeue come from one place.
func TestSummarize(t *testing.T) {
	newSpec := func(e *uredisv1alpha1.RedisBackupExport) { e.Generation = 2 }
	tests := []struct {
		name       string
		mutate     func(*uredisv1alpha1.RedisBackupExport)
		err        error
		secretLost bool
		wantReady  string // status/reason
		wantStatus string // the other condition set, "" for none
		wantNext   time.Duration
		wantWait   time.Duration
	}{{
		name:      "nothing due, valid link: wait for the planned refresh",
		wantReady: "True/Refreshed", wantNext: 40 * time.Minute, wantWait: 40 * time.Minute,
	}, {
		name:      "nothing due, the planned retry is after the expiry: wake a second after it",
		mutate:    func(e *uredisv1alpha1.RedisBackupExport) { e.Status.NextRefreshTime = timePtr(now.Add(2 * time.Hour)) },
		wantReady: "True/Refreshed", wantNext: 2 * time.Hour, wantWait: time.Hour + time.Second,
	}, {
		name:      "nothing due, link expired: Ready turns False, the Secret is left alone",
		mutate:    expiresIn(0),
		wantReady: "False/LinkExpired", wantStatus: "Reconciling", wantNext: 40 * time.Minute, wantWait: 40 * time.Minute,
	}, {
		name:      "outage, link valid for an hour: the backoff as it is",
		err:       outage,
		wantReady: "True/RefreshFailing", wantNext: 19 * time.Second, wantWait: 19 * time.Second,
	}, {
		name:       "outage, link valid but the Secret gone and not restored: not Ready",
		err:        outage,
		secretLost: true,
		wantReady:  "False/ProviderUnavailable", wantStatus: "Reconciling", wantNext: 19 * time.Second, wantWait: 19 * time.Second,
	}, {
		name:      "outage, 20 s left: a quarter of the time left, not the 19 s backoff",
		mutate:    expiresIn(20 * time.Second),
		err:       outage,
		wantReady: "True/RefreshFailing", wantNext: 5 * time.Second, wantWait: 5 * time.Second,
	}, {
		name:      "outage, a second left: the one-second floor",
		mutate:    expiresIn(time.Second),
		err:       outage,
		wantReady: "True/RefreshFailing", wantNext: time.Second, wantWait: time.Second,
	}, {
		name:      "outage after the expiry: LinkExpired and the full backoff",
		mutate:    expiresIn(-time.Second),
		err:       outage,
		wantReady: "False/LinkExpired", wantStatus: "Reconciling", wantNext: 19 * time.Second, wantWait: 19 * time.Second,
	}, {
		name:      "outage, link of an older spec: not Ready, the uncapped backoff",
		mutate:    newSpec,
		err:       outage,
		wantReady: "False/ProviderUnavailable", wantStatus: "Reconciling", wantNext: 19 * time.Second, wantWait: 19 * time.Second,
	}, {
		name:      "refused for good: Stalled, the slow retry, capped at the expiry for the wake-up",
		err:       refused,
		wantReady: "False/ProviderRejected", wantStatus: "Stalled", wantNext: 19*time.Minute + 59*time.Second, wantWait: 19*time.Minute + 59*time.Second,
	}, {
		name:      "refused for good, 10 min left: the slow retry; the expiry wakes it first",
		mutate:    expiresIn(10 * time.Minute),
		err:       refused,
		wantReady: "False/ProviderRejected", wantStatus: "Stalled", wantNext: 19*time.Minute + 59*time.Second, wantWait: 10*time.Minute + time.Second,
	}, {
		name:      "credentials rejected: Stalled, the slow retry",
		mutate:    newSpec,
		err:       badSignature,
		wantReady: "False/CredentialsRejected", wantStatus: "Stalled", wantNext: 19*time.Minute + 59*time.Second, wantWait: 19*time.Minute + 59*time.Second,
	}, {
		name:      "credentials missing: no timed retry, only the expiry wakes it",
		err:       newFailure(uredisv1alpha1.ReasonCredentialsNotFound, "credentials Secret %q not found", "c"),
		wantReady: "False/CredentialsNotFound", wantStatus: "Stalled", wantWait: time.Hour + time.Second,
	}, {
		name:      "Secret clash without a link: nothing but an event brings it back",
		mutate:    newSpec,
		err:       newFailure(uredisv1alpha1.ReasonSecretConflict, "clash"),
		wantReady: "False/SecretConflict", wantStatus: "Stalled",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			export := exportWithLink()
			if tt.mutate != nil {
				tt.mutate(export)
			}
			wait := testOutcomes.summarize(export, attempt{now: now, jitter: fullJitter, err: tt.err, secretLost: tt.secretLost})
			st := export.Status
			ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady)
			if got := string(ready.Status) + "/" + ready.Reason; got != tt.wantReady {
				t.Errorf("Ready = %s (%s), want %s", got, ready.Message, tt.wantReady)
			}
			for _, other := range []string{uredisv1alpha1.ConditionReconciling, uredisv1alpha1.ConditionStalled} {
				if set := meta.IsStatusConditionTrue(st.Conditions, other); set != (other == tt.wantStatus) {
					t.Errorf("%s=%v, want it set only for %q", other, set, tt.wantStatus)
				}
			}
			var next time.Duration
			if st.NextRefreshTime != nil {
				next = st.NextRefreshTime.Sub(now)
			}
			if next != tt.wantNext || wait != tt.wantWait {
				t.Errorf("next attempt in %v, requeue after %v; want %v and %v", next, wait, tt.wantNext, tt.wantWait)
			}
			if st.ObservedGeneration != export.Generation || ready.ObservedGeneration != export.Generation {
				t.Errorf("observedGeneration %d (Ready's %d), want %d whatever the outcome", st.ObservedGeneration, ready.ObservedGeneration, export.Generation)
			}
			if st.BackupPath != "https://old.example.com/x" || st.LinkGeneration != 1 {
				t.Errorf("the last good link and its generation must be kept: %q at %d", st.BackupPath, st.LinkGeneration)
			}
			if tt.err != nil && (st.FailureCount != 3 || !st.LastFailureTime.Time.Equal(now)) {
				t.Errorf("failure bookkeeping: count %d, last %v", st.FailureCount, st.LastFailureTime)
			}
			if tt.err != nil && tt.wantNext > 0 && !strings.Contains(ready.Message, "next attempt at "+formatTime(now.Add(tt.wantNext))) {
				t.Errorf("message %q does not say when the next attempt is", ready.Message)
			}
		})
	}
}

func TestSummarizeSuccess(t *testing.T) {
	for _, field := range []string{cloud.FieldBackupPath, cloud.FieldBackupURL} {
		export := exportWithLink()
		export.Generation = 2
		setReady(export, metav1.ConditionFalse, uredisv1alpha1.ReasonProviderRejected, "refused")
		link := &cloud.BackupLink{Link: cloud.Link{URL: "https://new.example.com/x", ExpiresAt: now.Add(time.Hour)}, ObtainedAt: now, Field: field}
		wait := testOutcomes.summarize(export, attempt{now: now, jitter: 0, link: link, backupID: "b2"})
		st := export.Status
		if st.BackupID != "b2" || st.FailureCount != 0 || st.LastFailureTime != nil || st.BackupPath != link.URL || st.SecretName != "target" {
			t.Fatalf("unexpected status %+v", st)
		}
		if st.ObservedGeneration != 2 || st.LinkGeneration != 2 {
			t.Errorf("observedGeneration %d, linkGeneration %d; want 2 and 2", st.ObservedGeneration, st.LinkGeneration)
		}
		// A third of the hour before expiry, without jitter.
		if wait != 40*time.Minute || !st.NextRefreshTime.Time.Equal(now.Add(40*time.Minute)) {
			t.Errorf("requeue %v, next refresh %v; want 40m", wait, st.NextRefreshTime)
		}
		ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady)
		if ready.Status != metav1.ConditionTrue || ready.Reason != uredisv1alpha1.ReasonRefreshed || len(st.Conditions) != 1 {
			t.Fatalf("conditions %+v", st.Conditions)
		}
		if mentions := strings.Contains(ready.Message, "BackupURL"); mentions != (field == cloud.FieldBackupURL) {
			t.Errorf("from %s: message %q", field, ready.Message)
		}
	}
}

// TestOutageAcrossTheExpiry walks one resource through an outage that
// starts with an hour-long link, with the transient backoff grown to its
// maximum: every visit is planned before the expiry, the retries get
// denser as it approaches, and the first visit at or after it says
// LinkExpired.
func TestOutageAcrossTheExpiry(t *testing.T) {
	o := testOutcomes
	export := exportWithLink()
	export.Status.FailureCount = 30 // the backoff is at its 5 min maximum
	expiry := export.Status.ExpiresAt.Time
	at, visits := now.Add(50*time.Minute), 0
	for ; at.Before(expiry); visits++ {
		wait := o.summarize(export, attempt{now: at, jitter: fullJitter, err: outage})
		ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
		if ready.Reason != uredisv1alpha1.ReasonRefreshFailing {
			t.Fatalf("at %v: Ready %s/%s before the expiry", at, ready.Status, ready.Reason)
		}
		if left := expiry.Sub(at); wait > max(left/4, time.Second) {
			t.Fatalf("at %v (%v left) the next visit is in %v, more than a quarter of that", at, left, wait)
		}
		at = at.Add(wait)
	}
	if at.After(expiry.Add(time.Second)) {
		t.Fatalf("the first visit after the expiry came at %v, later than a second after %v", at, expiry)
	}
	if visits < 10 {
		t.Errorf("only %d attempts in the last 10 minutes of the link", visits)
	}
	o.summarize(export, attempt{now: at, jitter: fullJitter, err: outage})
	if ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady); ready.Reason != uredisv1alpha1.ReasonLinkExpired {
		t.Fatalf("after the expiry: Ready %s/%s", ready.Status, ready.Reason)
	}
}

func TestReasonFor(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{newFailure(uredisv1alpha1.ReasonCredentialsNotFound, "x"), uredisv1alpha1.ReasonCredentialsNotFound},
		{fmt.Errorf("wrapped: %w", newConflictError(exportTarget(exportWithLink()))), uredisv1alpha1.ReasonSecretConflict},
		{newLinkTooShortError(time.Second, time.Minute), uredisv1alpha1.ReasonLinkTooShort},
		{newNoBackupError("g", uredisv1alpha1.BackupTypeAny), uredisv1alpha1.ReasonNoBackupFound},
		{&cloud.APIError{RetCode: 170}, uredisv1alpha1.ReasonCredentialsRejected},
		{&cloud.APIError{RetCode: 172}, uredisv1alpha1.ReasonCredentialsRejected},
		{&cloud.APIError{RetCode: 174}, uredisv1alpha1.ReasonCredentialsRejected},
		{&cloud.APIError{RetCode: 299}, uredisv1alpha1.ReasonProviderRejected},
		{fmt.Errorf("wrapped: %w", refused), uredisv1alpha1.ReasonProviderRejected},
		{&cloud.HTTPStatusError{StatusCode: 403}, uredisv1alpha1.ReasonProviderRejected},
		{&cloud.APIError{RetCode: 153}, uredisv1alpha1.ReasonProviderUnavailable},
		{&cloud.HTTPStatusError{StatusCode: 502}, uredisv1alpha1.ReasonProviderUnavailable},
		{&cloud.TransportError{Err: errors.New("connection refused")}, uredisv1alpha1.ReasonProviderUnavailable},
		{&cloud.ResponseError{Reason: "neither BackupPath nor BackupURL holds a usable link"}, uredisv1alpha1.ReasonProviderUnavailable},
	}
	for _, tt := range tests {
		if got := reasonFor(tt.err); got != tt.want {
			t.Errorf("reasonFor(%v) = %s, want %s", tt.err, got, tt.want)
		}
		if _, ok := kindOf(reasonFor(tt.err)); !ok {
			t.Errorf("reason %s is not declared in failureKinds", reasonFor(tt.err))
		}
	}
}

// TestEveryReasonIsDeclared: each Ready reason is either a failure in
// failureKinds or one of the three link states, never both.
func TestEveryReasonIsDeclared(t *testing.T) {
	linkStates := []string{uredisv1alpha1.ReasonRefreshed, uredisv1alpha1.ReasonRefreshFailing, uredisv1alpha1.ReasonLinkExpired}
	for _, reason := range linkStates {
		if _, ok := kindOf(reason); ok {
			t.Errorf("%s describes the link, not a failure", reason)
		}
	}
	if len(failureKinds) != 18 {
		t.Errorf("%d failure reasons declared; a new one needs its row in failureKinds, docs/reference.md and this test", len(failureKinds))
	}
	for reason, kind := range failureKinds {
		if kind.class == transient && kind.retry != retryWithBackoff {
			t.Errorf("%s: transient failures retry with the transient backoff", reason)
		}
		if kind.retryOnCredentialsChange && kind.retry != retrySlowly {
			t.Errorf("%s: an early retry on new credentials only matters for slow retries", reason)
		}
		if kind.onlyCredentialsFix && !kind.retryOnCredentialsChange {
			t.Errorf("%s: a failure only credentials fix must retry when they change", reason)
		}
	}
}

func TestRejectedMessageCarriesTheRetCode(t *testing.T) {
	export := exportWithLink()
	testOutcomes.summarize(export, attempt{now: now, err: badSignature})
	ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	for _, want := range []string{"RetCode 171", "signature error", "credentials were refused"} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("message %q lacks %q", ready.Message, want)
		}
	}
}

func TestProgressConditions(t *testing.T) {
	tests := []struct {
		readyStatus    metav1.ConditionStatus
		reason         string
		wantType       string
		wantAbsentType string
	}{
		{metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed, "", ""},
		{metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing, "", ""},
		{metav1.ConditionFalse, uredisv1alpha1.ReasonProviderRejected, uredisv1alpha1.ConditionStalled, uredisv1alpha1.ConditionReconciling},
		{metav1.ConditionFalse, uredisv1alpha1.ReasonCredentialsNotFound, uredisv1alpha1.ConditionStalled, uredisv1alpha1.ConditionReconciling},
		{metav1.ConditionFalse, uredisv1alpha1.ReasonSecretConflict, uredisv1alpha1.ConditionStalled, uredisv1alpha1.ConditionReconciling},
		{metav1.ConditionFalse, uredisv1alpha1.ReasonProviderUnavailable, uredisv1alpha1.ConditionReconciling, uredisv1alpha1.ConditionStalled},
		{metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired, uredisv1alpha1.ConditionReconciling, uredisv1alpha1.ConditionStalled},
		{metav1.ConditionTrue, uredisv1alpha1.ReasonSuspended, "", ""},
		{metav1.ConditionFalse, uredisv1alpha1.ReasonSuspended, uredisv1alpha1.ConditionStalled, uredisv1alpha1.ConditionReconciling},
	}
	for _, tt := range tests {
		export := exportWithLink()
		// Start from the opposite state to prove stale conditions are removed.
		meta.SetStatusCondition(&export.Status.Conditions, metav1.Condition{Type: uredisv1alpha1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: "Old"})
		meta.SetStatusCondition(&export.Status.Conditions, metav1.Condition{Type: uredisv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "Old"})
		setReady(export, tt.readyStatus, tt.reason, "m")
		progressConditions(&export.Status.Conditions, export.Generation)
		conditions := export.Status.Conditions
		if tt.wantType == "" {
			if len(conditions) != 1 {
				t.Errorf("%s: want only Ready, got %+v", tt.reason, conditions)
			}
			continue
		}
		got := meta.FindStatusCondition(conditions, tt.wantType)
		if got == nil || got.Status != metav1.ConditionTrue || got.Reason != tt.reason {
			t.Errorf("%s: %s = %+v", tt.reason, tt.wantType, got)
		}
		if meta.FindStatusCondition(conditions, tt.wantAbsentType) != nil {
			t.Errorf("%s: %s must be removed", tt.reason, tt.wantAbsentType)
		}
	}
}

func TestLinkGenerationOfOlderStatuses(t *testing.T) {
	st := uredisv1alpha1.RedisBackupExportStatus{BackupPath: "https://x", ObservedGeneration: 3}
	if linkGeneration(st) != 3 {
		t.Errorf("a status written before linkGeneration existed keeps its link for generation 3")
	}
	st.LinkGeneration = 2
	if linkGeneration(st) != 2 {
		t.Errorf("linkGeneration wins once written")
	}

	// An older status, then a spec edit the API refuses: the link stays the
	// one of generation 1 although observedGeneration moves to 2.
	export := exportWithLink()
	export.Status.LinkGeneration = 0
	export.Generation = 2
	testOutcomes.summarize(export, attempt{now: now, err: refused})
	if export.Status.ObservedGeneration != 2 || linkGeneration(export.Status) != 1 {
		t.Errorf("observedGeneration %d, link generation %d; want 2 and 1", export.Status.ObservedGeneration, linkGeneration(export.Status))
	}
}

// TestEventFor: events for what a person needs to see, not for every
// routine refresh.
func TestEventFor(t *testing.T) {
	ready := func(status metav1.ConditionStatus, reason string) *metav1.Condition {
		return &metav1.Condition{Type: uredisv1alpha1.ConditionReady, Status: status, Reason: reason}
	}
	link := &cloud.BackupLink{Link: cloud.Link{URL: "https://new.example.com/x", ExpiresAt: now.Add(time.Hour)}, ObtainedAt: now}
	tests := []struct {
		name     string
		before   *metav1.Condition
		backupID string
		mutate   func(*uredisv1alpha1.RedisBackupExport)
		a        attempt
		want     string // type/reason, "" for no event
	}{
		{"a new resource's first link", nil, "", nil, attempt{link: link, backupID: "b"}, ""},
		{"a routine refresh", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed), "b", nil, attempt{link: link, backupID: "b"}, ""},
		{"a refresh after failures", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing), "b", nil, attempt{link: link, backupID: "b"}, "Normal/Refreshed"},
		{"a link after an outage without one", ready(metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired), "b", nil, attempt{link: link, backupID: "b"}, "Normal/Refreshed"},
		{"latest chose another backup", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed), "a", nil, attempt{link: link, backupID: "b"}, "Normal/Refreshed"},
		{"the first failure", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed), "b", nil, attempt{err: outage}, "Warning/RefreshFailed"},
		{"a new resource failing", nil, "", func(e *uredisv1alpha1.RedisBackupExport) { e.Generation = 2 }, attempt{err: outage}, "Warning/RefreshFailed"},
		{"the same failure again", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing), "b", nil, attempt{err: outage}, ""},
		{"another failure", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing), "b", nil, attempt{err: refused}, "Warning/RefreshFailed"},
		{"the link expires while waiting", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing), "b", expiresIn(0), attempt{}, "Warning/LinkExpired"},
		{"a failing retry finds the link expired", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing), "b", expiresIn(0), attempt{err: outage}, "Warning/LinkExpired"},
		{"failing on after the expiry", ready(metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired), "b", expiresIn(0), attempt{err: outage}, ""},
		{"no Ready condition at all", nil, "b", func(e *uredisv1alpha1.RedisBackupExport) { e.Status.NextRefreshTime = timePtr(now.Add(time.Hour)) }, attempt{}, ""},
		{"nothing happens", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed), "b", nil, attempt{}, ""},
		{"suspended", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshed), "b", suspend, attempt{secretInSync: true}, ""},
		{"the link expires while suspended", ready(metav1.ConditionTrue, uredisv1alpha1.ReasonSuspended), "b", func(e *uredisv1alpha1.RedisBackupExport) {
			suspend(e)
			expiresIn(0)(e)
		}, attempt{secretInSync: true}, "Warning/LinkExpired"},
		{"suspended past the expiry", ready(metav1.ConditionFalse, uredisv1alpha1.ReasonSuspended), "b", func(e *uredisv1alpha1.RedisBackupExport) {
			suspend(e)
			expiresIn(0)(e)
		}, attempt{secretInSync: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			export := exportWithLink()
			if tt.before != nil {
				setReady(export, tt.before.Status, tt.before.Reason, "before")
			} else {
				export.Status.Conditions = nil
			}
			if tt.mutate != nil {
				tt.mutate(export)
			}
			tt.a.now = now
			testOutcomes.summarize(export, tt.a)
			e, ok := eventFor(tt.before, tt.backupID, export, tt.a)
			got := ""
			if ok {
				got = e.eventType + "/" + e.reason
			}
			if got != tt.want {
				t.Errorf("event %q (%q), want %q", got, e.note, tt.want)
			}
			if ok && strings.Contains(e.note, link.URL) {
				t.Errorf("the note %q carries the link", e.note)
			}
		})
	}
}

func suspend(e *uredisv1alpha1.RedisBackupExport) { e.Spec.Suspend = true }

// TestSummarizeSuspended: while suspended, Ready tells whether the Secret
// still holds a working link, nothing is planned but the wake-up at the
// expiry, and the planned refresh is kept for the resume.
func TestSummarizeSuspended(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*uredisv1alpha1.RedisBackupExport)
		inSync     bool
		wantReady  string
		wantStalls bool
		wantWait   time.Duration
		message    string
	}{{
		name:      "a valid link in the Secret: Ready until the expiry, which wakes it",
		inSync:    true,
		wantReady: "True/Suspended", wantWait: time.Hour + time.Second,
		message: `the link in Secret "target" stays valid until 2026-11-27T11:00:00Z`,
	}, {
		name:      "the refresh is overdue: no wake-up before the expiry",
		mutate:    func(e *uredisv1alpha1.RedisBackupExport) { e.Status.NextRefreshTime = timePtr(now.Add(-time.Minute)) },
		inSync:    true,
		wantReady: "True/Suspended", wantWait: time.Hour + time.Second,
	}, {
		name:      "the Secret was deleted or edited: not Ready, and not repaired",
		wantReady: "False/Suspended", wantStalls: true, wantWait: time.Hour + time.Second,
		message: `Secret "target" no longer holds the link`,
	}, {
		name:      "the link expired: not Ready, nothing planned",
		mutate:    expiresIn(0),
		inSync:    true,
		wantReady: "False/Suspended", wantStalls: true,
		message: `expired at 2026-11-27T10:00:00Z, and resuming obtains a new one at once`,
	}, {
		name:      "no link for the current spec",
		mutate:    func(e *uredisv1alpha1.RedisBackupExport) { e.Generation = 2 },
		inSync:    true,
		wantReady: "False/Suspended", wantStalls: true,
		message: "no link has been obtained for the current spec",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			export := exportWithLink()
			export.Spec.Suspend = true
			if tt.mutate != nil {
				tt.mutate(export)
			}
			before := export.Status.NextRefreshTime
			wait := testOutcomes.summarize(export, attempt{now: now, jitter: fullJitter, secretInSync: tt.inSync})
			st := export.Status
			ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady)
			if got := string(ready.Status) + "/" + ready.Reason; got != tt.wantReady {
				t.Errorf("Ready = %s (%s), want %s", got, ready.Message, tt.wantReady)
			}
			if !strings.Contains(ready.Message, "suspended") || !strings.Contains(ready.Message, tt.message) {
				t.Errorf("message %q does not say it is suspended and %q", ready.Message, tt.message)
			}
			if stalled := meta.IsStatusConditionTrue(st.Conditions, uredisv1alpha1.ConditionStalled); stalled != tt.wantStalls {
				t.Errorf("Stalled=%v, want %v", stalled, tt.wantStalls)
			}
			if meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReconciling) != nil {
				t.Errorf("a suspended resource is never Reconciling")
			}
			if wait != tt.wantWait {
				t.Errorf("requeue after %v, want %v", wait, tt.wantWait)
			}
			if !st.NextRefreshTime.Equal(before) || st.FailureCount != 2 || st.LastFailureTime != nil {
				t.Errorf("the plan and the failure bookkeeping are kept: next %v, failures %d, last %v", st.NextRefreshTime, st.FailureCount, st.LastFailureTime)
			}
			if st.SpecDigest != specDigest(export.Spec) {
				t.Errorf("the spec digest of the observed generation is recorded")
			}
		})
	}
}

// TestSuspendToggleIsNotASpecChange: suspending and resuming keep the link
// and the last verdict; any other edit, before or while suspended, is a
// spec change as before.
func TestSuspendToggleIsNotASpecChange(t *testing.T) {
	observed := func() *uredisv1alpha1.RedisBackupExport {
		export := exportWithLink()
		testOutcomes.summarize(export, attempt{now: now, secretInSync: true})
		return export
	}
	t.Run("suspend, then resume", func(t *testing.T) {
		export := observed()
		export.Status.FailureCount = 0 // the last refresh succeeded
		for _, step := range []struct {
			generation int64
			suspended  bool
		}{{2, true}, {3, false}} {
			generation := step.generation
			export.Generation, export.Spec.Suspend = generation, step.suspended
			followSuspendToggle(export)
			if specChanged(export) || linkStateAt(export, now) != linkValid || export.Status.LinkGeneration != generation {
				t.Fatalf("generation %d: spec changed %v, link state %v, link generation %d", generation, specChanged(export), linkStateAt(export, now), export.Status.LinkGeneration)
			}
			testOutcomes.summarize(export, attempt{now: now, secretInSync: true})
		}
		ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
		if ready.Reason != uredisv1alpha1.ReasonRefreshed || !strings.HasPrefix(ready.Message, "resumed: ") {
			t.Errorf("after the resume: %s %q", ready.Reason, ready.Message)
		}
	})
	t.Run("the restart targets change", func(t *testing.T) {
		export := observed()
		export.Generation = 2
		export.Spec.RolloutRestartTargets = []uredisv1alpha1.RolloutRestartTarget{{Kind: uredisv1alpha1.RolloutRestartDeployment, Name: "app"}}
		followSuspendToggle(export)
		if specChanged(export) || linkStateAt(export, now) != linkValid || export.Status.LinkGeneration != 2 {
			t.Errorf("editing the restart targets is not a spec change: spec changed %v, link generation %d", specChanged(export), export.Status.LinkGeneration)
		}
	})
	t.Run("another field changes with suspend", func(t *testing.T) {
		export := observed()
		export.Generation, export.Spec.Suspend, export.Spec.BackupID = 2, true, "other"
		followSuspendToggle(export)
		if !specChanged(export) || linkStateAt(export, now) != noLink {
			t.Errorf("a new backupId is a spec change")
		}
	})
	t.Run("an edit while suspended, then the resume", func(t *testing.T) {
		export := observed()
		export.Generation, export.Spec.Suspend = 2, true
		followSuspendToggle(export)
		testOutcomes.summarize(export, attempt{now: now, secretInSync: true})
		export.Generation, export.Spec.BackupID = 3, "other"
		followSuspendToggle(export)
		testOutcomes.summarize(export, attempt{now: now, secretInSync: true})
		export.Generation, export.Spec.Suspend = 4, false
		followSuspendToggle(export)
		if linkStateAt(export, now) != noLink || export.Status.LinkGeneration != 2 {
			t.Errorf("the link is still the one of generation 2: link generation %d", export.Status.LinkGeneration)
		}
		// The next visit refreshes, although the refresh planned for the
		// old link is 40 minutes away.
		obs := (&RedisBackupExportReconciler{}).observe(export, true, "", now)
		if decision := schedule.Decide(testOutcomes.policy, obs); decision.Action != schedule.Refresh {
			t.Errorf("Ready %s: a resumed resource without a link must look again at once, decided %s (%s)", readyReason(export), decision.Action, decision.Reason)
		}
	})
	t.Run("a status without a digest", func(t *testing.T) {
		export := exportWithLink()
		export.Generation, export.Spec.Suspend = 2, true
		followSuspendToggle(export)
		if !specChanged(export) {
			t.Errorf("without a digest, a new generation is a spec change")
		}
	})
}

// TestResumeKeepsTheFailureState: a resource resumed before its planned
// refresh or retry costs no call and comes back as it was before the
// suspension: Refreshed after a success, RefreshFailing while failures are
// counted (the suspension keeps the count and the planned retry). A
// resumed resource whose Ready is not True/Suspended is left to the rest of
// summarize.
func TestResumeKeepsTheFailureState(t *testing.T) {
	failing := func(err error) func(*uredisv1alpha1.RedisBackupExport) {
		return func(e *uredisv1alpha1.RedisBackupExport) {
			testOutcomes.summarize(e, attempt{now: now.Add(-5 * time.Second), jitter: fullJitter, err: err})
		}
	}
	tests := []struct {
		name string
		// before brings the resource to its state before the suspension.
		before    func(*uredisv1alpha1.RedisBackupExport)
		inSync    bool
		wantReady string
		message   []string
		wantNext  time.Duration
		// wantRefresh: the next visit refreshes at once; otherwise the
		// resume costs no call.
		wantRefresh bool
	}{{
		name: "the last refresh succeeded",
		before: func(e *uredisv1alpha1.RedisBackupExport) {
			e.Status.FailureCount = 0
			testOutcomes.summarize(e, attempt{now: now.Add(-time.Minute), secretInSync: true})
		},
		inSync:    true,
		wantReady: "True/Refreshed", wantNext: 40 * time.Minute,
		message: []string{`resumed: Secret "target" holds a link valid until 2026-11-27T11:00:00Z; next refresh at 2026-11-27T10:40:00Z`},
	}, {
		name:      "refreshing was failing, the link valid",
		before:    failing(outage),
		inSync:    true,
		wantReady: "True/RefreshFailing", wantNext: 14 * time.Second,
		message: []string{"resumed: the current link stays valid until 2026-11-27T11:00:00Z, but refreshing it failed (3 attempts in a row, the last at 2026-11-27T09:59:55Z); next attempt at 2026-11-27T10:00:14Z"},
	}, {
		// The reason is not kept through the suspension: the planned slow
		// retry is.
		name:      "refused for good, the link valid",
		before:    failing(refused),
		inSync:    true,
		wantReady: "True/RefreshFailing", wantNext: 19*time.Minute + 54*time.Second,
		message: []string{"but refreshing it failed (3 attempts in a row", "next attempt at 2026-11-27T10:19:54Z"},
	}, {
		name:      "the Secret lost the link while suspended: left False/Suspended for the refresh the resume brings",
		before:    failing(outage),
		wantReady: "False/Suspended", wantNext: 14 * time.Second, wantRefresh: true,
		message: []string{"no longer holds the link"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			export := exportWithLink()
			tt.before(export)
			before := export.Status
			export.Generation, export.Spec.Suspend = 2, true
			followSuspendToggle(export)
			testOutcomes.summarize(export, attempt{now: now, secretInSync: tt.inSync})
			export.Generation, export.Spec.Suspend = 3, false
			followSuspendToggle(export)
			testOutcomes.summarize(export, attempt{now: now, secretInSync: tt.inSync})

			st := export.Status
			ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady)
			if got := string(ready.Status) + "/" + ready.Reason; got != tt.wantReady {
				t.Errorf("Ready = %s (%s), want %s", got, ready.Message, tt.wantReady)
			}
			for _, want := range tt.message {
				if !strings.Contains(ready.Message, want) {
					t.Errorf("message %q lacks %q", ready.Message, want)
				}
			}
			if st.FailureCount != before.FailureCount || !st.LastFailureTime.Equal(before.LastFailureTime) {
				t.Errorf("failure bookkeeping: count %d (was %d), last %v (was %v)", st.FailureCount, before.FailureCount, st.LastFailureTime, before.LastFailureTime)
			}
			if next := st.NextRefreshTime.Sub(now); next != tt.wantNext {
				t.Errorf("next attempt in %v, want %v", next, tt.wantNext)
			}
			if ready.ObservedGeneration != 3 || st.LinkGeneration != 3 {
				t.Errorf("Ready's generation %d, link generation %d: want 3 (resuming is not a spec change)", ready.ObservedGeneration, st.LinkGeneration)
			}
			obs := (&RedisBackupExportReconciler{}).observe(export, tt.inSync, "", now)
			if decision := schedule.Decide(testOutcomes.policy, obs); (decision.Action == schedule.Refresh) != tt.wantRefresh {
				t.Errorf("after the resume: %s (%s), want a refresh: %v", decision.Action, decision.Reason, tt.wantRefresh)
			}
		})
	}
}
