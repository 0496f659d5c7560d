package bench

import (
	"context"
	"fmt"
	"time"
)

// restart stops the operator of op, whose links are all fresh, starts a
// new one with the same flags and measures it: the API calls it makes in
// the window, and how long until every resource is scheduled again. The
// new manager replaces op's, for the caller to stop.
func (h *Harness) restart(ctx context.Context, op *syncedOperator, flags []string) (RestartResult, error) {
	if err := op.process.Stop(stopTimeout); err != nil {
		return RestartResult{}, err
	}
	resources, err := h.countResources(ctx)
	if err != nil {
		return RestartResult{}, err
	}
	h.sim.ResetCalls()
	p, err := h.launch(flags)
	if err != nil {
		return RestartResult{}, err
	}
	op.process = p
	res := RestartResult{Resources: resources, Window: h.cfg.RestartWindow}
	res.PollInterval = pollInterval(resources)
	reconciles, at, err := waitScheduled(ctx, p, resources, res.PollInterval, readyTimeout(resources))
	if err != nil {
		return RestartResult{}, err
	}
	res.Scheduled, res.Reconciles = at.Sub(p.Started), reconciles

	windowEnd := p.Started.Add(h.cfg.RestartWindow)
	time.Sleep(time.Until(windowEnd))
	for _, call := range h.sim.Calls() {
		if call.Time.Before(windowEnd) {
			res.Calls++
		}
	}
	return res, nil
}

// waitScheduled polls the manager's metrics until it has finished at least
// `resources` reconciles and has nothing queued or in progress: every
// resource has then been looked at once and has its next visit planned
// (a reconcile that plans one is followed by an empty queue only once all
// initial events are handled). It returns the reconcile count and when
// that was seen.
func waitScheduled(ctx context.Context, p *Process, resources int, interval, timeout time.Duration) (int, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if exited, err := p.Exited(); exited {
			return 0, time.Time{}, p.exitedError("exited", err)
		}
		scrape, err := p.Metrics(ctx)
		seen := time.Now()
		if err == nil {
			reconciles := scrape.Sum("controller_runtime_reconcile_total", map[string]string{"controller": controllerName})
			queued := scrape.Sum("workqueue_depth", map[string]string{"name": controllerName})
			working := scrape.Sum("controller_runtime_active_workers", map[string]string{"controller": controllerName})
			if reconciles >= float64(resources) && queued == 0 && working == 0 {
				return int(reconciles), seen, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, time.Time{}, ctx.Err()
		case <-time.After(interval):
		}
	}
	return 0, time.Time{}, fmt.Errorf("the restarted manager did not reconcile all %d resources within %s", resources, timeout)
}

// pollInterval is how often the restarted manager's metrics are read. A
// scrape lists every resource (the per-resource metrics) and allocates
// about 6 KiB per resource in the manager, so with many resources polling
// often would slow down the very start it measures.
func pollInterval(resources int) time.Duration {
	return min(max(time.Duration(resources)*100*time.Microsecond, 50*time.Millisecond), time.Second)
}
