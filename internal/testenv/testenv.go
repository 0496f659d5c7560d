// Package testenv starts a real kube-apiserver and etcd (envtest) with the
// operator's CRD installed, for the integration tests, the demo and the
// benchmark. The binaries come from KUBEBUILDER_ASSETS, which `make` points
// at the ones hack/build-control-plane.sh builds from the Go module proxy.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/dezai/uredis-backup-operator/internal/operator"
)

// Env is a running control plane.
type Env struct {
	Config *rest.Config
	// Client talks to the API server directly, bypassing any cache.
	Client client.Client
	env    *envtest.Environment
}

// Start starts the control plane and installs the CRDs.
func Start() (*Env, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is not set: run through `make test` (or `make control-plane` and export KUBEBUILDER_ASSETS=bin/k8s/<version>)")
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		// Start may fail after launching the processes (a CRD the API
		// server refuses, say): stop them rather than leave them running.
		_ = env.Stop()
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	// Tests create hundreds of objects; the client-side default of 5 QPS
	// would make them measure the throttle instead of the operator.
	cfg.QPS, cfg.Burst = 500, 1000
	c, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: c, env: env}, nil
}

// Stop stops the control plane.
func (e *Env) Stop() error { return e.env.Stop() }

// RepoRoot finds the repository's root (the directory holding config/crd)
// above the working directory, as tests and the benchmark run from inside
// the tree.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "config", "crd", "bases")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (config/crd/bases) above the working directory")
		}
		dir = parent
	}
}

// Run is a TestMain body: it starts the control plane, hands it to use (to
// keep it, install more CRDs...), runs the tests and stops the control plane
// again, returning the exit code for os.Exit.
func Run(tests interface{ Run() int }, use func(*Env) error) int {
	env, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	if err := use(env); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return tests.Run()
}

// TB is the part of testing.TB StartManager uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Cleanup(func())
}

// StartManager runs mgr until ctx ends, or the test does, and returns a
// function that stops it and waits until it has stopped (also run at
// cleanup; calling it twice is fine). A manager that stops with an error
// fails the test.
func StartManager(t TB, ctx context.Context, mgr manager.Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager stopped: %v", err)
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// ServiceAccountToken creates the ServiceAccount namespace/name and returns
// a token of it from the TokenRequest API, valid for ten minutes: a
// scraper's credential for the metrics endpoint.
func ServiceAccountToken(ctx context.Context, c client.Client, namespace, name string) (string, error) {
	account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := c.Create(ctx, account); err != nil {
		return "", fmt.Errorf("creating the ServiceAccount %s/%s: %w", namespace, name, err)
	}
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}
	if err := c.SubResource("token").Create(ctx, account, request); err != nil {
		return "", fmt.Errorf("requesting a token of %s/%s: %w", namespace, name, err)
	}
	if request.Status.Token == "" {
		return "", fmt.Errorf("the TokenRequest for %s/%s returned no token", namespace, name)
	}
	return request.Status.Token, nil
}
