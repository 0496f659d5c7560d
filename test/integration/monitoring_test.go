package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/operator"
)

// TestAlertsAndDashboardNameOnlyExportedMetrics parses every expression of
// the shipped alert rules (config/alerts) and every query of the shipped
// Grafana dashboard (config/dashboard) with Prometheus's own PromQL parser,
// and fails on any that does not parse or that names a metric the operator
// does not export. What the operator exports is read from a real scrape of
// its /metrics, after a run that produced every kind of series: a Ready
// resource, a Stalled one, successful and rejected cloud API calls.
//
// The parser lives in github.com/prometheus/prometheus, kept out of the
// operator's go.mod: hack/tools/prometheus (its own module, which also
// builds promtool) holds promqlutil, a small command built here that prints
// the metric names each expression selects.
func TestAlertsAndDashboardNameOnlyExportedMetrics(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	queries := alertQueries(t, root)
	queries = append(queries, dashboardQueries(t, root)...)
	// Expressions that must be refused, so that the check is seen to bite:
	// a misspelt metric name, and a query that does not parse.
	controls := []query{
		{"control: a misspelt name", `sum(uredis_backup_export_ready_statuses{condition="True"})`},
		{"control: a name the operator never had", `rate(uredis_backup_export_refresh_errors_total[5m])`},
		{"control: not PromQL", `sum by (namespace) (uredis_backup_export_stalled`},
	}
	// Built before the test turns parallel, so that compiling the parser
	// competes with no running test.
	results := parseWithPrometheus(t, root, append(queries, controls...))

	metricsAddr := freeLoopbackAddress(t)
	// Plain HTTP, to scrape without a token (metrics_auth_test.go tests
	// the secure endpoint).
	f := newFixture(t, withOperatorOptions(func(o *operator.Options) { o.MetricsBindAddress, o.MetricsSecure = metricsAddr, false }))
	f.createCredentials("cloud-credentials", publicKey, privateKey)
	f.createCredentials("rejected-credentials", publicKey, "not-the-private-key")
	f.create(f.newExport("good"))
	f.create(f.newExport("stalled", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.CredentialsRef.Name = "rejected-credentials" }))
	f.eventuallyReady("good")
	f.eventuallyNotReady("stalled", uredisv1alpha1.ReasonCredentialsRejected)
	var body string
	f.g.Eventually(func() string { body = scrape(t, metricsAddr); return body }).WithTimeout(10*time.Second).Should(And(
		ContainSubstring(fmt.Sprintf(`uredis_backup_export_stalled{name="stalled",namespace=%q} 1`, f.ns)),
		ContainSubstring(fmt.Sprintf(`uredis_backup_export_stalled{name="good",namespace=%q} 0`, f.ns)),
		ContainSubstring(`uredis_backup_export_refreshes_total{reason="Refreshed",result="success"}`),
		ContainSubstring(`uredis_backup_export_refreshes_total{reason="CredentialsRejected",result="failure"}`),
	), "the scrape lacks the series of a Ready and a Stalled resource")
	exported := exportedNames(t, body)

	t.Logf("%d queries checked against the %d names of a real scrape", len(queries), len(exported))
	problems := unexported(queries, results[:len(queries)], exported)
	for _, p := range problems {
		t.Error(p)
	}
	if len(problems) > 0 {
		t.Logf("the operator exports: %s", strings.Join(slices.Sorted(maps.Keys(exported)), " "))
	}
	for i, c := range controls {
		if len(unexported([]query{c}, results[len(queries)+i:len(queries)+i+1], exported)) == 0 {
			t.Errorf("%s: %s passed the check, which cannot tell a wrong query then", c.source, c.expr)
		}
	}
}

// query is one PromQL expression and where it comes from.
type query struct {
	source, expr string
}

// alertQueries returns the expression of every rule of every
// PrometheusRule in config/alerts.
func alertQueries(t *testing.T, root string) []query {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "config", "alerts", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var queries []query
	for _, file := range files {
		content, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(content), 4096)
		for {
			var object struct {
				Kind string `json:"kind"`
				Spec struct {
					Groups []struct {
						Name  string `json:"name"`
						Rules []struct {
							Alert  string `json:"alert"`
							Record string `json:"record"`
							Expr   string `json:"expr"`
						} `json:"rules"`
					} `json:"groups"`
				} `json:"spec"`
			}
			if err := decoder.Decode(&object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if object.Kind != "PrometheusRule" {
				continue
			}
			for _, group := range object.Spec.Groups {
				for _, rule := range group.Rules {
					queries = append(queries, query{fmt.Sprintf("%s: rule %s%s", filepath.Base(file), rule.Alert, rule.Record), rule.Expr})
				}
			}
		}
	}
	// Four alerts are documented; fewer means the file was not read.
	if len(queries) < 4 {
		t.Fatalf("found %d alert rules in config/alerts, want at least 4", len(queries))
	}
	return queries
}

// dashboardQueries returns every query of every dashboard in
// config/dashboard: the panels' targets and the variables' queries, with
// Grafana's variables replaced by what they stand for (a duration, a
// regular expression), and label_values(...) reduced to its selector.
func dashboardQueries(t *testing.T, root string) []query {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "config", "dashboard", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no dashboard in config/dashboard")
	}
	var queries []query
	for _, file := range files {
		content, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var dashboard struct {
			Panels     []panel `json:"panels"`
			Templating struct {
				List []struct {
					Name  string `json:"name"`
					Type  string `json:"type"`
					Query any    `json:"query"`
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(content, &dashboard); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		name := filepath.Base(file)
		var walk func(panels []panel)
		walk = func(panels []panel) {
			for _, p := range panels {
				walk(p.Panels) // a row's panels
				if p.Type == "row" {
					continue
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", name, p.Title)
				}
				for _, target := range p.Targets {
					if strings.TrimSpace(target.Expr) == "" {
						t.Errorf("%s: panel %q has a target (refId %s) without a PromQL expression", name, p.Title, target.RefID)
						continue
					}
					queries = append(queries, query{fmt.Sprintf("%s: panel %q, query %s", name, p.Title, target.RefID), expandGrafanaVariables(target.Expr)})
				}
			}
		}
		walk(dashboard.Panels)
		for _, v := range dashboard.Templating.List {
			if v.Type != "query" {
				continue
			}
			text, _ := v.Query.(string)
			if object, ok := v.Query.(map[string]any); ok {
				text, _ = object["query"].(string)
			}
			source := fmt.Sprintf("%s: variable %s", name, v.Name)
			switch m := labelValues.FindStringSubmatch(text); {
			case m != nil:
				queries = append(queries, query{source, expandGrafanaVariables(m[1])})
			case labelValuesOfAllMetrics.MatchString(text):
				// label_values(label): no metric named
			default:
				t.Errorf("%s: query %q is not label_values(<selector>, <label>), the form this test reads", source, text)
			}
		}
	}
	return queries
}

// panel is what dashboardQueries reads of a Grafana panel.
type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

var (
	labelValues             = regexp.MustCompile(`^\s*label_values\(\s*(.+)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)
	labelValuesOfAllMetrics = regexp.MustCompile(`^\s*label_values\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)
	grafanaIntervals        = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)
	grafanaVariables        = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)
)

// expandGrafanaVariables replaces Grafana's interval variables with a
// duration and the dashboard's own variables (used in label matchers) with
// a regular expression, as Grafana does before it sends a query.
func expandGrafanaVariables(expr string) string {
	expr = grafanaIntervals.ReplaceAllString(expr, "5m")
	return grafanaVariables.ReplaceAllString(expr, ".*")
}

// parsed is what promqlutil names prints for one expression.
type parsed struct {
	Names []string `json:"names"`
	Error string   `json:"error"`
}

// parseWithPrometheus builds promqlutil from hack/tools/prometheus and has
// it parse the queries' expressions.
func parseWithPrometheus(t *testing.T, root string, queries []query) []parsed {
	t.Helper()
	// make test builds it beforehand (PROMQLUTIL); a plain go test builds
	// it here.
	bin := os.Getenv("PROMQLUTIL")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "promqlutil")
		build := exec.Command("go", "build", "-o", bin, "./promqlutil")
		build.Dir = filepath.Join(root, "hack", "tools", "prometheus")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building promqlutil in hack/tools/prometheus: %v\n%s", err, out)
		}
	}
	exprs := make([]string, len(queries))
	for i, q := range queries {
		exprs[i] = q.expr
	}
	in, err := json.Marshal(exprs)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "names")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("promqlutil names: %v\n%s", err, stderr.String())
	}
	var results []parsed
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("reading what promqlutil names printed: %v\n%s", err, stdout.String())
	}
	if len(results) != len(queries) {
		t.Fatalf("promqlutil answered for %d expressions, want %d", len(results), len(queries))
	}
	return results
}

// exportedNames returns the names of the series in a scrape: a histogram
// family is selected by its _bucket, _sum and _count series, a summary's by
// its own name, _sum and _count.
func exportedNames(t *testing.T, body string) map[string]bool {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape is not valid text exposition: %v", err)
	}
	names := map[string]bool{}
	for name, family := range families {
		switch family.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	return names
}

// unexported describes each query that did not parse, names no metric, or
// names one that is not exported.
func unexported(queries []query, results []parsed, exported map[string]bool) []string {
	var problems []string
	for i, q := range queries {
		r := results[i]
		switch {
		case r.Error != "":
			problems = append(problems, fmt.Sprintf("%s: %s\n\t%s", q.source, r.Error, q.expr))
			continue
		case len(r.Names) == 0:
			problems = append(problems, fmt.Sprintf("%s names no metric\n\t%s", q.source, q.expr))
		}
		for _, name := range r.Names {
			if !exported[name] {
				problems = append(problems, fmt.Sprintf("%s names %s, which the operator does not export\n\t%s", q.source, name, q.expr))
			}
		}
	}
	return problems
}
