package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/expiring"
)

// recentStatuses remembers the statuses this reconciler wrote in the last
// few seconds. The cache can lag a write behind: an event (a credentials
// Secret listed by a watch that just started, a user's edit) may wake a
// resource before its new status is in the cache, and deciding on the stale
// status would fetch a second link for nothing. The operator is the status'
// only writer, so its own recent write is the freshest copy. Entries go as
// soon as the cache has caught up, or expire, so the memory they take is
// bounded by the write rate, not by the number of resources.
type recentStatuses struct {
	written *expiring.Map[types.UID, recentStatus]
}

type recentStatus struct {
	resourceVersion string
	status          *uredisv1alpha1.RedisBackupExportStatus
}

func newRecentStatuses(ttl time.Duration, now func() time.Time) *recentStatuses {
	return &recentStatuses{written: expiring.New[types.UID, recentStatus](ttl, now)}
}

// remember records the status written to export, with the resourceVersion
// the write returned.
func (r *recentStatuses) remember(export *uredisv1alpha1.RedisBackupExport) {
	r.written.Put(export.UID, recentStatus{resourceVersion: export.ResourceVersion, status: export.Status.DeepCopy()})
}

// freshest replaces a cached export's status with the one written recently,
// unless the cache has caught up (same resourceVersion).
func (r *recentStatuses) freshest(export *uredisv1alpha1.RedisBackupExport) {
	written, ok := r.written.Get(export.UID)
	switch {
	case !ok:
	case export.ResourceVersion == written.resourceVersion:
		r.written.Delete(export.UID)
	default:
		export.Status = *written.status.DeepCopy()
	}
}
