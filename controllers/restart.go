package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/rollout"
)

// The workloads of spec.rolloutRestartTargets are read (only when a
// restart is due, uncached: the operator keeps no informer on them) and
// patched (only the two restart annotations of the pod template).
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;patch

// restartTargets restarts the workloads that the new link of a (a
// successful refresh) calls for, and returns the status entries of those
// restarted, or found already restarted for this change. previous is the
// link the Secret held before (previousLink). A target that is missing
// or cannot be patched gets a Warning Event and is left until the next
// change: nothing is retried, and Ready does not depend on it.
func (r *RedisBackupExportReconciler) restartTargets(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, previous rollout.Link, a attempt) []uredisv1alpha1.RolloutRestart {
	due := rollout.Due(export.Spec.RolloutRestartTargets, rollout.Change{
		ExportUID: string(export.UID), Previous: previous, New: rollout.Link{Backup: a.backupID, ExpiresAt: a.link.ExpiresAt},
	})
	var done []uredisv1alpha1.RolloutRestart
	for _, restart := range due {
		target := restartTarget(export.Namespace, restart.Target)
		record, patched, err := r.restart(ctx, target, restart, a)
		if err != nil {
			reason, note := restartFailure(export, restart.Target, err)
			r.Events.Eventf(export, target, corev1.EventTypeWarning, reason, "RolloutRestart", "%s", note)
			log.FromContext(ctx).Info("rollout restart failed", "kind", restart.Target.Kind, "target", restart.Target.Name, "reason", reason)
			continue
		}
		done = append(done, record)
		if !patched {
			log.FromContext(ctx).Info("rollout restart already done for this change", "kind", restart.Target.Kind, "target", restart.Target.Name, "for", restart.For)
			continue
		}
		log.FromContext(ctx).Info("rollout restarted", "kind", restart.Target.Kind, "target", restart.Target.Name, "for", restart.For, "backupId", a.backupID)
		r.Events.Eventf(export, target, corev1.EventTypeNormal, uredisv1alpha1.EventRolloutRestarted, "RolloutRestart", "%s", restartNote(restart, previous.Backup, a))
	}
	return done
}

// restart reads the target through the API reader and patches it, unless
// it already carries this change's digest; patched is false then.
func (r *RedisBackupExportReconciler) restart(ctx context.Context, target *unstructured.Unstructured, restart rollout.Restart, a attempt) (record uredisv1alpha1.RolloutRestart, patched bool, err error) {
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(target), target); err != nil {
		return record, false, err
	}
	annotations, _, _ := unstructured.NestedStringMap(target.Object, "spec", "template", "metadata", "annotations")
	if at, done := rollout.AlreadyDone(annotations, restart); done {
		if at.IsZero() {
			at = a.now
		}
		return rollout.NewRecord(restart, a.backupID, at), false, nil
	}
	if err := r.Patch(ctx, target, client.RawPatch(types.MergePatchType, rollout.Patch(restart, a.now))); err != nil {
		return record, false, err
	}
	return rollout.NewRecord(restart, a.backupID, a.now), true, nil
}

// previousLink is the link the status says the Secret holds, before an
// attempt changes it.
func previousLink(export *uredisv1alpha1.RedisBackupExport) rollout.Link {
	link := rollout.Link{Backup: export.Status.BackupID}
	if export.Status.ExpiresAt != nil {
		link.ExpiresAt = export.Status.ExpiresAt.Time
	}
	return link
}

// restartTarget is an empty apps/v1 object of the target's kind and name,
// for the API reader to fill in (unstructured: the operator's scheme has no
// need of the workload types, and no cache is made for them).
func restartTarget(namespace string, t uredisv1alpha1.RolloutRestartTarget) *unstructured.Unstructured {
	target := &unstructured.Unstructured{}
	target.SetAPIVersion("apps/v1")
	target.SetKind(string(t.Kind))
	target.SetNamespace(namespace)
	target.SetName(t.Name)
	return target
}

// restartNote is the RolloutRestarted Event's note: what changed, by IDs
// and times only.
func restartNote(restart rollout.Restart, previousBackup string, a attempt) string {
	what := fmt.Sprintf("the Secret holds a link to backup %s (was %s)", a.backupID, previousBackup)
	if a.backupID == previousBackup {
		what = fmt.Sprintf("the Secret holds a new link to backup %s, valid until %s (on: LinkChanged)", a.backupID, formatTime(a.link.ExpiresAt))
	}
	return fmt.Sprintf("restarted %s %s: %s", restart.Target.Kind, restart.Target.Name, what)
}

// kindPlural names a target kind as RBAC does.
func kindPlural(kind uredisv1alpha1.RolloutRestartKind) string {
	return strings.ToLower(string(kind)) + "s"
}
