package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// A tenant is a namespace of its own with its own credentials Secret and
// perTenant resources, as a multi-tenant cluster gives each team. The
// tenant shape measures what the single-namespace figures cannot: the cost
// of one more namespace.

// tenantLayout is a batch of tenant namespaces sharing a name prefix.
type tenantLayout struct {
	prefix             string
	tenants, perTenant int
}

func (h *Harness) newTenantLayout(purpose string, tenants, perTenant int) tenantLayout {
	h.namespaces++
	return tenantLayout{prefix: fmt.Sprintf("bench-%s-%d-", purpose, h.namespaces), tenants: tenants, perTenant: perTenant}
}

func (l tenantLayout) namespace(t int) string         { return fmt.Sprintf("%s%04d", l.prefix, t) }
func (l tenantLayout) includes(namespace string) bool { return strings.HasPrefix(namespace, l.prefix) }
func (l tenantLayout) resources() int                 { return l.tenants * l.perTenant }

// createTenants creates, per tenant, its namespace, its credentials Secret
// and its resources, with h.cfg.Concurrency writers each taking whole
// tenants. each, if set, runs after a resource's create in the same writer.
func (h *Harness) createTenants(ctx context.Context, l tenantLayout,
	each func(context.Context, *uredisv1alpha1.RedisBackupExport) error) (creation, error) {
	out := creation{Start: time.Now(), CreatedAt: make(map[string]time.Time, l.resources())}
	var mu sync.Mutex
	err := parallel(ctx, l.tenants, h.cfg.Concurrency, func(ctx context.Context, t int) error {
		ns := l.namespace(t)
		if err := h.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
		if err := h.client.Create(ctx, credentialsSecret(ns)); err != nil {
			return fmt.Errorf("creating the credentials Secret of %s: %w", ns, err)
		}
		for k := range l.perTenant {
			export := newExport(ns, t*l.perTenant+k, 0)
			if err := h.client.Create(ctx, export); err != nil {
				return fmt.Errorf("creating %s/%s: %w", ns, export.Name, err)
			}
			created := time.Now()
			mu.Lock()
			out.CreatedAt[resourceKey(ns, export.Name)] = created
			mu.Unlock()
			if each != nil {
				if err := each(ctx, export); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

// measureTenantSync creates the tenants while the operator runs and waits
// for all their resources to be Ready, through one cluster-wide watch.
func (h *Harness) measureTenantSync(ctx context.Context, l tenantLayout) (SyncRun, error) {
	recorder, err := watchReady(ctx, h.restCfg, "", l.resources(), l.includes)
	if err != nil {
		return SyncRun{}, err
	}
	defer recorder.Stop()
	h.sim.ResetCalls()
	created, err := h.createTenants(ctx, l, nil)
	if err != nil {
		return SyncRun{}, err
	}
	if err := recorder.Wait(ctx, readyTimeout(l.resources())); err != nil {
		return SyncRun{}, err
	}
	time.Sleep(settle)
	return syncRunFrom(created, recorder.ReadyAt(), h.sim.Calls()), nil
}

// tenantFloorRun does, with no operator running, exactly the writes a first
// sync of the tenants needs, as fast as the API server allows: per tenant
// its namespace, credentials Secret and resources, and per resource the
// floor's work (one call, the Secret, the status patch) by one of the
// floor's workers.
func (h *Harness) tenantFloorRun(ctx context.Context, l tenantLayout) (time.Duration, error) {
	took, err := h.floorOver(ctx, l.resources(), func(ctx context.Context, each func(context.Context, *uredisv1alpha1.RedisBackupExport) error) (creation, error) {
		return h.createTenants(ctx, l, each)
	})
	if err != nil {
		return 0, err
	}
	return took, h.emptyTenants(ctx, l)
}

// emptyTenants deletes what the tenants' namespaces hold (the namespaces
// themselves stay: envtest runs no namespace controller).
func (h *Harness) emptyTenants(ctx context.Context, l tenantLayout) error {
	return parallel(ctx, l.tenants, h.cfg.Concurrency, func(ctx context.Context, t int) error {
		return h.emptyNamespace(ctx, l.namespace(t))
	})
}

// tenantFigure measures `repeats` first syncs of cfg.Tenants tenant
// namespaces sharing cfg.N resources (at least one each), each run
// followed by its floor. The last run's operator is restarted and
// measured before it is stopped.
func (h *Harness) tenantFigure(ctx context.Context, flags []string, repeats int) (SyncFigure, *RestartResult, error) {
	fig := SyncFigure{Flags: flags}
	var restart *RestartResult
	perTenant := h.cfg.TenantResources()
	for r := range repeats {
		l := h.newTenantLayout("tenant", h.cfg.Tenants, perTenant)
		p, err := h.startOperator(ctx, flags)
		if err != nil {
			return fig, nil, err
		}
		run, syncErr := h.measureTenantSync(ctx, l)
		if syncErr == nil && r == repeats-1 {
			h.logf("restart: stopping the operator with fresh links, counting calls for %s", h.cfg.RestartWindow)
			op := &syncedOperator{process: p}
			res, err := h.restart(ctx, op, flags)
			p = op.process
			if err != nil {
				syncErr = fmt.Errorf("restart: %w", err)
			} else {
				h.logf("  restart: %d API calls, every resource scheduled after %s", res.Calls, round(res.Scheduled))
				restart = &res
			}
		}
		stopErr := p.Stop(stopTimeout)
		emptyErr := h.emptyTenants(ctx, l)
		for _, err := range []error{syncErr, stopErr, emptyErr} {
			if err != nil {
				return fig, nil, err
			}
		}
		h.logf("  run %d: all %d resources of %d tenants Ready in %s (p50 %s, p99 %s), %d API calls",
			r+1, l.resources(), l.tenants, round(run.Total), round(run.P50), round(run.P99), run.Calls)
		fig.Runs = append(fig.Runs, run)
		floor, err := h.tenantFloorRun(ctx, h.newTenantLayout("tenant-floor", h.cfg.Tenants, perTenant))
		if err != nil {
			return fig, nil, fmt.Errorf("floor: %w", err)
		}
		h.logf("  floor %d: %s", r+1, round(floor))
		fig.Floors = append(fig.Floors, floor)
	}
	return fig, restart, nil
}
