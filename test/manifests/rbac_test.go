package manifests

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// managerRules is everything the manager may do. config/rbac/role.yaml is
// generated from the +kubebuilder:rbac markers in controllers/: a marker
// that grants more makes TestManagerRoleIsExactlyWhatIsExpected fail, and
// the permission must then be added here, in review, on purpose.
var managerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create", "get", "list", "patch", "watch"}},
	// Only to restart the workloads of spec.rolloutRestartTargets: read one
	// (uncached) and patch two pod template annotations, which is all the
	// admission policy lets these patches change.
	{APIGroups: []string{"apps"}, Resources: []string{"daemonsets", "deployments", "statefulsets"}, Verbs: []string{"get", "patch"}},
	// get: to match --operator-credentials-namespace-selector; list and
	// watch: the namespaces a ClusterRedisBackupExport selects by label.
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	{APIGroups: []string{"uredis.dezai.com"}, Resources: []string{"clusterredisbackupexports", "redisbackupexports"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"uredis.dezai.com"}, Resources: []string{"clusterredisbackupexports/finalizers", "redisbackupexports/finalizers"}, Verbs: []string{"update"}},
	{APIGroups: []string{"uredis.dezai.com"}, Resources: []string{"clusterredisbackupexports/status", "redisbackupexports/status"}, Verbs: []string{"patch"}},
}

// leaderElectionRules is everything the leader election Role grants: the
// Lease lock, and the core Events the leader elector records.
var leaderElectionRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create", "delete", "get", "list", "patch", "update", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
}

// metricsAuthRules is everything metrics-auth-role grants the manager: to
// have the API server authenticate (TokenReview) and authorize
// (SubjectAccessReview) each metrics scrape. It is bound cluster-wide in
// every install, config/namespaced included.
var metricsAuthRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
	{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
}

// metricsReaderRules is everything metrics-reader grants whoever scrapes.
var metricsReaderRules = []rbacv1.PolicyRule{
	{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}},
}

func TestManagerRoleIsExactlyWhatIsExpected(t *testing.T) {
	g := NewWithT(t)
	role := typed[rbacv1.ClusterRole](t, single(t, readObjects(t, "config/rbac/role.yaml"), "ClusterRole"))
	g.Expect(role.Name).To(Equal("manager-role"))
	g.Expect(role.AggregationRule).To(BeNil(), "manager-role must not aggregate other roles")
	expectExactly(g, role.Rules, managerRules, "config/rbac/role.yaml (from the +kubebuilder:rbac markers)")
}

func TestLeaderElectionRoleGrantsOnlyLeases(t *testing.T) {
	g := NewWithT(t)
	role := typed[rbacv1.Role](t, single(t, build(t, "config/rbac"), "Role"))
	g.Expect(role.Name).To(Equal("leader-election-role"))
	expectExactly(g, role.Rules, leaderElectionRules, "the leader election Role")
}

// TestMetricsRolesAreExactlyWhatIsExpected checks the two ClusterRoles of
// the secure metrics endpoint, as config/rbac renders them: neither may grow
// without this test changing, and neither is aggregated into, or from,
// another role.
func TestMetricsRolesAreExactlyWhatIsExpected(t *testing.T) {
	objects := build(t, "config/rbac")
	for name, expected := range map[string][]rbacv1.PolicyRule{
		"metrics-auth-role": metricsAuthRules,
		"metrics-reader":    metricsReaderRules,
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			var role *rbacv1.ClusterRole
			for _, o := range ofKind(objects, "ClusterRole") {
				if o.GetName() == name {
					role = typed[rbacv1.ClusterRole](t, o)
				}
			}
			g.Expect(role).NotTo(BeNil(), "config/rbac has no ClusterRole %s", name)
			g.Expect(role.AggregationRule).To(BeNil())
			for label := range role.Labels {
				g.Expect(label).NotTo(HavePrefix("rbac.authorization.k8s.io/aggregate-to-"), "%s must not be aggregated into built-in roles", name)
			}
			expectExactly(g, role.Rules, expected, "ClusterRole "+name)
		})
	}
}

// TestNoWildcardRules checks every Role and ClusterRole of every
// kustomization for "*" in any field of any rule.
func TestNoWildcardRules(t *testing.T) {
	for _, dir := range kustomizations(t) {
		t.Run(dir, func(t *testing.T) {
			g := NewWithT(t)
			objects := build(t, dir)
			for _, o := range append(ofKind(objects, "Role"), ofKind(objects, "ClusterRole")...) {
				for _, rule := range typed[rbacv1.ClusterRole](t, o).Rules {
					fields := slices.Concat(rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames, rule.NonResourceURLs)
					g.Expect(fields).NotTo(ContainElement(ContainSubstring("*")), "%s has a wildcard rule: %+v", describe(o), rule)
				}
			}
		})
	}
}

// expectExactly expects the rules to grant exactly the expected
// permissions (a failure lists the extra and missing ones), in rules of the
// same shape.
func expectExactly(g Gomega, rules, expected []rbacv1.PolicyRule, what string) {
	g.Expect(permissions(rules)).To(ConsistOf(permissions(expected)), "%s grants other permissions than expected", what)
	g.Expect(normalized(rules)).To(Equal(normalized(expected)), "%s groups its rules differently than expected", what)
}

// permissions expands rules into one "verb group/resource[/name]" (or
// "verb url") string per permission.
func permissions(rules []rbacv1.PolicyRule) []string {
	var all []string
	for _, r := range rules {
		for _, verb := range r.Verbs {
			for _, url := range r.NonResourceURLs {
				all = append(all, verb+" "+url)
			}
			names := r.ResourceNames
			if len(names) == 0 {
				names = []string{""}
			}
			for _, group := range r.APIGroups {
				if group == "" {
					group = "core"
				}
				for _, resource := range r.Resources {
					for _, name := range names {
						all = append(all, strings.TrimSuffix(fmt.Sprintf("%s %s/%s/%s", verb, group, resource, name), "/"))
					}
				}
			}
		}
	}
	return all
}

// normalized returns the rules with every list sorted (and empty lists
// nil), in a fixed order, so that two equivalent rule sets compare equal.
func normalized(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	sorted := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return slices.Sorted(slices.Values(s))
	}
	out := make([]rbacv1.PolicyRule, 0, len(rules))
	for _, r := range rules {
		out = append(out, rbacv1.PolicyRule{
			APIGroups:       sorted(r.APIGroups),
			Resources:       sorted(r.Resources),
			Verbs:           sorted(r.Verbs),
			ResourceNames:   sorted(r.ResourceNames),
			NonResourceURLs: sorted(r.NonResourceURLs),
		})
	}
	slices.SortFunc(out, func(a, b rbacv1.PolicyRule) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

// TestViewerRoleIsNotGrantedToEveryViewer: the status holds a bearer link,
// so reading RedisBackupExports must not come with the built-in view role,
// which deliberately leaves Secrets out.
func TestViewerRoleIsNotGrantedToEveryViewer(t *testing.T) {
	g := NewWithT(t)
	role := typed[rbacv1.ClusterRole](t, single(t, readObjects(t, "config/rbac/redisbackupexport_viewer_role.yaml"), "ClusterRole"))
	g.Expect(role.Labels).NotTo(HaveKey("rbac.authorization.k8s.io/aggregate-to-view"))
}

// TestRestoreSampleRole: the sample restore Job's Role allows exactly get
// and patch on the one RedisBackupExport its download step refreshes, and
// get on that export's Secret; it is bound to the Job's ServiceAccount;
// the names are the ones the Job passes to restore.sh; and the token is
// mounted into the download step only, never into the container that talks
// to the target Redis.
func TestRestoreSampleRole(t *testing.T) {
	g := NewWithT(t)
	objects := build(t, "config/samples/restore")
	role := typed[rbacv1.Role](t, single(t, objects, "Role"))
	expectExactly(g, role.Rules, []rbacv1.PolicyRule{
		{APIGroups: []string{"uredis.dezai.com"}, Resources: []string{"redisbackupexports"}, ResourceNames: []string{"nightly"}, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"nightly-link"}, Verbs: []string{"get"}},
	}, "the restore sample's Role")

	binding := typed[rbacv1.RoleBinding](t, single(t, objects, "RoleBinding"))
	account := typed[corev1.ServiceAccount](t, single(t, objects, "ServiceAccount"))
	g.Expect(binding.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name}))
	g.Expect(binding.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Name: account.Name}}))

	job := typed[batchv1.Job](t, single(t, objects, "Job"))
	pod := job.Spec.Template.Spec
	g.Expect(pod.ServiceAccountName).To(Equal(account.Name))
	g.Expect(pod.AutomountServiceAccountToken).To(HaveValue(BeFalse()), "no token in every container")
	g.Expect(pod.InitContainers).To(HaveLen(1))
	download := pod.InitContainers[0]
	envOf := func(c corev1.Container) map[string]string {
		values := map[string]string{}
		for _, e := range c.Env {
			values[e.Name] = e.Value
		}
		return values
	}
	g.Expect(envOf(download)).To(HaveKeyWithValue("EXPORT_NAME", role.Rules[0].ResourceNames[0]))
	g.Expect(envOf(download)).To(HaveKeyWithValue("LINK_SECRET", role.Rules[1].ResourceNames[0]))
	for _, e := range download.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			g.Expect(e.ValueFrom.SecretKeyRef.Name).To(Equal(role.Rules[1].ResourceNames[0]), "the link comes from the Secret the Role names")
		}
	}
	const tokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	mountsToken := func(c corev1.Container) bool {
		for _, m := range c.VolumeMounts {
			if m.MountPath == tokenDir {
				return true
			}
		}
		return false
	}
	g.Expect(mountsToken(download)).To(BeTrue(), "the download step needs the token for the refresh guard")
	for _, c := range pod.Containers {
		g.Expect(mountsToken(c)).To(BeFalse(), "container %s must not get the token", c.Name)
	}
}
