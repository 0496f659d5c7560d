package metrics

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// scrape serves one /metrics request through the filter, the registry's
// handler behind it, as a Prometheus server asks: protobuf preferred,
// gzip accepted.
func scrape(t *testing.T, series *ResourceSeries, path string) *http.Response {
	t.Helper()
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounter(prometheus.CounterOpts{Name: "registry_series_total", Help: "From the registry."})
	requests.Add(3)
	reg.MustRegister(requests)
	handler, err := series.Filter(logr.Discard(), promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1")
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec.Result()
}

func parse(t *testing.T, resp *http.Response) map[string]*dto.MetricFamily {
	t.Helper()
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/plain") {
		t.Fatalf("Content-Type %q, want the text format the resource series are written in", got)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the response is not valid text exposition: %v", err)
	}
	return families
}

func export(ns, name string, mutate func(*uredisv1alpha1.RedisBackupExport)) *uredisv1alpha1.RedisBackupExport {
	e := &uredisv1alpha1.RedisBackupExport{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	mutate(e)
	return e
}

func TestResourceSeries(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := uredisv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	expires := metav1.NewTime(time.Unix(1_900_000_000, 0))
	next := metav1.NewTime(time.Unix(1_899_999_000, 0))
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		export("team-a", "ready", func(e *uredisv1alpha1.RedisBackupExport) {
			e.Status.ExpiresAt, e.Status.NextRefreshTime = &expires, &next
			e.Status.Conditions = []metav1.Condition{{Type: uredisv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "LinkValid"}}
		}),
		export("team-b", "failing", func(e *uredisv1alpha1.RedisBackupExport) {
			e.Status.FailureCount = 4
			e.Status.Conditions = []metav1.Condition{
				{Type: uredisv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "CredentialsRejected"},
				{Type: uredisv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "CredentialsRejected"},
			}
		}),
		export("team-b", "new", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.Suspend = true }),
	).Build()

	series := &ResourceSeries{}
	if fams := parse(t, scrape(t, series, "/metrics")); len(fams) != 1 {
		t.Fatalf("before Use, only the registry's series are served; got %d families", len(fams))
	}

	series.Use(reader)
	fams := parse(t, scrape(t, series, "/metrics"))
	got := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			key := name
			for _, l := range m.Label {
				key += fmt.Sprintf(",%s=%s", l.GetName(), l.GetValue())
			}
			switch {
			case m.Gauge != nil:
				got[key] = m.Gauge.GetValue()
			case m.Counter != nil:
				got[key] = m.Counter.GetValue()
			default:
				got[key] = m.Untyped.GetValue()
			}
		}
		if name != "registry_series_total" && f.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s is a %s, want a gauge", name, f.GetType())
		}
	}
	want := map[string]float64{
		"registry_series_total": 3,
		"uredis_backup_export_link_expiration_timestamp_seconds,name=ready,namespace=team-a": 1_900_000_000,
		"uredis_backup_export_next_refresh_timestamp_seconds,name=ready,namespace=team-a":    1_899_999_000,
		"uredis_backup_export_ready_status,condition=True,name=ready,namespace=team-a":       1,
		"uredis_backup_export_ready_status,condition=False,name=ready,namespace=team-a":      0,
		"uredis_backup_export_ready_status,condition=Unknown,name=ready,namespace=team-a":    0,
		"uredis_backup_export_stalled,name=ready,namespace=team-a":                           0,
		"uredis_backup_export_consecutive_failures,name=ready,namespace=team-a":              0,
		"uredis_backup_export_ready_status,condition=True,name=failing,namespace=team-b":     0,
		"uredis_backup_export_ready_status,condition=False,name=failing,namespace=team-b":    1,
		"uredis_backup_export_ready_status,condition=Unknown,name=failing,namespace=team-b":  0,
		"uredis_backup_export_stalled,name=failing,namespace=team-b":                         1,
		"uredis_backup_export_consecutive_failures,name=failing,namespace=team-b":            4,
		"uredis_backup_export_ready_status,condition=True,name=new,namespace=team-b":         0,
		"uredis_backup_export_ready_status,condition=False,name=new,namespace=team-b":        0,
		"uredis_backup_export_ready_status,condition=Unknown,name=new,namespace=team-b":      1,
		"uredis_backup_export_stalled,name=new,namespace=team-b":                             0,
		"uredis_backup_export_suspended,name=ready,namespace=team-a":                         0,
		"uredis_backup_export_suspended,name=failing,namespace=team-b":                       0,
		"uredis_backup_export_suspended,name=new,namespace=team-b":                           1,
		"uredis_backup_export_consecutive_failures,name=new,namespace=team-b":                0,
	}
	for key, value := range want {
		if v, ok := got[key]; !ok || v != value {
			t.Errorf("%s = %v (present: %t), want %v", key, v, ok, value)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d series, want %d: %v", len(got), len(want), got)
	}

	// Other paths the filter wraps are left as they are.
	other := scrape(t, series, "/debug/extra")
	if other.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("another path lost its content negotiation: %v", other.Header)
	}
	if _, err := gzip.NewReader(other.Body); err != nil {
		t.Fatal(err)
	}
}

func TestTextWriterEscapes(t *testing.T) {
	var b strings.Builder
	w := bufio.NewWriter(&b)
	tw := textWriter{w: w}
	tw.sample("m", export("ns", `a"b\c`+"\n", func(*uredisv1alpha1.RedisBackupExport) {}), "", 1.5)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := `m{name="a\"b\\c\n",namespace="ns"} 1.5` + "\n"; b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

// A scrape must cost the same few allocations at 10 or 10,000 resources.
func TestWritingSamplesAllocatesNothingPerResource(t *testing.T) {
	expires := metav1.NewTime(time.Unix(1_900_000_000, 0))
	exports := make([]*uredisv1alpha1.RedisBackupExport, 1000)
	for i := range exports {
		exports[i] = export("team", fmt.Sprintf("rbe-%04d", i), func(e *uredisv1alpha1.RedisBackupExport) {
			e.Status.ExpiresAt, e.Status.NextRefreshTime = &expires, &expires
			e.Status.Conditions = []metav1.Condition{{Type: uredisv1alpha1.ConditionReady, Status: metav1.ConditionTrue}}
		})
	}
	w := bufio.NewWriter(io.Discard)
	if allocs := testing.AllocsPerRun(5, func() { writeFamilies(w, exports) }); allocs > 10 {
		t.Fatalf("%v allocations to write the samples of %d resources, want a few per scrape", allocs, len(exports))
	}
}
