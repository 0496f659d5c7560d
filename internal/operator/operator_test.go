package operator

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/metrics"
)

func TestValidate(t *testing.T) {
	certDir, emptyDir := t.TempDir(), t.TempDir()
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(certDir, name), []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{name: "defaults", mutate: func(*Options) {}},
		{name: "plain http refused", mutate: func(o *Options) { o.APIEndpoint = "http://api.example.com/" }, wantErr: "--allow-http-endpoint"},
		{name: "plain http allowed by flag", mutate: func(o *Options) { o.APIEndpoint, o.AllowHTTPEndpoint = "http://127.0.0.1:1/", true }},
		{name: "not a URL", mutate: func(o *Options) { o.APIEndpoint = "api.example.com" }, wantErr: "not an absolute https URL"},
		{name: "no workers", mutate: func(o *Options) { o.MaxConcurrentReconciles = 0 }, wantErr: "--max-concurrent-reconciles"},
		{name: "margin larger than half the minimum lifetime", mutate: func(o *Options) { o.Policy.MinMargin = time.Minute }, wantErr: "--min-link-lifetime"},
		{name: "operator Secret without namespace", mutate: func(o *Options) { o.OperatorCredentialsSecret, o.OperatorNamespace = "creds", "" }, wantErr: "--operator-namespace"},
		{name: "half of the env credentials", mutate: func(o *Options) { o.OperatorCredentialsFromEnv = &cloud.Credentials{PublicKey: "pk"} }, wantErr: "UCLOUD_PRIVATE_KEY"},
		{name: "namespaces allowed but no credentials", mutate: func(o *Options) { o.OperatorCredentialsNamespaces = []string{"a"} }, wantErr: "there are none"},
		{name: "bad selector", mutate: func(o *Options) {
			o.OperatorCredentialsNamespaceSelector, o.OperatorCredentialsFromEnv = "a b c", &cloud.Credentials{PublicKey: "p", PrivateKey: "k"}
		}, wantErr: "selector"},
		{name: "operator credentials from env for a selector", mutate: func(o *Options) {
			o.OperatorCredentialsNamespaceSelector, o.OperatorCredentialsFromEnv = "shared=true", &cloud.Credentials{PublicKey: "p", PrivateKey: "k"}
		}},
		{name: "metrics certificate from a directory", mutate: func(o *Options) { o.MetricsCertDir = certDir }},
		{name: "metrics certificate directory without the files", mutate: func(o *Options) { o.MetricsCertDir = emptyDir }, wantErr: "--metrics-cert-dir must hold tls.crt and tls.key"},
		{name: "metrics certificate for plain HTTP", mutate: func(o *Options) { o.MetricsCertDir, o.MetricsSecure = certDir, false }, wantErr: "needs --metrics-secure"},
		{name: "plain HTTP metrics", mutate: func(o *Options) { o.MetricsSecure = false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			o.OperatorCredentialsFromEnv, o.APIEndpoint = nil, cloud.DefaultEndpoint
			tt.mutate(&o)
			err := o.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestOperatorCredentialsOffThenOn(t *testing.T) {
	o := DefaultOptions()
	o.OperatorCredentialsFromEnv = &cloud.Credentials{PublicKey: "p", PrivateKey: "k"}
	if o.operatorCredentials() != nil {
		t.Fatal("credentials from the environment alone must not be offered to any namespace")
	}
	o.OperatorCredentialsNamespaces = []string{"team-a"}
	if oc := o.operatorCredentials(); oc == nil || oc.Static == nil || oc.AllowedNamespaces[0] != "team-a" {
		t.Fatalf("got %+v", oc)
	}
}

func TestHTTPClientVerifiesTLSAndTrustsTheCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()

	plain, err := newHTTPClient("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Get(srv.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an unknown CA must be refused, got %v", err)
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	trusting, err := newHTTPClient(caFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := trusting.Get(srv.URL)
	if err != nil {
		t.Fatalf("the CA file must be trusted: %v", err)
	}
	resp.Body.Close()

	if _, err := newHTTPClient(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Fatal("a missing CA file must be an error")
	}
	empty := filepath.Join(t.TempDir(), "empty.pem")
	_ = os.WriteFile(empty, []byte("no certificates here"), 0o600)
	if _, err := newHTTPClient(empty); err == nil {
		t.Fatal("a CA file without certificates must be an error")
	}
}

func TestHTTPClientNeverFollowsRedirects(t *testing.T) {
	var leaked bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { leaked = true }))
	defer elsewhere.Close()
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect) // 307 would re-send the signed body
	}))
	defer gateway.Close()

	httpClient, err := newHTTPClient("")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloud.New(cloud.Options{Endpoint: gateway.URL + "/", HTTPClient: httpClient})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeBackupURL(t.Context(), cloud.Credentials{PublicKey: "p", PrivateKey: "k"}, cloud.BackupURLRequest{Region: "r", BackupID: "b"})
	if err == nil {
		t.Fatal("a redirect must not count as an answer")
	}
	if leaked {
		t.Fatal("the signed request was re-sent to the redirect target")
	}
}

func TestMetricsAreSecureByDefault(t *testing.T) {
	o := DefaultOptions()
	secure := o.metricsServerOptions(&metrics.ResourceSeries{}, logr.Discard())
	if !secure.SecureServing || secure.BindAddress != ":8443" || secure.FilterProvider == nil {
		t.Errorf("by default: HTTPS on :8443 behind a filter, got %+v", secure)
	}
	o.MetricsSecure = false
	if plain := o.metricsServerOptions(&metrics.ResourceSeries{}, logr.Discard()); plain.SecureServing || plain.FilterProvider == nil {
		t.Errorf("--metrics-secure=false: plain HTTP, still with the per-resource series, got %+v", plain)
	}
}

// TestGuardRefusalNeverReachesTheSeries: a request the guard (the
// authentication and authorization) refuses is never seen by the
// per-resource series; an accepted one passes the guard, then the series.
func TestGuardRefusalNeverReachesTheSeries(t *testing.T) {
	var seen []string
	guard := func(_ logr.Logger, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = append(seen, "guard")
			if r.Header.Get("Authorization") == "" {
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	series := func(_ logr.Logger, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = append(seen, "series")
			next.ServeHTTP(w, r)
		}), nil
	}
	handler, err := guardedFilter(guard, series, logr.Discard())(logr.Discard(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		seen = append(seen, "metrics")
	}))
	if err != nil {
		t.Fatal(err)
	}

	refused := httptest.NewRecorder()
	handler.ServeHTTP(refused, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if refused.Code != http.StatusUnauthorized || !slices.Equal(seen, []string{"guard"}) {
		t.Errorf("a refused request: status %d, passed %v; want 401, the guard only", refused.Code, seen)
	}

	seen = nil
	request := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	request.Header.Set("Authorization", "Bearer token")
	accepted := httptest.NewRecorder()
	handler.ServeHTTP(accepted, request)
	if accepted.Code != http.StatusOK || !slices.Equal(seen, []string{"guard", "series", "metrics"}) {
		t.Errorf("an accepted request: status %d, passed %v; want 200, the guard, the series, the metrics", accepted.Code, seen)
	}
}

func TestCompactExport(t *testing.T) {
	export := &uredisv1alpha1.RedisBackupExport{ObjectMeta: metav1.ObjectMeta{
		Annotations:   map[string]string{corev1.LastAppliedConfigAnnotation: `{"spec":{}}`, "team": "a"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}}
	obj, err := compactExport(export)
	if err != nil {
		t.Fatal(err)
	}
	compact := obj.(*uredisv1alpha1.RedisBackupExport)
	if compact.ManagedFields != nil || len(compact.Annotations) != 1 || compact.Annotations["team"] != "a" {
		t.Errorf("cached as %+v", compact.ObjectMeta)
	}
	if again, _ := compactExport(compact.DeepCopy()); !reflect.DeepEqual(again, compact) {
		t.Error("the transform must be idempotent")
	}
}
