package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// recentStatuses remembers the statuses this reconciler wrote in the last
// few seconds. The cache can lag a write behind: an event (a credentials
// Secret listed by a watch that just started, a user's edit) may wake a
// resource before its new status is in the cache, and deciding on the stale
// status would fetch a second link for nothing. The operator is the status'
// only writer, so its own recent write is the freshest copy. Entries go as
// soon as the cache has caught up, or after a few seconds, so the memory
// they take is bounded by the write rate, not by the number of resources.
type recentStatuses struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[types.UID]recentStatus
}

type recentStatus struct {
	resourceVersion string
	status          *uredisv1alpha1.RedisBackupExportStatus
	writtenAt       time.Time
}

func newRecentStatuses(ttl time.Duration, now func() time.Time) *recentStatuses {
	return &recentStatuses{ttl: ttl, now: now, entries: map[types.UID]recentStatus{}}
}

// remember records the status written to export (with the resourceVersion
// the write returned), and drops expired entries.
func (r *recentStatuses) remember(export *uredisv1alpha1.RedisBackupExport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for uid, e := range r.entries {
		if now.Sub(e.writtenAt) > r.ttl {
			delete(r.entries, uid)
		}
	}
	r.entries[export.UID] = recentStatus{resourceVersion: export.ResourceVersion, status: export.Status.DeepCopy(), writtenAt: now}
}

// freshest replaces a cached export's status with the one written recently,
// unless the cache has caught up (same resourceVersion) or the entry expired.
func (r *recentStatuses) freshest(export *uredisv1alpha1.RedisBackupExport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[export.UID]
	switch {
	case !ok:
	case export.ResourceVersion == e.resourceVersion || r.now().Sub(e.writtenAt) > r.ttl:
		delete(r.entries, export.UID)
	default:
		export.Status = *e.status.DeepCopy()
	}
}
