package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/dezai/uredis-backup-operator/internal/metricsauth"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/testenv"
)

// metricsReaderRoleFile is the ClusterRole config/rbac ships for scrapers;
// the tests bind that very file's rules.
const metricsReaderRoleFile = "../../config/rbac/metrics_reader_role.yaml"

// TestMetricsRequireAuthenticationAndAuthorization runs the manager with
// its default metrics options (HTTPS, --metrics-secure), a certificate from
// --metrics-cert-dir that the client verifies, and the real API server
// behind the authentication and authorization: plain HTTP (400), no token
// (401) and a token the API server does not know (401) are refused; a
// ServiceAccount's token without the role is forbidden (403), until the
// role is bound to it; a ServiceAccount bound to config/rbac's
// metrics-reader ClusterRole gets the metrics, the per-resource series
// included. No refusal shows a series, and no token reaches the logs, at
// the most verbose level.
func TestMetricsRequireAuthenticationAndAuthorization(t *testing.T) {
	logs := &syncBuffer{}
	metricsAddr := freeLoopbackAddress(t)
	certDir, trusted := metricsServingCertificate(t)
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) {
		// Secure is the default: only the address and certificate change.
		o.MetricsBindAddress = metricsAddr
		o.MetricsCertDir = certDir
		o.Logger = zap.New(zap.WriteTo(logs), zap.Level(zapcore.Level(-128)))
	}))
	f.g.Expect(f.opts.MetricsSecure).To(BeTrue(), "the metrics must be secure by default")
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.create(f.newExport("guarded"))
	f.eventuallyReady("guarded")
	series := fmt.Sprintf(`uredis_backup_export_ready_status{condition="True",name="guarded",namespace=%q} 1`, f.ns)

	scraper := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: trusted, MinVersion: tls.VersionTLS12}},
	}
	url := "https://" + metricsAddr + "/metrics"
	// The server is up once an anonymous scrape gets an answer.
	f.g.Eventually(func() error { _, _, err := scrapeAs(scraper, url, ""); return err }).
		WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())

	refused := func(body, what string) {
		f.t.Helper()
		f.g.Expect(body).NotTo(ContainSubstring("uredis_backup_export_"), "%s: the refusal holds metrics", what)
		f.g.Expect(body).NotTo(ContainSubstring("guarded"), "%s: the refusal names a resource", what)
	}

	// Plain HTTP on the HTTPS port: Go's TLS server answers 400.
	status, body, err := scrapeAs(http.DefaultClient, "http://"+metricsAddr+"/metrics", "")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(status).To(Equal(http.StatusBadRequest), "plain HTTP: %s", body)
	refused(body, "plain HTTP")

	status, body, err = scrapeAs(scraper, url, "")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(status).To(Equal(http.StatusUnauthorized), "no token: %s", body)
	refused(body, "no token")

	// A token the API server does not authenticate.
	const unknown = "not-a-token-the-api-server-issued"
	status, body, err = scrapeAs(scraper, url, unknown)
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(status).To(Equal(http.StatusUnauthorized), "an unknown token: %s", body)
	refused(body, "an unknown token")

	// A ServiceAccount the API server knows, without the role.
	nobody := f.serviceAccountToken("metrics-nobody")
	status, body, err = scrapeAs(scraper, url, nobody)
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(status).To(Equal(http.StatusForbidden), "a token without metrics-reader: %s", body)
	f.g.Expect(body).To(ContainSubstring("system:serviceaccount:" + f.ns + ":metrics-nobody"))
	refused(body, "a token without metrics-reader")

	// A ServiceAccount bound to the shipped metrics-reader ClusterRole.
	reader := f.serviceAccountToken("metrics-scraper")
	f.bindMetricsReader("metrics-scraper", "scraper")
	status, body, err = scrapeAs(scraper, url, reader)
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(status).To(Equal(http.StatusOK), "a token with metrics-reader: %s", body)
	f.g.Expect(body).To(And(
		ContainSubstring("controller_runtime_reconcile_total"),
		ContainSubstring(series),
	), "the registry's series and the per-resource ones")

	// Granting the role to the refused account takes effect once its
	// refusal leaves the cache, without a restart.
	f.bindMetricsReader("metrics-nobody", "nobody")
	f.g.Eventually(func() (int, error) { status, _, err := scrapeAs(scraper, url, nobody); return status, err }).
		WithTimeout(metricsauth.DeniedTTL+10*time.Second).WithPolling(time.Second).Should(Equal(http.StatusOK), "the role granted to metrics-nobody")

	logged := logs.String()
	f.g.Expect(logged).To(ContainSubstring("metrics request refused"), "the refusals are logged (at V(1))")
	for name, token := range map[string]string{"unknown": unknown, "nobody": nobody, "reader": reader} {
		f.g.Expect(logged).NotTo(ContainSubstring(token), "the %s token is in the manager's logs", name)
	}
}

// TestMetricsSelfSignedByDefault: without --metrics-cert-dir, the manager
// serves its metrics over TLS with a certificate it made at startup (for
// localhost and 127.0.0.1, signed by a CA it made too, which nobody else
// trusts), over HTTP/1.1 only, and still refuses an anonymous scrape.
func TestMetricsSelfSignedByDefault(t *testing.T) {
	metricsAddr := freeLoopbackAddress(t)
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) { o.MetricsBindAddress = metricsAddr }))

	// Only to look at the certificate; nothing is sent.
	inspect := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}} // inspecting the self-signed certificate
	var state tls.ConnectionState
	f.g.Eventually(func() error {
		conn, err := tls.Dial("tcp", metricsAddr, inspect)
		if err != nil {
			return err
		}
		state = conn.ConnectionState()
		return conn.Close()
	}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	leaf := state.PeerCertificates[0]
	f.g.Expect(slices.ContainsFunc(leaf.IPAddresses, net.IPv4(127, 0, 0, 1).Equal)).To(BeTrue(), "the certificate is for %v", leaf.IPAddresses)
	f.g.Expect(leaf.DNSNames).To(ContainElement("localhost"))
	_, err := leaf.Verify(x509.VerifyOptions{DNSName: "localhost"})
	f.g.Expect(err).To(HaveOccurred(), "no system CA vouches for the certificate made at startup")
	f.g.Expect(state.NegotiatedProtocol).To(Equal("http/1.1"), "HTTP/2 is off")

	scraper := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}, // loopback, the certificate made at startup
	}
	status, body, err := scrapeAs(scraper, "https://"+metricsAddr+"/metrics", "")
	f.g.Expect(err).NotTo(HaveOccurred())
	f.g.Expect(status).To(Equal(http.StatusUnauthorized), "no token: %s", body)
}

// TestMetricsAuthFailsClosedWithoutTheRightToAsk: a manager whose identity
// may not create TokenReviews (its install lacks metrics-auth-role) gets
// the API server's refusal, logs it without the token, and answers 500:
// the scrape never reaches the metrics.
func TestMetricsAuthFailsClosedWithoutTheRightToAsk(t *testing.T) {
	f := newFixture(t)
	token := f.serviceAccountToken("metrics-scraper")
	f.bindMetricsReader("metrics-scraper", "scraper")

	// The manager's identity, without any right.
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + f.ns + ":no-metrics-auth-role", Groups: []string{"system:authenticated"}}
	httpClient, err := rest.HTTPClientFor(cfg)
	f.g.Expect(err).NotTo(HaveOccurred())
	auth, err := metricsauth.New(cfg, httpClient)
	f.g.Expect(err).NotTo(HaveOccurred())
	var logs strings.Builder
	log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + " " + args + "\n") }, funcr.Options{Verbosity: 10})
	reached := false
	handler := auth.Handler(log, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))

	request := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	request.Header.Set("Authorization", "Bearer "+token)
	response := httptest.NewRecorder()
	handler.ServeHTTP(response, request)

	f.g.Expect(response.Code).To(Equal(http.StatusInternalServerError), "body: %s", response.Body)
	f.g.Expect(reached).To(BeFalse(), "the scrape reached the metrics")
	f.g.Expect(logs.String()).To(And(
		ContainSubstring(`tokenreviews.authentication.k8s.io is forbidden`),
		ContainSubstring("no-metrics-auth-role"),
	), "the API server's refusal, logged")
	f.g.Expect(logs.String() + response.Body.String()).NotTo(ContainSubstring(token))
}

// scrapeAs gets url with token as the bearer token (none when empty).
func scrapeAs(c *http.Client, url, token string) (status int, body string, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), err
}

// serviceAccountToken creates a ServiceAccount in the fixture's namespace
// and returns a token of it from the TokenRequest API, once the API server
// authenticates it (the manager caches a refusal for DeniedTTL).
func (f *fixture) serviceAccountToken(name string) string {
	f.t.Helper()
	token, err := testenv.ServiceAccountToken(f.ctx, f.c, f.ns, name)
	f.g.Expect(err).NotTo(HaveOccurred())
	username := "system:serviceaccount:" + f.ns + ":" + name
	f.g.Eventually(func(g Gomega) {
		review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
		g.Expect(f.c.Create(f.ctx, review)).To(Succeed())
		g.Expect(review.Status.Authenticated).To(BeTrue(), "%s", review.Status.Error)
		g.Expect(review.Status.User.Username).To(Equal(username))
	}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return token
}

// bindMetricsReader creates config/rbac's metrics-reader ClusterRole (named
// after the test's namespace and suffix: ClusterRoles are shared by all
// tests) and binds it to the ServiceAccount, then waits until the API
// server's RBAC allows the account to get /metrics.
func (f *fixture) bindMetricsReader(account, suffix string) {
	f.t.Helper()
	raw, err := os.ReadFile(filepath.FromSlash(metricsReaderRoleFile))
	f.g.Expect(err).NotTo(HaveOccurred())
	role := &rbacv1.ClusterRole{}
	f.g.Expect(yaml.UnmarshalStrict(raw, role)).To(Succeed(), "decoding %s", metricsReaderRoleFile)
	f.g.Expect(role.Kind).To(Equal("ClusterRole"))
	role.Name = f.ns + "-" + role.Name + "-" + suffix
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: f.ns, Name: account}},
	}
	for _, o := range []client.Object{role, binding} {
		f.g.Expect(f.c.Create(f.ctx, o)).To(Succeed())
		f.t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
	}
	username := "system:serviceaccount:" + f.ns + ":" + account
	f.g.Eventually(func(g Gomega) {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:                  username,
			Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:" + f.ns, "system:authenticated"},
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
		}}
		g.Expect(f.c.Create(f.ctx, review)).To(Succeed())
		g.Expect(review.Status.Allowed).To(BeTrue(), "%s", review.Status.Reason)
	}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// metricsServingCertificate writes a self-signed certificate for 127.0.0.1
// as tls.crt and tls.key into a new directory, for --metrics-cert-dir, and
// returns the directory and a pool trusting that certificate only.
func metricsServingCertificate(t *testing.T) (dir string, trusted *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "uredis-backup-operator metrics (test)"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	for name, block := range map[string]*pem.Block{
		"tls.crt": {Type: "CERTIFICATE", Bytes: der},
		"tls.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	trusted = x509.NewCertPool()
	trusted.AddCert(cert)
	return dir, trusted
}
