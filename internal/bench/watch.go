package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
)

// startCache starts a cache of one namespace (all for "") and waits for
// obj's informer to sync; stop ends it.
func startCache(ctx context.Context, cfg *rest.Config, ns string, byObject map[client.Object]cache.ByObject, obj client.Object) (cache.Cache, cache.Informer, func(), error) {
	var namespaces map[string]cache.Config
	if ns != "" {
		namespaces = map[string]cache.Config{ns: {}}
	}
	c, err := cache.New(cfg, cache.Options{
		Scheme:            operator.Scheme(),
		DefaultNamespaces: namespaces,
		DefaultTransform:  cache.TransformStripManagedFields(),
		ByObject:          byObject,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	informer, err := c.GetInformer(ctx, obj)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Start(ctx)
	}()
	stop := func() { cancel(); <-done }
	if !c.WaitForCacheSync(ctx) {
		stop()
		return nil, nil, nil, fmt.Errorf("the harness's cache of %s did not sync", ns)
	}
	return c, informer, stop, nil
}

// readyRecorder watches the resources of one namespace, or of the
// namespaces include accepts, and records, per resource (namespace/name),
// when it was first seen with Ready=True.
type readyRecorder struct {
	mu      sync.Mutex
	include func(namespace string) bool
	readyAt map[string]time.Time
	want    int
	allDone chan struct{}
	stop    func()
}

// watchReady starts recording; Wait returns once want resources are Ready.
// With ns "", one watch covers every namespace include accepts.
func watchReady(ctx context.Context, cfg *rest.Config, ns string, want int, include func(string) bool) (*readyRecorder, error) {
	r := &readyRecorder{include: include, readyAt: make(map[string]time.Time, want), want: want, allDone: make(chan struct{})}
	_, informer, stop, err := startCache(ctx, cfg, ns, nil, &uredisv1alpha1.RedisBackupExport{})
	if err != nil {
		return nil, err
	}
	r.stop = stop
	_, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    r.observe,
		UpdateFunc: func(_, obj any) { r.observe(obj) },
	})
	if err != nil {
		stop()
		return nil, err
	}
	return r, nil
}

func (r *readyRecorder) observe(obj any) {
	seen := time.Now()
	export, ok := obj.(*uredisv1alpha1.RedisBackupExport)
	if !ok || !meta.IsStatusConditionTrue(export.Status.Conditions, uredisv1alpha1.ConditionReady) ||
		(r.include != nil && !r.include(export.Namespace)) {
		return
	}
	key := resourceKey(export.Namespace, export.Name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, known := r.readyAt[key]; known {
		return
	}
	r.readyAt[key] = seen
	if len(r.readyAt) == r.want {
		close(r.allDone)
	}
}

// Wait waits until every resource was Ready once.
func (r *readyRecorder) Wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-r.allDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("only %d of %d resources were Ready after %s", r.count(), r.want, timeout)
	}
}

func (r *readyRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.readyAt)
}

// ReadyAt returns a copy of the first Ready times.
func (r *readyRecorder) ReadyAt() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]time.Time, len(r.readyAt))
	for k, v := range r.readyAt {
		out[k] = v
	}
	return out
}

// Stop ends the watch.
func (r *readyRecorder) Stop() { r.stop() }

// secretWatcher keeps the operator's Secrets of one namespace in memory,
// through a watch: sampling them every second costs the API server nothing,
// where listing 10,000 Secrets every second would load it more than the
// operator does. What it sees is what a consumer reading the Secret sees,
// give or take the watch's delay, which can only make a link look older.
type secretWatcher struct {
	cache cache.Cache
	ns    string
	stop  func()
}

func watchManagedSecrets(ctx context.Context, cfg *rest.Config, ns string) (*secretWatcher, error) {
	byObject := map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{managedByLabel: managedByValue})},
	}
	c, _, stop, err := startCache(ctx, cfg, ns, byObject, &corev1.Secret{})
	if err != nil {
		return nil, err
	}
	return &secretWatcher{cache: c, ns: ns, stop: stop}, nil
}

// ExpiresAt returns every managed Secret's expiresAt value.
func (w *secretWatcher) ExpiresAt(ctx context.Context) ([]string, error) {
	var secrets corev1.SecretList
	// Read-only, so no copies: with 10,000 Secrets a copy a second would
	// cost the harness more than the sampling itself.
	if err := w.cache.List(ctx, &secrets, client.InNamespace(w.ns), client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	values := make([]string, 0, len(secrets.Items))
	for _, s := range secrets.Items {
		values = append(values, string(s.Data["expiresAt"]))
	}
	return values, nil
}

// Stop ends the watch.
func (w *secretWatcher) Stop() { w.stop() }

// notReady counts the resources of ns that are not Ready now.
func (h *Harness) notReady(ctx context.Context, ns string) (int, error) {
	var list uredisv1alpha1.RedisBackupExportList
	if err := h.client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range list.Items {
		if !meta.IsStatusConditionTrue(e.Status.Conditions, uredisv1alpha1.ConditionReady) {
			n++
		}
	}
	return n, nil
}
