package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
)

// fanoutLabel selects the fan-out figure's namespaces.
const fanoutLabel = "bench.uredis.dezai.com/fanout"

// FanoutResult is the fan-out figure: one ClusterRedisBackupExport writing
// its link into Namespaces namespaces, against the floor of the same
// Secret writes by a bare client.
type FanoutResult struct {
	Namespaces int
	// Operator and Floor are the runs' times from the resource's creation
	// until every namespace's Secret holds the link; Calls the simulator
	// calls of each operator run.
	Operator, Floor []time.Duration
	Calls           []int
	Flags           []string
	FloorWorkers    int
	Command         string
	Machine         Machine
}

// Ratio is the median operator run over the median floor run.
func (f FanoutResult) Ratio() float64 {
	return float64(Median(f.Operator)) / float64(Median(f.Floor))
}

// RunFanout measures only the fan-out figure (BENCH_ONLY=fanout).
func RunFanout(ctx context.Context, cfg Config, logf func(format string, args ...any)) (*FanoutResult, error) {
	h, err := newHarness(ctx, cfg, logf)
	if err != nil {
		return nil, err
	}
	defer h.close()
	res := &FanoutResult{Namespaces: cfg.FanoutNamespaces, Flags: cfg.TunedFlags, FloorWorkers: cfg.FloorWorkers, Command: cfg.Command}
	if res.Machine, err = h.machine(); err != nil {
		return nil, err
	}
	return res, h.fanout(ctx, res)
}

func (h *Harness) fanout(ctx context.Context, res *FanoutResult) error {
	n := h.cfg.FanoutNamespaces
	h.logf("fan-out: creating %d namespaces", n)
	if err := parallel(ctx, n, h.cfg.Concurrency, func(ctx context.Context, i int) error {
		return h.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("bench-fanout-%04d", i), Labels: map[string]string{fanoutLabel: "true"},
		}})
	}); err != nil {
		return err
	}
	credsNS, err := h.createNamespace(ctx, "fanout-credentials")
	if err != nil {
		return err
	}
	if err := h.client.Create(ctx, credentialsSecret(credsNS)); err != nil {
		return err
	}
	watcher, err := watchFanout(ctx, h)
	if err != nil {
		return err
	}
	defer watcher.stop()
	// Each run writes Secrets of its own name into the same namespaces
	// (envtest deletes no namespace: it runs no namespace controller).
	for run := range h.cfg.Repeats {
		took, calls, err := h.fanoutOperatorRun(ctx, watcher, credsNS, fmt.Sprintf("fanout-op-%d", run))
		if err != nil {
			return err
		}
		h.logf("fan-out: operator run %d: %s, %d calls", run+1, fmtDuration(took), calls)
		res.Operator, res.Calls = append(res.Operator, took), append(res.Calls, calls)
		took, err = h.fanoutFloorRun(ctx, watcher, credsNS, fmt.Sprintf("fanout-floor-%d", run))
		if err != nil {
			return err
		}
		h.logf("fan-out: floor run %d: %s", run+1, fmtDuration(took))
		res.Floor = append(res.Floor, took)
	}
	return nil
}

func fanoutExport(name, credsNS string) *uredisv1alpha1.ClusterRedisBackupExport {
	return &uredisv1alpha1.ClusterRedisBackupExport{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: uredisv1alpha1.ClusterRedisBackupExportSpec{
			BackupSelection: uredisv1alpha1.BackupSelection{BackupID: backupID(0), Region: region, Zone: zone},
			CredentialsRef: uredisv1alpha1.ClusterCredentialsReference{
				CredentialsReference: uredisv1alpha1.CredentialsReference{Name: credentialsName}, Namespace: credsNS,
			},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{fanoutLabel: "true"}},
		},
	}
}

// fanoutOperatorRun starts the operator, creates the resource and waits
// until every namespace holds its Secret.
func (h *Harness) fanoutOperatorRun(ctx context.Context, w *fanoutWatcher, credsNS, name string) (time.Duration, int, error) {
	p, err := h.startOperator(ctx, h.cfg.TunedFlags)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = p.Stop(stopTimeout) }()
	h.sim.ResetCalls()
	export := fanoutExport(name, credsNS)
	start := time.Now()
	if err := h.client.Create(ctx, export); err != nil {
		return 0, 0, err
	}
	last, err := w.wait(ctx, name, h.cfg.FanoutNamespaces, readyTimeout(h.cfg.FanoutNamespaces))
	if err != nil {
		return 0, 0, fmt.Errorf("%w; operator log:\n%s", err, p.LogTail(20))
	}
	time.Sleep(settle)
	calls := h.sim.CallCount("")
	return last.Sub(start), calls, h.client.Delete(ctx, export)
}

// fanoutFloorRun does the same writes with no operator: create the
// resource, call the simulator once, create the Secret in every namespace
// with FloorWorkers workers (as the operator's objects are shaped), patch
// the status once.
func (h *Harness) fanoutFloorRun(ctx context.Context, w *fanoutWatcher, credsNS, name string) (time.Duration, error) {
	export := fanoutExport(name, credsNS)
	start := time.Now()
	if err := h.client.Create(ctx, export); err != nil {
		return 0, err
	}
	link, err := h.cloud.DescribeBackupURL(ctx, cloud.Credentials{PublicKey: publicKey, PrivateKey: privateKey},
		cloud.BackupURLRequest{Region: region, Zone: zone, BackupID: export.Spec.BackupID})
	if err != nil {
		return 0, err
	}
	template := floorSecret(&uredisv1alpha1.RedisBackupExport{ObjectMeta: export.ObjectMeta, Spec: uredisv1alpha1.RedisBackupExportSpec{BackupSelection: export.Spec.BackupSelection}}, link)
	template.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(export, uredisv1alpha1.ClusterGroupVersionKind)}
	err = parallel(ctx, h.cfg.FanoutNamespaces, h.cfg.FloorWorkers, func(ctx context.Context, i int) error {
		secret := template.DeepCopy()
		secret.Namespace = fmt.Sprintf("bench-fanout-%04d", i)
		return h.client.Create(ctx, secret)
	})
	if err != nil {
		return 0, err
	}
	original := export.DeepCopy()
	export.Status.ExpiresAt = &metav1.Time{Time: link.ExpiresAt}
	export.Status.NamespacesWritten = int32(h.cfg.FanoutNamespaces)
	if err := h.client.Status().Patch(ctx, export, client.MergeFrom(original)); err != nil {
		return 0, err
	}
	last, err := w.wait(ctx, name, h.cfg.FanoutNamespaces, time.Minute)
	if err != nil {
		return 0, err
	}
	return last.Sub(start), h.client.Delete(ctx, export)
}

// fanoutWatcher records when each namespace's managed Secret of a name
// first held a link, through one watch of the managed Secrets' metadata.
type fanoutWatcher struct {
	mu    sync.Mutex
	seen  map[string]map[string]time.Time // name → namespace → time
	stop  func()
	ready chan struct{}
}

func watchFanout(ctx context.Context, h *Harness) (*fanoutWatcher, error) {
	w := &fanoutWatcher{seen: map[string]map[string]time.Time{}, ready: make(chan struct{}, 1)}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	byObject := map[client.Object]ctrlcache.ByObject{meta: {Label: labels.SelectorFromSet(labels.Set{managedByLabel: managedByValue})}}
	_, informer, stop, err := startCache(ctx, h.restCfg, "", byObject, meta)
	if err != nil {
		return nil, err
	}
	w.stop = stop
	record := func(obj any) {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok || !strings.HasPrefix(m.Namespace, "bench-fanout-") || m.Annotations[uredisv1alpha1.AnnotationDataHash] == "" {
			return
		}
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.seen[m.Name] == nil {
			w.seen[m.Name] = map[string]time.Time{}
		}
		if _, found := w.seen[m.Name][m.Namespace]; !found {
			w.seen[m.Name][m.Namespace] = now
			select {
			case w.ready <- struct{}{}:
			default:
			}
		}
	}
	_, err = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, obj any) { record(obj) }})
	if err != nil {
		stop()
		return nil, err
	}
	return w, nil
}

// wait returns when the n-th namespace's Secret named name was seen.
func (w *fanoutWatcher) wait(ctx context.Context, name string, n int, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		var last time.Time
		count := len(w.seen[name])
		for _, t := range w.seen[name] {
			if t.After(last) {
				last = t
			}
		}
		w.mu.Unlock()
		if count >= n {
			return last, nil
		}
		select {
		case <-w.ready:
		case <-time.After(time.Second):
		case <-deadline:
			return time.Time{}, fmt.Errorf("fan-out: %d of %d namespaces hold Secret %s after %s", count, n, name, timeout)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// FanoutSection is the fan-out figure as markdown.
func FanoutSection(f *FanoutResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Fan-out of one ClusterRedisBackupExport to %s namespaces\n\n", fmtInt(f.Namespaces))
	m := f.Machine
	fmt.Fprintf(&b, "Generated by `%s` on %s: %d CPUs, %s, kube-apiserver %s.\n\n",
		f.Command, m.Date.Format("2006-01-02"), m.CPUs, m.GoVersion, m.KubeAPIServer)
	fmt.Fprintf(&b, "One ClusterRedisBackupExport selects %s existing namespaces by label; the time runs from its "+
		"creation until the last namespace's Secret holds the link (seen through a watch of the Secrets). The floor is "+
		"the same writes by a bare client, measured the same way: create the resource, one API call, %s Secret creates "+
		"by %d workers, one status patch. Operator flags: `%s`.\n\n",
		fmtInt(f.Namespaces), fmtInt(f.Namespaces), f.FloorWorkers, strings.Join(f.Flags, " "))
	fmt.Fprintf(&b, "| runs | operator (median) | operator runs | API calls per run | floor (median) | floor runs | operator / floor | goal |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|\n")
	verdict := "met"
	if f.Ratio() > goalRatio {
		verdict = fmt.Sprintf("**missed** (%.2f×)", f.Ratio())
	}
	calls := make([]string, len(f.Calls))
	for i, c := range f.Calls {
		calls[i] = fmt.Sprint(c)
	}
	fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %.2f× | within %.1f×: %s |\n",
		len(f.Operator), fmtDuration(Median(f.Operator)), fmtDurations(f.Operator), strings.Join(calls, ", "),
		fmtDuration(Median(f.Floor)), fmtDurations(f.Floor), f.Ratio(), goalRatio, verdict)
	return b.String()
}
