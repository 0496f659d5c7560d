package argocd

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

func shippedScript(t *testing.T) string {
	t.Helper()
	script, err := ShippedScript()
	if err != nil {
		t.Fatal(err)
	}
	return script
}

// export is a RedisBackupExport of the given generation, with status as
// given (nil: no status at all), numbers as the API server's JSON decodes
// them (int64).
func export(generation int64, st map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": uredisv1alpha1.GroupVersion.String(),
		"kind":       "RedisBackupExport",
		"metadata":   map[string]any{"name": "nightly", "namespace": "team-a", "generation": generation},
		"spec":       map[string]any{"backupId": "backup-1", "region": "cn-bj2"},
	}}
	if st != nil {
		u.Object["status"] = st
	}
	return u
}

func observed(generation int64, conditions ...any) map[string]any {
	return map[string]any{"observedGeneration": generation, "conditions": conditions}
}

func condition(typ, st, reason, message string) map[string]any {
	return map[string]any{
		"type": typ, "status": st, "reason": reason, "message": message,
		"lastTransitionTime": "2026-11-30T10:00:00Z", "observedGeneration": int64(2),
	}
}

const (
	refreshedMessage = `Secret "nightly" holds a link valid until 2026-11-30T22:00:00Z; next refresh at 2026-11-30T18:00:00Z`
	failingMessage   = `the current link stays valid until 2026-11-30T22:00:00Z, but refreshing it failed: HTTP 503; next attempt at 2026-11-30T10:00:10Z`
	expiredMessage   = `the link in Secret "nightly" expired at 2026-11-30T10:00:00Z and refreshing it failed: HTTP 503; next attempt at 2026-11-30T10:00:20Z`
	rejectedMessage  = `RetCode 20003: backup not found; RetCode 20003 is not retried quickly: fix the spec, the credentials or the account's permissions`
	missingMessage   = `the credentials Secret "cloud-credentials" does not exist`
	suspendedMessage = `suspended (spec.suspend: true): no API call and no write of the Secret until it is resumed; the link in Secret "nightly" stays valid until 2026-11-30T22:00:00Z`
	suspendedExpired = `suspended (spec.suspend: true): no API call and no write of the Secret until it is resumed; the link in Secret "nightly" expired at 2026-11-30T10:00:00Z, and resuming obtains a new one at once`
)

// suspended sets spec.suspend.
func suspended(u *unstructured.Unstructured) *unstructured.Unstructured {
	if err := unstructured.SetNestedField(u.Object, true, "spec", "suspend"); err != nil {
		panic(err)
	}
	return u
}

// TestShippedScript: the verdict of config/argocd/health.lua on hand-written
// objects, among them states the operator never leaves a resource in, next
// to what kstatus computes from the same object. The two agree (Current is
// Healthy, InProgress and Terminating are Progressing, Failed is Degraded)
// except where a case says why not.
func TestShippedScript(t *testing.T) {
	script := shippedScript(t)
	deleting := export(2, observed(2, condition(uredisv1alpha1.ConditionReady, "True", uredisv1alpha1.ReasonRefreshed, refreshedMessage)))
	deletedAt := metav1.NewTime(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	deleting.SetDeletionTimestamp(&deletedAt)
	deleting.SetFinalizers([]string{"example.com/hold"})

	tests := []struct {
		name string
		obj  *unstructured.Unstructured
		// want is the script's verdict, message a part of its message.
		want, message string
		// kstatus is what status.Compute says; "" when it fails.
		kstatus status.Status
		// why explains a verdict that does not agree with kstatus.
		why string
	}{{
		name: "the CRD's default status: the first attempt has not ended",
		obj:  export(1, map[string]any{"observedGeneration": int64(0)}),
		want: Progressing, message: "first attempt at generation 1",
		kstatus: status.InProgressStatus,
	}, {
		name: "no status at all",
		obj:  export(1, nil),
		want: Progressing, message: "no status yet",
		kstatus: status.CurrentStatus,
		why:     "kstatus has nothing to go on and assumes Current; the API server serves every resource with the CRD's default status, observedGeneration 0",
	}, {
		name: "a status without observedGeneration",
		obj:  export(1, map[string]any{"conditions": []any{condition(uredisv1alpha1.ConditionReady, "True", uredisv1alpha1.ReasonRefreshed, refreshedMessage)}}),
		want: Progressing, message: "first attempt at generation 1",
		kstatus: status.CurrentStatus,
		why:     "kstatus skips the generation check when the field is absent; the CRD defaults it to 0, so only a hand-made status lacks it",
	}, {
		name: "a spec edit the operator has not handled yet",
		obj:  export(3, observed(2, condition(uredisv1alpha1.ConditionReady, "True", uredisv1alpha1.ReasonRefreshed, refreshedMessage))),
		want: Progressing, message: "handle generation 3 (the status describes generation 2)",
		kstatus: status.InProgressStatus,
	}, {
		name: "the Secret holds a fresh link",
		obj:  export(2, observed(2, condition(uredisv1alpha1.ConditionReady, "True", uredisv1alpha1.ReasonRefreshed, refreshedMessage))),
		want: Healthy, message: "Refreshed: " + refreshedMessage,
		kstatus: status.CurrentStatus,
	}, {
		name: "refreshing fails while the link is valid",
		obj:  export(2, observed(2, condition(uredisv1alpha1.ConditionReady, "True", uredisv1alpha1.ReasonRefreshFailing, failingMessage))),
		want: Healthy, message: "RefreshFailing: " + failingMessage,
		kstatus: status.CurrentStatus,
	}, {
		name: "the link expired during an outage",
		obj: export(2, observed(2,
			condition(uredisv1alpha1.ConditionReady, "False", uredisv1alpha1.ReasonLinkExpired, expiredMessage),
			condition(uredisv1alpha1.ConditionReconciling, "True", uredisv1alpha1.ReasonLinkExpired, expiredMessage))),
		want: Progressing, message: "LinkExpired: " + expiredMessage,
		kstatus: status.InProgressStatus,
	}, {
		name: "Reconciling beside Ready True (the operator never writes both)",
		obj: export(2, observed(2,
			condition(uredisv1alpha1.ConditionReady, "True", uredisv1alpha1.ReasonRefreshed, refreshedMessage),
			condition(uredisv1alpha1.ConditionReconciling, "True", "Refreshing", "fetching a new link"))),
		want: Progressing, message: "Refreshed: " + refreshedMessage,
		kstatus: status.InProgressStatus,
	}, {
		name: "the API refused the spec for good",
		obj: export(2, observed(2,
			condition(uredisv1alpha1.ConditionReady, "False", uredisv1alpha1.ReasonProviderRejected, rejectedMessage),
			condition(uredisv1alpha1.ConditionStalled, "True", uredisv1alpha1.ReasonProviderRejected, rejectedMessage))),
		want: Degraded, message: "ProviderRejected: " + rejectedMessage,
		kstatus: status.FailedStatus,
	}, {
		name: "the credentials Secret is missing, Stalled listed first",
		obj: export(2, observed(2,
			condition(uredisv1alpha1.ConditionStalled, "True", uredisv1alpha1.ReasonCredentialsNotFound, missingMessage),
			condition(uredisv1alpha1.ConditionReady, "False", uredisv1alpha1.ReasonCredentialsNotFound, missingMessage))),
		want: Degraded, message: "CredentialsNotFound: " + missingMessage,
		kstatus: status.FailedStatus,
	}, {
		name: "Stalled without a Ready condition",
		obj:  export(2, observed(2, condition(uredisv1alpha1.ConditionStalled, "True", uredisv1alpha1.ReasonSecretConflict, "the Secret belongs to someone else"))),
		want: Degraded, message: "SecretConflict: the Secret belongs to someone else",
		kstatus: status.FailedStatus,
	}, {
		name: "Ready False without Reconciling or Stalled",
		obj:  export(2, observed(2, condition(uredisv1alpha1.ConditionReady, "False", uredisv1alpha1.ReasonProviderUnavailable, "HTTP 503"))),
		want: Progressing, message: "ProviderUnavailable: HTTP 503",
		kstatus: status.InProgressStatus,
	}, {
		name: "Ready Unknown",
		obj:  export(2, observed(2, condition(uredisv1alpha1.ConditionReady, "Unknown", "", "checking"))),
		want: Progressing, message: "checking",
		kstatus: status.InProgressStatus,
	}, {
		name: "an attempt ended without a Ready condition",
		obj:  export(2, observed(2)),
		want: Progressing, message: "waiting for the operator to set the Ready condition",
		kstatus: status.CurrentStatus,
		why:     "kstatus assumes Current without conditions; the operator sets Ready at the end of every attempt",
	}, {
		name: "suspended, the link valid",
		obj:  suspended(export(2, observed(2, condition(uredisv1alpha1.ConditionReady, "True", uredisv1alpha1.ReasonSuspended, suspendedMessage)))),
		want: Suspended, message: "Suspended: " + suspendedMessage,
		kstatus: status.CurrentStatus,
		why:     "kstatus has no suspended status; Argo CD has one, and the Ready message says until when the link works",
	}, {
		name: "suspended, the link expired",
		obj: suspended(export(2, observed(2,
			condition(uredisv1alpha1.ConditionReady, "False", uredisv1alpha1.ReasonSuspended, suspendedExpired),
			condition(uredisv1alpha1.ConditionStalled, "True", uredisv1alpha1.ReasonSuspended, suspendedExpired)))),
		want: Suspended, message: "Suspended: " + suspendedExpired,
		kstatus: status.FailedStatus,
		why:     "kstatus reads Stalled as Failed; Argo CD says Suspended, with the message that the link expired",
	}, {
		name: "suspend asked for, the operator has not answered",
		obj:  suspended(export(3, observed(2, condition(uredisv1alpha1.ConditionReady, "True", uredisv1alpha1.ReasonRefreshed, refreshedMessage)))),
		want: Progressing, message: "handle generation 3",
		kstatus: status.InProgressStatus,
	}, {
		name: "suspend false",
		obj: func() *unstructured.Unstructured {
			u := export(2, observed(2, condition(uredisv1alpha1.ConditionReady, "True", uredisv1alpha1.ReasonRefreshed, refreshedMessage)))
			_ = unstructured.SetNestedField(u.Object, false, "spec", "suspend")
			return u
		}(),
		want: Healthy, message: "Refreshed: " + refreshedMessage,
		kstatus: status.CurrentStatus,
	}, {
		name: "being deleted",
		obj:  deleting,
		want: Progressing, message: "being deleted",
		kstatus: status.TerminatingStatus,
	}, {
		name: "conditions that are not a list",
		obj:  export(2, map[string]any{"observedGeneration": int64(2), "conditions": "broken"}),
		want: Progressing, message: "Ready condition",
		why: "kstatus fails on it (the CRD's schema refuses it); the script still answers, where an error would show as Unknown",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Run(script, tc.obj)
			if err != nil {
				t.Fatalf("the script failed: %v", err)
			}
			if got.Status != tc.want {
				t.Errorf("verdict %s (%q), want %s", got.Status, got.Message, tc.want)
			}
			if !strings.Contains(got.Message, tc.message) {
				t.Errorf("message %q does not contain %q", got.Message, tc.message)
			}

			res, err := status.Compute(tc.obj)
			var computed status.Status
			if err == nil {
				computed = res.Status
			}
			if computed != tc.kstatus {
				t.Fatalf("kstatus: %q (error %v), the case says %q", computed, err, tc.kstatus)
			}
			agrees := err == nil && ForKstatus(computed) == got.Status
			switch {
			case !agrees && tc.why == "":
				t.Errorf("the verdict %s disagrees with kstatus %s (%s)", got.Status, computed, res.Message)
			case agrees && tc.why != "":
				t.Errorf("the verdict agrees with kstatus %s, but the case says it does not: %s", computed, tc.why)
			}
		})
	}
}

// TestRunIsArgoCDsSandbox: Run gives a script what Argo CD gives a check
// from argocd-cm, and no more, so that a script that passes here does not
// fail in Argo CD for want of a library.
func TestRunIsArgoCDsSandbox(t *testing.T) {
	obj := export(1, nil)
	for _, tc := range []struct {
		name, script string
		want         Health
		fails        bool
	}{
		{name: "base library", script: `return {status = "Healthy", message = tostring(obj.metadata.generation) .. type(obj)}`,
			want: Health{Status: Healthy, Message: "1table"}},
		{name: "table library", script: `local t = {"b", "a"}; table.sort(t); return {status = "Healthy", message = table.concat(t, ",")}`,
			want: Health{Status: Healthy, Message: "a,b"}},
		{name: "no string library", script: `return {status = string.format("%s", "Healthy")}`, fails: true},
		{name: "no string methods", script: `local s = "Healthy"; return {status = s:lower()}`, fails: true},
		{name: "no math library", script: `return {status = "Healthy", message = tostring(math.floor(1.5))}`, fails: true},
		{name: "no io library", script: `io.write("x"); return {status = "Healthy"}`, fails: true},
		{name: "an unknown status is Unknown", script: `return {status = "Fine"}`,
			want: Health{Status: Unknown, Message: `the script returned the invalid health status "Fine"`}},
		{name: "a table must be returned", script: `return "Healthy"`, fails: true},
		{name: "a runaway script is stopped", script: `while true do end`, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got, err := Run(tc.script, obj)
			if elapsed := time.Since(start); elapsed > 3*scriptTimeout {
				t.Errorf("took %v", elapsed)
			}
			if tc.fails {
				if err == nil {
					t.Fatalf("want an error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestConfigMapGenerator: config/argocd generates Argo CD's argocd-cm with
// health.lua under the key Argo CD looks up for this API group and kind.
func TestConfigMapGenerator(t *testing.T) {
	path, err := shippedScriptPath()
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(filepath.Dir(path), "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Namespace          string `json:"namespace"`
		ConfigMapGenerator []struct {
			Name  string   `json:"name"`
			Files []string `json:"files"`
		} `json:"configMapGenerator"`
	}
	if err := yaml.Unmarshal(text, &k); err != nil {
		t.Fatal(err)
	}
	if want := "resource.customizations.health." + uredisv1alpha1.GroupVersion.Group + "_" + uredisv1alpha1.GroupVersionKind.Kind; ConfigMapKey != want {
		t.Errorf("ConfigMapKey is %q, Argo CD looks up %q", ConfigMapKey, want)
	}
	if k.Namespace != "argocd" || len(k.ConfigMapGenerator) != 1 || k.ConfigMapGenerator[0].Name != "argocd-cm" ||
		!slices.Equal(k.ConfigMapGenerator[0].Files, []string{ConfigMapKey + "=health.lua"}) {
		t.Errorf("config/argocd must generate argocd/argocd-cm with only %s=health.lua: %+v", ConfigMapKey, k)
	}
}
