package integration

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/schedule"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// createMany creates n resources named <prefix>-<i>, each for its own
// backup <prefix>-<i>, and waits until all are Ready.
func (f *fixture) createMany(prefix string, n int, mutate ...func(*uredisv1alpha1.RedisBackupExport)) []string {
	f.t.Helper()
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("%s-%03d", prefix, i)
		f.create(f.newExport(names[i], append([]func(*uredisv1alpha1.RedisBackupExport){func(e *uredisv1alpha1.RedisBackupExport) {
			e.Spec.BackupID = names[i]
		}}, mutate...)...))
	}
	return names
}

// sibling is another namespace of the fixture's test, served by the same
// manager and simulator (the manager must watch it: Options.WatchNamespaces).
func (f *fixture) sibling(ns string) *fixture {
	f.t.Helper()
	f.g.Expect(f.c.Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	other := *f
	other.ns = ns
	return &other
}

// waitAllReady waits until every named resource is Ready.
func (f *fixture) waitAllReady(names []string, timeout time.Duration) {
	f.t.Helper()
	f.g.Eventually(func() []string {
		var notReady []string
		for _, name := range names {
			if c := f.ready(name); c == nil || c.Status != metav1.ConditionTrue {
				notReady = append(notReady, name)
			}
		}
		return notReady
	}).WithTimeout(timeout).WithPolling(250 * time.Millisecond).Should(BeEmpty())
}

// expiredSecrets lists the managed Secrets that hold a link past its expiry;
// only those of the named resources when names are given.
func (f *fixture) expiredSecrets(names ...string) []string {
	var secrets corev1.SecretList
	f.g.Expect(f.c.List(f.ctx, &secrets, client.InNamespace(f.ns), client.MatchingLabels{"app.kubernetes.io/managed-by": "uredis-backup-operator"})).To(Succeed())
	var expired []string
	now := time.Now()
	for _, s := range secrets.Items {
		if len(names) > 0 && !slices.Contains(names, s.Name) {
			continue
		}
		expiresAt, err := time.Parse(time.RFC3339, string(s.Data["expiresAt"]))
		if err != nil || !expiresAt.After(now) {
			expired = append(expired, fmt.Sprintf("%s (expiresAt %q)", s.Name, s.Data["expiresAt"]))
		}
	}
	return expired
}

// watchForExpiredLinks samples the Secrets for d and fails on any that
// holds an expired link.
func (f *fixture) watchForExpiredLinks(d time.Duration) {
	f.t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		f.g.Expect(f.expiredSecrets()).To(BeEmpty(), "a Secret held an expired link")
	}
}

func shortLinks(o *operator.Options) {
	o.Policy.MinMargin, o.Policy.MinUsefulLifetime = 3*time.Second, 10*time.Second
}

func TestRestartWithFreshLinksMakesNoAPICalls(t *testing.T) {
	const n, lifetime = 50, 60 * time.Second
	f := newFixture(t, withLinkLifetime(lifetime), withBackups("restart", n), withOperatorOptions(shortLinks))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	names := f.createMany("restart", n)
	f.waitAllReady(names, 60*time.Second)
	firstSync := f.sim.CallCount("")
	f.g.Expect(firstSync).To(Equal(n), "one call per resource on first sync")

	f.restartManager()
	f.sim.ResetCalls()
	// The links are fresh for at least another ~25 seconds: a restarted
	// operator rebuilds its schedule from status and calls nothing.
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(10 * time.Second).WithPolling(time.Second).Should(BeZero())

	// And it still refreshes every resource before its link expires.
	f.watchForExpiredLinks(lifetime)
	f.g.Expect(f.sim.CallCount("")).To(BeNumerically(">=", n), "every resource refreshed after the restart")
}

func TestTransientFaultsConvergeWithoutExpiredLinks(t *testing.T) {
	const n, lifetime = 20, 40 * time.Second
	f := newFixture(t, withLinkLifetime(lifetime), withBackups("flaky", n), withSimulator(func(c *simulator.Config) { c.Seed = 42 }),
		withOperatorOptions(func(o *operator.Options) {
			shortLinks(o)
			o.TransientBackoff = schedule.Backoff{Base: time.Second, Max: 2 * time.Second}
		}))
	f.sim.SetFaultRate(0.5,
		simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 503},
		simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 502},
		simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 150},
		simulator.Fault{Kind: simulator.FaultDropConnection},
		simulator.Fault{Kind: simulator.FaultMalformedJSON},
		simulator.Fault{Kind: simulator.FaultExpiredLink},
		simulator.Fault{Kind: simulator.FaultLatency, Latency: 300 * time.Millisecond},
	)
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	names := f.createMany("flaky", n, func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.RefreshBefore = &metav1.Duration{Duration: lifetime / 2}
	})
	f.waitAllReady(names, 90*time.Second)

	// Over more than two link lifetimes, no Secret may hold an expired link
	// although half of all calls fail.
	f.watchForExpiredLinks(2*lifetime + 5*time.Second)

	failures := failedCalls(f.sim)
	successes := f.sim.CallCount("") - failures
	t.Logf("%d successful calls, %d failed", successes, failures)
	// With half the calls failing, about one failure per success is
	// expected; a retry loop that ignores backoff makes far more.
	f.g.Expect(failures).To(BeNumerically("<=", 3*successes+n), "failed calls stay within the backoff's bound")
	f.g.Expect(successes).To(BeNumerically(">=", 3*n), "each resource refreshed at least twice after its first link")
}

func TestPermanentErrorKeepsTheValidSecretAndWaitsForTheUser(t *testing.T) {
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) { o.Policy.ForcedRefreshMinInterval = 0 }))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("perm"))
	f.eventuallyReady("perm")
	before, err := f.secret("perm")
	f.g.Expect(err).NotTo(HaveOccurred())

	f.sim.SetFaultRate(1, simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 20004, Message: "insufficient permission"})
	f.sim.ResetCalls()
	f.annotate("perm", uredisv1alpha1.AnnotationRefreshRequestedAt, "force-1")

	cond := f.eventuallyNotReady("perm", uredisv1alpha1.ReasonProviderRejected)
	f.g.Expect(cond.Message).To(And(ContainSubstring("RetCode 20004"), ContainSubstring("insufficient permission")))
	export := f.get("perm")
	f.g.Expect(export.Status.FailureCount).To(Equal(int32(1)))
	f.g.Expect(export.Status.LastFailureTime).NotTo(BeNil())
	stalled := findCondition(export, uredisv1alpha1.ConditionStalled)
	f.g.Expect(stalled).NotTo(BeNil(), "kstatus readers see Stalled")

	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(60*time.Second).WithPolling(2*time.Second).
		Should(BeNumerically("<=", 3), "a permanent error is retried only slowly")
	after, err := f.secret("perm")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(after.ResourceVersion).To(Equal(before.ResourceVersion), "the valid Secret is left exactly as it was")

	// Permissions fixed and the credentials Secret rotated: recovery at once.
	f.sim.ClearFaults()
	creds, err := f.secret("cloud-credentials")
	f.g.Expect(err).NotTo(HaveOccurred())
	creds.Annotations = map[string]string{"rotated": "yes"}
	f.g.Expect(f.c.Update(f.ctx, creds)).To(Succeed())
	f.g.Eventually(func() string { return conditionSummary(f.ready("perm")) }).WithTimeout(10 * time.Second).Should(HavePrefix("True/"))
	f.g.Expect(findCondition(f.get("perm"), uredisv1alpha1.ConditionStalled)).To(BeNil())
}

func TestSharedRateLimitSlowsEveryoneAndThrottlingPausesTheAccount(t *testing.T) {
	const n, qps, burst = 200, 20, 5
	f := newFixture(t, withBackups("rate", n), withOperatorOptions(func(o *operator.Options) {
		o.APIQPS, o.APIBurst, o.MaxConcurrentReconciles = qps, burst, 16
	}))
	// The first answer says "slow down".
	f.sim.QueueFaults(simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 153})
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	names := f.createMany("rate", n)
	f.waitAllReady(names, 3*time.Minute)

	calls := f.sim.Calls()
	sort.Slice(calls, func(i, j int) bool { return calls[i].Time.Before(calls[j].Time) })
	f.g.Expect(calls[0].RetCode).To(Equal(153))
	// Calls already sent when the throttled answer came back still arrive;
	// after them, no worker calls for about a second: all 200 resources use
	// the throttled credentials. Without the pause the token bucket alone
	// would space calls 50ms apart.
	f.g.Expect(longestGap(calls, calls[0].Time.Add(3*time.Second))).To(BeNumerically(">=", 800*time.Millisecond),
		"a throttled answer must pause every worker calling with those credentials, not just the one that got it")
	// The shared token bucket holds across all 16 workers and 200 resources.
	f.g.Expect(maxInAnySecond(calls)).To(BeNumerically("<=", qps+burst+1))
	f.g.Expect(len(calls)).To(Equal(n + 1))
}

// A throttled answer pauses only the credentials it was given for: while
// one account waits out its pause, another account's calls go on at the
// shared rate.
func TestThrottledAccountDoesNotPauseOtherAccounts(t *testing.T) {
	const throttledKey, otherKey = publicKey, "second-public-key"
	// A burst of 1 spaces every call 50ms apart, so the throttled answer is
	// back before the next call: all of the throttled account's other calls
	// meet its pause. A worker waits out its call's pause; the two accounts
	// are two tenants, in two namespaces, and one namespace holds at most
	// half the workers on the budget (TestOneNamespaceCannotStarveAnother),
	// so the other tenant finds workers: the pause itself is per key.
	const throttledN, otherN, qps = 4, 40, 20
	otherNS := namespaceFor(t.Name() + "-other")
	f := newFixture(t, withBackups("throttled", throttledN), withBackups("other", otherN),
		withSimulator(func(c *simulator.Config) {
			c.Accounts = append(c.Accounts, simulator.Account{PublicKey: otherKey, PrivateKey: "second-private-key"})
		}),
		withOperatorOptions(func(o *operator.Options) {
			o.APIQPS, o.APIBurst, o.MaxConcurrentReconciles = qps, 1, 8
			o.WatchNamespaces = append(o.WatchNamespaces, otherNS)
		}))
	tenant := f.sibling(otherNS)
	// The throttled account's first call is told to slow down.
	f.sim.QueueFaults(simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 153, PublicKey: throttledKey})

	// All resources wait for their credentials, so that both accounts'
	// calls start together when the Secrets appear.
	throttled := f.createMany("throttled", throttledN, func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.CredentialsRef.Name = "throttled-credentials" })
	other := tenant.createMany("other", otherN, func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.CredentialsRef.Name = "other-credentials" })
	for _, fx := range []struct {
		f     *fixture
		names []string
	}{{f, throttled}, {tenant, other}} {
		fx.f.g.Eventually(func() []string {
			var waiting []string
			for _, name := range fx.names {
				if c := fx.f.ready(name); c == nil || c.Reason != uredisv1alpha1.ReasonCredentialsNotFound {
					waiting = append(waiting, name)
				}
			}
			return waiting
		}).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(BeEmpty())
	}
	f.g.Expect(f.sim.CallCount("")).To(BeZero())
	f.createCredentials("throttled-credentials", throttledKey, privateKey)
	tenant.createCredentials("other-credentials", otherKey, "second-private-key")
	f.waitAllReady(throttled, 90*time.Second)
	tenant.waitAllReady(other, 90*time.Second)

	calls := f.sim.Calls()
	sort.Slice(calls, func(i, j int) bool { return calls[i].Time.Before(calls[j].Time) })
	byKey := map[string][]simulator.Call{}
	for _, c := range calls {
		byKey[c.PublicKey] = append(byKey[c.PublicKey], c)
	}
	first := byKey[throttledKey][0]
	f.g.Expect(first.RetCode).To(Equal(153), "the throttled account's first call")
	pauseEnds := first.Time.Add(800 * time.Millisecond)

	// The throttled account is paused: once the answer is back (well within
	// 200ms on loopback), none of its calls until the pause ends.
	f.g.Expect(byKey[throttledKey]).To(HaveLen(throttledN+1), "one call per resource, plus the throttled one")
	for _, c := range byKey[throttledKey][1:] {
		f.g.Expect(c.Time.After(first.Time.Add(200*time.Millisecond)) && c.Time.Before(pauseEnds)).To(BeFalse(),
			"the throttled account called %s after its throttled answer, within its pause", c.Time.Sub(first.Time))
	}

	// The other account is not: during that pause its calls go on at the
	// shared rate (20 a second, so about 16 calls in 800ms).
	var during []simulator.Call
	for _, c := range byKey[otherKey] {
		if c.Time.After(first.Time) && c.Time.Before(pauseEnds) {
			during = append(during, c)
		}
	}
	t.Logf("%d calls of the other account during the throttled account's pause", len(during))
	f.g.Expect(len(during)).To(BeNumerically(">=", 5), "the other account's calls must go on during the pause")
	f.g.Expect(longestGap(byKey[otherKey], pauseEnds)).To(BeNumerically("<", 500*time.Millisecond),
		"a throttled answer for one account must not pause calls for another")
	f.g.Expect(byKey[otherKey]).To(HaveLen(otherN))
	for _, c := range byKey[otherKey] {
		f.g.Expect(c.RetCode).To(BeZero())
	}
}

// longestGap is the longest pause between consecutive calls before until.
func longestGap(calls []simulator.Call, until time.Time) time.Duration {
	var longest time.Duration
	for i := 1; i < len(calls) && calls[i-1].Time.Before(until); i++ {
		longest = max(longest, calls[i].Time.Sub(calls[i-1].Time))
	}
	return longest
}

// maxInAnySecond is the largest number of calls inside any one-second window.
func maxInAnySecond(calls []simulator.Call) int {
	most := 0
	for i, start := 0, 0; i < len(calls); i++ {
		for calls[i].Time.Sub(calls[start].Time) >= time.Second {
			start++
		}
		most = max(most, i-start+1)
	}
	return most
}

func TestResourcesShareCallsOnlyWithinOneAccount(t *testing.T) {
	f := newFixture(t, withSimulator(func(c *simulator.Config) {
		c.Accounts = append(c.Accounts, simulator.Account{PublicKey: "second-public-key", PrivateKey: "second-private-key"})
	}))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.createCredentials("second-credentials", "second-public-key", "second-private-key")
	f.create(f.newExport("first"))
	f.create(f.newExport("second"))
	f.eventuallyReady("first")
	f.eventuallyReady("second")
	f.g.Expect(f.sim.CallCount("")).To(Equal(1), "two resources on the same backup and account share one call")

	f.create(f.newExport("other-account", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.CredentialsRef.Name = "second-credentials" }))
	f.eventuallyReady("other-account")
	f.g.Expect(f.sim.CallCount("")).To(Equal(2), "answers are never shared across accounts")
	publicKeys := map[string]bool{}
	for _, call := range f.sim.Calls() {
		publicKeys[call.PublicKey] = true
	}
	f.g.Expect(publicKeys).To(HaveLen(2))
}

// TestForceRefreshAnnotationIsRationed: each new value of the annotation
// is acknowledged once; it refreshes only if the last attempt is at least
// --forced-refresh-min-interval old, and a tight loop of new values costs
// at most one call per interval.
func TestForceRefreshAnnotationIsRationed(t *testing.T) {
	const interval = 4 * time.Second
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) { o.Policy.ForcedRefreshMinInterval = interval }))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("force"))
	f.eventuallyReady("force")
	f.g.Expect(f.sim.CallCount("")).To(Equal(1))

	// Right after the first link: acknowledged, declined, said so.
	f.annotate("force", uredisv1alpha1.AnnotationRefreshRequestedAt, "too-soon")
	f.g.Eventually(func() string { return f.get("force").Status.LastHandledRefreshRequest }).WithTimeout(10 * time.Second).Should(Equal("too-soon"))
	f.g.Eventually(f.eventSummaries).Should(ContainElement(ContainSubstring("RefreshRequestDeclined")))
	f.g.Expect(f.sim.CallCount("")).To(Equal(1), "declined, not executed")

	// Once the interval has passed: one call per new value.
	time.Sleep(interval)
	for i, value := range []string{"2026-11-27T10:00:00Z"} {
		f.annotate("force", uredisv1alpha1.AnnotationRefreshRequestedAt, value)
		f.g.Eventually(func() string { return f.get("force").Status.LastHandledRefreshRequest }).WithTimeout(10 * time.Second).Should(Equal(value))
		f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(time.Second).Should(Equal(2+i), "exactly one extra call per new value")
	}
	// Other annotation changes do not refresh.
	f.annotate("force", "unrelated", "x")
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(2 * time.Second).Should(Equal(2))

	// A new value every 100 ms for two intervals: at most one call per
	// interval, and the last value is acknowledged.
	start := time.Now()
	var last string
	for i := 0; time.Since(start) < 2*interval; i++ {
		last = fmt.Sprintf("loop-%d", i)
		f.annotate("force", uredisv1alpha1.AnnotationRefreshRequestedAt, last)
		time.Sleep(100 * time.Millisecond)
	}
	f.g.Eventually(func() string { return f.get("force").Status.LastHandledRefreshRequest }).WithTimeout(10 * time.Second).Should(Equal(last))
	f.g.Expect(f.sim.CallCount("")).To(BeNumerically("<=", 2+3), "a tight loop of requests makes at most one call per interval")
}

func (f *fixture) annotate(name, key, value string) {
	f.t.Helper()
	export := f.get(name)
	patch := client.MergeFrom(export.DeepCopy())
	if export.Annotations == nil {
		export.Annotations = map[string]string{}
	}
	export.Annotations[key] = value
	f.g.Expect(f.c.Patch(f.ctx, export, patch)).To(Succeed())
}

func findCondition(export *uredisv1alpha1.RedisBackupExport, conditionType string) *metav1.Condition {
	for i := range export.Status.Conditions {
		if export.Status.Conditions[i].Type == conditionType {
			return &export.Status.Conditions[i]
		}
	}
	return nil
}
