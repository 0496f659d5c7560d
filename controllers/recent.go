package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
// It serves both kinds: O is the resource, S its status.
type recentStatuses[O client.Object, S any] struct {
	written *expiring.Map[types.UID, recentStatus[S]]
	// status points at a resource's status; deepCopy copies one.
	status   func(O) *S
	deepCopy func(*S) *S
}

type recentStatus[S any] struct {
	resourceVersion string
	status          *S
}

func newRecentStatuses[O client.Object, S any](ttl time.Duration, now func() time.Time, status func(O) *S, deepCopy func(*S) *S) *recentStatuses[O, S] {
	return &recentStatuses[O, S]{written: expiring.New[types.UID, recentStatus[S]](ttl, now), status: status, deepCopy: deepCopy}
}

// newExportStatuses is recentStatuses of RedisBackupExports.
func newExportStatuses(ttl time.Duration, now func() time.Time) *recentStatuses[*uredisv1alpha1.RedisBackupExport, uredisv1alpha1.RedisBackupExportStatus] {
	return newRecentStatuses(ttl, now, func(e *uredisv1alpha1.RedisBackupExport) *uredisv1alpha1.RedisBackupExportStatus { return &e.Status },
		(*uredisv1alpha1.RedisBackupExportStatus).DeepCopy)
}

// remember records the status written to obj, with the resourceVersion
// the write returned.
func (r *recentStatuses[O, S]) remember(obj O) {
	r.written.Put(obj.GetUID(), recentStatus[S]{resourceVersion: obj.GetResourceVersion(), status: r.deepCopy(r.status(obj))})
}

// freshest replaces a cached resource's status with the one written
// recently, unless the cache has caught up (same resourceVersion).
func (r *recentStatuses[O, S]) freshest(obj O) {
	written, ok := r.written.Get(obj.GetUID())
	switch {
	case !ok:
	case obj.GetResourceVersion() == written.resourceVersion:
		r.written.Delete(obj.GetUID())
	default:
		*r.status(obj) = *r.deepCopy(written.status)
	}
}
