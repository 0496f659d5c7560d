package controllers

import (
	"context"
	"errors"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SecretWatches keeps a metadata-only watch on the Secrets of each
// namespace that holds RedisBackupExports (and of the operator's own, for its
// credentials), started the first time a resource there is reconciled.
//
// The watches let a credentials Secret that appears or changes, or a foreign
// Secret that frees a target name, wake the resources concerned at once.
// Watching the Secrets of every namespace instead would make the operator's
// memory grow with every Secret in the cluster; per namespace, Secrets in
// namespaces without RedisBackupExports cost nothing, and those that are
// watched cost only their name, namespace, UID and resourceVersion.
type SecretWatches struct {
	// NewCache returns a metadata cache limited to one namespace.
	NewCache func(namespace string) (cache.Cache, error)

	// watch registers a cache's Secrets with the controller; set up by
	// SetupWithManager.
	watch func(cache.Cache) error

	mu      sync.Mutex
	ctx     context.Context
	started chan struct{}
	caches  map[string]cache.Cache
}

// NewSecretWatches returns SecretWatches that make caches with newCache.
func NewSecretWatches(newCache func(namespace string) (cache.Cache, error)) *SecretWatches {
	return &SecretWatches{NewCache: newCache, started: make(chan struct{}), caches: map[string]cache.Cache{}}
}

// Start keeps the manager's context for the caches it will start; it is a
// manager Runnable.
func (w *SecretWatches) Start(ctx context.Context) error {
	w.mu.Lock()
	w.ctx = ctx
	close(w.started)
	w.mu.Unlock()
	<-ctx.Done()
	return nil
}

// NeedLeaderElection: the watches serve the controller wherever it runs.
func (w *SecretWatches) NeedLeaderElection() bool { return false }

// Reader returns the Secret metadata of namespace, starting its watch on
// first use.
func (w *SecretWatches) Reader(ctx context.Context, namespace string) (client.Reader, error) {
	select {
	case <-w.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.caches[namespace]; ok {
		return c, nil
	}
	if w.watch == nil {
		return nil, errors.New("secret watches are not connected to a controller")
	}
	c, err := w.NewCache(namespace)
	if err != nil {
		return nil, err
	}
	go func() { _ = c.Start(w.ctx) }()
	// Wait until the namespace's Secrets are listed: a read before that
	// would miss a credentials Secret that exists, and its appearance a
	// moment later would look like a change. (Only the first reconcile in a
	// namespace waits, for one list.)
	if _, err := c.GetInformer(ctx, secretMetadataObject()); err != nil {
		return nil, err
	}
	if !c.WaitForCacheSync(ctx) {
		return nil, errors.New("the Secret metadata of namespace " + namespace + " did not sync")
	}
	if err := w.watch(c); err != nil {
		return nil, err
	}
	w.caches[namespace] = c
	return c, nil
}
