package bench

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
	"github.com/dezai/uredis-backup-operator/internal/testenv"
)

// Harness holds what every measurement shares: the control plane, the
// simulator, the built manager and the harness's own clients.
type Harness struct {
	cfg     Config
	logf    func(format string, args ...any)
	env     *testenv.Env
	restCfg *rest.Config
	client  client.Client
	sim     *simulator.Server
	// cloud is the floor's own client of the simulator.
	cloud      *cloud.Client
	bin        Binary
	workDir    string
	kubeconfig string
	namespaces int
	starts     int
}

// stopTimeout is how long a manager may take to stop after SIGTERM.
const stopTimeout = 30 * time.Second

// longLinks is the simulator's link lifetime outside the soak: long enough
// that no refresh falls into any other measurement.
const longLinks = time.Hour

// Run sets everything up, runs every measurement and tears it all down.
// logf receives progress lines.
func Run(ctx context.Context, cfg Config, logf func(format string, args ...any)) (*Results, error) {
	began := time.Now()
	h, err := newHarness(ctx, cfg, logf)
	if err != nil {
		return nil, err
	}
	defer h.close()
	res := &Results{Config: cfg}
	if res.Machine, err = h.machine(); err != nil {
		return nil, err
	}
	if err := h.runAll(ctx, res); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(began)
	return res, nil
}

func newHarness(ctx context.Context, cfg Config, logf func(string, ...any)) (h *Harness, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h = &Harness{cfg: cfg, logf: logf}
	started := h // the returns below set h to nil
	defer func() {
		if err != nil {
			started.close()
		}
	}()
	if h.workDir, err = os.MkdirTemp("", "uredis-bench-"); err != nil {
		return nil, err
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	logf("building the manager")
	if h.bin, err = BuildManager(ctx, root, h.workDir); err != nil {
		return nil, err
	}
	logf("starting the control plane")
	if h.env, err = testenv.Start(); err != nil {
		return nil, err
	}
	// The harness creates thousands of objects as fast as it can: its own
	// client-side limit must never be what the floor measures.
	h.restCfg = rest.CopyConfig(h.env.Config)
	h.restCfg.QPS, h.restCfg.Burst = 2000, 4000
	if h.client, err = client.New(h.restCfg, client.Options{Scheme: operator.Scheme()}); err != nil {
		return nil, err
	}
	h.kubeconfig = filepath.Join(h.workDir, "kubeconfig")
	if err := WriteKubeconfig(h.env.Config, h.kubeconfig); err != nil {
		return nil, err
	}
	if h.sim, err = simulator.Start(simulatorConfig(cfg)); err != nil {
		return nil, err
	}
	h.cloud, err = cloud.New(cloud.Options{Endpoint: h.sim.URL(), HTTPClient: floorHTTPClient(cfg.FloorWorkers)})
	if err != nil {
		return nil, err
	}
	return h, h.createWarmUp(ctx)
}

// floorHTTPClient keeps a connection per writer alive: the default
// transport keeps two idle connections per host, and a bare client going
// as fast as it can would not reconnect for every call.
func floorHTTPClient(writers int) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = writers
	return &http.Client{Transport: transport}
}

// simulatorConfig knows one account and a backup for every resource any
// measurement creates.
func simulatorConfig(cfg Config) simulator.Config {
	most := cfg.N
	for _, n := range cfg.MemoryN {
		most = max(most, n)
	}
	backups := make([]simulator.Backup, 0, most+1)
	for i := range most {
		backups = append(backups, simulator.Backup{ID: backupID(i), Region: region, Zone: zone, Content: []byte("bench")})
	}
	backups = append(backups, simulator.Backup{ID: warmUpBackup, Region: region, Zone: zone, Content: []byte("bench")})
	return simulator.Config{
		Accounts:     []simulator.Account{{PublicKey: publicKey, PrivateKey: privateKey}},
		Backups:      backups,
		LinkLifetime: longLinks,
	}
}

const warmUpBackup = "bench-warm-up"

// createWarmUp creates one resource, in its own namespace, that stays for
// the whole run: once a freshly started manager has reconciled it, its
// caches are synced and its workers run, so that no measurement includes
// the manager's start-up.
func (h *Harness) createWarmUp(ctx context.Context) error {
	ns, err := h.createNamespace(ctx, "warm-up")
	if err != nil {
		return err
	}
	if err := h.client.Create(ctx, credentialsSecret(ns)); err != nil {
		return err
	}
	export := newExport(ns, 0, 0)
	export.Name, export.Spec.BackupID = "warm-up", warmUpBackup
	return h.client.Create(ctx, export)
}

func (h *Harness) close() {
	if h.sim != nil {
		h.sim.Close()
	}
	if h.env != nil {
		if err := h.env.Stop(); err != nil {
			h.logf("stopping the control plane: %v", err)
		}
	}
	if h.workDir != "" {
		_ = os.RemoveAll(h.workDir)
	}
}

// machine describes where the run happens.
func (h *Harness) machine() (Machine, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(h.env.Config)
	if err != nil {
		return Machine{}, err
	}
	version, err := dc.ServerVersion()
	if err != nil {
		return Machine{}, err
	}
	return Machine{
		Date:          time.Now().UTC(),
		CPUs:          runtime.NumCPU(),
		GoVersion:     runtime.Version(),
		KubeAPIServer: apiServerVersion(version.GitVersion),
		Pprof:         h.bin.HasPprof,
	}, nil
}

// apiServerVersion is the version the API server reports, unless it was
// built without release stamping (hack/build-control-plane.sh builds it
// from the module proxy): then the k8s.io/kubernetes module version its
// binary was built from.
func apiServerVersion(reported string) string {
	if !strings.HasPrefix(reported, "v0.0.0") {
		return reported
	}
	info, err := buildinfo.ReadFile(filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kube-apiserver"))
	if err != nil {
		return reported
	}
	for _, dep := range info.Deps {
		if dep.Path == "k8s.io/kubernetes" {
			return dep.Version
		}
	}
	if info.Main.Path == "k8s.io/kubernetes" {
		return info.Main.Version
	}
	return reported
}

// startOperator starts a manager with flags and waits until it works.
func (h *Harness) startOperator(ctx context.Context, flags []string) (*Process, error) {
	p, err := h.launch(flags)
	if err != nil {
		return nil, err
	}
	if err := p.WaitReconciled(ctx, 1, 2*time.Minute); err != nil {
		_ = p.Stop(stopTimeout)
		return nil, err
	}
	return p, nil
}

// launch starts a manager without waiting for it.
func (h *Harness) launch(flags []string) (*Process, error) {
	h.starts++
	return h.bin.Start(ProcessOptions{
		Kubeconfig:  h.kubeconfig,
		APIEndpoint: h.sim.URL(),
		Flags:       flags,
		LogPath:     filepath.Join(h.workDir, fmt.Sprintf("manager-%02d.log", h.starts)),
		LogLevel:    h.cfg.LogLevel,
		// Always when the manager can: the memory figure reads the heap
		// there, and every run is then started the same way.
		Pprof:       h.bin.HasPprof,
		MemoryLimit: h.cfg.MemoryLimit,
	})
}

// readyTimeout bounds a first sync of n resources: generous even for the
// default flags, whose --api-qps 10 paces it at n/10 seconds.
func readyTimeout(n int) time.Duration {
	return 2*time.Minute + time.Duration(n)*250*time.Millisecond
}
