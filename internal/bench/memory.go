package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// memory measures the operator at every size of cfg.MemoryN, first alone,
// then with the unrelated Secrets in the cluster.
func (h *Harness) memory(ctx context.Context) ([]MemoryResult, []string, error) {
	var results []MemoryResult
	var profiles []string
	for _, unrelated := range []bool{false, true} {
		if unrelated {
			h.logf("memory: creating %d unrelated Secrets of %d bytes", h.cfg.Unrelated, h.cfg.UnrelatedSize)
			ns, err := h.createUnrelatedSecrets(ctx)
			if err != nil {
				return nil, nil, err
			}
			// Gone once measured: nothing else should run beside them.
			defer func() { _ = h.emptyNamespace(ctx, ns) }()
		}
		for i, n := range h.cfg.MemoryN {
			h.logf("memory: %d resources, unrelated Secrets: %v", n, unrelated)
			profile := ""
			if h.cfg.Pprof && h.bin.HasPprof && unrelated && i == len(h.cfg.MemoryN)-1 {
				profile = filepath.Join(h.cfg.PprofDir, fmt.Sprintf("heap-%d.pprof", n))
			}
			res, err := h.memoryRun(ctx, n, 1, unrelated, profile)
			if err != nil {
				return nil, nil, err
			}
			if profile != "" {
				profiles = append(profiles, profile)
			}
			results = append(results, res)
		}
	}
	if h.cfg.MemoryTenants > 1 {
		for _, n := range h.cfg.MemoryN {
			tenants := min(h.cfg.MemoryTenants, n)
			h.logf("memory: %d resources over %d namespaces", n, tenants)
			res, err := h.memoryRun(ctx, n, tenants, false, "")
			if err != nil {
				return nil, nil, err
			}
			results = append(results, res)
		}
	}
	return results, profiles, nil
}

// memoryRun starts a fresh manager, syncs n resources (in one namespace, or
// spread over tenants namespaces with a credentials Secret each) and samples
// its memory until it has run cfg.MemorySettle past the last Ready.
func (h *Harness) memoryRun(ctx context.Context, n, tenants int, unrelated bool, heapProfile string) (MemoryResult, error) {
	res := MemoryResult{N: n, Namespaces: tenants}
	if unrelated {
		res.Unrelated, res.UnrelatedSize = h.cfg.Unrelated, h.cfg.UnrelatedSize
	}
	ns, err := h.createNamespace(ctx, "memory")
	if err != nil {
		return res, err
	}
	layout := h.newTenantLayout("memory-tenant", tenants, n/tenants)
	p, err := h.startOperator(ctx, h.cfg.TunedFlags)
	if err != nil {
		return res, err
	}
	op := &syncedOperator{process: p, ns: ns}
	sampler := startMemorySampler(ctx, p)
	var run SyncRun
	var syncErr error
	if tenants > 1 {
		run, syncErr = h.measureTenantSync(ctx, layout)
	} else {
		run, syncErr = h.measureSync(ctx, ns, n, 0)
	}
	res.AllReady, res.Sync = syncErr == nil, run.Total
	if syncErr == nil {
		time.Sleep(h.cfg.MemorySettle)
	}
	peak := sampler.Peak()
	res.PeakRSS, res.RSS, res.PeakHeap, res.PeakHeapAlloc, res.Heap = peak.PeakRSS, peak.RSS, peak.HeapInuse, peak.HeapAlloc, peak.LastHeapInuse
	res.HeapSource = heapSource(sampler.viaPprof)
	// Last, once the peaks are read: a scrape raises them. The sampler
	// goes on through the scrapes, for the peak a Prometheus server causes.
	if res.ScrapeAllocation, err = scrapeAllocation(ctx, p); err != nil {
		h.logf("memory: measuring a scrape: %v", err)
	}
	res.PeakRSSScraped = sampler.Stop().PeakRSS
	if heapProfile != "" {
		if err := p.Profile(ctx, "heap", "", heapProfile); err != nil {
			h.logf("memory: heap profile: %v", err)
		}
	}
	if err := h.stopAndEmpty(ctx, op); err != nil {
		return res, err
	}
	if tenants > 1 {
		if err := h.emptyTenants(ctx, layout); err != nil {
			return res, err
		}
	}
	if syncErr != nil {
		h.logf("memory: %d resources: %v", n, syncErr)
	}
	return res, nil
}

// memoryPeak is what a memorySampler saw.
type memoryPeak struct {
	PeakRSS, RSS         uint64
	HeapInuse, HeapAlloc uint64
	// LastHeapInuse is the heap in use at the last sample.
	LastHeapInuse uint64
}

// memorySampler reads the manager's RSS from /proc often (it costs the
// manager nothing) and its Go heap from runtime.MemStats through the pprof
// endpoint; without one, from its metrics, less often: a metrics scrape
// lists every resource, so it allocates in the manager and raises the very
// peak it measures (scraping every 2 s raised the peak RSS at 3,000
// resources from 94 to 126 MiB).
type memorySampler struct {
	mu       sync.Mutex
	peak     memoryPeak
	p        *Process
	viaPprof bool
	cancel   context.CancelFunc
	done     chan struct{}
}

var (
	rssInterval = 200 * time.Millisecond
	// heapInterval is for MemStats through pprof; metricsHeapInterval for
	// a manager without pprof.
	heapInterval        = time.Second
	metricsHeapInterval = 2 * time.Second
)

func startMemorySampler(ctx context.Context, p *Process) *memorySampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &memorySampler{p: p, viaPprof: p.PprofURL != "", cancel: cancel, done: make(chan struct{})}
	go s.loop(ctx)
	return s
}

// heapSource says where the heap figures come from, for the report.
func heapSource(viaPprof bool) string {
	if viaPprof {
		return "runtime.MemStats via the pprof endpoint, every " + fmtDuration(heapInterval)
	}
	return "the metrics endpoint (`go_memstats_heap_*`), every " + fmtDuration(metricsHeapInterval)
}

func (s *memorySampler) loop(ctx context.Context) {
	defer close(s.done)
	rss := time.NewTicker(rssInterval)
	defer rss.Stop()
	interval := heapInterval
	if !s.viaPprof {
		interval = metricsHeapInterval
	}
	heap := time.NewTicker(interval)
	defer heap.Stop()
	s.sampleHeap(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-rss.C:
			s.sampleRSS()
		case <-heap.C:
			s.sampleHeap(ctx)
		}
	}
}

func (s *memorySampler) sampleRSS() {
	st, err := ReadProcStatus(s.p.PID())
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peak.PeakRSS, s.peak.RSS = max(s.peak.PeakRSS, st.PeakRSS), st.RSS
}

func (s *memorySampler) sampleHeap(ctx context.Context) {
	inuse, alloc, err := s.readHeap(ctx)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peak.HeapInuse, s.peak.HeapAlloc = max(s.peak.HeapInuse, inuse), max(s.peak.HeapAlloc, alloc)
	s.peak.LastHeapInuse = inuse
}

func (s *memorySampler) readHeap(ctx context.Context) (inuse, alloc uint64, err error) {
	if s.viaPprof {
		st, err := s.p.MemStats(ctx)
		return st.HeapInuse, st.HeapAlloc, err
	}
	scrape, err := s.p.Metrics(ctx)
	if err != nil {
		return 0, 0, err
	}
	return uint64(scrape.Sum("go_memstats_heap_inuse_bytes", nil)), uint64(scrape.Sum("go_memstats_heap_alloc_bytes", nil)), nil
}

// Peak takes a sample of each and returns the peaks so far; the sampler
// goes on.
func (s *memorySampler) Peak() memoryPeak {
	s.sampleRSS()
	s.sampleHeap(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// Stop ends the sampling and returns the peaks.
func (s *memorySampler) Stop() memoryPeak {
	s.cancel()
	<-s.done
	return s.Peak()
}

// scrapeAllocation is how many bytes one scrape of the manager's metrics
// allocates in it: TotalAlloc grows by that, less what reading TotalAlloc
// itself allocates (measured just before). One scrape comes first, so that
// what only the first one sets up is not counted. 0 without pprof.
func scrapeAllocation(ctx context.Context, p *Process) (uint64, error) {
	if p.PprofURL == "" {
		return 0, nil
	}
	if _, err := p.Metrics(ctx); err != nil {
		return 0, err
	}
	var totals [3]uint64
	for i := range totals {
		if i == 2 {
			if _, err := p.Metrics(ctx); err != nil {
				return 0, err
			}
		}
		st, err := p.MemStats(ctx)
		if err != nil {
			return 0, err
		}
		totals[i] = st.TotalAlloc
	}
	reading := totals[1] - totals[0]
	scrapeAndReading := totals[2] - totals[1]
	if scrapeAndReading < reading {
		return 0, nil
	}
	return scrapeAndReading - reading, nil
}
