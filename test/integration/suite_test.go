// Package integration tests the operator end to end: the real manager
// (internal/operator) against a real kube-apiserver (envtest) and the API
// simulator over HTTP on loopback. Each test gets its own namespace, its
// own simulator and its own manager watching only that namespace, so tests
// run in parallel without seeing each other.
package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
	"github.com/dezai/uredis-backup-operator/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// UREDIS_TEST_DEBUG=1 shows the operator's debug logs.
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(os.Getenv("UREDIS_TEST_DEBUG") == "1")))
	os.Exit(testenv.Run(m, func(started *testenv.Env) error {
		env = started
		return nil
	}))
}

const (
	publicKey  = "test-public-key"
	privateKey = "test-private-key"
	backupID   = "00a1b68c-c7f5-4a52-9eac-d1c2e3f48f0e"
	otherID    = "11b2c79d-d8a6-5b63-0fbd-e2d3f4a59f1f"
	region     = "cn-bj2"
	zone       = "cn-bj2-04"
)

// fixture is one test's namespace, simulator and (optionally) manager.
type fixture struct {
	t   *testing.T
	g   Gomega
	ns  string
	sim *simulator.Server
	c   client.Client
	ctx context.Context

	opts        operator.Options
	stopManager func()
	// caFile holds the simulator's CA when it serves HTTPS (withSimulator
	// setting TLS).
	caFile string
}

type fixtureOption func(*simulator.Config, *operator.Options)

func withLinkLifetime(d time.Duration) fixtureOption {
	return func(c *simulator.Config, _ *operator.Options) { c.LinkLifetime = d }
}

func withOperatorOptions(mutate func(*operator.Options)) fixtureOption {
	return func(_ *simulator.Config, o *operator.Options) { mutate(o) }
}

var namespaceCounter atomic.Int32

// newFixture creates a namespace and a simulator that knows two backups and
// the test account, and starts the operator for that namespace.
func newFixture(t *testing.T, opts ...fixtureOption) *fixture {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &fixture{t: t, g: NewWithT(t), c: env.Client, ctx: ctx}
	f.ns = namespaceFor(t.Name())
	f.g.Expect(f.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}})).To(Succeed())

	simCfg := simulator.Config{
		Accounts:     []simulator.Account{{PublicKey: publicKey, PrivateKey: privateKey}},
		Backups:      []simulator.Backup{{ID: backupID, Region: region, Zone: zone, GroupID: "mfweUQnQ", Content: []byte("backup one")}, {ID: otherID, Region: region, Zone: zone, GroupID: "mfweUQnQ", Content: []byte("backup two")}},
		LinkLifetime: time.Hour,
	}
	opOpts := operator.DefaultOptions()
	opOpts.MetricsBindAddress, opOpts.HealthProbeBindAddress = "0", "0"
	opOpts.AllowHTTPEndpoint = true
	opOpts.WatchNamespaces = []string{f.ns}
	opOpts.InProcessTestManagers = true
	for _, opt := range opts {
		opt(&simCfg, &opOpts)
	}
	sim, err := simulator.Start(simCfg)
	f.g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(sim.Close)
	f.sim = sim
	opOpts.APIEndpoint = sim.URL()
	if simCfg.TLS {
		// The operator trusts the simulator's own CA, as --api-ca-file.
		f.caFile = filepath.Join(t.TempDir(), "simulator-ca.pem")
		f.g.Expect(os.WriteFile(f.caFile, sim.CACertPEM(), 0o600)).To(Succeed())
		opOpts.APICAFile = f.caFile
	}
	f.opts = opOpts
	f.stopManager = f.startManager(opOpts)
	return f
}

func withSimulator(mutate func(*simulator.Config)) fixtureOption {
	return func(c *simulator.Config, _ *operator.Options) { mutate(c) }
}

// withBackups adds n backups named <prefix>-<i> to the simulator.
func withBackups(prefix string, n int) fixtureOption {
	return withSimulator(func(c *simulator.Config) {
		for i := range n {
			c.Backups = append(c.Backups, simulator.Backup{ID: fmt.Sprintf("%s-%03d", prefix, i), Region: region, Zone: zone, Content: []byte("content")})
		}
	})
}

// restartManager stops the running manager and starts a new one with the
// same options, as an operator restart would.
func (f *fixture) restartManager() {
	f.t.Helper()
	f.stopManager()
	f.stopManager = f.startManager(f.opts)
}

// namespaceFor turns a test name into a unique, valid namespace name.
func namespaceFor(testName string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(strings.TrimPrefix(testName, "Test")))
	return fmt.Sprintf("%s-%d", strings.Trim(name[:min(40, len(name))], "-"), namespaceCounter.Add(1))
}

// startManager starts a manager and returns a function that stops it and
// waits until it has stopped (also run at cleanup; calling it twice is fine).
func (f *fixture) startManager(opts operator.Options) (stop func()) {
	f.t.Helper()
	mgr, err := operator.NewManager(env.Config, opts)
	f.g.Expect(err).NotTo(HaveOccurred())
	return testenv.StartManager(f.t, f.ctx, mgr)
}

func (f *fixture) createCredentials(name, public, private string) {
	f.t.Helper()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		StringData: map[string]string{"publicKey": public, "privateKey": private},
	}
	f.g.Expect(f.c.Create(f.ctx, secret)).To(Succeed())
}

func (f *fixture) newExport(name string, mutate ...func(*uredisv1alpha1.RedisBackupExport)) *uredisv1alpha1.RedisBackupExport {
	export := &uredisv1alpha1.RedisBackupExport{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
		Spec: uredisv1alpha1.RedisBackupExportSpec{
			BackupSelection: uredisv1alpha1.BackupSelection{BackupID: backupID, Region: region, Zone: zone},
			CredentialsRef:  &uredisv1alpha1.CredentialsReference{Name: "cloud-credentials"},
		},
	}
	for _, m := range mutate {
		m(export)
	}
	return export
}

func (f *fixture) create(export *uredisv1alpha1.RedisBackupExport) {
	f.t.Helper()
	f.g.Expect(f.c.Create(f.ctx, export)).To(Succeed())
}

func (f *fixture) get(name string) *uredisv1alpha1.RedisBackupExport {
	export := &uredisv1alpha1.RedisBackupExport{}
	f.g.Expect(f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, export)).To(Succeed())
	return export
}

// updateSpec changes a resource's spec, retrying on conflicts with the
// operator's status writes.
func (f *fixture) updateSpec(name string, mutate func(*uredisv1alpha1.RedisBackupExport)) {
	f.t.Helper()
	f.g.Expect(updateObject(f.ctx, f.c, types.NamespacedName{Namespace: f.ns, Name: name}, mutate)).To(Succeed())
}

// updateObject reads the object of key, changes it and writes it, again while
// the operator's status writes conflict.
func updateObject[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, c client.Client, key types.NamespacedName, mutate func(PT)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj := PT(new(T))
		if err := c.Get(ctx, key, obj); err != nil {
			return err
		}
		mutate(obj)
		return c.Update(ctx, obj)
	})
}

func (f *fixture) secret(name string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, secret)
	return secret, err
}

// ready returns the Ready condition of the named resource, or nil.
func (f *fixture) ready(name string) *metav1.Condition {
	export := &uredisv1alpha1.RedisBackupExport{}
	if err := f.c.Get(f.ctx, types.NamespacedName{Namespace: f.ns, Name: name}, export); err != nil {
		return nil
	}
	return meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady)
}

// eventuallyReady waits for Ready=True and returns the resource.
func (f *fixture) eventuallyReady(name string) *uredisv1alpha1.RedisBackupExport {
	f.t.Helper()
	f.g.Eventually(func() string { return conditionSummary(f.ready(name)) }).
		WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(HavePrefix("True/"))
	return f.get(name)
}

// eventuallyNotReady waits for Ready=False with the given reason.
func (f *fixture) eventuallyNotReady(name, reason string) *metav1.Condition {
	f.t.Helper()
	f.g.Eventually(func() string { return conditionSummary(f.ready(name)) }).
		WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(HavePrefix("False/"+reason), "waiting for Ready=False/%s", reason)
	return f.ready(name)
}

func conditionSummary(c *metav1.Condition) string {
	if c == nil {
		return "<none>"
	}
	return fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
}

// successfulCalls counts DescribeURedisBackupURL calls answered with RetCode 0.
func successfulCalls(sim *simulator.Server) int {
	n := 0
	for _, call := range sim.Calls() {
		if call.Action == "DescribeURedisBackupURL" && call.RetCode == 0 {
			n++
		}
	}
	return n
}
