// Package rollout decides which workloads a new link restarts
// (spec.rolloutRestartTargets), with which patch, and what the status
// records of it. It is pure: it reads no clock and makes no request; the
// controller does the reading and patching.
//
// A restart is due for a change, and a change is named by a digest that the
// restart patch writes into the workload's pod template
// (uredis.dezai.com/restarted-for) together with the time
// (uredis.dezai.com/restarted-at). A workload that already carries the
// digest of a change was restarted for it, by an attempt whose status write
// was lost or by an operator that stopped before writing it: it is not
// restarted again. That makes a restart at most once per change without
// any memory in the operator.
//
// The digest holds only what the attempt after a lost status write sees
// again: the resource, the backup, and for LinkChanged the link the change
// replaced (the status' link, which a lost write leaves as it was), never
// the new link's expiry, which that attempt, when forced, gets anew.
package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// Link names a link the Secret holds: its backup and its expiry. Two links
// to the same backup with the same expiry (to the second) are the same link
// for restarts: a workload holding either holds one as good as the other.
type Link struct {
	Backup    string
	ExpiresAt time.Time
}

// Change is what a successful refresh did to the Secret.
type Change struct {
	// ExportUID is the resource's UID: two resources that move to the same
	// backup are two changes for a workload that reads both Secrets.
	ExportUID string
	// Previous is the link the Secret held before (from the status; an
	// empty Backup when the resource never had a link), New the link
	// written.
	Previous, New Link
}

func (c Change) backupChanged() bool { return c.New.Backup != c.Previous.Backup }

func (c Change) linkChanged() bool {
	return c.backupChanged() || c.New.ExpiresAt.Unix() != c.Previous.ExpiresAt.Unix()
}

// Restart is a target due for a restart, and the digest of the change it
// is for.
type Restart struct {
	Target uredisv1alpha1.RolloutRestartTarget
	For    string
}

// Due returns the targets that a change restarts, in the order of the spec.
//
//   - The first link of a resource restarts nothing: workloads that started
//     before the Secret existed are waiting for it (the kubelet retries a
//     missing Secret), and applying a RedisBackupExport next to running
//     workloads must not restart them.
//   - on: BackupChanged (the default) restarts when the new link is for
//     another backup than the previous one: spec.latest chose a newer
//     backup, or a spec edit named another. An edit that keeps the backup
//     (refreshBefore, isCrossRegion, the Secret's keys, labels or
//     template) restarts nothing.
//   - on: LinkChanged restarts on every new link, routine refreshes
//     included.
//
// Only a refresh that wrote a new link is a change: an operator restart, a
// failed refresh, a suspended resource, and a refresh that wrote the link
// the Secret held (an answer shared with another resource, a Secret
// repaired) are not.
func Due(targets []uredisv1alpha1.RolloutRestartTarget, c Change) []Restart {
	if c.Previous.Backup == "" || c.New.Backup == "" {
		return nil
	}
	var due []Restart
	for _, target := range targets {
		switch {
		case target.On == uredisv1alpha1.RestartOnLinkChanged && c.linkChanged():
			due = append(due, Restart{Target: target, For: c.linkDigest()})
		case target.On != uredisv1alpha1.RestartOnLinkChanged && c.backupChanged():
			due = append(due, Restart{Target: target, For: digest(c.ExportUID, c.New.Backup)})
		}
	}
	return due
}

// linkDigest names a LinkChanged change by the link it replaced (and the
// backup it brings), not by the new link: an attempt whose status write was
// lost leaves the status' link, hence the previous link of the next
// attempt, as it was, while a forced retry gets a link of its own, with
// another expiry. Two successive changes never replace the same link (each
// one that is recorded becomes the next one's previous link), so a new
// link still restarts once.
func (c Change) linkDigest() string {
	return digest(c.ExportUID, "replaces", c.Previous.Backup, strconv.FormatInt(c.Previous.ExpiresAt.Unix(), 10), "with", c.New.Backup)
}

// digest names a change: 32 hexadecimal digits of a SHA-256 of its parts.
// The parts are IDs and times, never the link.
func digest(parts ...string) string {
	h := sha256.New()
	for _, part := range parts {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// AlreadyDone reports whether a workload whose pod template carries
// annotations was restarted for r already; when it was, at is the time it
// says (zero if it cannot be read).
func AlreadyDone(annotations map[string]string, r Restart) (at time.Time, done bool) {
	if annotations[uredisv1alpha1.AnnotationRestartedFor] != r.For {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339, annotations[uredisv1alpha1.AnnotationRestartedAt])
	if err != nil {
		return time.Time{}, true
	}
	return at, true
}

// Patch is the merge patch that restarts a workload for r at now: it sets
// both annotations of the pod template, and nothing else.
func Patch(r Restart, now time.Time) []byte {
	annotations := map[string]string{
		uredisv1alpha1.AnnotationRestartedAt:  now.UTC().Format(time.RFC3339),
		uredisv1alpha1.AnnotationRestartedFor: r.For,
	}
	body, err := json.Marshal(map[string]any{
		"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": annotations}}},
	})
	if err != nil {
		panic(err) // maps of strings always encode
	}
	return body
}

// Record returns status.rolloutRestarts after an attempt: the restarts done
// replace the entries of their targets, and the entries of targets the spec
// no longer lists go. It keeps the spec's order, and returns nil rather
// than an empty list.
func Record(current []uredisv1alpha1.RolloutRestart, targets []uredisv1alpha1.RolloutRestartTarget, done []uredisv1alpha1.RolloutRestart) []uredisv1alpha1.RolloutRestart {
	var out []uredisv1alpha1.RolloutRestart
	for _, target := range targets {
		if entry, ok := find(done, target); ok {
			out = append(out, entry)
		} else if entry, ok := find(current, target); ok {
			out = append(out, entry)
		}
	}
	return out
}

// NewRecord is the status entry of a restart done (or found done) at at.
func NewRecord(r Restart, backup string, at time.Time) uredisv1alpha1.RolloutRestart {
	return uredisv1alpha1.RolloutRestart{
		Kind: r.Target.Kind, Name: r.Target.Name, For: r.For, BackupID: backup,
		At: metav1.NewTime(at.UTC().Truncate(time.Second)),
	}
}

func find(entries []uredisv1alpha1.RolloutRestart, target uredisv1alpha1.RolloutRestartTarget) (uredisv1alpha1.RolloutRestart, bool) {
	for _, e := range entries {
		if e.Kind == target.Kind && e.Name == target.Name {
			return e, true
		}
	}
	return uredisv1alpha1.RolloutRestart{}, false
}
