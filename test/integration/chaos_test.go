package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/schedule"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// TestChaosLosesNothing: 200 resources while the simulator fails 30% of
// calls in every way it can, the API server answers 10% of the operator's
// writes with a conflict, the manager is restarted three times and some
// resources are deleted. At the end every resource is Ready with a valid
// link in its Secret, no Secret ever held malformed data, deleted resources
// got no Secret back, and the calls stayed within the stated bound.
func TestChaosLosesNothing(t *testing.T) {
	const (
		n        = 200
		deleted  = 20
		lifetime = 30 * time.Second
		runtime  = 80 * time.Second
	)
	conflicts := &counter{}
	f := newFixture(t, withLinkLifetime(lifetime), withBackups("chaos", n), withSimulator(func(c *simulator.Config) { c.Seed = 7 }),
		withOperatorOptions(func(o *operator.Options) {
			shortLinks(o)
			o.APIQPS, o.APIBurst, o.MaxConcurrentReconciles = 0, 1, 8
			o.TransientBackoff = schedule.Backoff{Base: time.Second, Max: 4 * time.Second}
			o.PermanentBackoff = schedule.Backoff{Base: 2 * time.Second, Max: 4 * time.Second}
			o.WrapClient = func(c client.Client) client.Client {
				return &conflictingClient{Client: c, rate: 0.1, injected: conflicts}
			}
		}))
	f.sim.SetFaultRate(0.3,
		simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 500},
		simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 503},
		simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 429},
		simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 150},
		simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 153},
		simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 171},
		simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 20003},
		simulator.Fault{Kind: simulator.FaultMalformedJSON},
		simulator.Fault{Kind: simulator.FaultDropConnection},
		simulator.Fault{Kind: simulator.FaultLatency, Latency: 500 * time.Millisecond},
		simulator.Fault{Kind: simulator.FaultExpiredLink},
		simulator.Fault{Kind: simulator.FaultEmptyLink},
		simulator.Fault{Kind: simulator.FaultLinkWithoutExpires},
		simulator.Fault{Kind: simulator.FaultOnlyBackupURL},
	)
	observer := f.watchSecrets()
	start := time.Now()
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	names := f.createMany("chaos", n)

	for round := 1; time.Since(start) < runtime; round++ {
		time.Sleep(runtime / 4)
		if round == 2 {
			for _, name := range names[:deleted] {
				export := f.get(name)
				observer.markDeleted(export.UID)
				f.g.Expect(f.c.Delete(f.ctx, export)).To(Succeed())
			}
		}
		if round <= 3 {
			t.Logf("restart %d after %v: %d calls so far", round, time.Since(start).Round(time.Second), f.sim.CallCount(""))
			f.restartManager()
		}
	}

	// The chaos ends. While it lasted, a resource could meet several
	// failures in a row ending in a permanent one (RetCode 20003 or 171 are
	// among the faults) and rightly see its link expire; from here every
	// resource must converge.
	chaos := time.Since(start)
	f.sim.ClearFaults()
	conflicts.stopInjecting()
	live := names[deleted:]
	f.waitAllReady(live, 2*time.Minute)
	f.g.Eventually(func() []string { return f.secretsNotMatchingStatus(live) }).WithTimeout(time.Minute).Should(BeEmpty())
	f.g.Expect(f.expiredSecrets(live...)).To(BeEmpty())
	observer.stop()
	f.g.Expect(observer.violations()).To(BeEmpty(), "a Secret was observed holding malformed data, or written after its resource was deleted")
	f.g.Expect(observer.events()).To(BeNumerically(">", n), "the watch saw the Secrets being written")

	// The bound: each live resource needs a link per refresh window
	// (lifetime minus a third, minus jitter: at least 18s), plus its first.
	// With 30% of calls failing, 1.43 calls per link are expected; restarts
	// with fresh links cost nothing. Allow twice that, plus one extra call
	// per injected write conflict (whose fetched link could not be written).
	elapsed := time.Since(start)
	linksNeeded := float64(n) * (elapsed.Seconds()/18 + 1)
	injected := conflicts.get()
	bound := int(2*1.43*linksNeeded) + injected
	calls := f.sim.CallCount("")
	t.Logf("%d API calls in %v (%v of chaos) for %d resources (bound %d, %d write conflicts injected)",
		calls, elapsed.Round(time.Second), chaos.Round(time.Second), n, bound, injected)
	// Each resource writes a Secret and a status at least once: with 10% of
	// writes refused, hundreds of conflicts must have been injected.
	f.g.Expect(injected).To(BeNumerically(">=", n/10), "the API server conflicts were injected into the operator's writes")
	f.g.Expect(calls).To(BeNumerically("<=", bound))
}

// secretsNotMatchingStatus lists resources whose Secret does not hold the
// link their status names.
func (f *fixture) secretsNotMatchingStatus(names []string) []string {
	var mismatched []string
	for _, name := range names {
		export := f.get(name)
		secret, err := f.secret(name)
		if err != nil || string(secret.Data["backupPath"]) != export.Status.BackupPath ||
			string(secret.Data["expiresAt"]) != export.Status.ExpiresAt.UTC().Format(time.RFC3339) {
			mismatched = append(mismatched, name)
		}
	}
	return mismatched
}

// secretObserver watches every Secret write in the namespace and checks
// each version it sees.
type secretObserver struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	deletedAt   map[types.UID]time.Time
	problems    []string
	seenWritten int
}

func (f *fixture) watchSecrets() *secretObserver {
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Client.Scheme()})
	f.g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(f.ctx)
	w, err := wc.Watch(ctx, &corev1.SecretList{}, client.InNamespace(f.ns), client.MatchingLabels{"app.kubernetes.io/managed-by": "uredis-backup-operator"})
	f.g.Expect(err).NotTo(HaveOccurred())
	o := &secretObserver{cancel: cancel, done: make(chan struct{}), deletedAt: map[types.UID]time.Time{}}
	go func() {
		defer close(o.done)
		defer w.Stop()
		for event := range w.ResultChan() {
			if secret, ok := event.Object.(*corev1.Secret); ok && (event.Type == watch.Added || event.Type == watch.Modified) {
				o.check(secret)
			}
		}
	}()
	f.t.Cleanup(o.stop)
	return o
}

func (o *secretObserver) stop() { o.cancel(); <-o.done }

func (o *secretObserver) markDeleted(uid types.UID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deletedAt[uid] = time.Now()
}

// check validates one observed version of a Secret.
func (o *secretObserver) check(secret *corev1.Secret) {
	problem := malformedLinkData(secret.Data)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seenWritten++
	if problem != "" {
		o.problems = append(o.problems, secret.Name+": "+problem)
	}
	for _, ref := range secret.OwnerReferences {
		// A write that starts after the deletion (a second of slack for the
		// watch's delivery) would resurrect a deleted resource's Secret.
		if at, ok := o.deletedAt[ref.UID]; ok && time.Since(at) > time.Second && secret.CreationTimestamp.After(at) {
			o.problems = append(o.problems, secret.Name+": created after its resource was deleted")
		}
	}
}

func (o *secretObserver) violations() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.problems
}

func (o *secretObserver) events() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seenWritten
}

// malformedLinkData describes what is wrong with a Secret's contract data,
// or returns "".
func malformedLinkData(data map[string][]byte) string {
	link, err := url.Parse(string(data["backupPath"]))
	if err != nil || (link.Scheme != "http" && link.Scheme != "https") || link.Host == "" {
		return "backupPath is not an absolute http(s) URL"
	}
	expiresAt, err := time.Parse(time.RFC3339, string(data["expiresAt"]))
	if err != nil {
		return "expiresAt is not RFC 3339"
	}
	if raw := link.Query().Get("Expires"); raw != "" {
		if seconds, err := strconv.ParseInt(raw, 10, 64); err != nil || seconds != expiresAt.Unix() {
			return "expiresAt does not match the link's Expires"
		}
	}
	if len(data["backupId"]) == 0 || len(data["region"]) == 0 {
		return "backupId or region is empty"
	}
	return ""
}

// conflictingClient answers a share of the operator's writes with a
// conflict, as a busy API server with other writers does.
type conflictingClient struct {
	client.Client
	rate     float64
	injected *counter
}

// counter counts the conflicts injected, until told to stop injecting.
type counter struct {
	mu      sync.Mutex
	n       int
	stopped bool
}

// inject counts one more conflict, unless injecting has stopped.
func (c *counter) inject() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	c.n++
	return true
}

func (c *counter) get() int       { c.mu.Lock(); defer c.mu.Unlock(); return c.n }
func (c *counter) stopInjecting() { c.mu.Lock(); c.stopped = true; c.mu.Unlock() }

func (c *conflictingClient) conflict(obj client.Object) error {
	if rand.Float64() >= c.rate || !c.injected.inject() {
		return nil
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	return apierrors.NewConflict(schema.GroupResource{Group: gvk.Group, Resource: gvk.Kind}, obj.GetName(), fmt.Errorf("injected by the chaos test"))
}

func (c *conflictingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if err := c.conflict(obj); err != nil {
		return err
	}
	return c.Client.Create(ctx, obj, opts...)
}

func (c *conflictingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if err := c.conflict(obj); err != nil {
		return err
	}
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *conflictingClient) Status() client.SubResourceWriter {
	return &conflictingStatusWriter{SubResourceWriter: c.Client.Status(), parent: c}
}

type conflictingStatusWriter struct {
	client.SubResourceWriter
	parent *conflictingClient
}

func (w *conflictingStatusWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if err := w.parent.conflict(obj); err != nil {
		return err
	}
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}
