package controllers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
)

func TestSelectNamespaces(t *testing.T) {
	deleting := metav1.Now()
	namespaces := []metav1.PartialObjectMetadata{
		{ObjectMeta: metav1.ObjectMeta{Name: "team-b", Labels: map[string]string{"restore": "yes"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"restore": "yes", "tier": "gold"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "listed"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "going", Labels: map[string]string{"restore": "yes"}, DeletionTimestamp: &deleting}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"restore": "no"}}},
	}
	match := func(labels map[string]string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: labels}
	}
	tests := []struct {
		name       string
		selector   *metav1.LabelSelector
		namespaces []string
		want       []string
		reason     string
	}{
		{name: "selector only, sorted, terminating skipped", selector: match(map[string]string{"restore": "yes"}), want: []string{"team-a", "team-b"}},
		{name: "list only; a missing namespace is skipped", namespaces: []string{"listed", "absent"}, want: []string{"listed"}},
		{name: "both are OR-ed", selector: match(map[string]string{"tier": "gold"}), namespaces: []string{"listed"}, want: []string{"listed", "team-a"}},
		{name: "a listed namespace being deleted is skipped", namespaces: []string{"going"}, want: nil},
		{name: "an empty selector selects every namespace", selector: &metav1.LabelSelector{}, want: []string{"listed", "other", "team-a", "team-b"}},
		{name: "nothing matches", selector: match(map[string]string{"restore": "maybe"}), want: nil},
		{name: "an invalid selector", selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "restore", Operator: "Near"}}},
			reason: uredisv1alpha1.ReasonNamespaceSelectorInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := uredisv1alpha1.ClusterRedisBackupExportSpec{NamespaceSelector: tt.selector, Namespaces: tt.namespaces}
			got, err := selectNamespaces(spec, namespaces)
			if tt.reason != "" {
				if err == nil || reasonFor(err) != tt.reason {
					t.Fatalf("selectNamespaces() error = %v, want reason %s", err, tt.reason)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("selectNamespaces() = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestBoundedFailures(t *testing.T) {
	failures := map[string]error{}
	for i := range 8 {
		failures[fmt.Sprintf("ns-%d", 7-i)] = newConflictError(secretTarget{key: types.NamespacedName{Name: "link"}, gvk: uredisv1alpha1.ClusterGroupVersionKind})
	}
	listed, count := boundedFailures(failures)
	if count != 8 || len(listed) != uredisv1alpha1.MaxNamespaceFailures {
		t.Fatalf("boundedFailures() listed %d, counted %d; want %d and 8", len(listed), count, uredisv1alpha1.MaxNamespaceFailures)
	}
	for i, f := range listed {
		if f.Namespace != fmt.Sprintf("ns-%d", i) || f.Reason != uredisv1alpha1.ReasonSecretConflict {
			t.Errorf("listed[%d] = %+v: the first namespaces by name, with their reason", i, f)
		}
	}
	if describe := describeFailures(listed, count); !strings.HasSuffix(describe, "; and 3 more") {
		t.Errorf("describeFailures() = %q", describe)
	}
	if listed, count := boundedFailures(nil); listed != nil || count != 0 {
		t.Errorf("no failures: %v, %d", listed, count)
	}
}

// TestLinkSpecDigest: only what the link and its data depend on asks for a
// new link.
func TestLinkSpecDigest(t *testing.T) {
	base := func() uredisv1alpha1.ClusterRedisBackupExportSpec {
		return uredisv1alpha1.ClusterRedisBackupExportSpec{
			BackupSelection: uredisv1alpha1.BackupSelection{BackupID: "b", Region: "r"},
			CredentialsRef:  uredisv1alpha1.ClusterCredentialsReference{CredentialsReference: uredisv1alpha1.CredentialsReference{Name: "c"}, Namespace: "ops"},
			Namespaces:      []string{"a"},
		}
	}
	tests := []struct {
		name    string
		mutate  func(*uredisv1alpha1.ClusterRedisBackupExportSpec)
		newLink bool
	}{
		{"another backup", func(s *uredisv1alpha1.ClusterRedisBackupExportSpec) { s.BackupID = "b2" }, true},
		{"other credentials", func(s *uredisv1alpha1.ClusterRedisBackupExportSpec) { s.CredentialsRef.Namespace = "ops2" }, true},
		{"renamed keys", func(s *uredisv1alpha1.ClusterRedisBackupExportSpec) { s.Target.Keys.BackupPath = "URL" }, true},
		{"more namespaces", func(s *uredisv1alpha1.ClusterRedisBackupExportSpec) { s.Namespaces = append(s.Namespaces, "b") }, false},
		{"a selector", func(s *uredisv1alpha1.ClusterRedisBackupExportSpec) { s.NamespaceSelector = &metav1.LabelSelector{} }, false},
		{"labels", func(s *uredisv1alpha1.ClusterRedisBackupExportSpec) {
			s.Target.Labels = map[string]uredisv1alpha1.LabelValue{"app": "restore"}
		}, false},
		{"suspended", func(s *uredisv1alpha1.ClusterRedisBackupExportSpec) { s.Suspend = true }, false},
		{"a template", func(s *uredisv1alpha1.ClusterRedisBackupExportSpec) {
			s.Target.Template = &uredisv1alpha1.SecretTemplate{Data: map[string]uredisv1alpha1.TemplateText{"url": "{{ .backupPath }}"}}
		}, true},
	}
	for _, tt := range tests {
		changed := base()
		tt.mutate(&changed)
		if got := linkSpecDigest(changed) != linkSpecDigest(base()); got != tt.newLink {
			t.Errorf("%s: new link = %v, want %v", tt.name, got, tt.newLink)
		}
	}
	// Resources created before templates existed keep their link.
	if got, want := linkSpecDigest(base()), "1029f6121ce695d44bdeba1cde2ac163"; got != want {
		t.Errorf("linkSpecDigest() = %s, want %s as before templates", got, want)
	}
	templated := base()
	templated.Target.Template = &uredisv1alpha1.SecretTemplate{Data: map[string]uredisv1alpha1.TemplateText{"url": "{{ .backupPath }}"}}
	merged := base()
	merged.Target.Template = &uredisv1alpha1.SecretTemplate{Data: templated.Target.Template.Data, MergePolicy: uredisv1alpha1.MergePolicyMerge}
	if linkSpecDigest(templated) == linkSpecDigest(merged) {
		t.Error("the merge policy shapes the data")
	}
	if shapeDigest(base().Target) == shapeDigest(uredisv1alpha1.TargetSecret{CreationPolicy: uredisv1alpha1.CreationPolicyOrphan}) {
		t.Error("the creation policy shapes the Secret")
	}
}

func TestClusterReadiness(t *testing.T) {
	const spec = "digest"
	withLink := func(expiresIn time.Duration) *uredisv1alpha1.ClusterRedisBackupExport {
		e := &uredisv1alpha1.ClusterRedisBackupExport{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 1}}
		e.Status = uredisv1alpha1.ClusterRedisBackupExportStatus{
			ExpiresAt: timePtr(now.Add(expiresIn)), NextRefreshTime: timePtr(now.Add(expiresIn / 2)), LinkSpec: spec, SecretName: "link",
		}
		return e
	}
	conflicted := withLink(time.Hour)
	conflicted.Status.NamespaceFailures = []uredisv1alpha1.NamespaceFailure{{Namespace: "a", Reason: uredisv1alpha1.ReasonSecretConflict}}
	conflicted.Status.NamespaceFailureCount = 1
	otherSpec := withLink(time.Hour)
	otherSpec.Status.LinkSpec = "before"
	outage := &cloud.TransportError{Err: errors.New("connection refused")}
	suspended := func(e *uredisv1alpha1.ClusterRedisBackupExport) *uredisv1alpha1.ClusterRedisBackupExport {
		e = e.DeepCopy()
		e.Spec.Suspend = true
		return e
	}
	tests := []struct {
		name   string
		export *uredisv1alpha1.ClusterRedisBackupExport
		a      attempt
		fan    fanOut
		want   string // status/reason, "" for no change
		// message: a part of the condition's message
		message string
	}{
		{"all written", withLink(time.Hour), attempt{now: now}, fanOut{selected: 3, written: 3}, "True/Refreshed", "in all 3 selected namespaces"},
		{"some still being written", withLink(time.Hour), attempt{now: now}, fanOut{selected: 3, written: 2}, "False/NamespacesPending", ""},
		{"a selector that cannot be used, the link still valid", withLink(time.Hour), attempt{now: now},
			fanOut{selectionErr: newFailure(uredisv1alpha1.ReasonNamespaceSelectorInvalid, "spec.namespaceSelector is not a valid label selector")},
			"False/NamespaceSelectorInvalid", "not a valid label selector"},
		{"a namespace failed", conflicted, attempt{now: now}, fanOut{selected: 3, written: 2}, "False/SecretConflict", ""},
		{"no namespace left", withLink(time.Hour), attempt{now: now}, fanOut{}, "False/NoNamespaceSelected", ""},
		{"refresh failing, link valid", withLink(time.Hour), attempt{now: now, err: outage}, fanOut{selected: 3, written: 3}, "True/RefreshFailing", ""},
		{"refresh failing, link expired", withLink(-time.Minute), attempt{now: now, err: outage}, fanOut{selected: 3}, "False/LinkExpired", ""},
		{"expired, nothing attempted", withLink(-time.Minute), attempt{now: now}, fanOut{selected: 3}, "False/LinkExpired", ""},
		{"credentials rejected, link valid", withLink(time.Hour), attempt{now: now, err: badSignature}, fanOut{selected: 3, written: 3}, "False/CredentialsRejected", ""},
		{"outage for a new spec", otherSpec, attempt{now: now, err: outage}, fanOut{selected: 3}, "False/ProviderUnavailable", ""},
		{"a link failure before namespace failures", conflicted, attempt{now: now, err: badSignature}, fanOut{selected: 3, written: 2}, "False/CredentialsRejected", ""},
		{"no link, nothing attempted: unchanged", otherSpec, attempt{now: now}, fanOut{selected: 3}, "", ""},

		{"suspended, every namespace holds the link", suspended(withLink(time.Hour)), attempt{now: now}, fanOut{selected: 3, written: 3}, "True/Suspended", "all 3 selected namespaces hold the link"},
		{"suspended, a namespace selected since", suspended(withLink(time.Hour)), attempt{now: now}, fanOut{selected: 3, written: 2}, "False/Suspended", "2 of 3 selected namespaces hold the link"},
		{"suspended, a foreign Secret", suspended(conflicted), attempt{now: now}, fanOut{selected: 3, written: 2}, "False/Suspended", "1 failed: a (SecretConflict)"},
		{"suspended, no namespace selected", suspended(withLink(time.Hour)), attempt{now: now}, fanOut{}, "False/Suspended", "no existing namespace is selected"},
		{"suspended, the link expired", suspended(withLink(-time.Second)), attempt{now: now}, fanOut{selected: 3, written: 3}, "False/Suspended", "expired at " + formatTime(now.Add(-time.Second))},
		{"suspended, the spec changed", suspended(otherSpec), attempt{now: now}, fanOut{selected: 3}, "False/Suspended", "no link has been obtained for the current spec"},
		{"suspended, never refreshed", suspended(&uredisv1alpha1.ClusterRedisBackupExport{}), attempt{now: now}, fanOut{selected: 3}, "False/Suspended", "resuming obtains one at once"},
	}
	for _, tt := range tests {
		status, reason, message, ok := clusterReadiness(tt.export, spec, tt.a, tt.fan)
		got := ""
		if ok {
			got = string(status) + "/" + reason
		}
		if got != tt.want || !strings.Contains(message, tt.message) {
			t.Errorf("%s: clusterReadiness() = %q (%s), want %q (%s)", tt.name, got, message, tt.want, tt.message)
		}
	}
}

// TestLinkReason: only a Ready reason about the link may ask for a call;
// a suspension does only while no valid link for the current spec exists,
// so that resuming with a fresh link costs none.
func TestLinkReason(t *testing.T) {
	const spec = "digest"
	valid := &uredisv1alpha1.ClusterRedisBackupExport{Status: uredisv1alpha1.ClusterRedisBackupExportStatus{ExpiresAt: timePtr(now.Add(time.Hour)), LinkSpec: spec}}
	expired := &uredisv1alpha1.ClusterRedisBackupExport{Status: uredisv1alpha1.ClusterRedisBackupExportStatus{ExpiresAt: timePtr(now.Add(-time.Second)), LinkSpec: spec}}
	otherSpec := &uredisv1alpha1.ClusterRedisBackupExport{Status: uredisv1alpha1.ClusterRedisBackupExportStatus{ExpiresAt: timePtr(now.Add(time.Hour)), LinkSpec: "before"}}
	tests := []struct {
		name   string
		export *uredisv1alpha1.ClusterRedisBackupExport
		reason string
		want   bool
	}{
		{"a namespace's conflict", valid, uredisv1alpha1.ReasonSecretConflict, false},
		{"namespaces pending", valid, uredisv1alpha1.ReasonNamespacesPending, false},
		{"a refused write", expired, uredisv1alpha1.ReasonSecretWriteRefused, false},
		{"missing credentials", valid, uredisv1alpha1.ReasonCredentialsNotFound, true},
		{"an invalid template", valid, uredisv1alpha1.ReasonTemplateInvalid, true},
		{"suspended with a valid link", valid, uredisv1alpha1.ReasonSuspended, false},
		{"suspended, the link expired", expired, uredisv1alpha1.ReasonSuspended, true},
		{"suspended, the spec changed", otherSpec, uredisv1alpha1.ReasonSuspended, true},
	}
	for _, tt := range tests {
		if got := linkReason(tt.export, spec, tt.reason, now); got != tt.want {
			t.Errorf("%s: linkReason() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestSummarizeClusterSuspended: a suspended resource keeps its planned
// refresh for the resume, plans no visit for it, and is woken only at the
// expiry; Stalled while Ready is False.
func TestSummarizeClusterSuspended(t *testing.T) {
	spec := uredisv1alpha1.ClusterRedisBackupExportSpec{Suspend: true, Namespaces: []string{"a", "b"}}
	digest := linkSpecDigest(spec)
	tests := []struct {
		name        string
		expiresIn   time.Duration
		fan         fanOut
		wantReady   string
		wantStalled bool
		wantWait    time.Duration
	}{
		{"every namespace holds the link", time.Hour, fanOut{selected: 2, written: 2}, "True/Suspended", false, time.Hour + time.Second},
		{"a namespace waits for the resume", time.Hour, fanOut{selected: 2, written: 1}, "False/Suspended", true, time.Hour + time.Second},
		{"the link expired", 0, fanOut{selected: 2}, "False/Suspended", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			export := &uredisv1alpha1.ClusterRedisBackupExport{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 2}, Spec: spec}
			export.Status = uredisv1alpha1.ClusterRedisBackupExportStatus{
				ExpiresAt: timePtr(now.Add(tt.expiresIn)), NextRefreshTime: timePtr(now.Add(tt.expiresIn - 20*time.Minute)),
				LinkSpec: digest, FailureCount: 1,
			}
			before := export.Status.NextRefreshTime
			wait := testOutcomes.summarizeCluster(export, attempt{now: now}, digest, nil, tt.fan)
			st := export.Status
			ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady)
			if got := string(ready.Status) + "/" + ready.Reason; got != tt.wantReady {
				t.Errorf("Ready = %s (%s), want %s", got, ready.Message, tt.wantReady)
			}
			if stalled := meta.IsStatusConditionTrue(st.Conditions, uredisv1alpha1.ConditionStalled); stalled != tt.wantStalled {
				t.Errorf("Stalled = %v, want %v", stalled, tt.wantStalled)
			}
			if wait != tt.wantWait {
				t.Errorf("requeue after %v, want %v (the expiry only)", wait, tt.wantWait)
			}
			if !st.NextRefreshTime.Equal(before) || st.FailureCount != 1 || st.ObservedGeneration != 2 {
				t.Errorf("the plan and the bookkeeping are kept, the generation observed: %+v", st)
			}
			if int(st.NamespacesWritten) != tt.fan.written || int(st.NamespacesSelected) != tt.fan.selected {
				t.Errorf("namespaces written %d of %d, want %d of %d", st.NamespacesWritten, st.NamespacesSelected, tt.fan.written, tt.fan.selected)
			}
		})
	}
}
