// Command demo runs the operator end to end on embedded defaults: a local
// control plane (kube-apiserver and etcd from KUBEBUILDER_ASSETS), the
// bundled API simulator with the sample backup, and the operator itself.
// It applies config/samples, waits for the resource to be Ready, prints it
// as `kubectl get rbe` would, shows the Secret and downloads the backup
// through the link, then stops everything. Run it with `make demo`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
	"github.com/dezai/uredis-backup-operator/internal/testenv"
)

const (
	namespace   = "default"
	samplesDir  = "config/samples"
	sampleName  = "nightly"
	readyWithin = time.Minute
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop() // before os.Exit, which skips deferred calls
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
	fmt.Println("\ndemo finished: everything stopped cleanly")
}

func run(ctx context.Context) error {
	// The operator's own logs go to stderr at info level; the demo's
	// narrative goes to stdout.
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))

	step("starting a local control plane (kube-apiserver + etcd)")
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() { step("stopping the control plane"); _ = env.Stop() }()

	step("starting the API simulator with the sample backup")
	sim, err := simulator.Start(simulator.Config{
		Accounts: []simulator.Account{{PublicKey: "demo-public-key", PrivateKey: "demo-private-key"}},
		Backups: []simulator.Backup{{
			ID: "00a1b68c-c7f5-4a52-9eac-d1c2e3f48f0e", Region: "cn-bj2", Zone: "cn-bj2-04", GroupID: "mfweUQnQ",
			Name: "nightly", Type: "Auto", Content: []byte("REDIS0011 (demo backup content)"),
		}},
		LinkLifetime: 2 * time.Hour,
	})
	if err != nil {
		return err
	}
	defer sim.Close()
	fmt.Printf("  simulator listening at %s\n", sim.URL())

	step("starting the operator")
	stopOperator, err := startOperator(ctx, env, sim.URL())
	if err != nil {
		return err
	}
	defer func() { step("stopping the operator"); stopOperator() }()

	step("applying " + samplesDir + " to namespace " + namespace)
	if err := applySamples(ctx, env); err != nil {
		return err
	}

	step("waiting for RedisBackupExport/" + sampleName + " to be Ready")
	export, err := waitReady(ctx, env)
	if err != nil {
		return err
	}

	step("kubectl get rbe")
	if err := printTable(ctx, env); err != nil {
		return err
	}
	step("Secret " + export.Status.SecretName)
	secret, err := printSecret(ctx, env, export.Status.SecretName)
	if err != nil {
		return err
	}
	step("downloading the backup through the link in the Secret")
	body, err := download(ctx, string(secret.Data["backupPath"]))
	if err != nil {
		return err
	}
	fmt.Printf("  %d bytes: %q\n", len(body), body)
	fmt.Printf("  API calls made: %d\n", sim.CallCount(""))
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func startOperator(ctx context.Context, env *testenv.Env, endpoint string) (func(), error) {
	opts := operator.DefaultOptions()
	opts.APIEndpoint = endpoint
	opts.AllowHTTPEndpoint = true // the simulator listens on loopback only
	opts.MetricsBindAddress = "127.0.0.1:0"
	opts.HealthProbeBindAddress = "0"
	mgr, err := operator.NewManager(env.Config, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "operator stopped with an error:", err)
		}
	}, nil
}

// applySamples creates the resources listed in config/samples' kustomization.
func applySamples(ctx context.Context, env *testenv.Env) error {
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	raw, err := os.ReadFile(filepath.Join(samplesDir, "kustomization.yaml"))
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(raw, &kustomization); err != nil {
		return err
	}
	for _, file := range kustomization.Resources {
		raw, err := os.ReadFile(filepath.Join(samplesDir, file))
		if err != nil {
			return err
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		obj.SetNamespace(namespace)
		if err := env.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s: %w", file, err)
		}
		fmt.Printf("  created %s/%s\n", strings.ToLower(obj.GetKind()), obj.GetName())
	}
	return nil
}

func waitReady(ctx context.Context, env *testenv.Env) (*uredisv1alpha1.RedisBackupExport, error) {
	ctx, cancel := context.WithTimeout(ctx, readyWithin)
	defer cancel()
	export := &uredisv1alpha1.RedisBackupExport{}
	for {
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: sampleName}, export); err != nil {
			return nil, err
		}
		if cond := meta.FindStatusCondition(export.Status.Conditions, uredisv1alpha1.ConditionReady); cond != nil && cond.Status == metav1.ConditionTrue {
			fmt.Printf("  Ready: %s\n", cond.Message)
			return export, nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.New("the resource did not become Ready within " + readyWithin.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printTable asks the API server for the server-side table, exactly what
// `kubectl get rbe` prints, including the CRD's printer columns.
func printTable(ctx context.Context, env *testenv.Env) error {
	clientset, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return err
	}
	raw, err := clientset.RESTClient().Get().
		AbsPath("/apis", uredisv1alpha1.GroupVersion.Group, uredisv1alpha1.GroupVersion.Version, "namespaces", namespace, "redisbackupexports").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(ctx)
	if err != nil {
		return err
	}
	var table metav1.Table
	if err := yaml.Unmarshal(raw, &table); err != nil {
		return err
	}
	// A failed write to stdout fails the Flush below too: that is the
	// error returned.
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	var header []string
	for _, col := range table.ColumnDefinitions {
		header = append(header, strings.ToUpper(col.Name))
	}
	_, _ = fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, row := range table.Rows {
		cells := make([]string, len(row.Cells))
		for i, cell := range row.Cells {
			cells[i] = fmt.Sprint(cell)
			if table.ColumnDefinitions[i].Type == "date" {
				cells[i] = age(cells[i])
			}
		}
		_, _ = fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	return w.Flush()
}

func age(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	return time.Since(t).Round(time.Second).String()
}

// printSecret shows the Secret's keys; the links' signatures are shortened
// because a link is a bearer credential, even a simulator's.
func printSecret(ctx context.Context, env *testenv.Env, name string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, secret); err != nil {
		return nil, err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0) // write errors: see printTable
	for _, key := range []string{"backupPath", "innerBackupPath", "expiresAt", "backupId", "region"} {
		if value, ok := secret.Data[key]; ok {
			_, _ = fmt.Fprintf(w, "  %s\t%s\n", key, redactSignature(string(value)))
		}
	}
	_, _ = fmt.Fprintf(w, "  (annotation %s\t%s)\n", uredisv1alpha1.AnnotationDataHash, secret.Annotations[uredisv1alpha1.AnnotationDataHash])
	return secret, w.Flush()
}

func redactSignature(value string) string {
	if i := strings.Index(value, "Signature="); i >= 0 {
		return value[:i] + "Signature=<redacted>"
	}
	return value
}

func download(ctx context.Context, link string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, errors.New("the link in the Secret is not a valid URL")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download refused: %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}
