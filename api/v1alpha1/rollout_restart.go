package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Restarts of the workloads that read the Secret (spec.rolloutRestartTargets).
// The annotation keys and Event reasons are API: docs/reference.md documents
// them.
const (
	// AnnotationRestartedAt is the pod template annotation a restart sets
	// (RFC 3339, UTC): changing the pod template is what rolls the
	// workload's pods, as `kubectl rollout restart` does with its own
	// annotation.
	AnnotationRestartedAt = "uredis.dezai.com/restarted-at"
	// AnnotationRestartedFor is the pod template annotation that says which
	// change the last restart was for (a digest of the resource's UID and
	// the backup's ID, plus the link the change replaced for on:
	// LinkChanged, which an attempt after a lost status write sees again).
	// Written in the same patch as AnnotationRestartedAt; a target that
	// already carries the digest of a change is not restarted again for it.
	AnnotationRestartedFor = "uredis.dezai.com/restarted-for"

	// EventRolloutRestarted (Normal): a target was restarted.
	EventRolloutRestarted = "RolloutRestarted"
	// EventRolloutRestartTargetMissing (Warning): a target due for a
	// restart does not exist; it is not tried again until the next change.
	EventRolloutRestartTargetMissing = "RolloutRestartTargetMissing"
	// EventRolloutRestartFailed (Warning): reading or patching a target
	// failed (refused by RBAC or an admission policy, an API server error);
	// it is not tried again until the next change.
	EventRolloutRestartFailed = "RolloutRestartFailed"
)

// MaxRolloutRestartTargets bounds spec.rolloutRestartTargets, and so the
// requests a change costs and status.rolloutRestarts.
const MaxRolloutRestartTargets = 16

// RolloutRestartTarget is a workload, in the resource's namespace, whose
// pods are restarted when the Secret's backup (or link) changes.
type RolloutRestartTarget struct {
	// kind of the workload: Deployment, StatefulSet or DaemonSet (apps/v1).
	// +required
	Kind RolloutRestartKind `json:"kind"`

	// name of the workload, in the resource's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// on says which changes restart the workload. BackupChanged (the
	// default): only a link to another backup (spec.latest chose a newer
	// one, or a spec edit changed the backup), for consumers that read the
	// link once, at start. LinkChanged: every new link written into the
	// Secret, routine refreshes included, for consumers that take the link
	// from environment variables. Never the first link of a new resource.
	// +optional
	// +kubebuilder:default=BackupChanged
	On RolloutRestartTrigger `json:"on,omitempty"`
}

// RolloutRestartKind is the kind of a restart target.
// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet
type RolloutRestartKind string

// Restart target kinds, all of group apps, version v1.
const (
	RolloutRestartDeployment  RolloutRestartKind = "Deployment"
	RolloutRestartStatefulSet RolloutRestartKind = "StatefulSet"
	RolloutRestartDaemonSet   RolloutRestartKind = "DaemonSet"
)

// RolloutRestartTrigger says which changes restart a target.
// +kubebuilder:validation:Enum=BackupChanged;LinkChanged
type RolloutRestartTrigger string

// Restart triggers.
const (
	RestartOnBackupChanged RolloutRestartTrigger = "BackupChanged"
	RestartOnLinkChanged   RolloutRestartTrigger = "LinkChanged"
)

// RolloutRestart records the last restart of a target.
type RolloutRestart struct {
	// kind of the workload.
	// +required
	Kind RolloutRestartKind `json:"kind"`
	// name of the workload.
	// +required
	Name string `json:"name"`
	// for is the digest of the change the restart was for, as the
	// workload's uredis.dezai.com/restarted-for annotation holds it.
	// +required
	// +kubebuilder:validation:MaxLength=64
	For string `json:"for"`
	// backupId is the backup the Secret held a link to after the change.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	BackupID string `json:"backupId,omitempty"`
	// at is when the workload was restarted.
	// +required
	At metav1.Time `json:"at"`
}
