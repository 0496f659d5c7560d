// Package bench is the operator's benchmark harness, run by `make bench`
// (cmd/bench). It measures the real manager binary, started as a separate
// process against a local control plane (envtest) and the API simulator,
// and compares it with a floor: a bare client doing the same writes as fast
// as the API server allows. See docs/benchmarks.md for the figures.
package bench

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config holds every knob of a run; FromEnv reads them from BENCH_*
// variables, so that `make bench` passes them through untouched.
type Config struct {
	// N is the number of resources of the first sync, restart and soak.
	N int
	// Repeats of every timed first sync (and of its floor); the median is
	// reported.
	Repeats int
	// DefaultsRepeats of the first sync with the operator's default flags.
	// Their run is paced by --api-qps 10, so it takes N/10 seconds and one
	// run says it all; more can be asked for.
	DefaultsRepeats int
	// Tenants is the number of tenant namespaces (each with its own
	// credentials Secret and one resource) of the many-tenant first sync;
	// MemoryTenants the namespaces the resources of the many-tenant memory
	// figure are spread over. 0 skips them.
	Tenants, MemoryTenants int
	// WriteCost is the number of objects of each kind in the write-cost
	// comparison (Repeats rounds); 0 skips it.
	WriteCost int
	// Concurrency of the harness's writers that create the resources.
	Concurrency int
	// FloorWorkers do the floor's per-resource work, as the operator's
	// reconcilers do.
	FloorWorkers int
	// TunedFlags are the operator's flags with its client limits raised.
	TunedFlags []string
	// RestartWindow: API calls are counted for this long after a restart.
	RestartWindow time.Duration
	// Soak is how long the refresh soak runs, SoakLinkLifetime how long the
	// simulator's links live during it, SoakRefreshBefore the resources'
	// spec.refreshBefore, and SoakFlags the operator's extra flags then.
	Soak              time.Duration
	SoakLinkLifetime  time.Duration
	SoakRefreshBefore time.Duration
	SoakFlags         []string
	// Latency of the simulator's answers for figure 7.
	Latency time.Duration
	// MemoryN are the sizes of the memory figure; each is measured with and
	// without Unrelated Secrets of UnrelatedSize bytes in another namespace.
	MemoryN       []int
	Unrelated     int
	UnrelatedSize int
	// MemorySettle is how long the operator keeps running after all its
	// resources are Ready, while memory is sampled.
	MemorySettle time.Duration
	// MemoryLimit is the operator's GOMEMLIMIT in every run, as
	// config/manager ships it; "" runs it without one.
	MemoryLimit string
	// Pprof asks for CPU and heap profiles of the operator (if the manager
	// has --pprof-bind-address), written to PprofDir.
	Pprof    bool
	PprofDir string
	// LogLevel of the operator (its log goes to a file in the work dir).
	LogLevel string
	// Output is the markdown file the run's section is written to; none
	// when empty.
	Output string
	// Command is how the run was started, as written into the report.
	Command string
	// Only names the one figure to measure ("fanout"); every figure when
	// empty.
	Only string
	// FanoutNamespaces is the number of namespaces one
	// ClusterRedisBackupExport writes its link into, in the fan-out figure.
	FanoutNamespaces int
}

// Tuned limits: enough that neither client-side limit, nor the number of
// workers, is what a first sync of 10,000 resources waits on.
var defaultTunedFlags = []string{
	"--kube-api-qps=2000", "--kube-api-burst=4000", "--max-concurrent-reconciles=32", "--api-qps=0",
}

// DefaultConfig is the documented run at n resources.
func DefaultConfig(n int) Config {
	return Config{
		N:               n,
		Repeats:         3,
		DefaultsRepeats: 1,
		Tenants:         1000,
		MemoryTenants:   1000,
		WriteCost:       n,
		Concurrency:     16,
		FloorWorkers:    32,
		TunedFlags:      defaultTunedFlags,
		RestartWindow:   time.Minute,
		Soak:            5 * time.Minute,
		// With 60 s links, 1.05 calls per lifetime allows a refresh every
		// 57.1 s at the earliest. The operator plans refreshes in whole
		// seconds: a refreshBefore of 1 s plus its jitter (up to 0.1 s)
		// rounds down to 2 s before expiry, one refresh every 58 s. A
		// refreshBefore of 2 s would round to 3 s, every 57 s: 1.053.
		SoakLinkLifetime:  time.Minute,
		SoakRefreshBefore: time.Second,
		SoakFlags:         []string{"--refresh-min-margin=1s", "--min-link-lifetime=10s"},
		Latency:           50 * time.Millisecond,
		MemoryN:           []int{1000, 3000, 10000},
		Unrelated:         5000,
		UnrelatedSize:     10 << 10,
		MemorySettle:      10 * time.Second,
		MemoryLimit:       ShippedMemoryLimit,
		LogLevel:          "info",
		Output:            "docs/benchmarks.md",
		Command:           "go run ./cmd/bench",
		FanoutNamespaces:  1000,
	}
}

// TenantResources is how many resources each tenant namespace of the
// many-tenant first sync holds: N shared out, at least one.
func (c Config) TenantResources() int { return max(1, c.N/max(c.Tenants, 1)) }

// envKeys are the variables FromEnv reads, in the order the report lists
// them.
var envKeys = []string{
	"BENCH_N", "BENCH_REPEATS", "BENCH_DEFAULTS_REPEATS", "BENCH_TENANTS", "BENCH_MEMORY_TENANTS", "BENCH_WRITE_COST", "BENCH_CONCURRENCY", "BENCH_FLOOR_WORKERS", "BENCH_TUNED_FLAGS",
	"BENCH_RESTART_WINDOW", "BENCH_SOAK", "BENCH_SOAK_LINK_LIFETIME", "BENCH_SOAK_REFRESH_BEFORE", "BENCH_SOAK_FLAGS",
	"BENCH_LATENCY", "BENCH_MEMORY_N", "BENCH_UNRELATED", "BENCH_UNRELATED_SIZE", "BENCH_MEMORY_SETTLE",
	"BENCH_GOMEMLIMIT", "BENCH_PPROF", "BENCH_PPROF_DIR", "BENCH_LOG_LEVEL", "BENCH_OUT",
	"BENCH_ONLY", "BENCH_FANOUT_NAMESPACES",
}

// ShippedMemoryLimit is the GOMEMLIMIT config/manager sets (a test in
// test/manifests keeps the two equal).
const ShippedMemoryLimit = "90MiB"

// FromEnv builds the Config from BENCH_* variables over DefaultConfig.
// BENCH_INVOCATION names the command that started the run ("make bench").
func FromEnv(getenv func(string) string) (Config, error) {
	n, err := envInt(getenv, "BENCH_N", 1000)
	if err != nil {
		return Config{}, err
	}
	c := DefaultConfig(n)
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	c.Repeats, err = envInt(getenv, "BENCH_REPEATS", c.Repeats)
	collect(err)
	c.DefaultsRepeats, err = envInt(getenv, "BENCH_DEFAULTS_REPEATS", c.DefaultsRepeats)
	collect(err)
	c.Tenants, err = envInt(getenv, "BENCH_TENANTS", c.Tenants)
	collect(err)
	c.MemoryTenants, err = envInt(getenv, "BENCH_MEMORY_TENANTS", c.MemoryTenants)
	collect(err)
	c.WriteCost, err = envInt(getenv, "BENCH_WRITE_COST", c.WriteCost)
	collect(err)
	c.Concurrency, err = envInt(getenv, "BENCH_CONCURRENCY", c.Concurrency)
	collect(err)
	c.FloorWorkers, err = envInt(getenv, "BENCH_FLOOR_WORKERS", c.FloorWorkers)
	collect(err)
	c.RestartWindow, err = envDuration(getenv, "BENCH_RESTART_WINDOW", c.RestartWindow)
	collect(err)
	c.Soak, err = envDuration(getenv, "BENCH_SOAK", c.Soak)
	collect(err)
	c.SoakLinkLifetime, err = envDuration(getenv, "BENCH_SOAK_LINK_LIFETIME", c.SoakLinkLifetime)
	collect(err)
	c.SoakRefreshBefore, err = envDuration(getenv, "BENCH_SOAK_REFRESH_BEFORE", c.SoakRefreshBefore)
	collect(err)
	c.Latency, err = envDuration(getenv, "BENCH_LATENCY", c.Latency)
	collect(err)
	c.Unrelated, err = envInt(getenv, "BENCH_UNRELATED", c.Unrelated)
	collect(err)
	c.UnrelatedSize, err = envInt(getenv, "BENCH_UNRELATED_SIZE", c.UnrelatedSize)
	collect(err)
	c.MemorySettle, err = envDuration(getenv, "BENCH_MEMORY_SETTLE", c.MemorySettle)
	collect(err)
	if v := getenv("BENCH_MEMORY_N"); v != "" {
		c.MemoryN, err = parseIntList(v)
		collect(err)
	}
	if v := getenv("BENCH_TUNED_FLAGS"); v != "" {
		c.TunedFlags = strings.Fields(v)
	}
	if v := getenv("BENCH_SOAK_FLAGS"); v != "" {
		c.SoakFlags = strings.Fields(v)
	}
	if v, ok := lookup(getenv, "BENCH_GOMEMLIMIT"); ok {
		c.MemoryLimit = v
		if v == "off" {
			c.MemoryLimit = ""
		}
	}
	c.Pprof = getenv("BENCH_PPROF") == "1"
	c.PprofDir = getenv("BENCH_PPROF_DIR")
	if v := getenv("BENCH_LOG_LEVEL"); v != "" {
		c.LogLevel = v
	}
	if v, ok := lookup(getenv, "BENCH_OUT"); ok {
		c.Output = v
	}
	c.FanoutNamespaces, err = envInt(getenv, "BENCH_FANOUT_NAMESPACES", c.FanoutNamespaces)
	collect(err)
	c.Only = getenv("BENCH_ONLY")
	c.Command = commandLine(getenv)
	collect(c.Validate())
	if len(errs) > 0 {
		return Config{}, errs[0]
	}
	return c, nil
}

// Validate rejects settings the harness cannot run with.
func (c Config) Validate() error {
	switch {
	case c.N < 1:
		return fmt.Errorf("BENCH_N must be at least 1, not %d", c.N)
	case c.Repeats < 1 || c.DefaultsRepeats < 0:
		return fmt.Errorf("BENCH_REPEATS must be at least 1 and BENCH_DEFAULTS_REPEATS at least 0")
	case c.Tenants < 0 || c.MemoryTenants < 0 || c.WriteCost < 0:
		return fmt.Errorf("BENCH_TENANTS, BENCH_MEMORY_TENANTS and BENCH_WRITE_COST must not be negative")
	case c.Concurrency < 1 || c.FloorWorkers < 1:
		return fmt.Errorf("BENCH_CONCURRENCY and BENCH_FLOOR_WORKERS must be at least 1")
	case c.Only != "" && c.Only != "fanout":
		return fmt.Errorf("BENCH_ONLY may only be fanout, not %q", c.Only)
	case c.Only == "fanout" && c.FanoutNamespaces < 1:
		return fmt.Errorf("BENCH_ONLY=fanout needs BENCH_FANOUT_NAMESPACES of at least 1")
	case c.SoakLinkLifetime < 2*time.Second:
		return fmt.Errorf("BENCH_SOAK_LINK_LIFETIME %s is too short", c.SoakLinkLifetime)
	}
	for _, n := range c.MemoryN {
		if n < 1 {
			return fmt.Errorf("BENCH_MEMORY_N holds %d", n)
		}
	}
	return nil
}

// commandLine is the exact command, as it can be typed again: the BENCH_*
// variables that were set, then the invocation.
func commandLine(getenv func(string) string) string {
	var parts []string
	for _, key := range envKeys {
		if v, ok := lookup(getenv, key); ok {
			parts = append(parts, key+"="+shellQuote(v))
		}
	}
	invocation := getenv("BENCH_INVOCATION")
	if invocation == "" {
		invocation = "go run ./cmd/bench"
	}
	return strings.Join(append(parts, invocation), " ")
}

// lookup treats an empty variable as unset, as make passes unset ones on
// as empty.
func lookup(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,._-/=:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func envInt(getenv func(string) string, key string, fallback int) (int, error) {
	v := getenv(key)
	if v == "" {
		return fallback, nil
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not an integer", key, v)
	}
	return n, nil
}

func envDuration(getenv func(string) string, key string, fallback time.Duration) (time.Duration, error) {
	v := getenv(key)
	if v == "" {
		return fallback, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a duration (like 90s or 5m)", key, v)
	}
	return d, nil
}

func parseIntList(v string) ([]int, error) {
	var out []int
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(item, "_", ""))
		if err != nil {
			return nil, fmt.Errorf("BENCH_MEMORY_N: %q is not an integer", item)
		}
		out = append(out, n)
	}
	sort.Ints(out)
	return out, nil
}
