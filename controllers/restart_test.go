package controllers

import (
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// TestRestartFailure: each way a restart fails has its Event reason, and
// the note names the target and the HTTP answer, never the server's text
// (a webhook's message could quote anything).
func TestRestartFailure(t *testing.T) {
	export := exportWithLink()
	target := uredisv1alpha1.RolloutRestartTarget{Kind: uredisv1alpha1.RolloutRestartStatefulSet, Name: "cache"}
	statefulsets := schema.GroupResource{Group: "apps", Resource: "statefulsets"}
	const serverText = "webhook says: server-text-not-to-repeat"
	tests := []struct {
		name   string
		err    error
		reason string
		note   []string
	}{
		{name: "missing", err: apierrors.NewNotFound(statefulsets, "cache"), reason: uredisv1alpha1.EventRolloutRestartTargetMissing,
			note: []string{`StatefulSet "cache"`, `does not exist in namespace "ns"`, "the next change tries again"}},
		{name: "refused", err: apierrors.NewForbidden(statefulsets, "cache", errors.New(serverText)), reason: uredisv1alpha1.EventRolloutRestartFailed,
			note: []string{`StatefulSet "cache"`, "403 Forbidden", "get and patch on statefulsets (apps)", "the next change tries again"}},
		{name: "server error", err: apierrors.NewInternalError(errors.New(serverText)), reason: uredisv1alpha1.EventRolloutRestartFailed,
			note: []string{`StatefulSet "cache"`, "answered 500 InternalError"}},
		{name: "no answer", err: errors.New("dial tcp: " + serverText), reason: uredisv1alpha1.EventRolloutRestartFailed,
			note: []string{"could not be reached"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, note := restartFailure(export, target, tt.err)
			if reason != tt.reason {
				t.Errorf("reason %s, want %s", reason, tt.reason)
			}
			for _, want := range tt.note {
				if !strings.Contains(note, want) {
					t.Errorf("note %q lacks %q", note, want)
				}
			}
			if strings.Contains(note, "server-text") {
				t.Errorf("note %q repeats the server's text", note)
			}
		})
	}
}
