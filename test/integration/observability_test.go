package integration

import (
	"bytes"
	"crypto/sha1" // SHA-1: the provider's signature scheme, recomputed independently
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/schedule"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

// TestMetricsEventsAndNoSecretsAnywhere runs a scenario with a success, a
// rejected signature and provider errors, with logging at the most verbose
// level, then checks the metrics and events, and that no private key,
// request signature, link or link signature appears in the logs, events,
// status messages or metrics.
func TestMetricsEventsAndNoSecretsAnywhere(t *testing.T) {
	logs := &syncBuffer{}
	metricsAddr := freeLoopbackAddress(t)
	f := newFixture(t, withTokenAccount(), withOperatorOptions(func(o *operator.Options) {
		// Plain HTTP, to scrape without a token: the secure endpoint has
		// its own tests (metrics_auth_test.go).
		o.MetricsBindAddress, o.MetricsSecure = metricsAddr, false
		o.Logger = zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-128)))
		o.TransientBackoff = schedule.Backoff{Base: time.Second, Max: 2 * time.Second}
	}))
	const wrongKey = "wrong-private-key-do-not-log"
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.createCredentials("bad-credentials", publicKey, wrongKey)
	f.g.Expect(f.c.Create(f.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "token-credentials", Namespace: f.ns},
		StringData: map[string]string{"publicKey": tokenPublicKey, "privateKey": tokenPrivateKey, "securityToken": securityToken},
	})).To(Succeed())

	// Provider errors first, then success.
	f.sim.QueueFaults(
		simulator.Fault{Kind: simulator.FaultHTTPStatus, HTTPStatus: 503},
		simulator.Fault{Kind: simulator.FaultRetCode, RetCode: 150},
	)
	f.create(f.newExport("good"))
	f.eventuallyReady("good")
	f.create(f.newExport("bad", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.CredentialsRef.Name = "bad-credentials" }))
	f.create(f.newExport("tokened", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.CredentialsRef.Name = "token-credentials"
		e.Spec.BackupID = otherID
	}))
	f.eventuallyReady("tokened")
	f.eventuallyNotReady("bad", uredisv1alpha1.ReasonCredentialsRejected)

	// Metrics, produced from the cache at scrape time.
	series := fmt.Sprintf(`{name="good",namespace=%q}`, f.ns)
	f.g.Eventually(func() string { return scrape(t, metricsAddr) }).WithTimeout(10 * time.Second).Should(And(
		ContainSubstring(`uredis_backup_export_api_requests_total{action="DescribeURedisBackupURL",outcome="success"}`),
		ContainSubstring(`uredis_backup_export_api_requests_total{action="DescribeURedisBackupURL",outcome="retcode_171"}`),
		ContainSubstring(`uredis_backup_export_api_requests_total{action="DescribeURedisBackupURL",outcome="http_5xx"}`),
		ContainSubstring(`uredis_backup_export_api_request_duration_seconds_bucket{action="DescribeURedisBackupURL"`),
		ContainSubstring(`uredis_backup_export_link_expiration_timestamp_seconds`+series),
		ContainSubstring(`uredis_backup_export_next_refresh_timestamp_seconds`+series),
		ContainSubstring(fmt.Sprintf(`uredis_backup_export_ready_status{condition="True",name="good",namespace=%q} 1`, f.ns)),
		ContainSubstring(fmt.Sprintf(`uredis_backup_export_ready_status{condition="False",name="bad",namespace=%q} 1`, f.ns)),
		ContainSubstring(fmt.Sprintf(`uredis_backup_export_consecutive_failures{name="bad",namespace=%q} 1`, f.ns)),
	))

	// Events.
	f.g.Eventually(func() []string { return f.eventSummaries() }).WithTimeout(10 * time.Second).Should(ContainElements(
		"Normal/Refreshed/good", "Warning/RefreshFailed/good", "Warning/RefreshFailed/bad"))

	// No secret material anywhere.
	good, err := f.secret("good")
	f.g.Expect(err).NotTo(HaveOccurred())
	forbidden := f.secretMaterial(map[string]string{publicKey: privateKey, tokenPublicKey: tokenPrivateKey}, wrongKey, good)
	statusMessages := f.conditionMessages("good") + f.conditionMessages("bad")
	for _, place := range []struct{ name, text string }{
		{"logs", logs.String()},
		{"events", strings.Join(f.eventNotes(), "\n")},
		{"status messages", statusMessages},
		{"metrics", scrape(t, metricsAddr)},
	} {
		f.g.Expect(place.text).NotTo(BeEmpty(), "nothing captured from %s", place.name)
		for _, secret := range forbidden {
			f.g.Expect(place.text).NotTo(ContainSubstring(secret), "%s reveal secret material", place.name)
		}
	}
	f.g.Expect(logs.String()).To(ContainSubstring(`"retCode":171`), "logs carry the RetCode")

	// A deleted resource leaves no series behind.
	f.g.Expect(f.c.Delete(f.ctx, f.get("good"))).To(Succeed())
	f.g.Eventually(func() string { return scrape(t, metricsAddr) }).WithTimeout(10 * time.Second).ShouldNot(ContainSubstring(series))
}

// secretMaterial lists what must never be revealed: private keys, the
// signature of every request the simulator received, the links in the
// Secret and their storage signatures.
func (f *fixture) secretMaterial(keys map[string]string, wrongKey string, linkSecret interface{ GetName() string }) []string {
	forbidden := []string{privateKey, wrongKey, tokenPrivateKey, securityToken}
	for _, call := range f.sim.Calls() {
		params := maps.Clone(call.Params)
		if call.PublicKey == tokenPublicKey {
			params["SecurityToken"] = securityToken // signed, but kept out of the call log
		}
		for _, key := range []string{keys[call.PublicKey], wrongKey} {
			forbidden = append(forbidden, signForTest(params, key))
		}
	}
	secret, err := f.secret(linkSecret.GetName())
	f.g.Expect(err).NotTo(HaveOccurred())
	for _, key := range []string{"backupPath", "innerBackupPath"} {
		link := string(secret.Data[key])
		f.g.Expect(link).NotTo(BeEmpty())
		forbidden = append(forbidden, link, regexp.MustCompile(`Signature=([^&]+)`).FindStringSubmatch(link)[1])
	}
	return forbidden
}

// signForTest recomputes a request signature, written independently of
// both the client and the simulator.
func signForTest(params map[string]string, privateKey string) string {
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name + params[name])
	}
	sum := sha1.Sum([]byte(b.String() + privateKey)) // SHA-1: the provider's scheme
	return hex.EncodeToString(sum[:])
}

func (f *fixture) events() []eventsv1.Event {
	var list eventsv1.EventList
	f.g.Expect(f.c.List(f.ctx, &list, client.InNamespace(f.ns))).To(Succeed())
	return list.Items
}

func (f *fixture) eventSummaries() []string {
	var out []string
	for _, e := range f.events() {
		out = append(out, e.Type+"/"+e.Reason+"/"+e.Regarding.Name)
	}
	return out
}

func (f *fixture) eventNotes() []string {
	var out []string
	for _, e := range f.events() {
		out = append(out, e.Note)
	}
	return out
}

func (f *fixture) conditionMessages(name string) string {
	var b strings.Builder
	for _, c := range f.get(name).Status.Conditions {
		b.WriteString(c.Message + "\n")
	}
	return b.String()
}

// scrape gets the metrics of a manager serving them in plain HTTP
// (MetricsSecure off).
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics") // the loopback test endpoint
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// freeLoopbackAddress picks a free port for the manager's metrics server.
// It is taken below Linux's ephemeral range (32768 and up), from which the
// kernel hands out the ports of every other listener in the test run, so
// that nothing else grabs it between this check and the manager's bind.
func freeLoopbackAddress(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(10000))
		if l, err := net.Listen("tcp", addr); err == nil && l.Close() == nil {
			return addr
		}
	}
	t.Fatal("no free port for the metrics server")
	return ""
}

// syncBuffer is a bytes.Buffer safe for the manager's concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
