package controllers

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func TestClassifyFailure(t *testing.T) {
	tests := []struct {
		err         error
		wantReason  string
		waitsOnUser bool
	}{
		{&credentialsError{reason: uredisv1alpha1.ReasonCredentialsNotFound}, uredisv1alpha1.ReasonCredentialsNotFound, true},
		{&credentialsError{reason: uredisv1alpha1.ReasonCredentialsKeyMissing}, uredisv1alpha1.ReasonCredentialsKeyMissing, true},
		{&cloud.APIError{RetCode: 172}, uredisv1alpha1.ReasonCredentialsRejected, true},
		{&conflictError{}, uredisv1alpha1.ReasonSecretConflict, true},
		{&linkTooShortError{}, uredisv1alpha1.ReasonLinkTooShort, false},
		{&cloud.APIError{RetCode: 171}, uredisv1alpha1.ReasonCredentialsRejected, true},
		{&cloud.APIError{RetCode: 299}, uredisv1alpha1.ReasonProviderRejected, true},
		{fmt.Errorf("wrapped: %w", &cloud.APIError{RetCode: 20003}), uredisv1alpha1.ReasonProviderRejected, true},
		{&cloud.APIError{RetCode: 153}, uredisv1alpha1.ReasonProviderUnavailable, false},
		{&cloud.HTTPStatusError{StatusCode: 502}, uredisv1alpha1.ReasonProviderUnavailable, false},
		{&cloud.TransportError{Err: errors.New("connection refused")}, uredisv1alpha1.ReasonProviderUnavailable, false},
	}
	for _, tt := range tests {
		reason, waits := classifyFailure(tt.err)
		if reason != tt.wantReason || waits != tt.waitsOnUser {
			t.Errorf("classifyFailure(%v) = %s, %v; want %s, %v", tt.err, reason, waits, tt.wantReason, tt.waitsOnUser)
		}
	}
}

func TestFailedKeepsReadyOnlyForTransientErrorsWithAValidLink(t *testing.T) {
	expired := func(e *uredisv1alpha1.RedisBackupExport) { e.Status.ExpiresAt = timePtr(now) }
	newSpec := func(e *uredisv1alpha1.RedisBackupExport) { e.Generation = 2 }
	tests := []struct {
		name       string
		reason     string
		mutate     func(*uredisv1alpha1.RedisBackupExport)
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		{"transient, valid link", uredisv1alpha1.ReasonProviderUnavailable, nil, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing},
		{"transient, expired link", uredisv1alpha1.ReasonProviderUnavailable, expired, metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired},
		{"link too short, expired link", uredisv1alpha1.ReasonLinkTooShort, expired, metav1.ConditionFalse, uredisv1alpha1.ReasonLinkExpired},
		{"transient, link of an older spec", uredisv1alpha1.ReasonProviderUnavailable, newSpec, metav1.ConditionFalse, uredisv1alpha1.ReasonProviderUnavailable},
		{"permanent, valid link", uredisv1alpha1.ReasonProviderRejected, nil, metav1.ConditionFalse, uredisv1alpha1.ReasonProviderRejected},
		{"credentials", uredisv1alpha1.ReasonCredentialsNotFound, nil, metav1.ConditionFalse, uredisv1alpha1.ReasonCredentialsNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			export := exportWithLink()
			if tt.mutate != nil {
				tt.mutate(export)
			}
			failed(export, failure{err: &cloud.APIError{Action: "A", RetCode: 171, Message: "signature error"}, reason: tt.reason, retryAt: now.Add(time.Minute)}, now)
			ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
			if ready.Status != tt.wantStatus || ready.Reason != tt.wantReason {
				t.Fatalf("Ready = %s/%s, want %s/%s", ready.Status, ready.Reason, tt.wantStatus, tt.wantReason)
			}
			if ready.ObservedGeneration != export.Generation {
				t.Errorf("the condition must record the attempted generation")
			}
			st := export.Status
			if st.FailureCount != 3 || !st.LastFailureTime.Time.Equal(now) || !st.NextRefreshTime.Time.Equal(now.Add(time.Minute)) {
				t.Errorf("failure bookkeeping wrong: %+v", st)
			}
			if st.BackupPath == "" || st.ObservedGeneration != 1 {
				t.Errorf("a failure must not erase the last good link or its generation")
			}
			if !strings.Contains(ready.Message, "next attempt at 2026-11-27T10:01:00Z") {
				t.Errorf("message %q does not say when the next attempt is", ready.Message)
			}
		})
	}
}

func TestRejectedMessageCarriesTheRetCode(t *testing.T) {
	export := exportWithLink()
	failed(export, failure{err: &cloud.APIError{Action: "DescribeURedisBackupURL", RetCode: 171, Message: "signature error"}, reason: uredisv1alpha1.ReasonCredentialsRejected}, now)
	ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	for _, want := range []string{"RetCode 171", "signature error", "credentials were refused"} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("message %q lacks %q", ready.Message, want)
		}
	}
	if export.Status.NextRefreshTime != nil {
		t.Errorf("no retry time was given, so none may be shown")
	}
}

func TestRefreshedResetsFailures(t *testing.T) {
	export := exportWithLink()
	export.Generation = 2
	link := cloud.BackupLink{Link: cloud.Link{URL: "https://new.example.com/x", ExpiresAt: now.Add(time.Hour)}, ObtainedAt: now}
	refreshed(export, "b", link, now.Add(40*time.Minute))
	st := export.Status
	if st.BackupID != "b" || st.FailureCount != 0 || st.LastFailureTime != nil || st.ObservedGeneration != 2 || st.BackupPath != link.URL || st.SecretName != "target" {
		t.Fatalf("unexpected status %+v", st)
	}
	if ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady); ready.Status != metav1.ConditionTrue || ready.Reason != uredisv1alpha1.ReasonRefreshed {
		t.Fatalf("Ready = %+v", ready)
	}
}

func TestMarkExpired(t *testing.T) {
	export := exportWithLink()
	setReady(export, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing, "retrying")
	if markExpired(export, now.Add(59*time.Minute)) {
		t.Fatal("a valid link must not be marked expired")
	}
	if !markExpired(export, now.Add(time.Hour)) {
		t.Fatal("an expired link must turn the resource unready")
	}
	ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	if ready.Status != metav1.ConditionFalse || ready.Reason != uredisv1alpha1.ReasonLinkExpired {
		t.Fatalf("Ready = %+v", ready)
	}
	if markExpired(export, now.Add(2*time.Hour)) {
		t.Fatal("marking twice changes nothing")
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
	}
	for _, tt := range tests {
		export := exportWithLink()
		// Start from the opposite state to prove stale conditions are removed.
		meta.SetStatusCondition(&export.Status.Conditions, metav1.Condition{Type: uredisv1alpha1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: "Old"})
		meta.SetStatusCondition(&export.Status.Conditions, metav1.Condition{Type: uredisv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "Old"})
		setReady(export, tt.readyStatus, tt.reason, "m")
		setProgressConditions(export)
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

func TestSecretInSync(t *testing.T) {
	export := exportWithLink()
	good := func() *corev1.Secret {
		data := secretData(export, linkData{backupPath: export.Status.BackupPath, innerBackupPath: "https://inner.example.com/x", backupID: "b", expiresAt: export.Status.ExpiresAt.Time})
		secret := &corev1.Secret{}
		shapeSecret(secret, export, data)
		return secret
	}
	tests := []struct {
		name   string
		mutate func(*corev1.Secret)
		want   bool
	}{
		{"untouched", func(*corev1.Secret) {}, true},
		{"link edited", func(s *corev1.Secret) { s.Data[KeyBackupPath] = []byte("https://evil.example.com/") }, false},
		{"inner link edited", func(s *corev1.Secret) { s.Data[KeyInnerBackupPath] = []byte("x") }, false},
		{"key added", func(s *corev1.Secret) { s.Data["extra"] = []byte("x") }, false},
		{"owned by another resource", func(s *corev1.Secret) {
			s.OwnerReferences[0].UID = "other"
			s.Annotations[AnnotationExportUID] = "other"
		}, false},
		{"owner reference removed by someone", func(s *corev1.Secret) { s.OwnerReferences = nil }, false},
		{"someone else's label added", func(s *corev1.Secret) { s.Labels["team"] = "a" }, true},
		{"spec label removed by someone", func(s *corev1.Secret) { delete(s.Labels, "app") }, false},
		{"hash annotation removed", func(s *corev1.Secret) { s.Annotations = nil }, false},
	}
	for _, tt := range tests {
		secret := good()
		tt.mutate(secret)
		if got := secretInSync(secret, export); got != tt.want {
			t.Errorf("%s: secretInSync() = %v, want %v", tt.name, got, tt.want)
		}
	}
	if secretInSync(nil, export) {
		t.Error("a missing Secret is not in sync")
	}
}

func TestDataHashIsStableAndUnambiguous(t *testing.T) {
	a := map[string][]byte{"ab": []byte("c"), "x": []byte("1")}
	b := map[string][]byte{"a": []byte("bc"), "x": []byte("1")}
	if dataHash(a) != dataHash(map[string][]byte{"x": []byte("1"), "ab": []byte("c")}) {
		t.Error("the hash must not depend on map order")
	}
	if dataHash(a) == dataHash(b) {
		t.Error("moving bytes between key and value must change the hash")
	}
}

func TestShapeSecret(t *testing.T) {
	export := exportWithLink()
	export.Spec.Target.Keys = uredisv1alpha1.SecretKeys{BackupPath: "BACKUP_URL", ExpiresAt: "BACKUP_EXPIRES_AT"}
	export.Spec.Target.Annotations = map[string]string{"reloader": "yes"}
	data := secretData(export, linkData{backupPath: "https://x.example.com/", backupID: "b", expiresAt: now})
	if string(data["BACKUP_URL"]) != "https://x.example.com/" || string(data["BACKUP_EXPIRES_AT"]) != "2026-11-27T10:00:00Z" || string(data["backupId"]) != "b" {
		t.Fatalf("renamed keys not applied: %v", data)
	}
	if _, ok := data["innerBackupPath"]; ok {
		t.Fatal("innerBackupPath only when the API returned one")
	}

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}}}
	shapeSecret(secret, export, data)
	if secret.Labels["team"] != "a" || secret.Labels["app"] != "restore" || secret.Labels[LabelManagedBy] != ManagedByValue {
		t.Errorf("labels = %v", secret.Labels)
	}
	if secret.Annotations["reloader"] != "yes" || secret.Annotations[AnnotationExportUID] != "uid-1" || secret.Annotations[AnnotationDataHash] != dataHash(data) {
		t.Errorf("annotations = %v", secret.Annotations)
	}
	if len(secret.OwnerReferences) != 1 || !*secret.OwnerReferences[0].Controller || !*secret.OwnerReferences[0].BlockOwnerDeletion {
		t.Fatalf("Owner policy wants a controller reference: %+v", secret.OwnerReferences)
	}

	export.Spec.Target.CreationPolicy = uredisv1alpha1.CreationPolicyOrphan
	shapeSecret(secret, export, data)
	if len(secret.OwnerReferences) != 0 {
		t.Fatalf("Orphan policy must drop the owner reference: %+v", secret.OwnerReferences)
	}
	if !ownsSecret(secret, export) {
		t.Fatal("an orphaned Secret is still recognised as the resource's own")
	}
}

func exportWithLink() *uredisv1alpha1.RedisBackupExport {
	return &uredisv1alpha1.RedisBackupExport{
		ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "ns", UID: "uid-1", Generation: 1},
		Spec: uredisv1alpha1.RedisBackupExportSpec{BackupID: "b", Region: "r", Target: uredisv1alpha1.TargetSecret{
			Name: "target", Labels: map[string]string{"app": "restore"},
		}},
		Status: uredisv1alpha1.RedisBackupExportStatus{
			BackupID:           "b",
			BackupPath:         "https://old.example.com/x",
			ExpiresAt:          timePtr(now.Add(time.Hour)),
			ObservedGeneration: 1,
			FailureCount:       2,
		},
	}
}
