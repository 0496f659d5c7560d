package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Binary is the manager, built once from the repository so that what is
// measured is what ships (main.go, its flags and its defaults).
type Binary struct {
	Path string
	// HasPprof: the manager has a --pprof-bind-address flag.
	HasPprof bool
}

// BuildManager builds the manager from the repository root into dir.
func BuildManager(ctx context.Context, root, dir string) (Binary, error) {
	path := filepath.Join(dir, "manager")
	build := exec.CommandContext(ctx, "go", "build", "-o", path, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return Binary{}, fmt.Errorf("building the manager: %w\n%s", err, out)
	}
	// -help prints every flag and exits; it is how we learn whether
	// profiles can be asked for without depending on the source.
	help, _ := exec.CommandContext(ctx, path, "-help").CombinedOutput()
	return Binary{Path: path, HasPprof: bytes.Contains(help, []byte("pprof-bind-address"))}, nil
}

// ProcessOptions start one manager process.
type ProcessOptions struct {
	Kubeconfig  string
	APIEndpoint string
	// Flags are added after the harness's own (limits, margins).
	Flags    []string
	LogPath  string
	LogLevel string
	Pprof    bool
	// MemoryLimit is the manager's GOMEMLIMIT, as config/manager sets it;
	// none when empty.
	MemoryLimit string
}

// Process is a running manager.
type Process struct {
	cmd        *exec.Cmd
	Started    time.Time
	MetricsURL string
	// PprofURL is the base of its /debug/pprof endpoints; "" when off.
	PprofURL string
	logPath  string
	done     chan struct{}
	waitErr  error
}

// Start starts the manager against the control plane of opts.Kubeconfig
// and the simulator at opts.APIEndpoint, its metrics on a free loopback
// port, in plain HTTP.
func (b Binary) Start(opts ProcessOptions) (*Process, error) {
	metricsAddr, err := freeLoopbackAddress()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--kubeconfig=" + opts.Kubeconfig,
		"--api-endpoint=" + opts.APIEndpoint,
		"--allow-http-endpoint", // the simulator listens on loopback only
		"--metrics-bind-address=" + metricsAddr,
		// Plain HTTP on loopback: the harness scrapes without a token, and
		// what it measures is the operator, not the TLS handshake.
		"--metrics-secure=false",
		"--health-probe-bind-address=0",
		"--zap-log-level=" + opts.LogLevel,
	}
	p := &Process{MetricsURL: "http://" + metricsAddr + "/metrics", logPath: opts.LogPath, done: make(chan struct{})}
	if opts.Pprof && b.HasPprof {
		pprofAddr, err := freeLoopbackAddress()
		if err != nil {
			return nil, err
		}
		args = append(args, "--pprof-bind-address="+pprofAddr)
		p.PprofURL = "http://" + pprofAddr + "/debug/pprof"
	}
	logFile, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(b.Path, append(args, opts.Flags...)...) //nolint:noctx // Stop ends it with SIGTERM, as the kubelet would; a context would SIGKILL it
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.Env = os.Environ()
	if opts.MemoryLimit != "" {
		p.cmd.Env = append(p.cmd.Env, "GOMEMLIMIT="+opts.MemoryLimit)
	}
	p.Started = time.Now()
	if err := p.cmd.Start(); err != nil {
		_ = logFile.Close() // the failed start is the error to report
		return nil, fmt.Errorf("starting the manager: %w", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		_ = logFile.Close() // written unbuffered by the process, which has exited
		close(p.done)
	}()
	return p, nil
}

// freeLoopbackAddress finds a port nobody listens on. Another process may
// take it before the manager does; on a benchmark machine that is unlikely
// enough.
func freeLoopbackAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") //nolint:noctx // an IP literal: nothing to resolve, nothing to cancel
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// PID of the manager.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// exitedError reports that the manager exited unexpectedly, with how and
// the end of its log.
func (p *Process) exitedError(what string, err error) error {
	return fmt.Errorf("the manager %s (%v); its log: %s", what, err, p.LogTail(20)) //nolint:errorlint // err is nil after a clean exit, which %w would print as %!w(<nil>)
}

// Stop sends SIGTERM, as the kubelet does, and waits for a clean exit;
// after timeout the process is killed.
func (p *Process) Stop(timeout time.Duration) error {
	if exited, err := p.Exited(); exited {
		return p.exitedError("had already exited", err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("the manager did not stop within %s of SIGTERM and was killed", timeout)
	}
}

// LogTail returns the last lines of the manager's log, for error messages.
func (p *Process) LogTail(lines int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// Metrics scrapes the manager's metrics endpoint.
func (p *Process) Metrics(ctx context.Context) (Scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.MetricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: HTTP %d", resp.StatusCode)
	}
	return ParseMetrics(resp.Body)
}

// ReconcileTotal is how many reconciles of RedisBackupExports the manager
// has finished, whatever their result.
func (p *Process) ReconcileTotal(ctx context.Context) (float64, error) {
	scrape, err := p.Metrics(ctx)
	if err != nil {
		return 0, err
	}
	return scrape.Sum("controller_runtime_reconcile_total", map[string]string{"controller": controllerName}), nil
}

// controllerName is the name the operator gives its controller.
const controllerName = "redisbackupexport"

// WaitReconciled waits until the manager has finished at least want
// reconciles. With the one warm-up resource the harness keeps, want = 1
// means that the controller's caches are synced and its workers run.
func (p *Process) WaitReconciled(ctx context.Context, want float64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if exited, err := p.Exited(); exited {
			return p.exitedError("exited", err)
		}
		if total, err := p.ReconcileTotal(ctx); err == nil && total >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the manager did not reconcile %v resources within %s; its log: %s", want, timeout, p.LogTail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Profile fetches /debug/pprof/<name> into path; query holds parameters
// such as seconds=30.
func (p *Process) Profile(ctx context.Context, name, query, path string) error {
	if p.PprofURL == "" {
		return errors.New("the manager serves no profiles")
	}
	url := p.PprofURL + "/" + name
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return errors.Join(err, out.Close())
	}
	return out.Close()
}

// GoMemStats are the manager's runtime.MemStats that the harness uses, in
// bytes.
type GoMemStats struct {
	HeapInuse, HeapAlloc, TotalAlloc uint64
}

// MemStats reads the manager's runtime.MemStats from the "# Name = value"
// lines that /debug/pprof/heap?debug=1 ends with. Unlike a metrics scrape,
// which lists every resource for the per-resource metrics, this costs the
// manager about the same whatever its number of resources.
func (p *Process) MemStats(ctx context.Context) (GoMemStats, error) {
	if p.PprofURL == "" {
		return GoMemStats{}, errors.New("the manager serves no profiles")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.PprofURL+"/heap?debug=1", nil)
	if err != nil {
		return GoMemStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return GoMemStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return GoMemStats{}, fmt.Errorf("heap profile: HTTP %d", resp.StatusCode)
	}
	return parseMemStats(resp.Body)
}

func parseMemStats(r io.Reader) (GoMemStats, error) {
	var st GoMemStats
	fields := map[string]*uint64{"HeapInuse": &st.HeapInuse, "HeapAlloc": &st.HeapAlloc, "TotalAlloc": &st.TotalAlloc}
	found := 0
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		name, value, ok := strings.Cut(strings.TrimPrefix(scanner.Text(), "# "), " = ")
		target, wanted := fields[name]
		if !ok || !wanted {
			continue
		}
		v, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return GoMemStats{}, fmt.Errorf("heap profile: %s = %q", name, value)
		}
		*target = v
		found++
	}
	if err := scanner.Err(); err != nil {
		return GoMemStats{}, err
	}
	if found != len(fields) {
		return GoMemStats{}, errors.New("heap profile: no runtime.MemStats")
	}
	return st, nil
}

// ProcStatus is the memory the kernel accounts to the manager.
type ProcStatus struct {
	// RSS is the resident set now (VmRSS), PeakRSS its high-water mark
	// since the process started (VmHWM), both in bytes.
	RSS, PeakRSS uint64
}

// ReadProcStatus reads /proc/<pid>/status.
func ReadProcStatus(pid int) (ProcStatus, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcStatus{}, err
	}
	return parseProcStatus(bytes.NewReader(status))
}

func parseProcStatus(r io.Reader) (ProcStatus, error) {
	var st ProcStatus
	found := 0
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		key, value, ok := strings.Cut(scanner.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(value) // "123456 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			return ProcStatus{}, fmt.Errorf("/proc status: unexpected %s line %q", key, value)
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return ProcStatus{}, err
		}
		if key == "VmRSS" {
			st.RSS = kb << 10
		} else {
			st.PeakRSS = kb << 10
		}
		found++
	}
	if err := scanner.Err(); err != nil {
		return ProcStatus{}, err
	}
	if found != 2 {
		return ProcStatus{}, errors.New("/proc status: no VmRSS or VmHWM")
	}
	return st, nil
}

// Scrape is one scrape of a Prometheus text endpoint.
type Scrape map[string]*dto.MetricFamily

// ParseMetrics parses the Prometheus text format.
func ParseMetrics(r io.Reader) (Scrape, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	return Scrape(families), nil
}

// Sum adds up the values (counter, gauge or untyped) of every series of
// the named metric whose labels include the given ones.
func (s Scrape) Sum(name string, labels map[string]string) float64 {
	family, ok := s[name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range family.GetMetric() {
		if !hasLabels(m.GetLabel(), labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

func hasLabels(pairs []*dto.LabelPair, want map[string]string) bool {
	matched := 0
	for _, pair := range pairs {
		if v, ok := want[pair.GetName()]; ok {
			if v != pair.GetValue() {
				return false
			}
			matched++
		}
	}
	return matched == len(want)
}

// WriteKubeconfig writes a kubeconfig file for cfg (host, CA and client
// certificate), so that the manager process finds the control plane the
// way it would in a cluster: through --kubeconfig.
func WriteKubeconfig(cfg *rest.Config, path string) error {
	const name = "bench"
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters[name] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.CAData,
	}
	kubeconfig.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
	}
	kubeconfig.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kubeconfig.CurrentContext = name
	return clientcmd.WriteToFile(*kubeconfig, path)
}
