package bench

import (
	"fmt"
	"strings"
	"time"
)

// Section renders one run as markdown: how it was run, the goals, then a
// table per figure. It is printed, and written into docs/benchmarks.md.
func Section(res *Results) string {
	var b strings.Builder
	cfg, m := res.Config, res.Machine
	fmt.Fprintf(&b, "## %s resources\n\n", fmtInt(cfg.N))
	fmt.Fprintf(&b, "Run on %s: %d cores (`nproc`), %s, kube-apiserver %s (envtest: a local kube-apiserver and etcd), "+
		"the simulator in the harness process; the whole run took %s.\n\n",
		m.Date.Format("2006-01-02 15:04 MST"), m.CPUs, m.GoVersion, m.KubeAPIServer, fmtDuration(res.Elapsed.Round(time.Second)))
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", cfg.Command)
	writeGoals(&b, res)
	writeFirstSync(&b, res)
	writeFloor(&b, res)
	writeCalls(&b, res)
	writeRestart(&b, res)
	writeSoak(&b, res)
	writeMemory(&b, res)
	writeLatency(&b, res)
	writeTenants(&b, res)
	writeWriteCost(&b, res)
	writeRequests(&b, res)
	writeGrowth(&b, res)
	if len(res.Profiles) > 0 {
		fmt.Fprintf(&b, "Profiles of the operator (`go tool pprof`): %s.\n\n", "`"+strings.Join(res.Profiles, "`, `")+"`")
	}
	return b.String()
}

func writeGoals(w *strings.Builder, res *Results) {
	fmt.Fprintf(w, "### Goals\n\n| goal | measured | verdict |\n|---|---|---|\n")
	for _, g := range Goals(res) {
		fmt.Fprintf(w, "| %s | %s | %s |\n", g.Name, g.Measured, g.Verdict)
	}
	fmt.Fprintln(w)
}

func writeFirstSync(w *strings.Builder, res *Results) {
	fmt.Fprintf(w, "### 1. First sync\n\n")
	fmt.Fprintf(w, "From the first write (the shared credentials Secret, then %s resources by %d writers) "+
		"to the last resource seen Ready by a watch; per resource, from its create returning to its first Ready. "+
		"Medians over the runs.\n\n", fmtInt(res.Config.N), res.Config.Concurrency)
	writeSyncTable(w, []labelledFigure{{flagsLabel(res.FirstSync.Flags), res.FirstSync}, {"defaults", res.Defaults}})
}

type labelledFigure struct {
	label string
	f     SyncFigure
}

func writeSyncTable(w *strings.Builder, figures []labelledFigure) {
	fmt.Fprintf(w, "| operator flags | runs | all Ready | p50 create→Ready | p99 create→Ready | floor | operator / floor |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|\n")
	for _, lf := range figures {
		f := lf.f
		if len(f.Runs) == 0 {
			fmt.Fprintf(w, "| %s | 0 | not run | | | | |\n", lf.label)
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %.2f× |\n", lf.label, len(f.Runs),
			fmtDuration(f.Total()), fmtDuration(f.P50()), fmtDuration(f.P99()), fmtDuration(f.Floor()), f.Ratio())
	}
	fmt.Fprintln(w)
}

func flagsLabel(flags []string) string {
	if len(flags) == 0 {
		return "defaults"
	}
	return "`" + strings.Join(flags, " ") + "`"
}

func writeFloor(w *strings.Builder, res *Results) {
	fmt.Fprintf(w, "### 2. The floor\n\n")
	fmt.Fprintf(w, "Same API server, no operator running, a fresh namespace: the same credentials Secret and %s resource creates, "+
		"and per resource exactly the work the operator must do: one signed call to the simulator, the Secret created "+
		"(same keys, labels, annotations, owner reference), the status merge-patched. The same %d writers create the resources; "+
		"as each create returns, one of %d workers does the rest (the operator's reconcilers do the same). "+
		"Both timings include creating the resources. These three writes per resource (its create, its Secret, its status patch) are all the operator makes on a first sync: "+
		"it records no Event for a first link or a routine refresh, only for failures, expiries and recoveries.\n\n",
		fmtInt(res.Config.N), res.Config.Concurrency, res.Config.FloorWorkers)
	fmt.Fprintf(w, "| simulator latency | runs | median | each run |\n|---|---|---|---|\n")
	fmt.Fprintf(w, "| none | %d | %s | %s |\n", len(res.FirstSync.Floors), fmtDuration(res.FirstSync.Floor()), fmtDurations(res.FirstSync.Floors))
	if len(res.Latency.Floors) > 0 {
		fmt.Fprintf(w, "| %s | %d | %s | %s |\n", fmtDuration(res.Config.Latency), len(res.Latency.Floors), fmtDuration(res.Latency.Floor()), fmtDurations(res.Latency.Floors))
	}
	fmt.Fprintln(w)
}

func writeCalls(w *strings.Builder, res *Results) {
	n := res.Config.N
	fmt.Fprintf(w, "### 3. API calls on first sync\n\n")
	fmt.Fprintf(w, "Every call the simulator received from the first create until %s after the last Ready; each resource names its own backup, so no call can be shared.\n\n", fmtDuration(settle))
	fmt.Fprintf(w, "| operator flags | calls per run | calls / N | busiest second |\n|---|---|---|---|\n")
	for _, lf := range []labelledFigure{{flagsLabel(res.FirstSync.Flags), res.FirstSync}, {"defaults", res.Defaults}, {"raised, simulator latency " + fmtDuration(res.Config.Latency), res.Latency}} {
		if len(lf.f.Runs) == 0 {
			continue
		}
		least, most := lf.f.CallRange()
		peak := 0
		for _, r := range lf.f.Runs {
			peak = max(peak, r.PeakCallsPerSecond)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s calls |\n", lf.label, fmtRange(least, most), fmtRatioRange(least, most, n), fmtInt(peak))
	}
	fmt.Fprintln(w)
}

func writeRestart(w *strings.Builder, res *Results) {
	r := res.Restart
	fmt.Fprintf(w, "### 4. Restart\n\n")
	fmt.Fprintf(w, "After the last first sync above (links valid for an hour), SIGTERM, then the same binary and flags started again. "+
		"\"Scheduled\" is from the new process' start until its metrics show at least one reconcile per resource "+
		"(%s, the benchmark's plus a warm-up one) with an empty work queue and no reconcile in progress; "+
		"the metrics are polled every %s, so it is late by up to that.\n\n", fmtInt(r.Resources), fmtDuration(r.PollInterval))
	fmt.Fprintf(w, "| after | API calls in the first %s | every resource scheduled after | reconciles by then |\n|---|---|---|---|\n", fmtDuration(r.Window))
	fmt.Fprintf(w, "| figure 1, one namespace | %s | %s | %s |\n", fmtInt(r.Calls), fmtDuration(r.Scheduled), fmtInt(r.Reconciles))
	if t := res.TenantRestart; t.Resources > 0 {
		fmt.Fprintf(w, "| figure 8, %s tenant namespaces (%s resources with the warm-up one) | %s | %s | %s |\n",
			fmtInt(res.Config.Tenants), fmtInt(t.Resources), fmtInt(t.Calls), fmtDuration(t.Scheduled), fmtInt(t.Reconciles))
	}
	fmt.Fprintln(w)
}

func writeSoak(w *strings.Builder, res *Results) {
	s := res.Soak
	fmt.Fprintf(w, "### 5. Refresh soak\n\n")
	fmt.Fprintf(w, "%s resources, links living %s, `spec.refreshBefore: %s`, operator flags `%s`, watched for %s after all were Ready. "+
		"Calls per resource per lifetime: calls / N / (soak / lifetime), and, independent of where the window's edges fall, "+
		"the lifetime over the mean time between two calls for one resource. Expired-link seconds: one-second samples of every "+
		"managed Secret (through a watch) in which some `expiresAt` was not in the future.\n\n",
		fmtInt(s.N), fmtDuration(s.LinkLifetime), fmtDuration(s.RefreshBefore), strings.Join(s.Flags, " "), fmtDuration(s.Duration))
	fmt.Fprintf(w, "| calls | per resource per lifetime | between refreshes | expired-link seconds | herd (busiest second) | first sync's busiest second | not Ready at the end |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| %s | %.3f | %.3f | %d of %d | %s | %s | %d |\n\n", fmtInt(s.Calls), s.PerLifetime, s.Steady,
		s.ExpiredSeconds, s.Samples, fmtInt(s.Herd), fmtInt(s.FirstSyncPeak), s.NotReadyAtEnd)
	fmt.Fprintf(w, "What the jitter promises. A refresh is planned `refreshBefore` before expiry, moved earlier at random "+
		"by up to a tenth of that (here %s), then rounded down to a whole second; links expire on whole seconds. "+
		"So every refresh keeps the phase of the resource's first sync: resources whose first links came in the same second "+
		"refresh together, in one second, every lifetime minus about refreshBefore + 1 s. A jitter this small cannot spread "+
		"a burst across seconds; what it does promise is that, as long as the operator keeps up, no second of refreshes holds "+
		"more calls than the busiest second of the first sync. That is the bound the goal checks.\n\n",
		fmtDuration(s.RefreshBefore/10))
}

func writeMemory(w *strings.Builder, res *Results) {
	fmt.Fprintf(w, "### 6. Memory\n\n")
	source := "runtime.MemStats"
	if len(res.Memory) > 0 {
		source = res.Memory[0].HeapSource
	}
	fmt.Fprintf(w, "A fresh operator (raised limits) per row, from its start until %s after all its resources were Ready. "+
		"Peak RSS is the kernel's high-water mark (VmHWM, sampled every %s); the Go heap (`HeapInuse`, `HeapAlloc`) is read from %s, "+
		"the peak kept. The heap is not read by scraping `/metrics`: a scrape lists every resource for the per-resource metrics, "+
		"so it allocates in the operator and would raise the very peak being measured. What one scrape allocates is measured after "+
		"the peaks were taken, and the last column is the peak RSS once three scrapes have been served, as a Prometheus server would. "+
		"The operator's GOMEMLIMIT: %s.\n\n",
		fmtDuration(res.Config.MemorySettle), fmtDuration(rssInterval), source, memoryLimitLabel(res.Config.MemoryLimit))
	fmt.Fprintf(w, "| resources | namespaces | unrelated Secrets | all Ready | peak RSS | RSS at the end | peak heap in use | heap in use at the end | peak heap allocated | one `/metrics` scrape allocates | peak RSS after scrapes |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range res.Memory {
		unrelated := "none"
		if m.Unrelated > 0 {
			unrelated = fmt.Sprintf("%s × %s", fmtInt(m.Unrelated), fmtBytes(m.UnrelatedSize))
		}
		scrape := "unknown"
		if m.ScrapeAllocation > 0 {
			scrape = fmtMiB(m.ScrapeAllocation)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", fmtInt(m.N), fmtInt(max(m.Namespaces, 1)), unrelated, yesNo(m.AllReady),
			fmtMiB(m.PeakRSS), fmtMiB(m.RSS), fmtMiB(m.PeakHeap), fmtMiB(m.Heap), fmtMiB(m.PeakHeapAlloc), scrape, fmtMiB(m.PeakRSSScraped))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| resources | unrelated Secrets add to peak RSS | to peak heap in use | to heap in use at the end |\n|---|---|---|---|\n")
	for _, m := range res.Memory {
		if m.Unrelated == 0 {
			continue
		}
		for _, alone := range res.Memory {
			if alone.N == m.N && alone.Unrelated == 0 && alone.Namespaces <= 1 {
				fmt.Fprintf(w, "| %s | %s | %s | %s |\n", fmtInt(m.N), fmtSignedMiB(int64(m.PeakRSS)-int64(alone.PeakRSS)),
					fmtSignedMiB(int64(m.PeakHeap)-int64(alone.PeakHeap)), fmtSignedMiB(int64(m.Heap)-int64(alone.Heap)))
			}
		}
	}
	fmt.Fprintln(w)
}

func writeLatency(w *strings.Builder, res *Results) {
	if len(res.Latency.Runs) == 0 {
		return
	}
	fmt.Fprintf(w, "### 7. First sync, simulator answering after %s\n\n", fmtDuration(res.Config.Latency))
	fmt.Fprintf(w, "As figure 1 with the raised limits, every API call (the floor's too) answered after %s. "+
		"The operator's calls in flight are bounded by `--max-concurrent-reconciles`, the floor's by its %d workers.\n\n",
		fmtDuration(res.Config.Latency), res.Config.FloorWorkers)
	writeSyncTable(w, []labelledFigure{{flagsLabel(res.Latency.Flags), res.Latency}})
}

func writeTenants(w *strings.Builder, res *Results) {
	f := res.Tenants
	if len(f.Runs) == 0 {
		return
	}
	fmt.Fprintf(w, "### 8. Many tenants\n\n")
	resources := res.Config.Tenants * res.Config.TenantResources()
	fmt.Fprintf(w, "%s tenant namespaces, created while the operator runs, each with its own credentials Secret and %s "+
		"(each naming its own backup), by the same %d writers, each writer taking whole tenants: namespace, credentials Secret, resources. "+
		"The floor is the same writes by a bare client with no operator running, and per resource the floor's work of figure 2 "+
		"(one call, the Secret, the status patch). A cluster-wide watch records when each resource was first Ready.\n\n",
		fmtInt(res.Config.Tenants), plural(res.Config.TenantResources(), "resource"), res.Config.Concurrency)
	writeSyncTable(w, []labelledFigure{{flagsLabel(f.Flags), f}})
	least, most := f.CallRange()
	fmt.Fprintf(w, "API calls per run: %s for %s resources. Each floor run: %s.\n\n", fmtRange(least, most), fmtInt(resources), fmtDurations(f.Floors))
}

func memoryLimitLabel(limit string) string {
	if limit == "" {
		return "unset (BENCH_GOMEMLIMIT=off), unlike `config/manager`"
	}
	return limit + ", as `config/manager` ships it"
}

// Formatting.

func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d >= time.Minute && d%time.Second == 0:
		return d.String()
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}

func fmtDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmtDuration(d)
	}
	return strings.Join(parts, ", ")
}

// fmtInt writes 10000 as 10,000.
func fmtInt(n int) string {
	s := fmt.Sprint(abs(n))
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if n < 0 {
		return "-" + s
	}
	return s
}

func fmtRange(least, most int) string {
	if least == most {
		return fmtInt(least)
	}
	return fmtInt(least) + "–" + fmtInt(most)
}

func fmtRatioRange(least, most, n int) string {
	if least == most {
		return fmt.Sprintf("%.3f", float64(least)/float64(n))
	}
	return fmt.Sprintf("%.3f–%.3f", float64(least)/float64(n), float64(most)/float64(n))
}

func fmtMiB(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func fmtSignedMiB(b int64) string { return fmt.Sprintf("%+.1f MiB", float64(b)/(1<<20)) }

func fmtBytes(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func writeWriteCost(w *strings.Builder, res *Results) {
	wc := res.WriteCost
	if len(wc.Kinds) == 0 || len(wc.Kinds[0].Creates) == 0 {
		return
	}
	fmt.Fprintf(w, "### 9. What a write costs the API server\n\n")
	fmt.Fprintf(w, "%s objects of each kind created, then each one's status merge-patched (a ConfigMap's data, for the ConfigMap), "+
		"by %d writers in a fresh namespace; %d rounds after a warm-up round of each, the kinds taking turns. The payloads are the same: "+
		"the ConfigMap holds the resource's spec as JSON, and its patch the status of figure 2. The two copies are the shipped CRD "+
		"under other API groups: one with every `x-kubernetes-validations` removed (the difference to the first row is what CEL costs), "+
		"one with no schema at all, only `x-kubernetes-preserve-unknown-fields` (what any custom resource costs, whatever its schema). "+
		"Medians over the rounds.\n\n", fmtInt(wc.N), res.Config.Concurrency, len(wc.Kinds[0].Creates))
	fmt.Fprintf(w, "| kind | creates | status patches | both | against the ConfigMap | each round (creates + patches) |\n|---|---|---|---|---|---|\n")
	configMap, _ := wc.Kind(kindConfigMap)
	for _, k := range wc.Kinds {
		var rounds []string
		for i := range k.Creates {
			rounds = append(rounds, fmtDuration(k.Creates[i])+" + "+fmtDuration(k.Patches[i]))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f× | %s |\n", k.Name, fmtDuration(Median(k.Creates)), fmtDuration(Median(k.Patches)),
			fmtDuration(k.Total()), ratio(k.Total(), configMap.Total()), strings.Join(rounds, "; "))
	}
	fmt.Fprintln(w)
	export, _ := wc.Kind(kindExport)
	noCEL, _ := wc.Kind(kindExportNoCEL)
	if schemaless, ok := wc.Kind(kindSchemaless); ok {
		ours := "Our schema and rules cost nothing measurable on top of it: the RedisBackupExport was no slower."
		if extra := export.Total() - schemaless.Total(); extra > 0 {
			ours = fmt.Sprintf("Our schema and rules add %s, %.2f× of a ConfigMap's time, on top of it.", fmtDuration(extra), ratio(extra, configMap.Total()))
		}
		fmt.Fprintf(w, "A custom resource with no schema at all takes %.2f× a ConfigMap's time for the same writes: that much is the API server's "+
			"(JSON instead of protobuf, the field manager's tracking through a schema it builds for custom resources), for any custom resource. %s\n\n",
			ratio(schemaless.Total(), configMap.Total()), ours)
	}
	gap, cel := export.Total()-configMap.Total(), export.Total()-noCEL.Total()
	switch {
	case gap <= 0:
		fmt.Fprintf(w, "A RedisBackupExport's writes took no longer than a ConfigMap's.\n\n")
	case cel <= 0:
		fmt.Fprintf(w, "A RedisBackupExport's writes took %s longer than a ConfigMap's, and the copy without CEL rules was no faster: "+
			"the difference is what any custom resource costs (JSON instead of protobuf, schema validation and pruning, defaulting), not the rules.\n\n",
			fmtDuration(gap))
	default:
		fmt.Fprintf(w, "Of the %s a RedisBackupExport's writes take over a ConfigMap's, the CEL rules account for %s (%.0f%%); "+
			"the rest is what any custom resource costs (JSON instead of protobuf, schema validation and pruning, defaulting).\n\n",
			fmtDuration(gap), fmtDuration(min(cel, gap)), float64(min(cel, gap))/float64(gap)*100)
	}
}

func writeRequests(w *strings.Builder, res *Results) {
	requests := res.FirstSync.Requests
	if len(requests) == 0 {
		return
	}
	fmt.Fprintf(w, "### 10. The API server's requests during a first sync\n\n")
	fmt.Fprintf(w, "`apiserver_request_total` read before the operator starts and after the last of %s resources is Ready, "+
		"in the last run of figure 1: the harness's writes (the credentials Secret, the resources, its watch) and the operator's "+
		"(each resource's Secret and status, its reads). A watch is counted when it ends, so the operator's own, still open, are not "+
		"in it; nor are requests to paths other than resources.\n\n", fmtInt(res.Config.N))
	fmt.Fprintf(w, "| verb | resource | requests | per resource |\n|---|---|---|---|\n")
	for _, r := range requests {
		fmt.Fprintf(w, "| %s | %s | %s | %.3f |\n", r.Verb, r.Resource, fmtInt(r.Count), float64(r.Count)/float64(res.Config.N))
	}
	fmt.Fprintln(w)
}

// writeGrowth puts the memory runs in one namespace side by side: how the
// first sync's time and the peak RSS grow with the number of resources.
func writeGrowth(w *strings.Builder, res *Results) {
	var rows []MemoryResult
	for _, m := range res.Memory {
		if m.Unrelated == 0 && m.AllReady {
			rows = append(rows, m)
		}
	}
	if len(rows) < 2 {
		return
	}
	fmt.Fprintf(w, "### 11. Growth\n\n")
	fmt.Fprintf(w, "From the memory runs of figure 6 without unrelated Secrets (one run each, a fresh operator with raised limits): "+
		"the time from the first write until all were Ready, per 1,000 resources too, and the peak RSS, with what each 1,000 resources "+
		"added to it since the smaller size in the same number of namespaces. With a GOMEMLIMIT, the collector holds the heap near "+
		"the limit once the live heap nears half of it, instead of letting it grow to twice the live heap: RSS then grows more slowly "+
		"than the resources do.\n\n")
	fmt.Fprintf(w, "| resources | namespaces | all Ready after | per 1,000 | peak RSS | added per 1,000 | peak RSS after scrapes |\n|---|---|---|---|---|---|---|\n")
	previous := map[bool]MemoryResult{}
	for _, m := range rows {
		spread := m.Namespaces > 1
		added := "—"
		if before, ok := previous[spread]; ok && m.N > before.N {
			added = fmtSignedMiB(int64(float64(int64(m.PeakRSS)-int64(before.PeakRSS)) * 1000 / float64(m.N-before.N)))
		}
		previous[spread] = m
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", fmtInt(m.N), fmtInt(max(m.Namespaces, 1)), fmtDuration(m.Sync),
			fmtDuration(time.Duration(float64(m.Sync)*1000/float64(m.N))), fmtMiB(m.PeakRSS), added, fmtMiB(m.PeakRSSScraped))
	}
	fmt.Fprintln(w)
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// plural says "one resource" or "10 resources".
func plural(n int, noun string) string {
	if n == 1 {
		return "one " + noun
	}
	return fmtInt(n) + " " + noun + "s"
}
