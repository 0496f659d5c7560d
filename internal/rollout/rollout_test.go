package rollout

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

var (
	now    = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	expiry = now.Add(time.Hour)

	onBackup = uredisv1alpha1.RolloutRestartTarget{Kind: uredisv1alpha1.RolloutRestartDeployment, Name: "reads-once", On: uredisv1alpha1.RestartOnBackupChanged}
	// The default, as a resource created without `on` reads before the API
	// server's defaulting (a status from an older client, a unit test).
	onDefault = uredisv1alpha1.RolloutRestartTarget{Kind: uredisv1alpha1.RolloutRestartStatefulSet, Name: "default", On: ""}
	onLink    = uredisv1alpha1.RolloutRestartTarget{Kind: uredisv1alpha1.RolloutRestartDaemonSet, Name: "env-vars", On: uredisv1alpha1.RestartOnLinkChanged}
)

func TestDue(t *testing.T) {
	targets := []uredisv1alpha1.RolloutRestartTarget{onBackup, onDefault, onLink}
	change := func(previous, backup string) Change {
		return Change{ExportUID: "uid-1", Previous: Link{Backup: previous, ExpiresAt: now}, New: Link{Backup: backup, ExpiresAt: expiry}}
	}
	sameLink := change("b1", "b1")
	sameLink.New.ExpiresAt = now.Add(300 * time.Millisecond)
	tests := []struct {
		name   string
		change Change
		want   []uredisv1alpha1.RolloutRestartTarget
	}{
		{name: "the first link of a new resource restarts nothing", change: change("", "b1")},
		{name: "a routine refresh: only on LinkChanged", change: change("b1", "b1"), want: []uredisv1alpha1.RolloutRestartTarget{onLink}},
		{name: "another backup: every target, in the spec's order", change: change("b1", "b2"), want: targets},
		{name: "the link the Secret held (a shared answer, a repair): nothing", change: sameLink},
		{name: "no backup (never happens after a success): nothing", change: change("b1", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uredisv1alpha1.RolloutRestartTarget
			for _, r := range Due(targets, tt.change) {
				got = append(got, r.Target)
				if len(r.For) != 32 {
					t.Errorf("digest %q: want 32 hexadecimal digits", r.For)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("due %v, want %v", got, tt.want)
			}
		})
	}
	if Due(nil, change("b1", "b2")) != nil {
		t.Errorf("no targets, no restarts")
	}
}

// TestDigestsNameTheChange: the same change always has the same digest
// (what makes a restart at most once across lost status writes and
// operator restarts), and different changes have different ones.
func TestDigestsNameTheChange(t *testing.T) {
	targets := []uredisv1alpha1.RolloutRestartTarget{onBackup, onLink}
	digests := func(c Change) (backup, link string) {
		due := Due(targets, c)
		if len(due) != 2 {
			t.Fatalf("want both targets due for %+v, got %v", c, due)
		}
		return due[0].For, due[1].For
	}
	base := Change{ExportUID: "uid-1", Previous: Link{Backup: "b1", ExpiresAt: now}, New: Link{Backup: "b2", ExpiresAt: expiry}}
	b, l := digests(base)
	if b2, l2 := digests(base); b2 != b || l2 != l {
		t.Errorf("the same change must have the same digests")
	}
	if b == l {
		t.Errorf("the two triggers must not share a digest")
	}
	for name, mutate := range map[string]func(*Change){
		"another resource": func(c *Change) { c.ExportUID = "uid-2" },
		"another backup":   func(c *Change) { c.New.Backup = "b3" },
	} {
		c := base
		mutate(&c)
		if got, gotLink := digests(c); got == b || gotLink == l {
			t.Errorf("%s: same digest", name)
		}
	}
	// The attempt after a lost status write starts from the same previous
	// link and, when forced, gets a link with another expiry: the same
	// change for both triggers, or a LinkChanged target would be restarted
	// again.
	c := base
	c.New.ExpiresAt = expiry.Add(time.Minute)
	if got, gotLink := digests(c); got != b || gotLink != l {
		t.Errorf("a retry after a lost status write: digests %q and %q, want %q and %q", got, gotLink, b, l)
	}
	// A new link that replaces another one: the same change for
	// BackupChanged, a new one for LinkChanged.
	c = base
	c.Previous.ExpiresAt = now.Add(time.Second)
	if got, gotLink := digests(c); got != b || gotLink == l {
		t.Errorf("another previous link: BackupChanged digest %q (want %q), LinkChanged %q (want another than %q)", got, b, gotLink, l)
	}
	// Going from b2 to b1 and back to b2 is a change each time, and the
	// target then carries b1's digest: b2's restarts again.
	back := Change{ExportUID: "uid-1", Previous: Link{Backup: "b2", ExpiresAt: now}, New: Link{Backup: "b1", ExpiresAt: expiry}}
	if got, _ := digests(back); got == b {
		t.Errorf("b1's digest equals b2's")
	}
}

// TestRoutineRefreshesRestartOncePerLink: a run of refreshes to one backup,
// each status written, names each new link by another LinkChanged digest,
// and a target left with one change's digest is due for the next.
func TestRoutineRefreshesRestartOncePerLink(t *testing.T) {
	targets := []uredisv1alpha1.RolloutRestartTarget{onLink}
	previous := Link{Backup: "b1", ExpiresAt: expiry}
	seen := map[string]int{}
	for i := 1; i <= 5; i++ {
		next := Link{Backup: "b1", ExpiresAt: expiry.Add(time.Duration(i) * 40 * time.Minute)}
		due := Due(targets, Change{ExportUID: "uid-1", Previous: previous, New: next})
		if len(due) != 1 {
			t.Fatalf("refresh %d: %d restarts due, want 1", i, len(due))
		}
		if j, ok := seen[due[0].For]; ok {
			t.Errorf("refresh %d has the digest of refresh %d: the target would not be restarted", i, j)
		}
		seen[due[0].For] = i
		previous = next
	}
}

func TestAlreadyDone(t *testing.T) {
	r := Restart{Target: onBackup, For: "0123456789abcdef0123456789abcdef"}
	tests := []struct {
		name        string
		annotations map[string]string
		done        bool
		at          time.Time
	}{
		{name: "never restarted", annotations: nil},
		{name: "restarted by kubectl rollout restart", annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-11-27T09:00:00Z"}},
		{name: "restarted for another change", annotations: map[string]string{
			uredisv1alpha1.AnnotationRestartedFor: "ffff", uredisv1alpha1.AnnotationRestartedAt: "2026-11-27T09:00:00Z",
		}},
		{name: "restarted for this change", annotations: map[string]string{
			uredisv1alpha1.AnnotationRestartedFor: r.For, uredisv1alpha1.AnnotationRestartedAt: "2026-11-27T09:00:00Z",
		}, done: true, at: now.Add(-time.Hour)},
		{name: "restarted for this change, its time edited away", annotations: map[string]string{
			uredisv1alpha1.AnnotationRestartedFor: r.For, uredisv1alpha1.AnnotationRestartedAt: "yesterday",
		}, done: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, done := AlreadyDone(tt.annotations, r)
			if done != tt.done || !at.Equal(tt.at) {
				t.Errorf("done %v at %v, want %v at %v", done, at, tt.done, tt.at)
			}
		})
	}
}

// TestPatchSetsOnlyTheTwoAnnotations: the merge patch touches the pod
// template's two annotations and nothing else (the admission policy lets
// the manager change nothing else).
func TestPatchSetsOnlyTheTwoAnnotations(t *testing.T) {
	r := Restart{Target: onBackup, For: "0123456789abcdef0123456789abcdef"}
	var got map[string]any
	if err := json.Unmarshal(Patch(r, now.In(time.FixedZone("CET", 3600))), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		uredisv1alpha1.AnnotationRestartedAt:  "2026-11-27T10:00:00Z",
		uredisv1alpha1.AnnotationRestartedFor: r.For,
	}}}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("patch %v, want %v", got, want)
	}
}

func TestRecord(t *testing.T) {
	entry := func(target uredisv1alpha1.RolloutRestartTarget, digest string) uredisv1alpha1.RolloutRestart {
		return NewRecord(Restart{Target: target, For: digest}, "b", now)
	}
	targets := []uredisv1alpha1.RolloutRestartTarget{onBackup, onDefault, onLink}
	tests := []struct {
		name    string
		current []uredisv1alpha1.RolloutRestart
		targets []uredisv1alpha1.RolloutRestartTarget
		done    []uredisv1alpha1.RolloutRestart
		want    []uredisv1alpha1.RolloutRestart
	}{
		{name: "nothing yet", targets: targets},
		{name: "no targets", current: nil, targets: nil, done: nil},
		{name: "first restarts, in the spec's order", targets: targets,
			done: []uredisv1alpha1.RolloutRestart{entry(onLink, "l1"), entry(onBackup, "b1")},
			want: []uredisv1alpha1.RolloutRestart{entry(onBackup, "b1"), entry(onLink, "l1")}},
		{name: "a new restart replaces its target's entry, and keeps the others", targets: targets,
			current: []uredisv1alpha1.RolloutRestart{entry(onBackup, "b1"), entry(onLink, "l1")},
			done:    []uredisv1alpha1.RolloutRestart{entry(onLink, "l2")},
			want:    []uredisv1alpha1.RolloutRestart{entry(onBackup, "b1"), entry(onLink, "l2")}},
		{name: "a target no longer listed loses its entry", targets: []uredisv1alpha1.RolloutRestartTarget{onLink},
			current: []uredisv1alpha1.RolloutRestart{entry(onBackup, "b1"), entry(onLink, "l1")},
			want:    []uredisv1alpha1.RolloutRestart{entry(onLink, "l1")}},
		{name: "a target of the same name and another kind is another target", targets: []uredisv1alpha1.RolloutRestartTarget{{Kind: uredisv1alpha1.RolloutRestartStatefulSet, Name: onBackup.Name}},
			current: []uredisv1alpha1.RolloutRestart{entry(onBackup, "b1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Record(tt.current, tt.targets, tt.done)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if e := entry(onBackup, "b1"); !e.At.Equal(&metav1.Time{Time: now}) || e.BackupID != "b" {
		t.Errorf("entry %+v", e)
	}
}
