package manifests

// The Helm chart, rendered by the helm CLI (`helm template`), held to
// config/: the same objects, RBAC, CRD, admission policy and manager
// container as kustomize builds; accepted by the API server (server-side dry
// run); its pod admitted under the restricted Pod Security Standard; its
// values checked by the schema. helm_upgrade_test.go installs, upgrades and
// uninstalls it with the same CLI.

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// chartDir is the chart, relative to the repository root.
	chartDir = "charts/uredis-backup-operator"
	// chartRelease is the release the tests render: not the chart's name,
	// so that every name the chart derives carries a prefix of its own
	// (ubo-uredis-backup-operator-...), which the comparison must strip.
	chartRelease = "ubo"
	chartPrefix  = "ubo-uredis-backup-operator-"
	// configPrefix and configNamespace are config/default's namePrefix and
	// namespace; the chart is rendered into the same namespace.
	configPrefix    = "uredis-backup-operator-"
	configNamespace = "uredis-backup-operator-system"
)

// allOnValues turns every toggle of the chart on (`make helm-lint` lints
// the chart with it too).
var allOnValues = filepath.Join(chartDir, "ci", "all-on-values.yaml")

// runHelm runs the helm CLI from the repository root, with its own
// configuration, cache and data directories and the given kubeconfig (none:
// a path that does not exist, so that no command reaches a cluster by
// accident).
func runHelm(t *testing.T, kubeconfig string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	home := t.TempDir()
	if kubeconfig == "" {
		kubeconfig = filepath.Join(home, "no-kubeconfig")
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+kubeconfig,
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// renderChart runs `helm template` on the chart as release chartRelease in
// namespace, with more arguments (--set, --values), and returns its objects.
func renderChart(t *testing.T, namespace string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	args = append([]string{"template", chartRelease, chartDir, "--namespace", namespace}, args...)
	stdout, stderr, err := runHelm(t, "", args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	objects, err := decodeObjects(strings.NewReader(stdout))
	if err != nil {
		t.Fatalf("decoding the output of helm %s: %v", strings.Join(args, " "), err)
	}
	return objects
}

// TestChartAgreesWithConfig renders the chart with its default values and
// builds config/default, and compares them object by object: the same
// objects (but the Namespace, which Helm leaves to `--create-namespace`),
// the same rules in every Role and ClusterRole, the same bindings, the same
// CRD and admission policy, and the same manager container (arguments,
// environment, ports, probes, security contexts and resources). Then the
// same with the optional parts on (config/prometheus, config/alerts,
// config/dashboard; the chart's toggles), and for the namespaced install
// (config/namespaced; the chart's watchNamespaces).
func TestChartAgreesWithConfig(t *testing.T) {
	cases := []struct {
		name   string
		config func(t *testing.T) []*unstructured.Unstructured
		values []string
	}{
		{"config/default and the default values", func(t *testing.T) []*unstructured.Unstructured { return build(t, "config/default") }, nil},
		{"config/default with prometheus, alerts and dashboard, and the chart's toggles", func(t *testing.T) []*unstructured.Unstructured {
			return buildDefaultWith(t, "../prometheus", "../alerts", "../dashboard")
		}, []string{"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.dashboard.enabled=true"}},
		// config/namespaced's example namespaces.
		{"config/namespaced and watchNamespaces", func(t *testing.T) []*unstructured.Unstructured { return build(t, "config/namespaced") },
			[]string{"--set", "watchNamespaces={team-a,team-b}"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			compareInstalls(t,
				installed{"config", tc.config(t), configPrefix},
				installed{"the chart", renderChart(t, configNamespace, tc.values...), chartPrefix})
		})
	}
}

// installed is one side of a comparison: the objects of an install, and the
// prefix of every object's name.
type installed struct {
	what    string
	objects []*unstructured.Unstructured
	prefix  string
}

// key names an object independently of the name prefix: kind, namespace
// (for namespaced kinds only: kustomize sets one on cluster-scoped objects
// too) and the name without the prefix.
func (in installed) key(t *testing.T, o *unstructured.Unstructured) string {
	t.Helper()
	namespaced, err := env.Client.IsObjectNamespaced(o)
	if err != nil {
		t.Fatalf("the API server does not know %s: %v", describe(o), err)
	}
	namespace := ""
	if namespaced {
		namespace = o.GetNamespace()
	}
	return o.GetKind() + " " + namespace + "/" + strings.TrimPrefix(o.GetName(), in.prefix)
}

// compareInstalls expects chart to hold the objects of config (but the
// Namespace) and nothing else, each the same as config's where it matters
// (see comparable). It reports every difference, not only the first.
func compareInstalls(t *testing.T, config, chart installed) {
	t.Helper()
	index := func(in installed) map[string]*unstructured.Unstructured {
		objects := map[string]*unstructured.Unstructured{}
		for _, o := range in.objects {
			if o.GetKind() == "Namespace" && in.what == "config" {
				continue
			}
			key := in.key(t, o)
			if _, twice := objects[key]; twice {
				t.Errorf("%s renders %s twice", in.what, key)
			}
			objects[key] = o
		}
		return objects
	}
	configObjects, chartObjects := index(config), index(chart)
	for _, key := range slices.Sorted(maps.Keys(configObjects)) {
		if _, ok := chartObjects[key]; !ok {
			t.Errorf("config/ installs %s, the chart does not", key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(chartObjects)) {
		if _, ok := configObjects[key]; !ok {
			t.Errorf("the chart installs %s, config/ does not", key)
		}
	}

	for _, key := range slices.Sorted(maps.Keys(configObjects)) {
		chartObject, ok := chartObjects[key]
		if !ok {
			continue
		}
		want, got := comparable(t, config, configObjects[key]), comparable(t, chart, chartObject)
		for _, field := range slices.Sorted(maps.Keys(want)) {
			if !reflect.DeepEqual(got[field], want[field]) {
				t.Errorf("%s: %s differs\n  the chart: %s\n  config/:   %s", key, field, asJSON(t, got[field]), asJSON(t, want[field]))
			}
		}
	}
}

// asJSON shows a value in a failure message.
func asJSON(t *testing.T, v any) string {
	t.Helper()
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// comparable returns the parts of o that the chart must have as config/
// has them, by name, with the install's name prefix taken out of every
// name that refers to another object. Labels and annotations are the
// install tool's own, but for those that change what an object does
// (aggregation into the built-in roles, the dashboard sidecar's label).
// The image is left out: config/ names the local build, the chart its
// appVersion.
func comparable(t *testing.T, in installed, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	base := func(name string) string { return strings.TrimPrefix(name, in.prefix) }
	field := func(path ...string) any {
		value, _, err := unstructured.NestedFieldCopy(o.Object, path...)
		if err != nil {
			t.Fatalf("%s: %v", describe(o), err)
		}
		return value
	}
	labelsWithPrefix := func(prefix string) map[string]string {
		labels := map[string]string{}
		for key, value := range o.GetLabels() {
			if strings.HasPrefix(key, prefix) {
				labels[key] = value
			}
		}
		return labels
	}

	switch o.GetKind() {
	case "Role", "ClusterRole":
		// A Role has a ClusterRole's fields, but for the aggregation rule.
		rules := permissions(typed[rbacv1.ClusterRole](t, o).Rules)
		return map[string]any{
			"rules (as permissions)": slices.Compact(slices.Sorted(slices.Values(rules))),
			"aggregationRule":        field("aggregationRule"),
			"labels (rbac)":          labelsWithPrefix("rbac.authorization.k8s.io/"),
		}
	case "RoleBinding", "ClusterRoleBinding":
		// A RoleBinding has a ClusterRoleBinding's fields.
		b := typed[rbacv1.ClusterRoleBinding](t, o)
		var subjects []string
		for _, s := range b.Subjects {
			subjects = append(subjects, s.Kind+" "+s.Namespace+"/"+base(s.Name))
		}
		slices.Sort(subjects)
		return map[string]any{"roleRef": b.RoleRef.Kind + " " + base(b.RoleRef.Name), "subjects": subjects}
	case "ValidatingAdmissionPolicy":
		// The policy judges the manager's ServiceAccount by its name, which
		// is quoted in a match condition.
		spec, err := json.Marshal(field("spec"))
		if err != nil {
			t.Fatal(err)
		}
		account := "'" + typed[appsv1.Deployment](t, single(t, in.objects, "Deployment")).Spec.Template.Spec.ServiceAccountName + "'"
		if !bytes.Contains(spec, []byte(account)) {
			t.Fatalf("%s: the policy does not name the manager's ServiceAccount %s", in.what, account)
		}
		var normalized any
		if err := json.Unmarshal(bytes.ReplaceAll(spec, []byte(account), []byte("'<the manager>'")), &normalized); err != nil {
			t.Fatal(err)
		}
		return map[string]any{"spec": normalized}
	case "ValidatingAdmissionPolicyBinding":
		spec := field("spec").(map[string]any)
		spec["policyName"] = base(spec["policyName"].(string))
		return map[string]any{"spec": spec}
	case "Deployment":
		d := typed[appsv1.Deployment](t, o)
		pod := d.Spec.Template.Spec
		c := managerContainer(t, d)
		// The labels config/ selects the manager's pods by (its metrics
		// Service, config/network-policy).
		selected := map[string]string{}
		for _, key := range []string{"app.kubernetes.io/name", "control-plane"} {
			selected[key] = d.Spec.Template.Labels[key]
		}
		resources := map[string]string{}
		for kind, list := range map[string]corev1.ResourceList{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
			for name, quantity := range list {
				resources[kind+"."+string(name)] = quantity.String()
			}
		}
		return map[string]any{
			"replicas":                          d.Spec.Replicas,
			"pod labels":                        selected,
			"pod.serviceAccountName":            base(pod.ServiceAccountName),
			"pod.automountServiceAccountToken":  pod.AutomountServiceAccountToken,
			"pod.terminationGracePeriodSeconds": pod.TerminationGracePeriodSeconds,
			"pod.securityContext":               pod.SecurityContext,
			"pod.volumes":                       pod.Volumes,
			"pod.containers":                    len(pod.Containers),
			"container.command":                 c.Command,
			"container.args":                    slices.Sorted(slices.Values(c.Args)),
			"container.env":                     slices.SortedFunc(slices.Values(c.Env), func(a, b corev1.EnvVar) int { return strings.Compare(a.Name, b.Name) }),
			"container.ports":                   c.Ports,
			"container.livenessProbe":           c.LivenessProbe,
			"container.readinessProbe":          c.ReadinessProbe,
			"container.securityContext":         c.SecurityContext,
			"container.resources":               resources,
			"container.volumeMounts":            c.VolumeMounts,
		}
	case "Service":
		return map[string]any{"spec.ports": field("spec", "ports"), "spec.type": field("spec", "type")}
	case "ServiceMonitor":
		return map[string]any{"spec.endpoints": field("spec", "endpoints")}
	case "PrometheusRule":
		return map[string]any{"spec": field("spec")}
	case "ConfigMap":
		return map[string]any{"data": field("data"), "labels (grafana)": labelsWithPrefix("grafana_")}
	case "CustomResourceDefinition":
		return map[string]any{"spec": field("spec")}
	}
	// Anything else: all of it but the metadata.
	rest := o.DeepCopy().Object
	delete(rest, "metadata")
	return map[string]any{"everything but metadata": rest}
}

// chartRenders are the renders the dry-run, Pod Security and wiring tests
// check: the default values, and every toggle on.
var chartRenders = []struct {
	name string
	args []string
}{
	{"default values", nil},
	{"every toggle on", []string{"--values", allOnValues}},
}

// TestChartServerSideDryRun applies every object the chart renders to the
// API server with server-side apply in dry-run mode, with the default
// values and with every toggle on: the server validates each against its
// schema (the Prometheus Operator's kinds against the stand-ins TestMain
// installs) and runs the admission chain.
func TestChartServerSideDryRun(t *testing.T) {
	for _, render := range chartRenders {
		t.Run(render.name, func(t *testing.T) {
			const namespace = "manifest-test-chart"
			objects := renderChart(t, namespace, render.args...)
			var kinds []string
			for _, o := range objects {
				kinds = append(kinds, o.GetKind())
			}
			NewWithT(t).Expect(kinds).To(ContainElements("CustomResourceDefinition", "Deployment", "ClusterRole", "ValidatingAdmissionPolicy", "Service"))
			if render.args != nil {
				NewWithT(t).Expect(kinds).To(ContainElements("ServiceMonitor", "PrometheusRule", "ConfigMap", "RoleBinding"), "with every toggle on")
			}
			createNamespace(t, namespace, nil)
			ensureNamespaces(t, objects)
			for _, o := range objects {
				t.Run(describe(o), func(t *testing.T) { dryRunApply(t, o) })
			}
		})
	}
}

// testPriorityClass is the priorityClassName of ci/all-on-values.yaml: the
// API server admits a pod only with a PriorityClass that exists.
const testPriorityClass = "uredis-backup-operator-test"

// TestChartPodMeetsRestrictedPodSecurity has the API server admit the
// chart's Deployment and its pod (both dry-run) in a namespace that
// enforces the restricted Pod Security Standard, with the default values
// and with every toggle on (volumes for the CA bundle and the metrics
// certificate, more security context). PodSecurity enforces on pods, not
// on Deployments: the pod is the test; the control shows that it enforces.
func TestChartPodMeetsRestrictedPodSecurity(t *testing.T) {
	const namespace = "manifest-test-chart-restricted"
	createNamespace(t, namespace, map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	})
	priorityClass := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: testPriorityClass}, Value: 1000}
	if err := env.Client.Create(context.Background(), priorityClass); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for _, render := range chartRenders {
		t.Run(render.name, func(t *testing.T) {
			d := single(t, renderChart(t, namespace, render.args...), "Deployment")
			t.Run("the Deployment is accepted", func(t *testing.T) {
				NewWithT(t).Expect(env.Client.Create(context.Background(), d.DeepCopy(), client.DryRunAll, client.FieldOwner(fieldOwner))).To(Succeed())
			})
			expectRestrictedPodSecurity(t, namespace, typed[appsv1.Deployment](t, d).Spec.Template)
		})
	}
}

// TestChartWiring checks that the chart's objects refer to each other
// correctly, with the default values and with every toggle on: the
// manager's arguments are flags it knows, its ServiceAccount exists and is
// what the admission policy judges, the bindings refer to roles and accounts
// that exist, the metrics Service reaches the metrics port and the
// ServiceMonitor the Service, the probes the health port.
func TestChartWiring(t *testing.T) {
	for _, render := range chartRenders {
		t.Run(render.name, func(t *testing.T) {
			const namespace = "manifest-test-chart-wiring"
			objects := renderChart(t, namespace, render.args...)
			d := typed[appsv1.Deployment](t, single(t, objects, "Deployment"))
			c := managerContainer(t, d)
			account := d.Spec.Template.Spec.ServiceAccountName
			find := func(kind, namespace, name string) *unstructured.Unstructured {
				return findObject(objects, kind, namespace, name)
			}

			t.Run("the manager knows every argument and accepts them together", func(t *testing.T) {
				g := NewWithT(t)
				c := c
				c.Args = slices.Clone(c.Args)
				for i, arg := range c.Args {
					// The manager checks that the certificate's directory
					// holds tls.crt and tls.key: the chart mounts a Secret
					// there; the test gives it a directory with both.
					if dir, ok := strings.CutPrefix(arg, "--metrics-cert-dir="); ok {
						g.Expect(c.VolumeMounts).To(ContainElement(And(
							HaveField("MountPath", dir), HaveField("ReadOnly", true), HaveField("Name", "metrics-certs"))))
						g.Expect(d.Spec.Template.Spec.Volumes).To(ContainElement(HaveField("Secret.SecretName", "uredis-metrics-tls")))
						local := t.TempDir()
						for _, name := range []string{"tls.crt", "tls.key"} {
							g.Expect(os.WriteFile(filepath.Join(local, name), nil, 0o600)).To(Succeed())
						}
						c.Args[i] = "--metrics-cert-dir=" + local
					}
				}
				opts := managerOptions(t, c)
				// $POD_NAMESPACE, from the pod's namespace.
				g.Expect(c.Env).To(ContainElement(corev1.EnvVar{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}))
				opts.OperatorNamespace = namespace
				g.Expect(opts.Validate()).To(Succeed())
			})
			t.Run("the manager's ServiceAccount exists and the admission policy judges it", func(t *testing.T) {
				g := NewWithT(t)
				g.Expect(find("ServiceAccount", namespace, account)).NotTo(BeNil(), "no ServiceAccount %s/%s", namespace, account)
				conditions, _, _ := unstructured.NestedSlice(single(t, objects, "ValidatingAdmissionPolicy").Object, "spec", "matchConditions")
				var expressions []string
				for _, condition := range conditions {
					expressions = append(expressions, condition.(map[string]any)["expression"].(string))
				}
				g.Expect(expressions).To(ContainElement(ContainSubstring("'" + account + "'")))
				binding := single(t, objects, "ValidatingAdmissionPolicyBinding")
				policyName, _, _ := unstructured.NestedString(binding.Object, "spec", "policyName")
				g.Expect(policyName).To(Equal(single(t, objects, "ValidatingAdmissionPolicy").GetName()))
			})
			t.Run("bindings refer to roles and accounts that exist", func(t *testing.T) {
				g := NewWithT(t)
				all := bindings(t, objects)
				g.Expect(all).NotTo(BeEmpty())
				for _, b := range all {
					roleNamespace := ""
					if b.roleRef.Kind == "Role" {
						roleNamespace = b.namespace
					}
					g.Expect(find(b.roleRef.Kind, roleNamespace, b.roleRef.Name)).NotTo(BeNil(), "%s refers to a missing %s %s", b.name, b.roleRef.Kind, b.roleRef.Name)
					for _, s := range b.subjects {
						g.Expect(s).To(Equal(rbacv1.Subject{Kind: "ServiceAccount", Name: account, Namespace: namespace}), "%s binds another subject", b.name)
					}
				}
			})
			t.Run("the metrics Service reaches the manager's metrics port, the ServiceMonitor the Service", func(t *testing.T) {
				g := NewWithT(t)
				service := typed[corev1.Service](t, single(t, objects, "Service"))
				for key, value := range service.Spec.Selector {
					g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue(key, value), "the Service does not select the manager's pods")
				}
				g.Expect(d.Spec.Selector.MatchLabels).To(Equal(service.Spec.Selector))
				g.Expect(service.Spec.Ports).To(HaveLen(1))
				g.Expect(containerPort(c, service.Spec.Ports[0].TargetPort)).To(Equal(flagPort(t, c.Args, "metrics-bind-address")))
				for _, monitor := range ofKind(objects, "ServiceMonitor") {
					selector, _, _ := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
					g.Expect(selector).NotTo(BeEmpty())
					for key, value := range selector {
						g.Expect(service.Labels).To(HaveKeyWithValue(key, value), "the ServiceMonitor does not select the Service")
					}
					endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
					g.Expect(endpoints).To(HaveLen(1))
					g.Expect(endpoints[0]).To(HaveKeyWithValue("port", service.Spec.Ports[0].Name))
					g.Expect(endpoints[0]).To(HaveKeyWithValue("scheme", "https"))
				}
			})
			t.Run("the probes reach the manager's health port", func(t *testing.T) {
				g := NewWithT(t)
				for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
					g.Expect(probe).NotTo(BeNil(), "no %s probe", name)
					g.Expect(containerPort(c, probe.HTTPGet.Port)).To(Equal(flagPort(t, c.Args, "health-probe-bind-address")), "the %s probe's port", name)
				}
			})
		})
	}
}

// TestChartSecureMetricsByDefault checks what the chart's default values
// do with the metrics: HTTPS on 8443 with no flag (the manager's default),
// the manager allowed to review tokens and
// access, a metrics-reader role bound to nobody; and plain HTTP only with
// metrics.secure=false, which drops the reviews.
func TestChartSecureMetricsByDefault(t *testing.T) {
	roles := func(objects []*unstructured.Unstructured) map[string][]string {
		out := map[string][]string{}
		for _, o := range ofKind(objects, "ClusterRole") {
			out[strings.TrimPrefix(o.GetName(), chartPrefix)] = permissions(typed[rbacv1.ClusterRole](t, o).Rules)
		}
		return out
	}
	t.Run("secure", func(t *testing.T) {
		g := NewWithT(t)
		objects := renderChart(t, configNamespace, "--set", "metrics.serviceMonitor.enabled=true")
		c := managerContainer(t, typed[appsv1.Deployment](t, single(t, objects, "Deployment")))
		g.Expect(c.Args).To(ContainElement("--metrics-bind-address=:8443"))
		g.Expect(c.Args).NotTo(ContainElement(HavePrefix("--metrics-secure")))
		g.Expect(roles(objects)).To(HaveKeyWithValue("metrics-auth-role", ConsistOf("create authentication.k8s.io/tokenreviews", "create authorization.k8s.io/subjectaccessreviews")))
		g.Expect(roles(objects)).To(HaveKeyWithValue("metrics-reader", ConsistOf("get /metrics")))
		for _, b := range bindings(t, objects) {
			g.Expect(b.roleRef.Name).NotTo(HaveSuffix("metrics-reader"), "the chart binds metrics-reader")
		}
		service := typed[corev1.Service](t, single(t, objects, "Service"))
		g.Expect(service.Spec.Ports[0].Name).To(Equal("https"))
		g.Expect(service.Spec.Ports[0].Port).To(Equal(int32(8443)))
		endpoint, _, _ := unstructured.NestedSlice(single(t, objects, "ServiceMonitor").Object, "spec", "endpoints")
		g.Expect(endpoint[0]).To(And(
			HaveKeyWithValue("scheme", "https"),
			HaveKeyWithValue("bearerTokenFile", "/var/run/secrets/kubernetes.io/serviceaccount/token"),
			HaveKeyWithValue("tlsConfig", map[string]any{"insecureSkipVerify": true}),
		))
	})
	t.Run("plain HTTP when asked", func(t *testing.T) {
		g := NewWithT(t)
		objects := renderChart(t, configNamespace, "--set", "metrics.secure=false", "--set", "metrics.port=8080", "--set", "metrics.serviceMonitor.enabled=true")
		c := managerContainer(t, typed[appsv1.Deployment](t, single(t, objects, "Deployment")))
		g.Expect(c.Args).To(ContainElements("--metrics-bind-address=:8080", "--metrics-secure=false"))
		g.Expect(roles(objects)).NotTo(HaveKey("metrics-auth-role"))
		g.Expect(roles(objects)).NotTo(HaveKey("metrics-reader"))
		endpoint, _, _ := unstructured.NestedSlice(single(t, objects, "ServiceMonitor").Object, "spec", "endpoints")
		g.Expect(endpoint[0]).To(HaveKeyWithValue("scheme", "http"))
		g.Expect(endpoint[0]).NotTo(HaveKey("bearerTokenFile"))
	})
}

// TestChartValuesSchemaRejectsTypos checks that values.schema.json fails
// `helm template` and `helm lint` on a misspelt key, at the top level, in
// a nested object and in a values file, and on a value of the wrong type
// or outside its range; and, as the control, that the same value spelt
// right renders.
func TestChartValuesSchemaRejectsTypos(t *testing.T) {
	typoFile := filepath.Join(t.TempDir(), "typo-values.yaml")
	NewWithT(t).Expect(os.WriteFile(typoFile, []byte("crds:\n  keeep: false\n"), 0o644)).To(Succeed())
	rightFile := filepath.Join(t.TempDir(), "right-values.yaml")
	NewWithT(t).Expect(os.WriteFile(rightFile, []byte("crds:\n  keep: false\n"), 0o644)).To(Succeed())
	cases := []struct {
		name         string
		wrong, right []string
		want         string
	}{
		{"a misspelt top-level key", []string{"--set", "replica=2"}, []string{"--set", "replicas=2"}, "additional properties 'replica' not allowed"},
		{"a misspelt nested key", []string{"--set", "metrics.servicemonitor.enabled=true"}, []string{"--set", "metrics.serviceMonitor.enabled=true"}, "additional properties 'servicemonitor' not allowed"},
		{"a misspelt key in a values file", []string{"--values", typoFile}, []string{"--values", rightFile}, "additional properties 'keeep' not allowed"},
		{"a string for a number", []string{"--set-string", "replicas=2"}, []string{"--set", "replicas=2"}, "got string, want integer"},
		{"a port out of range", []string{"--set", "metrics.port=70000"}, []string{"--set", "metrics.port=9443"}, "maximum"},
		{"a log level zap does not know", []string{"--set", "logLevel=verbose"}, []string{"--set", "logLevel=debug"}, "does not match pattern"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, command := range [][]string{{"template", chartRelease, chartDir}, {"lint", "--strict", chartDir}} {
				g := NewWithT(t)
				stdout, stderr, err := runHelm(t, "", slices.Concat(command, tc.wrong)...)
				g.Expect(err).To(HaveOccurred(), "helm %s accepted %v", command[0], tc.wrong)
				g.Expect(stdout+stderr).To(ContainSubstring(tc.want), "helm %s %v", command[0], tc.wrong)
				_, stderr, err = runHelm(t, "", slices.Concat(command, tc.right)...)
				g.Expect(err).NotTo(HaveOccurred(), "helm %s refused %v: %s", command[0], tc.right, stderr)
			}
		})
	}
}

// TestChartRefusesInconsistentValues checks the chart's own checks of
// values that the schema cannot relate (each against a control that
// renders), and how GOMEMLIMIT follows the memory limit.
func TestChartRefusesInconsistentValues(t *testing.T) {
	cases := []struct {
		name         string
		wrong, right []string
		want         string
	}{
		{"replicas without leader election",
			[]string{"--set", "replicas=2", "--set", "leaderElection.enabled=false"},
			[]string{"--set", "replicas=2"},
			"replicas > 1 needs leaderElection.enabled"},
		{"namespaces allowed operator credentials there are none of",
			[]string{"--set", "operatorCredentials.namespaces={team-a}"},
			[]string{"--set", "operatorCredentials.namespaces={team-a}", "--set", "operatorCredentials.secretName=creds"},
			"there are none"},
		{"a CA bundle from a ConfigMap and a Secret",
			[]string{"--set", "api.caBundle.configMap=ca", "--set", "api.caBundle.secret=ca"},
			[]string{"--set", "api.caBundle.secret=ca"},
			"set configMap or secret, not both"},
		{"a metrics certificate for plain HTTP",
			[]string{"--set", "metrics.certSecret=tls", "--set", "metrics.secure=false"},
			[]string{"--set", "metrics.certSecret=tls"},
			"it needs metrics.secure"},
		{"a memory limit GOMEMLIMIT cannot follow",
			[]string{"--set", "resources.limits.memory=0.5Gi"},
			[]string{"--set", "resources.limits.memory=0.5Gi", "--set", "goMemLimit=350MiB"},
			"set goMemLimit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, stderr, err := runHelm(t, "", slices.Concat([]string{"template", chartRelease, chartDir}, tc.wrong)...)
			g.Expect(err).To(HaveOccurred(), "helm template accepted %v", tc.wrong)
			g.Expect(stderr).To(ContainSubstring(tc.want))
			renderChart(t, configNamespace, tc.right...)
		})
	}

	t.Run("GOMEMLIMIT follows the memory limit", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string // "" for no GOMEMLIMIT
		}{
			{nil, "90MiB"},
			{[]string{"--set", "resources.limits.memory=1Gi"}, "717MiB"},
			{[]string{"--set", "resources.limits.memory=256M"}, "171MiB"},
			{[]string{"--set", "resources.limits.memory=268435456"}, "179MiB"},
			{[]string{"--set", "goMemLimit=200MiB"}, "200MiB"},
			{[]string{"--set", "resources.limits=null"}, ""},
		} {
			c := managerContainer(t, typed[appsv1.Deployment](t, single(t, renderChart(t, configNamespace, tc.args...), "Deployment")))
			var got []string
			for _, e := range c.Env {
				if e.Name == "GOMEMLIMIT" {
					got = append(got, e.Value)
				}
			}
			if tc.want == "" {
				NewWithT(t).Expect(got).To(BeEmpty(), "%v", tc.args)
			} else {
				NewWithT(t).Expect(got).To(Equal([]string{tc.want}), "%v", tc.args)
			}
		}
	})
}

// TestChartKeepsTheCRDOnUninstall checks the rendered CRD's resource policy:
// helm.sh/resource-policy: keep by default (crds.keep), so that `helm
// uninstall` leaves them and every resource of theirs; none with crds.keep
// false; and no CRD at all with crds.enabled false. helm_upgrade_test.go
// uninstalls for real.
func TestChartKeepsTheCRDOnUninstall(t *testing.T) {
	g := NewWithT(t)
	crds := ofKind(renderChart(t, configNamespace), "CustomResourceDefinition")
	g.Expect(crds).To(HaveLen(2), "the RedisBackupExport and ClusterRedisBackupExport CRDs")
	for _, crd := range crds {
		g.Expect(crd.GetAnnotations()).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
	}
	crds = ofKind(renderChart(t, configNamespace, "--set", "crds.keep=false"), "CustomResourceDefinition")
	g.Expect(crds).To(HaveLen(2))
	for _, crd := range crds {
		g.Expect(crd.GetAnnotations()).NotTo(HaveKey("helm.sh/resource-policy"))
	}
	g.Expect(ofKind(renderChart(t, configNamespace, "--set", "crds.enabled=false"), "CustomResourceDefinition")).To(BeEmpty())
}
