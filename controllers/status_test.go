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
	"k8s.io/utils/ptr"

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
		{&credentialsError{reason: uredisv1alpha1.ReasonCredentialsInvalid}, uredisv1alpha1.ReasonCredentialsInvalid, true},
		{&conflictError{}, uredisv1alpha1.ReasonSecretConflict, true},
		{&linkTooShortError{}, uredisv1alpha1.ReasonLinkTooShort, false},
		{&cloud.APIError{RetCode: 171}, uredisv1alpha1.ReasonProviderRejected, true},
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
	tests := []struct {
		name       string
		reason     string
		linkValid  bool
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		{"transient, valid link", uredisv1alpha1.ReasonProviderUnavailable, true, metav1.ConditionTrue, uredisv1alpha1.ReasonRefreshFailing},
		{"transient, no valid link", uredisv1alpha1.ReasonProviderUnavailable, false, metav1.ConditionFalse, uredisv1alpha1.ReasonProviderUnavailable},
		{"permanent, valid link", uredisv1alpha1.ReasonProviderRejected, true, metav1.ConditionFalse, uredisv1alpha1.ReasonProviderRejected},
		{"credentials", uredisv1alpha1.ReasonCredentialsNotFound, true, metav1.ConditionFalse, uredisv1alpha1.ReasonCredentialsNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			export := exportWithLink()
			failed(export, failure{err: &cloud.APIError{Action: "A", RetCode: 171, Message: "signature error"}, reason: tt.reason, retryAt: now.Add(time.Minute)}, now, tt.linkValid)
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
	failed(export, failure{err: &cloud.APIError{Action: "DescribeURedisBackupURL", RetCode: 171, Message: "signature error"}, reason: uredisv1alpha1.ReasonProviderRejected}, now, true)
	ready := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
	for _, want := range []string{"RetCode 171", "signature error", "credentials"} {
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
	refreshed(export, link, now.Add(40*time.Minute))
	st := export.Status
	if st.FailureCount != 0 || st.LastFailureTime != nil || st.ObservedGeneration != 2 || st.BackupPath != link.URL || st.SecretName != "target" {
		t.Fatalf("unexpected status %+v", st)
	}
	if ready := meta.FindStatusCondition(st.Conditions, uredisv1alpha1.ConditionReady); ready.Status != metav1.ConditionTrue || ready.Reason != uredisv1alpha1.ReasonRefreshed {
		t.Fatalf("Ready = %+v", ready)
	}
}

func TestSecretInSync(t *testing.T) {
	export := exportWithLink()
	good := func() *corev1.Secret {
		data := secretData(export, export.Status.BackupPath, "https://inner.example.com/x", export.Status.ExpiresAt.Time)
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Annotations:     map[string]string{AnnotationDataHash: dataHash(data)},
				OwnerReferences: []metav1.OwnerReference{{UID: export.UID, Controller: ptr.To(true)}},
			},
			Data: data,
		}
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
		{"owned by another resource", func(s *corev1.Secret) { s.OwnerReferences[0].UID = "other" }, false},
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

func exportWithLink() *uredisv1alpha1.RedisBackupExport {
	return &uredisv1alpha1.RedisBackupExport{
		ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "ns", UID: "uid-1", Generation: 1},
		Spec:       uredisv1alpha1.RedisBackupExportSpec{BackupID: "b", Region: "r", Target: uredisv1alpha1.TargetSecret{Name: "target"}},
		Status: uredisv1alpha1.RedisBackupExportStatus{
			BackupPath:         "https://old.example.com/x",
			ExpiresAt:          timePtr(now.Add(time.Hour)),
			ObservedGeneration: 1,
			FailureCount:       2,
		},
	}
}
