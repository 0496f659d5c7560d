package bench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// TestPipeline runs the whole benchmark at 20 resources with short windows
// and checks that the figures it computes are right. It asserts nothing
// about speed: benchmarks are not tests.
func TestPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and builds the manager")
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	const n = 20
	cfg := DefaultConfig(n)
	cfg.Repeats, cfg.DefaultsRepeats = 1, 1
	cfg.RestartWindow = 3 * time.Second
	// Links of 5 s refreshed 2 s (3 s after rounding) before expiry: a
	// dozen seconds hold several refreshes of every resource.
	cfg.Soak, cfg.SoakLinkLifetime, cfg.SoakRefreshBefore = 12*time.Second, 5*time.Second, 2*time.Second
	cfg.SoakFlags = []string{"--refresh-min-margin=2s", "--min-link-lifetime=4s"}
	cfg.MemoryN, cfg.Unrelated, cfg.UnrelatedSize, cfg.MemorySettle = []int{n}, 20, 1<<10, 0
	// Five tenant namespaces with one resource each; the memory figure's
	// 20 resources spread over five namespaces, four each.
	const tenants = 5
	cfg.Tenants, cfg.MemoryTenants = tenants, tenants
	cfg.LogLevel, cfg.Output, cfg.Command = "error", "", "go test"

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg, t.Logf)
	if err != nil {
		t.Fatal(err)
	}

	for name, fig := range map[string]SyncFigure{"raised": res.FirstSync, "defaults": res.Defaults, "latency": res.Latency, "tenants": res.Tenants} {
		if len(fig.Runs) != 1 {
			t.Fatalf("%s: %d runs, want 1", name, len(fig.Runs))
		}
		run, want := fig.Runs[0], n
		if name == "tenants" {
			want = tenants * cfg.TenantResources()
		}
		if run.Calls != want {
			t.Errorf("%s: %d API calls on first sync, want exactly %d", name, run.Calls, want)
		}
		if run.Total <= 0 || run.P50 <= 0 || run.P50 > run.P99 || run.P99 > run.Total {
			t.Errorf("%s: inconsistent times: total %v, p50 %v, p99 %v", name, run.Total, run.P50, run.P99)
		}
		if len(fig.Floors) != 1 || fig.Floor() <= 0 || fig.Ratio() <= 0 {
			t.Errorf("%s: floors %v, ratio %v", name, fig.Floors, fig.Ratio())
		}
	}

	r := res.Restart
	if r.Calls != 0 {
		t.Errorf("restart with fresh links: %d API calls, want 0", r.Calls)
	}
	if r.Resources != n+1 || r.Reconciles < r.Resources || r.Scheduled <= 0 {
		t.Errorf("restart: %+v, want %d resources (with the warm-up one) all reconciled", r, n+1)
	}

	if tr := res.TenantRestart; tr.Calls != 0 || tr.Resources != tenants*cfg.TenantResources()+1 || tr.Reconciles < tr.Resources {
		t.Errorf("restart after the many-tenant sync: %+v, want %d resources all reconciled with no call", tr, tenants*cfg.TenantResources()+1)
	}

	s := res.Soak
	if s.ExpiredSeconds != 0 || s.NotReadyAtEnd != 0 {
		t.Errorf("soak: %d seconds with an expired link, %d resources not Ready at the end", s.ExpiredSeconds, s.NotReadyAtEnd)
	}
	if s.Samples < 10 || s.Calls < 2*n || s.Steady <= 1 || s.PerLifetime <= 0 {
		t.Errorf("soak: %+v: want every resource refreshed several times, sampled every second", s)
	}
	if s.Herd <= 0 || s.FirstSyncPeak <= 0 || s.FirstSyncPeak > n {
		t.Errorf("soak: herd %d, first sync peak %d of %d resources", s.Herd, s.FirstSyncPeak, n)
	}

	if len(res.Memory) != 3 {
		t.Fatalf("memory: %d results, want with and without unrelated Secrets, and spread over namespaces", len(res.Memory))
	}
	for _, m := range res.Memory {
		if !m.AllReady || m.RSS == 0 || m.PeakHeap == 0 || m.Sync <= 0 {
			t.Errorf("memory: %+v", m)
		}
	}
	if res.Memory[0].Unrelated != 0 || res.Memory[1].Unrelated != cfg.Unrelated {
		t.Errorf("memory: unrelated Secrets %d then %d, want 0 then %d", res.Memory[0].Unrelated, res.Memory[1].Unrelated, cfg.Unrelated)
	}
	if spread := res.Memory[2]; spread.Namespaces != tenants || spread.Unrelated != 0 {
		t.Errorf("memory: the spread run covered %d namespaces (unrelated Secrets %d), want %d (none)", spread.Namespaces, spread.Unrelated, tenants)
	}

	if len(res.WriteCost.Kinds) != 4 {
		t.Fatalf("write cost: %d kinds, want the resource, its copies without rules and without a schema, and a ConfigMap", len(res.WriteCost.Kinds))
	}
	for _, k := range res.WriteCost.Kinds {
		if len(k.Creates) != 1 || len(k.Patches) != 1 || k.Creates[0] <= 0 || k.Patches[0] <= 0 {
			t.Errorf("write cost of %s: creates %v, patches %v, want one round of each", k.Name, k.Creates, k.Patches)
		}
	}
	// The API server's count of the first sync's requests: the harness's
	// creates and the operator's Secret creates and status patches.
	seen := map[string]int{}
	for _, r := range res.FirstSync.Requests {
		seen[r.Verb+" "+r.Resource] = r.Count
	}
	for _, want := range []string{"POST redisbackupexports", "POST secrets", "PATCH redisbackupexports/status"} {
		if seen[want] < n {
			t.Errorf("API server requests: %q %d times, want at least %d (all: %v)", want, seen[want], n, res.FirstSync.Requests)
		}
	}

	section := Section(res)
	for _, heading := range []string{"## 20 resources", "### Goals", "### 1.", "### 2.", "### 3.", "### 4.", "### 5.", "### 6.", "### 7.", "### 8.", "### 9.", "### 10.", "### 11."} {
		if !strings.Contains(section, heading) {
			t.Errorf("the report lacks %q", heading)
		}
	}
	t.Log("\n" + section)
}
