package bench

import (
	"slices"
	"time"
)

// Results are every figure of one run.
type Results struct {
	Config  Config
	Machine Machine
	// FirstSync is with the operator's client limits raised (Config.TunedFlags),
	// Defaults with its default flags, Latency as FirstSync with the
	// simulator answering after Config.Latency.
	FirstSync, Defaults, Latency SyncFigure
	// Tenants is the first sync of Config.Tenants namespaces, each with
	// its own credentials Secret and Config.TenantResources() resources,
	// limits raised.
	Tenants SyncFigure
	// WriteCost compares a RedisBackupExport's writes with a ConfigMap's.
	WriteCost WriteCost
	Restart   RestartResult
	// TenantRestart is the restart after the last many-tenant first sync.
	TenantRestart RestartResult
	Soak          SoakResult
	Memory        []MemoryResult
	// Profiles are the files written for BENCH_PPROF=1.
	Profiles []string
	Elapsed  time.Duration
}

// Machine says where and with what the run happened.
type Machine struct {
	Date          time.Time
	CPUs          int
	GoVersion     string
	KubeAPIServer string
	// Pprof: the manager has --pprof-bind-address.
	Pprof bool
}

// SyncRun is one first sync of N resources by the operator.
type SyncRun struct {
	// Total is from the first write (the credentials Secret) to the last
	// resource seen Ready.
	Total time.Duration
	// P50 and P99 of each resource's time from its Create returning to
	// its first Ready.
	P50, P99 time.Duration
	// Calls the operator made to the cloud API.
	Calls int
	// PeakCallsPerSecond is the most calls in one wall-clock second.
	PeakCallsPerSecond int
}

// SyncFigure is a first sync measured several times, with its floor.
type SyncFigure struct {
	Flags []string
	Runs  []SyncRun
	// Floors are the floor's totals, measured the same number of times on
	// the same API server (shared between figures with the same simulator
	// latency).
	Floors []time.Duration
	// Requests are the API server's requests during the last run (the
	// operator's and the harness's).
	Requests []RequestCount
}

// Median of a SyncRun field over the runs.
func (f SyncFigure) median(field func(SyncRun) time.Duration) time.Duration {
	values := make([]time.Duration, 0, len(f.Runs))
	for _, r := range f.Runs {
		values = append(values, field(r))
	}
	return Median(values)
}

// Total is the median over the runs of SyncRun.Total.
func (f SyncFigure) Total() time.Duration {
	return f.median(func(r SyncRun) time.Duration { return r.Total })
}

// P50 is the median over the runs of SyncRun.P50.
func (f SyncFigure) P50() time.Duration {
	return f.median(func(r SyncRun) time.Duration { return r.P50 })
}

// P99 is the median over the runs of SyncRun.P99.
func (f SyncFigure) P99() time.Duration {
	return f.median(func(r SyncRun) time.Duration { return r.P99 })
}

// Floor is the floor's median.
func (f SyncFigure) Floor() time.Duration { return Median(f.Floors) }

// Ratio is operator time over floor time, medians both; 0 without a floor.
func (f SyncFigure) Ratio() float64 {
	if f.Floor() <= 0 {
		return 0
	}
	return f.Total().Seconds() / f.Floor().Seconds()
}

// CallRange is the fewest and most API calls of any run.
func (f SyncFigure) CallRange() (least, most int) {
	if len(f.Runs) == 0 {
		return 0, 0
	}
	calls := make([]int, 0, len(f.Runs))
	for _, r := range f.Runs {
		calls = append(calls, r.Calls)
	}
	return slices.Min(calls), slices.Max(calls)
}

// RestartResult is the operator restarted with every link fresh.
type RestartResult struct {
	// Resources in the cluster (the benchmark's plus the warm-up one).
	Resources int
	// Window during which Calls were counted, from the new process' start.
	Window time.Duration
	Calls  int
	// Scheduled is from the new process' start until every resource was
	// reconciled (and so has its next refresh planned) and the work queue
	// was empty; Reconciles is how many reconciles that took.
	Scheduled  time.Duration
	Reconciles int
	// PollInterval of the manager's metrics: Scheduled is late by up to
	// that.
	PollInterval time.Duration
}

// SoakResult is N resources refreshing short links for a while.
type SoakResult struct {
	N             int
	Duration      time.Duration
	LinkLifetime  time.Duration
	RefreshBefore time.Duration
	Flags         []string
	// Calls made during the soak (the first sync's excluded).
	Calls int
	// PerLifetime is Calls / N / (Duration / LinkLifetime); Steady is
	// LinkLifetime over the mean time between two calls for one resource,
	// which does not depend on where the window's edges fall.
	PerLifetime, Steady float64
	// ExpiredSeconds is the number of one-second samples in which some
	// Secret held an expired link; Samples how many were taken.
	ExpiredSeconds, Samples int
	// Herd is the most calls in one wall-clock second of the soak;
	// FirstSyncPeak the most in one second of the first sync, which the
	// refreshes repeat (see the report).
	Herd, FirstSyncPeak int
	// NotReadyAtEnd counts resources not Ready when the soak ended.
	NotReadyAtEnd int
}

// MemoryResult is the operator's memory with n resources Ready.
type MemoryResult struct {
	N int
	// Namespaces the resources are spread over, each with its own
	// credentials Secret.
	Namespaces int
	// Unrelated Secrets of UnrelatedSize bytes in another namespace.
	Unrelated, UnrelatedSize int
	AllReady                 bool
	// Sync is the time from the first write until all were Ready.
	Sync time.Duration
	// PeakRSS is the kernel's high-water mark (VmHWM), RSS the resident
	// set at the end; PeakHeap the most heap in use seen (Go's
	// go_memstats_heap_inuse_bytes) and Heap the last, PeakHeapAlloc the
	// most in live and not yet collected objects
	// (go_memstats_heap_alloc_bytes). Bytes.
	PeakRSS, RSS, PeakHeap, Heap, PeakHeapAlloc uint64
	// HeapSource says how the heap was read.
	HeapSource string
	// PeakRSSScraped is the peak RSS once three scrapes of the metrics
	// have been served as well, as a Prometheus server would.
	PeakRSSScraped uint64
	// ScrapeAllocation is what one scrape of the manager's metrics
	// allocated in it, in bytes, measured after everything else; 0 when
	// unknown (no pprof).
	ScrapeAllocation uint64
}
