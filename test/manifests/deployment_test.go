package manifests

import (
	"flag"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/dezai/uredis-backup-operator/internal/bench"
	"github.com/dezai/uredis-backup-operator/internal/operator"
)

// managerContainerName is the manager's container in the Deployment.
const managerContainerName = "manager"

// managerDeployment returns the Deployment that config/default installs.
func managerDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	return typed[appsv1.Deployment](t, single(t, build(t, "config/default"), "Deployment"))
}

// managerContainer returns the manager's container of the Deployment.
func managerContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == managerContainerName {
			return c
		}
	}
	t.Fatalf("the Deployment %s has no container named %q", d.Name, managerContainerName)
	return corev1.Container{}
}

// TestManagerDeploymentIsHardened checks, field by field, what the
// restricted Pod Security Standard and good practice ask of the manager.
// TestManagerPodMeetsRestrictedPodSecurity has the API server judge the
// same pod template.
func TestManagerDeploymentIsHardened(t *testing.T) {
	d := managerDeployment(t)
	pod := d.Spec.Template.Spec
	c := managerContainer(t, d)
	podSC := pod.SecurityContext
	if podSC == nil {
		podSC = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	// The container's settings override the pod's.
	runAsNonRoot, runAsUser, seccomp := podSC.RunAsNonRoot, podSC.RunAsUser, podSC.SeccompProfile
	if sc.RunAsNonRoot != nil {
		runAsNonRoot = sc.RunAsNonRoot
	}
	if sc.RunAsUser != nil {
		runAsUser = sc.RunAsUser
	}
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}

	checks := []struct {
		name  string
		check func(g Gomega)
	}{
		{"runs as non-root", func(g Gomega) {
			g.Expect(runAsNonRoot).To(HaveValue(BeTrue()), "securityContext.runAsNonRoot")
			if runAsUser != nil {
				g.Expect(*runAsUser).NotTo(BeZero(), "securityContext.runAsUser")
			}
		}},
		{"cannot escalate privileges", func(g Gomega) {
			g.Expect(sc.AllowPrivilegeEscalation).To(HaveValue(BeFalse()), "securityContext.allowPrivilegeEscalation")
			g.Expect(ptr.Deref(sc.Privileged, false)).To(BeFalse(), "privileged")
		}},
		{"has a read-only root filesystem", func(g Gomega) {
			g.Expect(sc.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()), "securityContext.readOnlyRootFilesystem")
		}},
		{"drops all capabilities", func(g Gomega) {
			g.Expect(sc.Capabilities).NotTo(BeNil(), "securityContext.capabilities")
			g.Expect(sc.Capabilities.Drop).To(ContainElement(corev1.Capability("ALL")))
			g.Expect(sc.Capabilities.Add).To(BeEmpty())
		}},
		{"uses the RuntimeDefault seccomp profile", func(g Gomega) {
			g.Expect(seccomp).NotTo(BeNil(), "securityContext.seccompProfile")
			g.Expect(seccomp.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
		}},
		{"shares nothing with the host", func(g Gomega) {
			g.Expect([]bool{pod.HostNetwork, pod.HostPID, pod.HostIPC}).To(HaveEach(BeFalse()))
		}},
		{"requests and limits CPU and memory", func(g Gomega) {
			for _, resource := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				g.Expect(c.Resources.Requests).To(HaveKey(resource), "no %s request", resource)
				g.Expect(c.Resources.Limits).To(HaveKey(resource), "no %s limit", resource)
			}
		}},
		{"runs within the memory the benchmark measured it in", func(g Gomega) {
			// internal/bench runs the manager with the same GOMEMLIMIT
			// (docs/benchmarks.md); the soft limit sits below the hard one,
			// so that the collector works harder before the kernel kills.
			// The limit is the benchmark's memory goal at 10,000 resources.
			limit := c.Resources.Limits[corev1.ResourceMemory]
			g.Expect(limit.String()).To(Equal("128Mi"))
			var gomemlimit string
			for _, env := range c.Env {
				if env.Name == "GOMEMLIMIT" {
					gomemlimit = env.Value
				}
			}
			g.Expect(gomemlimit).To(Equal(bench.ShippedMemoryLimit))
			soft, err := resource.ParseQuantity(strings.TrimSuffix(gomemlimit, "B"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(soft.Cmp(limit)).To(Equal(-1), "GOMEMLIMIT %s must be below the limit %s", gomemlimit, limit.String())
		}},
		{"has liveness and readiness probes", func(g Gomega) {
			g.Expect(c.LivenessProbe).NotTo(BeNil(), "no liveness probe")
			g.Expect(c.ReadinessProbe).NotTo(BeNil(), "no readiness probe")
		}},
		{"elects a leader", func(g Gomega) {
			g.Expect(c.Args).To(ContainElement(BeElementOf("--leader-elect", "--leader-elect=true")))
		}},
		{"has its image set by kustomize", func(g Gomega) {
			// config/manager's images transformer replaces the placeholder.
			g.Expect(c.Image).NotTo(HavePrefix("controller:"))
			g.Expect(c.Image).NotTo(Equal("controller"))
		}},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) { tc.check(NewWithT(t)) })
	}
}

// TestOperatorNamespaceEnforcesRestricted checks that the namespace
// config/default creates for the operator enforces the restricted Pod
// Security Standard.
func TestOperatorNamespaceEnforcesRestricted(t *testing.T) {
	objects := build(t, "config/default")
	ns := single(t, objects, "Namespace")
	NewWithT(t).Expect(ns.GetName()).To(Equal(single(t, objects, "Deployment").GetNamespace()))
	NewWithT(t).Expect(ns.GetLabels()).To(HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"))
}

// TestDefaultWiring checks that the objects of config/default refer to each
// other correctly after kustomize's name prefix and namespace: each one is
// valid on its own (TestServerSideDryRun), but a wrong reference would
// only show on a real cluster.
func TestDefaultWiring(t *testing.T) {
	objects := build(t, "config/default")
	d := managerDeployment(t)
	pod := d.Spec.Template.Spec
	c := managerContainer(t, d)
	find := func(kind, namespace, name string) *unstructured.Unstructured {
		return findObject(objects, kind, namespace, name)
	}

	t.Run("the Deployment's ServiceAccount exists", func(t *testing.T) {
		NewWithT(t).Expect(find("ServiceAccount", d.Namespace, pod.ServiceAccountName)).NotTo(BeNil(),
			"no ServiceAccount %s/%s", d.Namespace, pod.ServiceAccountName)
	})

	t.Run("bindings refer to roles and accounts that exist", func(t *testing.T) {
		g := NewWithT(t)
		for _, b := range bindings(t, objects) {
			roleNamespace := ""
			if b.roleRef.Kind == "Role" {
				roleNamespace = b.namespace
			}
			g.Expect(find(b.roleRef.Kind, roleNamespace, b.roleRef.Name)).NotTo(BeNil(), "%s refers to a missing %s %s", b.name, b.roleRef.Kind, b.roleRef.Name)
			for _, s := range b.subjects {
				g.Expect(s.Kind).To(Equal("ServiceAccount"), "%s binds a %s", b.name, s.Kind)
				g.Expect(find("ServiceAccount", s.Namespace, s.Name)).NotTo(BeNil(), "%s binds a missing ServiceAccount %s/%s", b.name, s.Namespace, s.Name)
			}
		}
	})

	t.Run("the manager's account holds manager-role, the leader election role and metrics-auth-role", func(t *testing.T) {
		var roles []string
		for _, b := range bindings(t, objects) {
			for _, s := range b.subjects {
				if s.Name == pod.ServiceAccountName && s.Namespace == d.Namespace {
					roles = append(roles, b.roleRef.Kind+"/"+b.roleRef.Name)
				}
			}
		}
		NewWithT(t).Expect(roles).To(ConsistOf(
			And(HavePrefix("ClusterRole/"), HaveSuffix("manager-role")),
			And(HavePrefix("Role/"), HaveSuffix("leader-election-role")),
			And(HavePrefix("ClusterRole/"), HaveSuffix("metrics-auth-role")),
		))
	})

	t.Run("the metrics Service reaches the manager's metrics address", func(t *testing.T) {
		g := NewWithT(t)
		service := typed[corev1.Service](t, single(t, objects, "Service"))
		g.Expect(service.Namespace).To(Equal(d.Namespace))
		g.Expect(service.Spec.Selector).NotTo(BeEmpty())
		for key, value := range service.Spec.Selector {
			g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue(key, value), "the Service does not select the manager's pods")
		}
		g.Expect(service.Spec.Ports).To(HaveLen(1))
		g.Expect(containerPort(c, service.Spec.Ports[0].TargetPort)).To(Equal(flagPort(t, c.Args, "metrics-bind-address")))
		g.Expect(service.Spec.Ports[0].Name).To(Equal("https"), "the metrics are served over HTTPS")
		g.Expect(service.Spec.Ports[0].Port).To(Equal(int32(8443)))
	})

	t.Run("the metrics are served securely", func(t *testing.T) {
		g := NewWithT(t)
		opts := managerOptions(t, c)
		g.Expect(opts.MetricsSecure).To(BeTrue(), "the Deployment turns --metrics-secure off")
		g.Expect(opts.MetricsBindAddress).NotTo(Equal("0"), "the Deployment turns the metrics off")
		g.Expect(c.Args).NotTo(ContainElement(HavePrefix("--metrics-secure")), "secure is the default; the Deployment needs no flag for it")
	})

	t.Run("the probes reach the manager's health address", func(t *testing.T) {
		g := NewWithT(t)
		healthPort := flagPort(t, c.Args, "health-probe-bind-address")
		for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			g.Expect(probe).NotTo(BeNil(), "no %s probe", name)
			g.Expect(probe.HTTPGet).NotTo(BeNil(), "the %s probe is not an HTTP probe", name)
			g.Expect(containerPort(c, probe.HTTPGet.Port)).To(Equal(healthPort), "the %s probe's port", name)
		}
	})
}

// binding is a RoleBinding or ClusterRoleBinding.
type binding struct {
	name, namespace string
	roleRef         rbacv1.RoleRef
	subjects        []rbacv1.Subject
}

func bindings(t *testing.T, objects []*unstructured.Unstructured) []binding {
	var all []binding
	for _, o := range ofKind(objects, "RoleBinding") {
		b := typed[rbacv1.RoleBinding](t, o)
		all = append(all, binding{describe(o), b.Namespace, b.RoleRef, b.Subjects})
	}
	for _, o := range ofKind(objects, "ClusterRoleBinding") {
		b := typed[rbacv1.ClusterRoleBinding](t, o)
		all = append(all, binding{describe(o), "", b.RoleRef, b.Subjects})
	}
	return all
}

// containerPort resolves a Service target port or probe port (a number or
// the name of a container port) to the container's port number; 0 when
// the container declares no such port.
func containerPort(c corev1.Container, port intstr.IntOrString) int32 {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort
		}
	}
	return 0
}

// flagPort returns the port of the address flag --name in args (either
// --name=host:port or --name host:port), or of its default when args do
// not set it.
func flagPort(t *testing.T, args []string, name string) int32 {
	t.Helper()
	flags := flag.NewFlagSet("manager", flag.ContinueOnError)
	// The flags main.go registers.
	opts := operator.DefaultOptions()
	opts.BindFlags(flags)
	(&zap.Options{}).BindFlags(flags)
	flags.String("kubeconfig", "", "")
	flags.SetOutput(io.Discard)
	if err := flags.Parse(args); err != nil {
		t.Fatalf("the manager's args %q: %v", args, err)
	}
	value := flags.Lookup(name).Value.String()
	_, port, err := net.SplitHostPort(value)
	if err != nil {
		t.Fatalf("--%s=%s: %v", name, value, err)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatalf("--%s=%s: %v", name, value, err)
	}
	return int32(n)
}
