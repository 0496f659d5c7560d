package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
)

// runAll runs the measurements in an order that keeps them apart: each
// starts its own manager and leaves the cluster as it found it.
func (h *Harness) runAll(ctx context.Context, res *Results) error {
	cfg := h.cfg
	var err error

	h.logf("first sync: %d resources, tuned flags %v, %d runs, each followed by the floor", cfg.N, cfg.TunedFlags, cfg.Repeats)
	var restart *RestartResult
	if res.FirstSync, restart, err = h.syncFigure(ctx, cfg.TunedFlags, cfg.Repeats, true, true); err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	res.Restart = *restart

	if cfg.DefaultsRepeats > 0 {
		h.logf("first sync: %d resources, default flags, %d runs", cfg.N, cfg.DefaultsRepeats)
		if res.Defaults, _, err = h.syncFigure(ctx, nil, cfg.DefaultsRepeats, false, false); err != nil {
			return fmt.Errorf("first sync with the default flags: %w", err)
		}
		res.Defaults.Floors = res.FirstSync.Floors // the floor does not depend on the operator's flags
	}

	if cfg.Latency > 0 {
		h.logf("first sync: %d resources, simulator answering after %s", cfg.N, cfg.Latency)
		h.sim.SetLatency(cfg.Latency)
		res.Latency, _, err = h.syncFigure(ctx, cfg.TunedFlags, cfg.Repeats, true, false)
		h.sim.SetLatency(0)
		if err != nil {
			return fmt.Errorf("first sync with latency: %w", err)
		}
	}

	if cfg.Tenants > 0 {
		h.logf("first sync: %d tenant namespaces with a credentials Secret and %d resources each, tuned flags, %d runs, each followed by the floor", cfg.Tenants, cfg.TenantResources(), cfg.Repeats)
		var restart *RestartResult
		if res.Tenants, restart, err = h.tenantFigure(ctx, cfg.TunedFlags, cfg.Repeats); err != nil {
			return fmt.Errorf("many-tenant first sync: %w", err)
		}
		res.TenantRestart = *restart
	}

	if cfg.WriteCost > 0 {
		h.logf("write cost: %d objects of each kind, created then status-patched by %d writers, %d rounds after a warm-up", cfg.WriteCost, cfg.Concurrency, cfg.Repeats)
		if res.WriteCost, err = h.writeCost(ctx, cfg.WriteCost, cfg.Repeats); err != nil {
			return fmt.Errorf("write cost: %w", err)
		}
	}

	if res.Profiles, err = h.profiles(ctx, res.FirstSync.Total()); err != nil {
		return fmt.Errorf("profiles: %w", err)
	}

	if res.Soak, err = h.soak(ctx); err != nil {
		return fmt.Errorf("soak: %w", err)
	}

	memory, heapProfiles, err := h.memory(ctx)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	res.Memory, res.Profiles = memory, append(res.Profiles, heapProfiles...)
	return nil
}

// syncFigure measures `repeats` first syncs with flags, each followed by a
// floor run when withFloor (interleaved, so that both see the cluster in
// the same state). With restartAfterLast, the last run's operator is
// restarted and measured before it is stopped.
func (h *Harness) syncFigure(ctx context.Context, flags []string, repeats int, withFloor, restartAfterLast bool) (SyncFigure, *RestartResult, error) {
	fig := SyncFigure{Flags: flags}
	var restart *RestartResult
	for r := range repeats {
		last := r == repeats-1
		// The API server's requests are reported for the first sync's last
		// run (figure 10), the run whose operator is restarted.
		countRequests := last && restartAfterLast
		var before map[[2]string]float64
		var err error
		if countRequests {
			if before, err = h.apiServerRequests(ctx); err != nil {
				return fig, nil, err
			}
		}
		run, op, err := h.operatorSync(ctx, flags, h.cfg.N, 0)
		if err != nil {
			return fig, nil, err
		}
		if countRequests {
			after, err := h.apiServerRequests(ctx)
			if err != nil {
				_ = h.stopAndEmpty(ctx, op)
				return fig, nil, err
			}
			fig.Requests = requestsBetween(before, after)
		}
		h.logf("  run %d: all %d Ready in %s (p50 %s, p99 %s), %d API calls",
			r+1, h.cfg.N, round(run.Total), round(run.P50), round(run.P99), run.Calls)
		fig.Runs = append(fig.Runs, run)
		if restartAfterLast && last {
			h.logf("restart: stopping the operator with fresh links, counting calls for %s", h.cfg.RestartWindow)
			res, err := h.restart(ctx, op, flags)
			if err != nil {
				_ = h.stopAndEmpty(ctx, op)
				return fig, nil, fmt.Errorf("restart: %w", err)
			}
			h.logf("  restart: %d API calls, every resource scheduled after %s", res.Calls, round(res.Scheduled))
			restart = &res
		}
		if err := h.stopAndEmpty(ctx, op); err != nil {
			return fig, nil, err
		}
		if withFloor {
			floor, err := h.floorRun(ctx, h.cfg.N)
			if err != nil {
				return fig, nil, fmt.Errorf("floor: %w", err)
			}
			h.logf("  floor %d: %s", r+1, round(floor))
			fig.Floors = append(fig.Floors, floor)
		}
	}
	return fig, restart, nil
}

// profiles runs one more first sync with the tuned flags while taking a
// CPU profile of the operator, then a heap profile, when asked for and the
// manager can serve them. The run is not part of any figure.
func (h *Harness) profiles(ctx context.Context, typicalSync time.Duration) ([]string, error) {
	if !h.cfg.Pprof {
		return nil, nil
	}
	if !h.bin.HasPprof {
		h.logf("profiles: the manager has no --pprof-bind-address flag; none taken")
		return nil, nil
	}
	if h.cfg.PprofDir == "" {
		dir, err := os.MkdirTemp("", "uredis-bench-profiles-")
		if err != nil {
			return nil, err
		}
		h.cfg.PprofDir = dir
	}
	if err := os.MkdirAll(h.cfg.PprofDir, 0o755); err != nil {
		return nil, err
	}
	ns, err := h.createNamespace(ctx, "profile")
	if err != nil {
		return nil, err
	}
	p, err := h.startOperator(ctx, h.cfg.TunedFlags)
	if err != nil {
		return nil, err
	}
	op := &syncedOperator{process: p, ns: ns}
	cpu, heap := filepath.Join(h.cfg.PprofDir, "cpu.pprof"), filepath.Join(h.cfg.PprofDir, "heap.pprof")
	seconds := int(math.Ceil(typicalSync.Seconds())) + 1
	h.logf("profiles: CPU for %ds of a first sync, into %s", seconds, h.cfg.PprofDir)
	cpuDone := make(chan error, 1)
	go func() { cpuDone <- p.Profile(ctx, "profile", fmt.Sprintf("seconds=%d", seconds), cpu) }()
	_, syncErr := h.measureSync(ctx, ns, h.cfg.N, 0)
	cpuErr := <-cpuDone
	heapErr := p.Profile(ctx, "heap", "", heap)
	stopErr := h.stopAndEmpty(ctx, op)
	for _, err := range []error{syncErr, cpuErr, heapErr, stopErr} {
		if err != nil {
			return nil, err
		}
	}
	return []string{cpu, heap}, nil
}

// round keeps durations readable in progress lines.
func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}
