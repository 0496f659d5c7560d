package bench

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

func ms(values ...int) []time.Duration {
	out := make([]time.Duration, len(values))
	for i, v := range values {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted on purpose
	}
	for _, tc := range []struct {
		name   string
		values []time.Duration
		p      float64
		want   time.Duration
	}{
		{"none", nil, 50, 0},
		{"one value is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"p0 is the smallest", ms(3, 1, 2), 0, time.Millisecond},
		{"p100 is the largest", ms(3, 1, 2), 100, 3 * time.Millisecond},
		{"p50 of an odd count is the middle", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"p50 of an even count is the lower middle (nearest rank)", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 values is the 99th", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 100 values is the 50th", ms(hundred...), 50, 50 * time.Millisecond},
		{"p99 of 10 values is the largest", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p90 of 10 values is the 9th", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.values, tc.p); got != tc.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.values, tc.p, got, tc.want)
			}
		})
	}
}

func TestPercentileLeavesItsInputAlone(t *testing.T) {
	values := ms(3, 1, 2)
	Percentile(values, 50)
	Median(values)
	if values[0] != 3*time.Millisecond {
		t.Errorf("the input was sorted in place: %v", values)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		values []time.Duration
		want   time.Duration
	}{
		{nil, 0},
		{ms(9), 9 * time.Millisecond},
		{ms(9, 1, 5), 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 2500 * time.Microsecond},
	} {
		if got := Median(tc.values); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.values, got, tc.want)
		}
	}
}

func TestMaxPerSecondCountsWallClockSeconds(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	at := base.Add
	calls := []time.Time{
		// second 0: three calls
		at(0), at(400 * time.Millisecond), at(999 * time.Millisecond),
		// second 1: four calls, the herd; a sliding window over 0.4..1.3
		// would see five, the buckets do not
		at(time.Second), at(1100 * time.Millisecond), at(1200 * time.Millisecond), at(1300 * time.Millisecond),
		// second 5: one
		at(5 * time.Second),
	}
	if got := MaxPerSecond(calls); got != 4 {
		t.Errorf("MaxPerSecond = %d, want 4", got)
	}
	if got := MaxPerSecond(nil); got != 0 {
		t.Errorf("MaxPerSecond(nil) = %d, want 0", got)
	}
}

func TestCallsPerLifetime(t *testing.T) {
	// 1,000 resources over 5 minutes of 60 s links, one call each per 58 s.
	if got := CallsPerLifetime(5000, 1000, 5*time.Minute, time.Minute); got != 1 {
		t.Errorf("got %v, want 1", got)
	}
	if got := CallsPerLifetime(5250, 1000, 5*time.Minute, time.Minute); math.Abs(got-1.05) > 1e-9 {
		t.Errorf("got %v, want 1.05", got)
	}
	if got := CallsPerLifetime(10, 0, time.Minute, time.Minute); got != 0 {
		t.Errorf("no resources: got %v, want 0", got)
	}
}

func TestSteadyCallsPerLifetimeUsesTheMeanInterval(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	every := func(period time.Duration, n int) []time.Time {
		times := make([]time.Time, n)
		for i := range times {
			times[i] = base.Add(time.Duration(i) * period)
		}
		return times
	}
	calls := map[string][]time.Time{
		"a":    every(58*time.Second, 6),
		"b":    every(58*time.Second, 2),
		"once": every(time.Second, 1), // a single call has no interval
	}
	got := SteadyCallsPerLifetime(calls, time.Minute)
	if want := 60.0 / 58; math.Abs(got-want) > 1e-9 {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := SteadyCallsPerLifetime(map[string][]time.Time{"once": every(time.Second, 1)}, time.Minute); got != 0 {
		t.Errorf("no interval: got %v, want 0", got)
	}
}

func TestExpiredLinks(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	values := []string{
		"2026-11-27T12:00:01Z", // valid for another second
		"2026-11-27T12:00:00Z", // expires now: expired
		"2026-11-27T11:59:00Z", // expired
		"not a time",           // unusable: counted
	}
	if got := ExpiredLinks(values, now); got != 3 {
		t.Errorf("ExpiredLinks = %d, want 3", got)
	}
	if got := ExpiredLinks(values[:1], now); got != 0 {
		t.Errorf("ExpiredLinks(valid) = %d, want 0", got)
	}
}

func TestSoakResultFromSplitsTheCallLog(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	cfg := Config{N: 2, SoakLinkLifetime: time.Minute, SoakRefreshBefore: time.Second}
	call := func(id string, offset time.Duration) simulator.Call {
		return simulator.Call{Time: start.Add(offset), Action: "DescribeURedisBackupURL", Params: map[string]string{"BackupId": id}}
	}
	calls := []simulator.Call{
		// the first sync: both in one second, before the soak starts
		call("a", -2*time.Second+100*time.Millisecond), call("b", -2*time.Second+200*time.Millisecond),
		// their refreshes 58 s later, again in one second
		call("a", 56*time.Second+100*time.Millisecond), call("b", 56*time.Second+200*time.Millisecond),
		// after the soak ended: ignored
		call("a", 200*time.Second),
		// the warm-up resource, refreshing in the same seconds: not the soak's
		call(warmUpBackup, -2*time.Second+300*time.Millisecond), call(warmUpBackup, 56*time.Second+300*time.Millisecond),
	}
	res := soakResultFrom(calls, start, start.Add(2*time.Minute), cfg)
	if res.Calls != 2 {
		t.Errorf("Calls = %d, want 2", res.Calls)
	}
	if want := 0.5; res.PerLifetime != want { // 2 calls / 2 resources / 2 lifetimes
		t.Errorf("PerLifetime = %v, want %v", res.PerLifetime, want)
	}
	if want := 60.0 / 58; math.Abs(res.Steady-want) > 1e-9 {
		t.Errorf("Steady = %v, want %v", res.Steady, want)
	}
	if res.Herd != 2 || res.FirstSyncPeak != 2 {
		t.Errorf("Herd = %d, FirstSyncPeak = %d, want 2 and 2", res.Herd, res.FirstSyncPeak)
	}
}

func TestSyncRunFrom(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	created := creation{Start: start, CreatedAt: map[string]time.Time{}}
	readyAt := map[string]time.Time{}
	for i := range 100 {
		name := resourceName(i)
		created.CreatedAt[name] = start.Add(time.Duration(i) * time.Millisecond)
		readyAt[name] = created.CreatedAt[name].Add(time.Duration(i+1) * time.Millisecond)
	}
	calls := []simulator.Call{{Time: start}, {Time: start.Add(time.Second)}}
	run := syncRunFrom(created, readyAt, calls)
	if want := 199 * time.Millisecond; run.Total != want { // the last: created at 99 ms, Ready 100 ms later
		t.Errorf("Total = %v, want %v", run.Total, want)
	}
	if run.P50 != 50*time.Millisecond || run.P99 != 99*time.Millisecond {
		t.Errorf("P50 = %v, P99 = %v, want 50ms and 99ms", run.P50, run.P99)
	}
	if run.Calls != 2 || run.PeakCallsPerSecond != 1 {
		t.Errorf("Calls = %d, peak = %d, want 2 and 1", run.Calls, run.PeakCallsPerSecond)
	}
}

func TestParseProcStatus(t *testing.T) {
	status := "Name:\tmanager\nVmPeak:\t 1000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n"
	st, err := parseProcStatus(strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if st.PeakRSS != 50<<20 || st.RSS != 40<<20 {
		t.Errorf("got %+v, want 50 MiB peak and 40 MiB now", st)
	}
	if _, err := parseProcStatus(strings.NewReader("Name:\tzombie\n")); err == nil {
		t.Error("a status without VmRSS parsed")
	}
}

func TestParseMetricsSumsMatchingSeries(t *testing.T) {
	text := `# TYPE controller_runtime_reconcile_total counter
controller_runtime_reconcile_total{controller="redisbackupexport",result="success"} 40
controller_runtime_reconcile_total{controller="redisbackupexport",result="requeue_after"} 2
controller_runtime_reconcile_total{controller="other",result="success"} 1000
# TYPE workqueue_depth gauge
workqueue_depth{controller="redisbackupexport",name="redisbackupexport",priority=""} 3
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1.2e+07
`
	scrape, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"controller_runtime_reconcile_total", map[string]string{"controller": "redisbackupexport"}, 42},
		{"controller_runtime_reconcile_total", nil, 1042},
		{"controller_runtime_reconcile_total", map[string]string{"controller": "none"}, 0},
		{"workqueue_depth", map[string]string{"name": "redisbackupexport"}, 3},
		{"go_memstats_heap_inuse_bytes", nil, 12e6},
		{"absent", nil, 0},
	} {
		if got := scrape.Sum(tc.name, tc.labels); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtInt(0), "0"},
		{fmtInt(999), "999"},
		{fmtInt(1000), "1,000"},
		{fmtInt(10000), "10,000"},
		{fmtInt(-1234567), "-1,234,567"},
		{fmtDuration(1500 * time.Microsecond), "2 ms"},
		{fmtDuration(4120 * time.Millisecond), "4.12 s"},
		{fmtDuration(83 * time.Second), "1m23s"},
		{fmtMiB(150 << 20), "150.0 MiB"},
		{fmtSignedMiB(-1 << 20), "-1.0 MiB"},
		{fmtRange(5, 5), "5"},
		{fmtRange(5, 7), "5–7"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestMergeDocKeepsOtherSizes(t *testing.T) {
	// Bodies are markers no header prose can contain.
	doc := mergeDoc("", 10000, "## 10,000 resources\nOLD-TEN-THOUSAND\n")
	doc = mergeDoc(doc, 1000, "## 1,000 resources\nFIRST-RUN\n")
	doc = mergeDoc(doc, 1000, "## 1,000 resources\nSECOND-RUN\n")
	if !strings.HasPrefix(doc, "# Benchmarks\n") {
		t.Errorf("the header is missing:\n%s", doc)
	}
	if strings.Contains(doc, "FIRST-RUN") || !strings.Contains(doc, "SECOND-RUN") {
		t.Errorf("the run for 1,000 was not replaced:\n%s", doc)
	}
	if !strings.Contains(doc, "OLD-TEN-THOUSAND") {
		t.Errorf("the run for 10,000 was lost:\n%s", doc)
	}
	if strings.Index(doc, "## 1,000") > strings.Index(doc, "## 10,000") {
		t.Errorf("sections are not ordered by size:\n%s", doc)
	}
	if again := mergeDoc(doc, 1000, "## 1,000 resources\nSECOND-RUN\n"); again != doc {
		t.Errorf("merging the same section twice changed the document")
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		"BENCH_N":           "10_000",
		"BENCH_SOAK":        "70s",
		"BENCH_MEMORY_N":    "10000, 200",
		"BENCH_TUNED_FLAGS": "--kube-api-qps=100 --api-qps=0",
		"BENCH_INVOCATION":  "make bench",
		"BENCH_OUT":         "",
	}
	cfg, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.N != 10000 || cfg.Soak != 70*time.Second || fmt.Sprint(cfg.MemoryN) != "[200 10000]" || len(cfg.TunedFlags) != 2 {
		t.Errorf("got %+v", cfg)
	}
	if cfg.Repeats != 3 || cfg.Output != "docs/benchmarks.md" {
		t.Errorf("defaults not kept: repeats %d, output %q", cfg.Repeats, cfg.Output)
	}
	want := "BENCH_N=10_000 BENCH_TUNED_FLAGS='--kube-api-qps=100 --api-qps=0' BENCH_SOAK=70s BENCH_MEMORY_N='10000, 200' make bench"
	if cfg.Command != want {
		t.Errorf("Command = %q, want %q", cfg.Command, want)
	}
	for _, bad := range []map[string]string{{"BENCH_N": "many"}, {"BENCH_N": "0"}, {"BENCH_SOAK": "5"}, {"BENCH_MEMORY_N": "1,x"}} {
		if _, err := FromEnv(func(k string) string { return bad[k] }); err == nil {
			t.Errorf("FromEnv(%v) accepted it", bad)
		}
	}
}

func TestGoalsSayByHowMuchTheyAreMissed(t *testing.T) {
	res := &Results{
		Config: Config{N: 1000},
		FirstSync: SyncFigure{
			Runs:   []SyncRun{{Total: 13 * time.Second, Calls: 1000}},
			Floors: []time.Duration{10 * time.Second},
		},
		Defaults: SyncFigure{Runs: []SyncRun{{Total: 100 * time.Second, Calls: 1003}}},
		Restart:  RestartResult{Calls: 0, Window: time.Minute},
		Soak:     SoakResult{Calls: 5000, PerLifetime: 1.0, Steady: 1.071, ExpiredSeconds: 0, Samples: 300, Herd: 400, FirstSyncPeak: 420},
		Tenants: SyncFigure{
			Runs:   []SyncRun{{Total: 14 * time.Second, Calls: 1000}},
			Floors: []time.Duration{10 * time.Second},
		},
		Memory: []MemoryResult{
			{N: 10000, AllReady: true, PeakRSS: 120 << 20, PeakRSSScraped: 125 << 20},
			{N: 10000, AllReady: true, PeakRSS: 138 << 20, PeakRSSScraped: 138 << 20, Unrelated: 5000},
			{N: 10000, Namespaces: 1000, AllReady: true, PeakRSS: 100 << 20, PeakRSSScraped: 127 << 20},
		},
	}
	res.Config.Tenants = 1000
	verdicts := map[string]string{}
	for _, g := range Goals(res) {
		verdicts[g.Name] = g.Verdict
	}
	for name, want := range map[string]string{
		"First sync of 1,000 within 1.3× the floor, limits raised":                                       "met",
		"Exactly 1,000 API calls on first sync":                                                          "**missed** by up to 3 calls (0.3%)",
		"No API call on restart with fresh links":                                                        "met",
		"At most 1.05 API calls per resource per link lifetime":                                          "**missed** by 0.021 (2.0%)",
		"No second in which a Secret held an expired link":                                               "met",
		"Herd no larger than the jitter promises (the first sync's busiest second)":                      "met",
		"All 10,000 resources Ready":                                                                     "met",
		"Peak RSS at most 128 MiB at 10,000, one namespace, also while /metrics is scraped":              "**missed** by 10.0 MiB",
		"Peak RSS at most 128 MiB at 10,000, over 1,000 namespaces, also while /metrics is scraped":      "met",
		"5,000 unrelated Secrets add at most 5 MiB":                                                      "**missed** by 13.0 MiB",
		"First sync of 1,000 tenant namespaces (one resource each) within 1.3× the floor, limits raised": "**missed** by 0.10× (8% over the target)",
	} {
		if got, ok := verdicts[name]; !ok || got != want {
			t.Errorf("%s: got %q, want %q (all: %v)", name, got, want, verdicts)
		}
	}
}

func TestParseMemStats(t *testing.T) {
	profile := "heap profile: 1: 2 [3: 4] @ heap/1048576\n1: 2 [3: 4] @ 0x1\n\n# runtime.MemStats\n# Alloc = 100\n# TotalAlloc = 5000\n# Sys = 9\n# HeapAlloc = 100\n# HeapSys = 300\n# HeapIdle = 50\n# HeapInuse = 250\n"
	st, err := parseMemStats(strings.NewReader(profile))
	if err != nil {
		t.Fatal(err)
	}
	if st != (GoMemStats{HeapInuse: 250, HeapAlloc: 100, TotalAlloc: 5000}) {
		t.Errorf("got %+v", st)
	}
	if _, err := parseMemStats(strings.NewReader("heap profile: 0: 0 [0: 0] @ heap/1\n")); err == nil {
		t.Error("a profile without MemStats parsed")
	}
}

// TestFanoutSectionIsKept: the fan-out figure has its own section, which
// a full run keeps (and the other way round).
func TestFanoutSectionIsKept(t *testing.T) {
	doc := mergeDoc("", 1000, "## 1,000 resources\nFULL\n")
	doc = mergeSection(doc, "fanout", 1000, "## Fan-out\nFANOUT-ONE\n")
	doc = mergeDoc(doc, 1000, "## 1,000 resources\nFULL-AGAIN\n")
	if !strings.Contains(doc, "FANOUT-ONE") || !strings.Contains(doc, "FULL-AGAIN") || strings.Contains(doc, "FULL\n") {
		t.Fatalf("sections lost or not replaced:\n%s", doc)
	}
	if strings.Index(doc, "FULL-AGAIN") > strings.Index(doc, "FANOUT-ONE") {
		t.Error("full runs come before the fan-out figure")
	}
}
