package bench

import (
	"context"
	"time"

	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// soak runs N resources on short links for cfg.Soak and watches the
// refreshes: how many calls per link lifetime, whether any Secret ever held
// an expired link, and how many calls land in one second.
func (h *Harness) soak(ctx context.Context) (SoakResult, error) {
	cfg := h.cfg
	h.sim.SetLinkLifetime(cfg.SoakLinkLifetime)
	defer h.sim.SetLinkLifetime(longLinks)
	flags := append(append([]string(nil), cfg.TunedFlags...), cfg.SoakFlags...)

	ns, err := h.createNamespace(ctx, "soak")
	if err != nil {
		return SoakResult{}, err
	}
	p, err := h.startOperator(ctx, flags)
	if err != nil {
		return SoakResult{}, err
	}
	op := &syncedOperator{process: p, ns: ns}
	secrets, err := watchManagedSecrets(ctx, h.restCfg, ns)
	if err != nil {
		_ = h.stopAndEmpty(ctx, op)
		return SoakResult{}, err
	}
	defer secrets.Stop()
	if _, err := h.measureSync(ctx, ns, cfg.N, cfg.SoakRefreshBefore); err != nil {
		_ = h.stopAndEmpty(ctx, op)
		return SoakResult{}, err
	}

	start := time.Now()
	h.logf("soak: %d resources, links of %s, for %s", cfg.N, cfg.SoakLinkLifetime, cfg.Soak)
	expired, samples, err := sampleExpired(ctx, secrets, start.Add(cfg.Soak))
	end := time.Now()
	if err != nil {
		_ = h.stopAndEmpty(ctx, op)
		return SoakResult{}, err
	}
	notReady, err := h.notReady(ctx, ns)
	if err != nil {
		_ = h.stopAndEmpty(ctx, op)
		return SoakResult{}, err
	}
	if err := h.stopAndEmpty(ctx, op); err != nil {
		return SoakResult{}, err
	}
	res := soakResultFrom(h.sim.Calls(), start, end, cfg)
	res.Flags, res.ExpiredSeconds, res.Samples, res.NotReadyAtEnd = flags, expired, samples, notReady
	return res, nil
}

// sampleExpired looks at every managed Secret once a second until `until`
// and counts the samples in which at least one held an expired link.
func sampleExpired(ctx context.Context, secrets *secretWatcher, until time.Time) (expiredSeconds, samples int, err error) {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for time.Now().Before(until) {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-ticker.C:
		}
		values, err := secrets.ExpiresAt(ctx)
		if err != nil {
			return 0, 0, err
		}
		samples++
		if ExpiredLinks(values, time.Now()) > 0 {
			expiredSeconds++
		}
	}
	return expiredSeconds, samples, nil
}

// soakResultFrom computes the call figures of a soak from the simulator's
// log since the first sync began; calls before start are the first sync's.
// The warm-up resource's calls are not the soak's: it refreshes on the
// same short links, but it is not one of the N resources.
func soakResultFrom(calls []simulator.Call, start, end time.Time, cfg Config) SoakResult {
	res := SoakResult{N: cfg.N, Duration: end.Sub(start), LinkLifetime: cfg.SoakLinkLifetime, RefreshBefore: cfg.SoakRefreshBefore}
	var firstSync, during []time.Time
	byResource := map[string][]time.Time{}
	for _, call := range calls {
		if call.Params["BackupId"] == warmUpBackup {
			continue
		}
		switch {
		case call.Time.Before(start):
			firstSync = append(firstSync, call.Time)
		case call.Time.Before(end):
			during = append(during, call.Time)
		default:
			continue
		}
		id := call.Params["BackupId"]
		byResource[id] = append(byResource[id], call.Time)
	}
	res.Calls = len(during)
	res.PerLifetime = CallsPerLifetime(len(during), cfg.N, res.Duration, cfg.SoakLinkLifetime)
	res.Steady = SteadyCallsPerLifetime(byResource, cfg.SoakLinkLifetime)
	res.Herd = MaxPerSecond(during)
	res.FirstSyncPeak = MaxPerSecond(firstSync)
	return res
}
