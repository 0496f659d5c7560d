package manifests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestAlertsAndDashboardWhenEnabled enables config/prometheus,
// config/alerts and config/dashboard the way
// config/default/kustomization.yaml documents (uncommenting them), in a
// copy of config/, and checks that the PrometheusRule and the dashboard's
// ConfigMap land next to the metrics Service, that the ConfigMap carries the
// label Grafana's dashboard sidecar looks for and the dashboard as it is in
// the repository, and that the API server accepts them (dry-run).
func TestAlertsAndDashboardWhenEnabled(t *testing.T) {
	g := NewWithT(t)
	objects := buildDefaultWith(t, "../alerts", "../dashboard")
	service := single(t, objects, "Service")
	rule := single(t, objects, "PrometheusRule")
	g.Expect(rule.GetNamespace()).To(Equal(service.GetNamespace()), "the PrometheusRule belongs with the operator")
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	g.Expect(groups).NotTo(BeEmpty())

	var dashboards []*unstructured.Unstructured
	for _, cm := range ofKind(objects, "ConfigMap") {
		if cm.GetLabels()["grafana_dashboard"] == "1" {
			dashboards = append(dashboards, cm)
		}
	}
	g.Expect(dashboards).To(HaveLen(1), "want one ConfigMap labelled grafana_dashboard: \"1\"")
	dashboard := dashboards[0]
	g.Expect(dashboard.GetNamespace()).To(Equal(service.GetNamespace()))
	want, err := os.ReadFile(filepath.Join(repoRoot, "config", "dashboard", "uredis-backup-operator.json"))
	g.Expect(err).NotTo(HaveOccurred())
	data, _, _ := unstructured.NestedStringMap(dashboard.Object, "data")
	g.Expect(data).To(HaveLen(1))
	g.Expect(data).To(HaveKeyWithValue("uredis-backup-operator.json", string(want)))
	var parsed struct {
		UID    string `json:"uid"`
		Title  string `json:"title"`
		Panels []any  `json:"panels"`
	}
	g.Expect(json.Unmarshal(want, &parsed)).To(Succeed(), "the dashboard is not valid JSON")
	g.Expect(parsed.UID).NotTo(BeEmpty(), "a dashboard without a uid is duplicated on every sidecar reload")
	g.Expect(parsed.Panels).NotTo(BeEmpty())

	ensureNamespaces(t, objects)
	for _, o := range objects {
		dryRunApply(t, o)
	}
}
