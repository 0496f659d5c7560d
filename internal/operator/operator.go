// Package operator wires the manager: caches, the cloud client and the
// reconciler. main.go, the demo and the end-to-end tests all start the
// operator through it, so what is tested is what ships.
package operator

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/controllers"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/logging"
	"github.com/dezai/uredis-backup-operator/internal/metrics"
	"github.com/dezai/uredis-backup-operator/internal/metricsauth"
	"github.com/dezai/uredis-backup-operator/internal/schedule"
)

// LeaderElectionID names the Lease the replicas elect their leader with.
const LeaderElectionID = "uredis-backup-operator.uredis.dezai.com"

// Options configure the operator; BindFlags exposes them as flags.
type Options struct {
	APIEndpoint       string
	AllowHTTPEndpoint bool
	// APICAFile is a PEM bundle of extra CAs to trust for the API endpoint.
	APICAFile string
	// OperatorCredentials* configure the operator's own credentials (off
	// unless namespaces are allowed).
	OperatorCredentialsSecret            string
	OperatorNamespace                    string
	OperatorCredentialsNamespaces        []string
	OperatorCredentialsNamespaceSelector string
	// OperatorCredentialsFromEnv are UCLOUD_PUBLIC_KEY, UCLOUD_PRIVATE_KEY
	// and UCLOUD_SECURITY_TOKEN, read by DefaultOptions.
	OperatorCredentialsFromEnv *cloud.Credentials
	APITimeout                 time.Duration
	DefaultLinkLifetime        time.Duration
	// MetricsBindAddress serves the metrics; "0" turns them off.
	MetricsBindAddress string
	// MetricsSecure serves the metrics over HTTPS, and only to clients that
	// the API server authenticates (TokenReview) and authorizes
	// (SubjectAccessReview: get on the non-resource URL /metrics). Off, they
	// are plain HTTP for anyone who reaches the port: for local runs only.
	MetricsSecure bool
	// MetricsCertDir holds the metrics server's tls.crt and tls.key
	// (reloaded when they change); a self-signed certificate is made at
	// startup when it is empty.
	MetricsCertDir         string
	HealthProbeBindAddress string
	// PprofBindAddress serves net/http/pprof; off ("") by default.
	PprofBindAddress        string
	LeaderElection          bool
	LeaderElectionNamespace string
	MaxConcurrentReconciles int
	// APIQPS and APIBurst limit the calls to the cloud API, shared by all
	// resources.
	APIQPS   float64
	APIBurst int
	// KubeAPIQPS and KubeAPIBurst limit the operator's requests to the
	// Kubernetes API server.
	KubeAPIQPS   float64
	KubeAPIBurst int
	// WatchNamespaces limits the operator to these namespaces; all when empty.
	WatchNamespaces  []string
	Policy           schedule.Policy
	TransientBackoff schedule.Backoff
	PermanentBackoff schedule.Backoff
	// LinkInStatus writes the link into status.backupPath as well as the
	// target Secret.
	LinkInStatus bool
	// Clock is the reconciler's clock; the real one when nil.
	Clock clock.PassiveClock
	// Logger is the manager's logger; controller-runtime's global one when
	// unset.
	Logger logr.Logger
	// WrapClient, when set, wraps the manager's client; tests use it to
	// inject API server failures.
	WrapClient func(client.Client) client.Client
	// InProcessTestManagers allows several managers in one process (tests
	// run one per namespace); controller names must otherwise be unique.
	InProcessTestManagers bool
}

// DefaultOptions are the defaults for a real cluster.
func DefaultOptions() Options {
	endpoint := os.Getenv("UCLOUD_API_BASE_URL")
	if endpoint == "" {
		endpoint = cloud.DefaultEndpoint
	}
	var envCredentials *cloud.Credentials
	if public, private := os.Getenv("UCLOUD_PUBLIC_KEY"), os.Getenv("UCLOUD_PRIVATE_KEY"); public != "" || private != "" {
		envCredentials = &cloud.Credentials{PublicKey: public, PrivateKey: private, SecurityToken: os.Getenv("UCLOUD_SECURITY_TOKEN")}
	}
	return Options{
		OperatorCredentialsFromEnv: envCredentials,
		OperatorNamespace:          os.Getenv("POD_NAMESPACE"),
		APIEndpoint:                endpoint,
		APITimeout:                 cloud.DefaultTimeout,
		DefaultLinkLifetime:        cloud.DefaultLinkLifetime,
		MetricsBindAddress:         ":8443",
		MetricsSecure:              true,
		HealthProbeBindAddress:     ":8081",
		MaxConcurrentReconciles:    4,
		APIQPS:                     10,
		APIBurst:                   20,
		KubeAPIQPS:                 20,
		KubeAPIBurst:               30,
		LinkInStatus:               true,
		Policy:                     schedule.DefaultPolicy(),
		TransientBackoff:           schedule.Backoff{Base: 5 * time.Second, Max: 5 * time.Minute},
		PermanentBackoff:           schedule.Backoff{Base: 5 * time.Minute, Max: time.Hour},
	}
}

// BindFlags registers the options as command-line flags.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.APIEndpoint, "api-endpoint", o.APIEndpoint, "Base URL of the cloud API (also read from UCLOUD_API_BASE_URL).")
	fs.BoolVar(&o.AllowHTTPEndpoint, "allow-http-endpoint", o.AllowHTTPEndpoint,
		"Allow a plain http:// API endpoint. Requests carry signatures and answers carry bearer links, so this exists only for local simulators in tests and demos.")
	fs.StringVar(&o.APICAFile, "api-ca-file", o.APICAFile, "PEM file of additional certificate authorities to trust for the API endpoint (the system's are always trusted).")
	fs.StringVar(&o.OperatorCredentialsSecret, "operator-credentials-secret", o.OperatorCredentialsSecret,
		"Secret in --operator-namespace with the operator's own credentials (keys publicKey, privateKey, optional securityToken); UCLOUD_PUBLIC_KEY and UCLOUD_PRIVATE_KEY take precedence.")
	fs.StringVar(&o.OperatorNamespace, "operator-namespace", o.OperatorNamespace, "The operator's own namespace (default: $POD_NAMESPACE).")
	fs.Func("operator-credentials-namespaces", "Comma-separated namespaces whose resources may omit spec.credentialsRef and use the operator's own credentials.", func(v string) error {
		o.OperatorCredentialsNamespaces = splitList(v)
		return nil
	})
	fs.StringVar(&o.OperatorCredentialsNamespaceSelector, "operator-credentials-namespace-selector", o.OperatorCredentialsNamespaceSelector,
		"Label selector of further namespaces that may use the operator's own credentials, e.g. uredis.dezai.com/shared-credentials=true.")
	fs.DurationVar(&o.APITimeout, "api-timeout", o.APITimeout, "Timeout of one cloud API request.")
	fs.DurationVar(&o.DefaultLinkLifetime, "default-link-lifetime", o.DefaultLinkLifetime, "Lifetime assumed for a link that carries no Expires parameter.")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Address of the Prometheus metrics endpoint (HTTPS unless --metrics-secure=false); \"0\" disables it.")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure,
		"Serve the metrics over HTTPS, only to clients the Kubernetes API server authenticates and authorizes (get on the non-resource URL /metrics, as the metrics-reader ClusterRole grants). Set to false only for local runs: the metrics are then plain HTTP, for anyone who reaches the port.")
	fs.StringVar(&o.MetricsCertDir, "metrics-cert-dir", o.MetricsCertDir,
		"Directory with tls.crt and tls.key for the metrics endpoint (a mounted TLS Secret, e.g. cert-manager's), reloaded when they change; when empty, a self-signed certificate is made at startup.")
	fs.StringVar(&o.PprofBindAddress, "pprof-bind-address", o.PprofBindAddress,
		"Address to serve Go's pprof profiles on, for performance investigations; off when empty (the default). Do not expose it.")
	fs.StringVar(&o.HealthProbeBindAddress, "health-probe-bind-address", o.HealthProbeBindAddress, "Address of the /healthz and /readyz probes.")
	fs.BoolVar(&o.LeaderElection, "leader-elect", o.LeaderElection, "Elect a leader so that only one replica reconciles at a time.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader election Lease; the pod's namespace when empty.")
	fs.Func("watch-namespaces", "Comma-separated namespaces to watch; all namespaces when unset.", func(v string) error {
		o.WatchNamespaces = splitList(v)
		return nil
	})
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", o.MaxConcurrentReconciles, "Number of resources reconciled in parallel; one namespace may hold at most half of them on the cloud API's budget.")
	fs.Float64Var(&o.APIQPS, "api-qps", o.APIQPS, "Cloud API calls per second, shared by all resources; 0 for no limit.")
	fs.IntVar(&o.APIBurst, "api-burst", o.APIBurst, "Cloud API calls allowed in a burst above --api-qps.")
	fs.Float64Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Requests per second to the Kubernetes API server.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Requests allowed in a burst above --kube-api-qps.")
	fs.DurationVar(&o.Policy.MinMargin, "refresh-min-margin", o.Policy.MinMargin, "Every refresh is planned at least this long before the link expires.")
	fs.DurationVar(&o.Policy.MinUsefulLifetime, "min-link-lifetime", o.Policy.MinUsefulLifetime, "A link valid for less than this is reported as unusable (LinkTooShort) and retried with backoff.")
	fs.DurationVar(&o.Policy.ForcedRefreshMinInterval, "forced-refresh-min-interval", o.Policy.ForcedRefreshMinInterval,
		"Shortest time between a resource's last refresh attempt and a forced one (the refresh-requested-at annotation); requests sooner are acknowledged and not acted upon.")
	fs.BoolVar(&o.LinkInStatus, "link-in-status", o.LinkInStatus,
		"Write the download link into status.backupPath as well as the target Secret. Turn off where those who may read RedisBackupExports must not see bearer links; a Secret deleted during a provider outage can then not be restored until the next successful refresh.")
}

func splitList(v string) []string {
	var items []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// Validate checks the options before anything starts.
func (o *Options) Validate() error {
	u, err := url.Parse(o.APIEndpoint)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("--api-endpoint %q is not an absolute https URL", o.APIEndpoint)
	case u.Scheme == "http" && !o.AllowHTTPEndpoint:
		return fmt.Errorf("--api-endpoint %q is plain http: requests and answers would cross the network unencrypted; set --allow-http-endpoint only for a local simulator", o.APIEndpoint)
	case o.Policy.ForcedRefreshMinInterval < 0:
		return errors.New("--forced-refresh-min-interval must not be negative")
	case o.MetricsCertDir != "" && !o.MetricsSecure:
		return errors.New("--metrics-cert-dir is for HTTPS: it needs --metrics-secure")
	case o.MaxConcurrentReconciles < 1:
		return errors.New("--max-concurrent-reconciles must be at least 1")
	case o.Policy.MinUsefulLifetime < 2*o.Policy.MinMargin:
		return fmt.Errorf("--min-link-lifetime (%s) must be at least twice --refresh-min-margin (%s)", o.Policy.MinUsefulLifetime, o.Policy.MinMargin)
	case o.OperatorCredentialsSecret != "" && o.OperatorNamespace == "":
		return errors.New("--operator-credentials-secret needs --operator-namespace (or $POD_NAMESPACE)")
	case o.OperatorCredentialsFromEnv != nil && (o.OperatorCredentialsFromEnv.PublicKey == "" || o.OperatorCredentialsFromEnv.PrivateKey == ""):
		return errors.New("set both UCLOUD_PUBLIC_KEY and UCLOUD_PRIVATE_KEY, or neither")
	case o.operatorCredentialsOffered() && o.OperatorCredentialsFromEnv == nil && o.OperatorCredentialsSecret == "":
		return errors.New("namespaces are allowed the operator's own credentials, but there are none: set UCLOUD_PUBLIC_KEY and UCLOUD_PRIVATE_KEY, or --operator-credentials-secret")
	}
	if _, err := labels.Parse(o.OperatorCredentialsNamespaceSelector); err != nil {
		return fmt.Errorf("--operator-credentials-namespace-selector: %w", err)
	}
	if o.MetricsCertDir != "" {
		// controller-runtime would fall back to a self-signed certificate
		// without a word: a mount that went wrong must stop the start.
		for _, name := range []string{metricsCertName, metricsKeyName} {
			if _, err := os.Stat(filepath.Join(o.MetricsCertDir, name)); err != nil {
				return fmt.Errorf("--metrics-cert-dir must hold %s and %s: %w", metricsCertName, metricsKeyName, err)
			}
		}
	}
	return nil
}

// The files of --metrics-cert-dir, named as in a kubernetes.io/tls Secret.
const (
	metricsCertName = "tls.crt"
	metricsKeyName  = "tls.key"
)

// metricsServerOptions serve the registry's series, then the per-resource
// ones; over HTTPS behind the API server's authentication and authorization
// (logged to log) unless MetricsSecure is off.
func (o *Options) metricsServerOptions(series *metrics.ResourceSeries, log logr.Logger) metricsserver.Options {
	if !o.MetricsSecure {
		return metricsserver.Options{BindAddress: o.MetricsBindAddress, FilterProvider: series.FilterProvider}
	}
	return metricsserver.Options{
		BindAddress:   o.MetricsBindAddress,
		SecureServing: true,
		CertDir:       o.MetricsCertDir,
		CertName:      metricsCertName,
		KeyName:       metricsKeyName,
		// TLS 1.2 at least, and HTTP/1.1 only, as kubebuilder's scaffold
		// has it: scrapers need nothing more, and HTTP/2 brings its own
		// denial-of-service surface (stream resets, CVE-2023-44487).
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.NextProtos = []string{"http/1.1"}
			c.MinVersion = tls.VersionTLS12
		}},
		FilterProvider: func(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
			auth, err := metricsauth.New(cfg, httpClient)
			if err != nil {
				return nil, err
			}
			return guardedFilter(auth.Handler, series.Filter, log.WithName("metrics-auth")), nil
		},
	}
}

// guardedFilter wraps a handler in series, then in guard: a request reaches
// series only through guard, so that the per-resource series, which name
// namespaces and resources, are never written for a request guard refused.
// guard logs to log, the manager's logger (controller-runtime hands filters
// its own global one).
func guardedFilter(guard func(logr.Logger, http.Handler) http.Handler, series metricsserver.Filter, log logr.Logger) metricsserver.Filter {
	return func(serverLog logr.Logger, next http.Handler) (http.Handler, error) {
		handler, err := series(serverLog, next)
		if err != nil {
			return nil, err
		}
		return guard(log, handler), nil
	}
}

// operatorCredentials turns the options into the reconciler's setting; nil
// when the operator's own credentials are not offered to any namespace.
func (o *Options) operatorCredentials() *controllers.OperatorCredentials {
	if !o.operatorCredentialsOffered() {
		return nil
	}
	selector, _ := labels.Parse(o.OperatorCredentialsNamespaceSelector) // checked by Validate
	return &controllers.OperatorCredentials{
		Static:            o.OperatorCredentialsFromEnv,
		Secret:            types.NamespacedName{Namespace: o.OperatorNamespace, Name: o.OperatorCredentialsSecret},
		AllowedNamespaces: o.OperatorCredentialsNamespaces,
		NamespaceSelector: selector,
	}
}

// operatorCredentialsOffered: some namespace may use the operator's own
// credentials.
func (o *Options) operatorCredentialsOffered() bool {
	return len(o.OperatorCredentialsNamespaces) > 0 || strings.TrimSpace(o.OperatorCredentialsNamespaceSelector) != ""
}

// newHTTPClient verifies TLS against the system's CAs plus caFile, and
// never follows redirects: a request carries a signature that, having no
// timestamp, could be replayed by whoever a redirect points at.
func newHTTPClient(caFile string) (*http.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(caFile) //nolint:gosec // G304: the file the --api-ca-file flag names
		if err != nil {
			return nil, fmt.Errorf("--api-ca-file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--api-ca-file %s holds no PEM certificate", caFile)
		}
		tlsConfig.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	return &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// Scheme holds the types the operator reads and writes.
func Scheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(uredisv1alpha1.AddToScheme(scheme))
	return scheme
}

// NewManager builds a manager running the RedisBackupExport controller.
func NewManager(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	scheme := Scheme()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(o.KubeAPIQPS), o.KubeAPIBurst
	resourceSeries := &metrics.ResourceSeries{}
	log := logging.CapVerbosity(managerLogger(o.Logger), logging.MaxVerbosity)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Metrics:                 o.metricsServerOptions(resourceSeries, log),
		HealthProbeBindAddress:  o.HealthProbeBindAddress,
		PprofBindAddress:        o.PprofBindAddress,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		Controller:              config.Controller{SkipNameValidation: &o.InProcessTestManagers},
		NewClient:               wrappedClient(o.WrapClient),
		Cache: cache.Options{
			DefaultNamespaces: namespaceConfigs(o.WatchNamespaces),
			// managedFields are never read and can double an object's size:
			// every cached type goes without them (the two transforms below
			// drop them too, with more).
			DefaultTransform: cache.TransformStripManagedFields(),
			// Cache only the Secrets the operator writes, and only a few
			// fields of their metadata (the reconciler reads them as
			// metadata; controllers/secretcache.go): clusters hold many large
			// Secrets, and anyone can label one.
			ByObject: map[client.Object]cache.ByObject{
				&uredisv1alpha1.RedisBackupExport{}: {Transform: compactExport},
				&corev1.Secret{}: {
					Label:     labels.SelectorFromSet(labels.Set{uredisv1alpha1.LabelManagedBy: uredisv1alpha1.ManagedByValue}),
					Transform: controllers.CacheManagedSecret,
				},
			},
		},
	})
	if err != nil {
		return nil, err
	}
	httpClient, err := newHTTPClient(o.APICAFile)
	if err != nil {
		return nil, err
	}
	cloudClient, err := cloud.New(cloud.Options{
		HTTPClient:          httpClient,
		Endpoint:            o.APIEndpoint,
		Timeout:             o.APITimeout,
		DefaultLinkLifetime: o.DefaultLinkLifetime,
		Throttle:            cloud.NewThrottle(o.APIQPS, o.APIBurst),
		Observer:            metrics.APIObserver{},
	})
	if err != nil {
		return nil, err
	}
	resourceSeries.Use(mgr.GetCache())
	secretMetadata, err := secretMetadataCache(mgr, o.secretMetadataNamespaces())
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(secretMetadata); err != nil {
		return nil, err
	}
	resolver := cloud.NewSharedResolver(cloudClient)
	reconciler := &controllers.RedisBackupExportReconciler{
		Client:              mgr.GetClient(),
		APIReader:           mgr.GetAPIReader(),
		SecretMetadata:      secretMetadata,
		Cloud:               resolver,
		Events:              mgr.GetEventRecorder("uredis-backup-operator"),
		OperatorCredentials: o.operatorCredentials(),
		OmitLinkFromStatus:  !o.LinkInStatus,
		Clock:               o.Clock,
		Policy:              o.Policy,
		TransientBackoff:    o.TransientBackoff,
		PermanentBackoff:    o.PermanentBackoff,
		Jitter:              rand.Float64,
	}
	if reconciler.Clock == nil {
		reconciler.Clock = clock.RealClock{}
	}
	if err := reconciler.SetupWithManager(mgr, o.MaxConcurrentReconciles); err != nil {
		return nil, err
	}
	if err := o.setupClusterExports(mgr, secretMetadata, resolver); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

// setupClusterExports starts the ClusterRedisBackupExport controller,
// unless the operator is limited to some namespaces (--watch-namespaces):
// the cluster kind writes into namespaces chosen by labels, and the
// namespaced install (config/namespaced) grants no cluster-wide rights to
// list them or the cluster resources. Such an operator leaves
// ClusterRedisBackupExports alone, for a cluster-wide one to serve.
func (o *Options) setupClusterExports(mgr ctrl.Manager, secretMetadata cache.Cache, resolver controllers.BackupLinkResolver) error {
	if len(o.WatchNamespaces) > 0 {
		return nil
	}
	r := &controllers.ClusterRedisBackupExportReconciler{
		Client:           mgr.GetClient(),
		APIReader:        mgr.GetAPIReader(),
		SecretMetadata:   secretMetadata,
		Cloud:            resolver,
		Events:           mgr.GetEventRecorder("uredis-backup-operator"),
		Clock:            o.Clock,
		Policy:           o.Policy,
		TransientBackoff: o.TransientBackoff,
		PermanentBackoff: o.PermanentBackoff,
		Jitter:           rand.Float64,
	}
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return r.SetupWithManager(mgr, o.MaxConcurrentReconciles)
}

// secretMetadataCache is one cache, over every watched namespace, of the
// identity (name, namespace, UID, resourceVersion) of the Secrets the
// operator does not manage: it notices credentials Secrets appearing or
// changing, and foreign Secrets freeing a target name, at a few hundred bytes
// per Secret and one watch on the API server, however many namespaces hold
// resources. (The operator's own Secrets are in the manager's cache.)
func secretMetadataCache(mgr ctrl.Manager, namespaces []string) (cache.Cache, error) {
	notManaged, err := labels.NewRequirement(uredisv1alpha1.LabelManagedBy, selection.NotEquals, []string{uredisv1alpha1.ManagedByValue})
	if err != nil {
		return nil, err
	}
	return cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:           mgr.GetHTTPClient(),
		Scheme:               mgr.GetScheme(),
		Mapper:               mgr.GetRESTMapper(),
		DefaultNamespaces:    namespaceConfigs(namespaces),
		DefaultLabelSelector: labels.NewSelector().Add(*notManaged),
		DefaultTransform:     controllers.CacheSecretIdentity,
	})
}

// secretMetadataNamespaces are the namespaces whose Secrets' metadata is
// watched: all (nil) unless the operator is limited to some, and then also
// its own namespace when its credentials Secret lives there.
func (o *Options) secretMetadataNamespaces() []string {
	if len(o.WatchNamespaces) == 0 {
		return nil
	}
	namespaces := slices.Clone(o.WatchNamespaces)
	if o.OperatorCredentialsSecret != "" && o.operatorCredentialsOffered() && !slices.Contains(namespaces, o.OperatorNamespace) {
		namespaces = append(namespaces, o.OperatorNamespace)
	}
	return namespaces
}

// wrappedClient builds the manager's client as controller-runtime does,
// then wraps it (Options.WrapClient), for tests that inject failures.
func wrappedClient(wrap func(client.Client) client.Client) client.NewClientFunc {
	if wrap == nil {
		return nil
	}
	return func(cfg *rest.Config, options client.Options) (client.Client, error) {
		c, err := client.New(cfg, options)
		if err != nil {
			return nil, err
		}
		return wrap(c), nil
	}
}

func managerLogger(configured logr.Logger) logr.Logger {
	if configured.GetSink() != nil {
		return configured
	}
	return ctrl.Log
}

func namespaceConfigs(namespaces []string) map[string]cache.Config {
	if len(namespaces) == 0 {
		return nil
	}
	configs := make(map[string]cache.Config, len(namespaces))
	for _, ns := range namespaces {
		configs[ns] = cache.Config{}
	}
	return configs
}

// compactExport is the cache transform of RedisBackupExports: it drops
// what the operator never reads, managedFields and the copy of the whole
// object that `kubectl apply` keeps in an annotation. The operator writes
// only the status subresource, so nothing it patches is derived from them.
func compactExport(obj any) (any, error) {
	export, ok := obj.(*uredisv1alpha1.RedisBackupExport)
	if !ok {
		return obj, nil
	}
	export.ManagedFields = nil
	delete(export.Annotations, corev1.LastAppliedConfigAnnotation)
	return export, nil
}
