package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// What every benchmark resource looks like: one backup each (so that no
// two share a call), all in one region, all using one credentials Secret
// in their namespace, as a real tenant's resources do.
const (
	publicKey       = "bench-public-key"
	privateKey      = "bench-private-key"
	credentialsName = "cloud-credentials"
	region          = "cn-bj2"
	zone            = "cn-bj2-04"
	managedByLabel  = "app.kubernetes.io/managed-by"
	managedByValue  = "uredis-backup-operator"
)

// resourceKey identifies a resource across namespaces in the figures.
func resourceKey(namespace, name string) string { return namespace + "/" + name }

// resourceName and backupID name the i-th resource and its backup.
func resourceName(i int) string { return fmt.Sprintf("rbe-%05d", i) }
func backupID(i int) string     { return fmt.Sprintf("bench-backup-%05d", i) }

func newExport(ns string, i int, refreshBefore time.Duration) *uredisv1alpha1.RedisBackupExport {
	export := &uredisv1alpha1.RedisBackupExport{
		ObjectMeta: metav1.ObjectMeta{Name: resourceName(i), Namespace: ns},
		Spec: uredisv1alpha1.RedisBackupExportSpec{
			BackupSelection: uredisv1alpha1.BackupSelection{BackupID: backupID(i), Region: region, Zone: zone},
			CredentialsRef:  &uredisv1alpha1.CredentialsReference{Name: credentialsName},
		},
	}
	if refreshBefore > 0 {
		export.Spec.RefreshBefore = &metav1.Duration{Duration: refreshBefore}
	}
	return export
}

func credentialsSecret(ns string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: credentialsName, Namespace: ns},
		StringData: map[string]string{"publicKey": publicKey, "privateKey": privateKey},
	}
}

// createNamespace creates a fresh namespace; every measurement gets its own.
func (h *Harness) createNamespace(ctx context.Context, purpose string) (string, error) {
	h.namespaces++
	ns := fmt.Sprintf("bench-%s-%d", purpose, h.namespaces)
	return ns, h.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
}

// creation is the outcome of creating a batch of resources.
type creation struct {
	// Start is when the first write (the credentials Secret) was sent.
	Start time.Time
	// CreatedAt is, per resource (resourceKey), when its Create call
	// returned.
	CreatedAt map[string]time.Time
}

// createResources creates the credentials Secret, then n resources with
// h.cfg.Concurrency writers. each, if set, runs after a resource's create
// in the same writer (the floor does its per-resource work there).
func (h *Harness) createResources(ctx context.Context, ns string, n int, refreshBefore time.Duration,
	each func(context.Context, *uredisv1alpha1.RedisBackupExport) error) (creation, error) {
	out := creation{Start: time.Now(), CreatedAt: make(map[string]time.Time, n)}
	if err := h.client.Create(ctx, credentialsSecret(ns)); err != nil {
		return out, fmt.Errorf("creating the credentials Secret: %w", err)
	}
	var mu sync.Mutex
	err := parallel(ctx, n, h.cfg.Concurrency, func(ctx context.Context, i int) error {
		export := newExport(ns, i, refreshBefore)
		if err := h.client.Create(ctx, export); err != nil {
			return fmt.Errorf("creating %s: %w", export.Name, err)
		}
		created := time.Now()
		mu.Lock()
		out.CreatedAt[resourceKey(ns, export.Name)] = created
		mu.Unlock()
		if each != nil {
			return each(ctx, export)
		}
		return nil
	})
	return out, err
}

// parallel runs work(0..n-1) on `workers` goroutines and returns the first
// error, after which the remaining work is skipped.
func parallel(ctx context.Context, n, workers int, work func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := work(ctx, i); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}

// emptyNamespace deletes the resources and Secrets of ns, with the operator
// stopped. envtest runs neither the namespace controller nor the garbage
// collector, so deleting the namespace (or the owners) would delete nothing.
func (h *Harness) emptyNamespace(ctx context.Context, ns string) error {
	for _, obj := range []client.Object{&uredisv1alpha1.RedisBackupExport{}, &corev1.Secret{}} {
		if err := deleteAllOf(ctx, h.client, obj, ns); err != nil {
			return fmt.Errorf("emptying %s: %w", ns, err)
		}
	}
	return nil
}

// deleteAllOf deletes every obj of ns in one request, tried again if it
// fails: 10,000 objects take the API server about ten seconds, not far
// from its one-minute request timeout on a slow machine, and the objects a
// timed-out request did delete stay deleted.
func deleteAllOf(ctx context.Context, c client.Client, obj client.Object, ns string) error {
	var err error
	for range 3 {
		if err = c.DeleteAllOf(ctx, obj, client.InNamespace(ns)); err == nil {
			return nil
		}
	}
	return err
}

// countResources counts the RedisBackupExports in the whole cluster, from
// their metadata only.
func (h *Harness) countResources(ctx context.Context) (int, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(uredisv1alpha1.GroupVersion.WithKind("RedisBackupExportList"))
	if err := h.client.List(ctx, list); err != nil {
		return 0, err
	}
	return len(list.Items), nil
}

// createUnrelatedSecrets fills a namespace with Secrets the operator has no
// business with (each of h.cfg.UnrelatedSize random bytes), as in a
// cluster shared with other workloads.
func (h *Harness) createUnrelatedSecrets(ctx context.Context) (string, error) {
	ns, err := h.createNamespace(ctx, "unrelated")
	if err != nil {
		return "", err
	}
	return ns, parallel(ctx, h.cfg.Unrelated, h.cfg.Concurrency, func(ctx context.Context, i int) error {
		payload := make([]byte, h.cfg.UnrelatedSize)
		_, _ = rand.Read(payload)
		return h.client.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%05d", i), Namespace: ns},
			Data:       map[string][]byte{"payload": payload},
		})
	})
}
