package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// settle is how long API calls are still counted after the last resource
// turned Ready: a duplicate call would come right after.
const settle = 2 * time.Second

// syncedOperator is an operator that has just finished a first sync.
type syncedOperator struct {
	process *Process
	ns      string
}

// operatorSync starts a manager with flags, creates n resources in a fresh
// namespace and measures until all are Ready. The manager keeps running
// for the caller, who stops it (stopAndEmpty).
func (h *Harness) operatorSync(ctx context.Context, flags []string, n int, refreshBefore time.Duration) (SyncRun, *syncedOperator, error) {
	ns, err := h.createNamespace(ctx, "sync")
	if err != nil {
		return SyncRun{}, nil, err
	}
	p, err := h.startOperator(ctx, flags)
	if err != nil {
		return SyncRun{}, nil, err
	}
	op := &syncedOperator{process: p, ns: ns}
	run, err := h.measureSync(ctx, ns, n, refreshBefore)
	if err != nil {
		_ = h.stopAndEmpty(ctx, op) // the measurement's error is the one to report
		return SyncRun{}, nil, err
	}
	return run, op, nil
}

// measureSync creates the resources while the operator runs and waits for
// all to be Ready.
func (h *Harness) measureSync(ctx context.Context, ns string, n int, refreshBefore time.Duration) (SyncRun, error) {
	recorder, err := watchReady(ctx, h.restCfg, ns, n, nil)
	if err != nil {
		return SyncRun{}, err
	}
	defer recorder.Stop()
	h.sim.ResetCalls()
	created, err := h.createResources(ctx, ns, n, refreshBefore, nil)
	if err != nil {
		return SyncRun{}, err
	}
	if err := recorder.Wait(ctx, readyTimeout(n)); err != nil {
		return SyncRun{}, err
	}
	time.Sleep(settle)
	return syncRunFrom(created, recorder.ReadyAt(), h.sim.Calls()), nil
}

// syncRunFrom computes a first sync's figures from when each resource was
// created and first Ready, and the simulator's call log.
func syncRunFrom(created creation, readyAt map[string]time.Time, calls []simulator.Call) SyncRun {
	latencies := make([]time.Duration, 0, len(readyAt))
	var last time.Time
	for name, ready := range readyAt {
		latencies = append(latencies, ready.Sub(created.CreatedAt[name]))
		if ready.After(last) {
			last = ready
		}
	}
	return SyncRun{
		Total:              last.Sub(created.Start),
		P50:                Percentile(latencies, 50),
		P99:                Percentile(latencies, 99),
		Calls:              len(calls),
		PeakCallsPerSecond: MaxPerSecond(callTimes(calls)),
	}
}

func callTimes(calls []simulator.Call) []time.Time {
	times := make([]time.Time, len(calls))
	for i, c := range calls {
		times[i] = c.Time
	}
	return times
}

// stopAndEmpty stops the operator and deletes what its namespace holds, so
// that the next measurement starts from the same cluster.
func (h *Harness) stopAndEmpty(ctx context.Context, op *syncedOperator) error {
	stopErr := op.process.Stop(stopTimeout)
	if err := h.emptyNamespace(ctx, op.ns); err != nil {
		return err
	}
	return stopErr
}

// floorRun does, with no operator running, exactly the writes the operator
// must do for n resources, as fast as the API server allows: create the
// resource (so that both timings include creating them), call the
// simulator once, create the Secret, patch the status. It is shaped like an
// operator run: the same writers create the resources, and as each create
// returns, one of cfg.FloorWorkers workers (the operator's reconcilers)
// does the rest.
func (h *Harness) floorRun(ctx context.Context, n int) (time.Duration, error) {
	ns, err := h.createNamespace(ctx, "floor")
	if err != nil {
		return 0, err
	}
	took, err := h.floorOver(ctx, n, func(ctx context.Context, each func(context.Context, *uredisv1alpha1.RedisBackupExport) error) (creation, error) {
		return h.createResources(ctx, ns, n, 0, each)
	})
	if err != nil {
		return 0, err
	}
	return took, h.emptyNamespace(ctx, ns)
}

// floorOver runs the floor's per-resource work for the n resources create
// makes, handing each to a floor worker as its create returns, and returns
// the time from the first write to the last resource done.
func (h *Harness) floorOver(ctx context.Context, n int,
	create func(context.Context, func(context.Context, *uredisv1alpha1.RedisBackupExport) error) (creation, error)) (time.Duration, error) {
	h.sim.ResetCalls()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	created := make(chan *uredisv1alpha1.RedisBackupExport, n)
	workersDone := make(chan floorOutcome, 1)
	go func() { workersDone <- h.floorWorkers(ctx, created) }()

	creates, createErr := create(ctx, func(_ context.Context, export *uredisv1alpha1.RedisBackupExport) error {
		created <- export
		return nil
	})
	close(created)
	outcome := <-workersDone
	for _, err := range []error{createErr, outcome.err} {
		if err != nil {
			return 0, err
		}
	}
	if calls := h.sim.CallCount(""); calls != n {
		return 0, fmt.Errorf("the floor made %d API calls for %d resources", calls, n)
	}
	return outcome.last.Sub(creates.Start), nil
}

type floorOutcome struct {
	last time.Time
	err  error
}

// floorWorkers does the per-resource work for every created resource and
// reports when the last one was done.
func (h *Harness) floorWorkers(ctx context.Context, created <-chan *uredisv1alpha1.RedisBackupExport) floorOutcome {
	creds := cloud.Credentials{PublicKey: publicKey, PrivateKey: privateKey}
	var (
		mu      sync.Mutex
		outcome floorOutcome
		wg      sync.WaitGroup
	)
	for range h.cfg.FloorWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for export := range created {
				err := h.floorWrites(ctx, creds, export)
				done := time.Now()
				mu.Lock()
				if err != nil && outcome.err == nil {
					outcome.err = err
				}
				if done.After(outcome.last) {
					outcome.last = done
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return outcome
}

// floorWrites is the floor's work for one resource.
func (h *Harness) floorWrites(ctx context.Context, creds cloud.Credentials, export *uredisv1alpha1.RedisBackupExport) error {
	link, err := h.cloud.DescribeBackupURL(ctx, creds, cloud.BackupURLRequest{Region: region, Zone: zone, BackupID: export.Spec.BackupID})
	if err != nil {
		return fmt.Errorf("floor: calling the simulator for %s: %w", export.Name, err)
	}
	if err := h.client.Create(ctx, floorSecret(export, link)); err != nil {
		return fmt.Errorf("floor: creating the Secret of %s: %w", export.Name, err)
	}
	original := export.DeepCopy()
	export.Status = floorStatus(export, link)
	if err := h.client.Status().Patch(ctx, export, client.MergeFrom(original)); err != nil {
		return fmt.Errorf("floor: patching the status of %s: %w", export.Name, err)
	}
	return nil
}

// floorSecret is shaped as the operator's: the same keys, label,
// annotations and owner reference.
func floorSecret(export *uredisv1alpha1.RedisBackupExport, link cloud.BackupLink) *corev1.Secret {
	data := map[string][]byte{
		"backupPath":      []byte(link.URL),
		"expiresAt":       []byte(link.ExpiresAt.UTC().Format(time.RFC3339)),
		"backupId":        []byte(export.Spec.BackupID),
		"region":          []byte(export.Spec.Region),
		"innerBackupPath": []byte(link.InnerURL),
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      export.Name,
			Namespace: export.Namespace,
			Labels:    map[string]string{managedByLabel: managedByValue},
			Annotations: map[string]string{
				"uredis.dezai.com/data-hash":  hash(data),
				"uredis.dezai.com/export-uid": string(export.UID),
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(export, uredisv1alpha1.GroupVersionKind)},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

func hash(data map[string][]byte) string {
	h := sha256.New()
	for _, key := range slices.Sorted(maps.Keys(data)) {
		h.Write([]byte(key))
		h.Write(data[key])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// floorStatus is a status like the operator's after a first sync.
func floorStatus(export *uredisv1alpha1.RedisBackupExport, link cloud.BackupLink) uredisv1alpha1.RedisBackupExportStatus {
	next := link.ExpiresAt.Add(-link.ExpiresAt.Sub(link.ObtainedAt) / 3)
	format := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	return uredisv1alpha1.RedisBackupExportStatus{
		BackupID:           export.Spec.BackupID,
		BackupPath:         link.URL,
		ExpiresAt:          &metav1.Time{Time: link.ExpiresAt},
		LastRefreshTime:    &metav1.Time{Time: link.ObtainedAt},
		NextRefreshTime:    &metav1.Time{Time: next},
		SecretName:         export.Name,
		ObservedGeneration: export.Generation,
		LinkGeneration:     export.Generation,
		Conditions: []metav1.Condition{{
			Type:               uredisv1alpha1.ConditionReady,
			Status:             metav1.ConditionTrue,
			Reason:             uredisv1alpha1.ReasonRefreshed,
			ObservedGeneration: export.Generation,
			LastTransitionTime: metav1.Now(),
			Message: fmt.Sprintf("Secret %q holds a link valid until %s; next refresh at %s",
				export.Name, format(link.ExpiresAt), format(next)),
		}},
	}
}
