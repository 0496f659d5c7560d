package bench

import (
	"fmt"
	"strings"
)

// Goal is one target of the issue, checked against a run.
type Goal struct {
	Name     string
	Measured string
	// Met is false when missed or not measured; Verdict says which, and
	// by how much a goal was missed.
	Met     bool
	Verdict string
}

// The targets.
const (
	goalRatio          = 1.3
	goalPerLifetime    = 1.05
	goalMemoryN        = 10000
	goalRSS            = 128 << 20
	goalUnrelatedDelta = 5 << 20
)

// Goals checks every target against res.
func Goals(res *Results) []Goal {
	goals := []Goal{
		ratioGoal(res),
		firstSyncCallsGoal(res),
		zeroGoal("No API call on restart with fresh links", res.Restart.Calls,
			fmt.Sprintf("%d calls in the first %s", res.Restart.Calls, fmtDuration(res.Restart.Window))),
		perLifetimeGoal(res.Soak),
		zeroGoal("No second in which a Secret held an expired link", res.Soak.ExpiredSeconds,
			fmt.Sprintf("%d of %d seconds", res.Soak.ExpiredSeconds, res.Soak.Samples)),
		herdGoal(res.Soak),
	}
	if len(res.Tenants.Runs) > 0 {
		t := res.TenantRestart
		goals = append(goals, tenantRatioGoal(res), zeroGoal("No API call on restart with fresh links, many tenants", t.Calls,
			fmt.Sprintf("%d calls in the first %s", t.Calls, fmtDuration(t.Window))))
	}
	if len(res.WriteCost.Kinds) > 0 {
		goals = append(goals, writeCostGoal(res.WriteCost))
	}
	return append(goals, memoryGoals(res)...)
}

func ratioGoal(res *Results) Goal {
	return syncRatioGoal(fmt.Sprintf("First sync of %s within %.1f× the floor, limits raised", fmtInt(res.Config.N), goalRatio), res.FirstSync)
}

func tenantRatioGoal(res *Results) Goal {
	return syncRatioGoal(fmt.Sprintf("First sync of %s tenant namespaces (%s each) within %.1f× the floor, limits raised",
		fmtInt(res.Config.Tenants), plural(res.Config.TenantResources(), "resource"), goalRatio), res.Tenants)
}

func syncRatioGoal(name string, f SyncFigure) Goal {
	g := Goal{Name: name, Measured: fmt.Sprintf("%.2f× (%s vs %s)", f.Ratio(), fmtDuration(f.Total()), fmtDuration(f.Floor()))}
	return judge(g, f.Ratio() <= goalRatio, fmt.Sprintf("by %.2f× (%.0f%% over the target)", f.Ratio()-goalRatio, (f.Ratio()/goalRatio-1)*100))
}

func firstSyncCallsGoal(res *Results) Goal {
	n := res.Config.N
	var parts []string
	extra := 0
	for _, fig := range []struct {
		label string
		f     SyncFigure
	}{{"raised", res.FirstSync}, {"defaults", res.Defaults}, {"latency", res.Latency}} {
		if len(fig.f.Runs) == 0 {
			continue
		}
		least, most := fig.f.CallRange()
		parts = append(parts, fmt.Sprintf("%s %s", fmtRange(least, most), fig.label))
		if most != n || least != n {
			extra = max(extra, abs(most-n), abs(least-n))
		}
	}
	g := Goal{Name: fmt.Sprintf("Exactly %s API calls on first sync", fmtInt(n)), Measured: strings.Join(parts, ", ")}
	return judge(g, extra == 0, fmt.Sprintf("by up to %s calls (%.1f%%)", fmtInt(extra), float64(extra)/float64(n)*100))
}

func zeroGoal(name string, value int, measured string) Goal {
	return judge(Goal{Name: name, Measured: measured}, value == 0, fmt.Sprintf("by %s", fmtInt(value)))
}

func perLifetimeGoal(s SoakResult) Goal {
	g := Goal{Name: fmt.Sprintf("At most %.2f API calls per resource per link lifetime", goalPerLifetime)}
	if s.Steady == 0 {
		return notMeasured(g, "no resource refreshed during the soak (shorter than a link's lifetime?)")
	}
	worst := max(s.PerLifetime, s.Steady)
	g.Measured = fmt.Sprintf("%.3f over the soak, %.3f between refreshes", s.PerLifetime, s.Steady)
	return judge(g, worst <= goalPerLifetime, fmt.Sprintf("by %.3f (%.1f%%)", worst-goalPerLifetime, (worst/goalPerLifetime-1)*100))
}

func herdGoal(s SoakResult) Goal {
	g := Goal{Name: "Herd no larger than the jitter promises (the first sync's busiest second)"}
	if s.Calls == 0 {
		return notMeasured(g, "no call during the soak")
	}
	g.Measured = fmt.Sprintf("%s calls in one second, promise %s", fmtInt(s.Herd), fmtInt(s.FirstSyncPeak))
	return judge(g, s.Herd <= s.FirstSyncPeak, fmt.Sprintf("by %s calls", fmtInt(s.Herd-s.FirstSyncPeak)))
}

func notMeasured(g Goal, why string) Goal {
	g.Measured, g.Met, g.Verdict = why, false, "not measured"
	return g
}

// memoryGoals are checked at 10,000 resources, or at the largest size
// measured, saying so.
func memoryGoals(res *Results) []Goal {
	at, note := goalMemoryN, ""
	if !hasMemoryAt(res.Memory, at) {
		if len(res.Memory) == 0 {
			return []Goal{notMeasured(Goal{Name: "Memory at 10,000"}, "BENCH_MEMORY_N is empty")}
		}
		at = res.Memory[len(res.Memory)-1].N
		note = fmt.Sprintf(" (measured at %s, not 10,000)", fmtInt(at))
	}
	allReady := true
	var alone, beside, spread *MemoryResult
	for i := range res.Memory {
		m := &res.Memory[i]
		if m.N != at {
			continue
		}
		allReady = allReady && m.AllReady
		switch {
		case m.Namespaces > 1:
			spread = m
		case m.Unrelated == 0:
			alone = m
		default:
			beside = m
		}
	}
	goals := []Goal{
		judge(Goal{Name: "All " + fmtInt(at) + " resources Ready" + note, Measured: yesNo(allReady)}, allReady, "some never became Ready"),
	}
	for _, shape := range []struct {
		label string
		runs  []*MemoryResult
	}{{"one namespace", []*MemoryResult{alone, beside}}, {"", []*MemoryResult{spread}}} {
		peak, scraped, measured := uint64(0), uint64(0), false
		for _, m := range shape.runs {
			if m != nil {
				peak, scraped, measured = max(peak, m.PeakRSS), max(scraped, m.PeakRSSScraped), true
			}
		}
		if !measured {
			continue
		}
		label := shape.label
		if label == "" {
			label = "over " + fmtInt(spread.Namespaces) + " namespaces"
		}
		// Judged with the scrapes: a Prometheus server scrapes in production.
		worst := max(peak, scraped)
		goals = append(goals, judge(Goal{
			Name:     fmt.Sprintf("Peak RSS at most 128 MiB at %s, %s, also while /metrics is scraped%s", fmtInt(at), label, note),
			Measured: fmt.Sprintf("%s; %s after three scrapes", fmtMiB(peak), fmtMiB(scraped)),
		}, worst <= goalRSS, fmt.Sprintf("by %s", fmtMiB(worst-goalRSS))))
	}
	if alone != nil && beside != nil {
		delta := int64(beside.PeakRSS) - int64(alone.PeakRSS)
		name := fmt.Sprintf("%s unrelated Secrets add at most 5 MiB%s", fmtInt(beside.Unrelated), note)
		goals = append(goals, judge(Goal{Name: name, Measured: fmtSignedMiB(delta) + " peak RSS"},
			delta <= goalUnrelatedDelta, fmt.Sprintf("by %s", fmtMiB(uint64(delta-goalUnrelatedDelta)))))
	}
	return goals
}

func hasMemoryAt(results []MemoryResult, n int) bool {
	for _, m := range results {
		if m.N == n {
			return true
		}
	}
	return false
}

func judge(g Goal, met bool, miss string) Goal {
	g.Met = met
	if met {
		g.Verdict = "met"
	} else {
		g.Verdict = "**missed** " + miss
	}
	return g
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func writeCostGoal(wc WriteCost) Goal {
	export, _ := wc.Kind(kindExport)
	configMap, _ := wc.Kind(kindConfigMap)
	r := ratio(export.Total(), configMap.Total())
	g := Goal{
		Name:     fmt.Sprintf("A RedisBackupExport's create and status patch within %.1f× a ConfigMap's with the same payload", goalRatio),
		Measured: fmt.Sprintf("%.2f× (%s vs %s for %s of each)", r, fmtDuration(export.Total()), fmtDuration(configMap.Total()), fmtInt(wc.N)),
	}
	if schemaless, ok := wc.Kind(kindSchemaless); ok {
		g.Measured += fmt.Sprintf("; a custom resource with no schema: %.2f×", ratio(schemaless.Total(), configMap.Total()))
	}
	return judge(g, r <= goalRatio, fmt.Sprintf("by %.2f× (figure 9: how much of it any custom resource costs)", r-goalRatio))
}
