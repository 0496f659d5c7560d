package manifests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// What the policy says when the manager changes more of a workload than a
// restart does, or creates or deletes one.
const (
	onlyRestartAnnotations = "may only set the pod template annotations uredis.dezai.com/restarted-at and uredis.dezai.com/restarted-for of a Deployment, StatefulSet or DaemonSet, and change nothing else"
	noWorkloadCreateDelete = "may not create or delete Deployments, StatefulSets or DaemonSets"
)

// restartPatch is the patch the operator sends to restart a workload.
const restartPatch = `{"spec":{"template":{"metadata":{"annotations":{"uredis.dezai.com/restarted-at":"2026-11-30T10:00:00Z","uredis.dezai.com/restarted-for":"0123456789abcdef0123456789abcdef"}}}}}`

// lpWorkloads are a Deployment, a StatefulSet and a DaemonSet named name
// in ns, as a user would run them.
func lpWorkloads(ns, name string) []client.Object {
	labels := map[string]string{"app": name}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"team": "restore"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
	}
	selector := &metav1.LabelSelector{MatchLabels: labels}
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"team": "restore"}}
	}
	return []client.Object{
		&appsv1.Deployment{ObjectMeta: meta(), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: selector, Template: template}},
		&appsv1.StatefulSet{ObjectMeta: meta(), Spec: appsv1.StatefulSetSpec{ServiceName: name, Selector: selector, Template: template}},
		&appsv1.DaemonSet{ObjectMeta: meta(), Spec: appsv1.DaemonSetSpec{Selector: selector, Template: template}},
	}
}

// testWorkloads: RBAC lets the manager get and patch Deployments,
// StatefulSets and DaemonSets, and the policy holds the patches to the two
// restart annotations of the pod template, so that a stolen token cannot
// change what a workload runs (its image, command, service account), scale
// it, or delete it. Each refusal is also a server-side dry run, and the
// same request passes for a cluster administrator (dry run).
func (in *installation) testWorkloads(t *testing.T) {
	ctx := context.Background()
	ns := in.writableNamespace()
	for _, w := range lpWorkloads(ns, "lp-restarted") {
		NewWithT(t).Expect(env.Client.Create(ctx, w)).To(Succeed())
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), w) })
	}
	for _, w := range lpWorkloads(ns, "lp-restarted") {
		kind := fmt.Sprintf("%T", w)[len("*v1."):]
		t.Run(kind, func(t *testing.T) {
			mergePatch := func(patch string) func(client.Client, bool) error {
				return func(c client.Client, dry bool) error {
					var opts []client.PatchOption
					if dry {
						opts = append(opts, client.DryRunAll)
					}
					return c.Patch(ctx, w.DeepCopyObject().(client.Object), client.RawPatch(types.MergePatchType, []byte(patch)), opts...)
				}
			}
			refused := []struct {
				name  string
				patch string
			}{
				{"change the image", `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.example/evil:1"}]}}}}`},
				{"run as another service account", `{"spec":{"template":{"spec":{"serviceAccountName":"admin"}}}}`},
				{"restart and change the image in one patch", `{"spec":{"template":{"metadata":{"annotations":{"uredis.dezai.com/restarted-at":"2026-11-30T10:00:00Z"}},"spec":{"containers":[{"name":"app","image":"registry.example/evil:1"}]}}}}`},
				{"set another pod template annotation", `{"spec":{"template":{"metadata":{"annotations":{"sidecar.example/inject":"true"}}}}}`},
				{"remove a pod template annotation", `{"spec":{"template":{"metadata":{"annotations":{"team":null}}}}}`},
				{"change minReadySeconds", `{"spec":{"minReadySeconds":5}}`},
				{"change revisionHistoryLimit", `{"spec":{"revisionHistoryLimit":1}}`},
				{"label the object", `{"metadata":{"labels":{"team":"other"}}}`},
				{"annotate the object", `{"metadata":{"annotations":{"note":"x"}}}`},
				{"add a finalizer", `{"metadata":{"finalizers":["example.com/block"]}}`},
			}
			if kind != "DaemonSet" {
				refused = append(refused, struct{ name, patch string }{"scale it", `{"spec":{"replicas":0}}`})
			}
			for _, r := range refused {
				t.Run(r.name, func(t *testing.T) {
					g := NewWithT(t)
					g.Expect(mergePatch(r.patch)(in.manager, false)).To(in.refusedByPolicy(onlyRestartAnnotations), "as the manager")
					g.Expect(mergePatch(r.patch)(in.manager, true)).To(in.refusedByPolicy(onlyRestartAnnotations), "as the manager, server-side dry run")
					g.Expect(mergePatch(r.patch)(env.Client, true)).To(Succeed(), "as a cluster administrator, server-side dry run")
				})
			}
			t.Run("the restart patch passes", func(t *testing.T) {
				g := NewWithT(t)
				g.Expect(in.manager.Get(ctx, client.ObjectKeyFromObject(w), w.DeepCopyObject().(client.Object))).To(Succeed(), "get")
				g.Expect(mergePatch(restartPatch)(in.manager, true)).To(Succeed(), "dry run")
				g.Expect(mergePatch(restartPatch)(in.manager, false)).To(Succeed())
				got := w.DeepCopyObject().(client.Object)
				g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(w), got)).To(Succeed())
				g.Expect(got.GetGeneration()).To(Equal(int64(2)), "one change of the spec")
			})
			t.Run("create and delete are refused", func(t *testing.T) {
				g := NewWithT(t)
				created := w.DeepCopyObject().(client.Object)
				created.SetName("lp-created")
				created.SetResourceVersion("")
				g.Expect(in.manager.Create(ctx, created, client.DryRunAll)).To(in.refusedByRBACOn("create", kind))
				g.Expect(in.manager.Delete(ctx, w.DeepCopyObject().(client.Object), client.DryRunAll)).To(in.refusedByRBACOn("delete", kind))
			})
		})
	}
	t.Run("create and delete are refused even when another role grants them", func(t *testing.T) {
		g := NewWithT(t)
		role := &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lp-manage-deployments"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"create", "delete"}}},
		}
		binding := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lp-manage-deployments"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: in.account.Namespace, Name: in.account.Name}},
		}
		for _, o := range []client.Object{role, binding} {
			g.Expect(env.Client.Create(ctx, o)).To(Succeed())
			t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
		}
		deployment := lpWorkloads(ns, "lp-restarted")[0]
		// RBAC takes a moment; dry runs, so that nothing is deleted if the
		// policy fails to refuse.
		g.Eventually(func() error {
			return in.manager.Delete(ctx, deployment.DeepCopyObject().(client.Object), client.DryRunAll)
		}).
			WithTimeout(policyWaitTimeout).WithPolling(200 * time.Millisecond).Should(in.refusedByPolicy(noWorkloadCreateDelete))
		created := lpWorkloads(ns, "lp-created")[0]
		g.Expect(in.manager.Create(ctx, created, client.DryRunAll)).To(in.refusedByPolicy(noWorkloadCreateDelete))
	})

	// Nothing the refused requests asked for happened.
	g := NewWithT(t)
	d := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "lp-restarted"}, d)).To(Succeed())
	g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example/app:1"))
	g.Expect(d.Spec.Replicas).To(HaveValue(BeEquivalentTo(2)))
	g.Expect(d.Labels).To(Equal(map[string]string{"team": "restore"}))
	g.Expect(d.Finalizers).To(BeEmpty())
	g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue(uredisv1alpha1.AnnotationRestartedFor, "0123456789abcdef0123456789abcdef"))
	g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue("team", "restore"))
}

// refusedByRBACOn is refusedByRBAC for a resource of group apps.
func (in *installation) refusedByRBACOn(verb, kind string) OmegaMatcher {
	return And(
		WithTransform(apierrors.IsForbidden, BeTrue()),
		MatchError(ContainSubstring(fmt.Sprintf("User %q cannot %s resource \"%ss\" in API group \"apps\"", in.username, verb, strings.ToLower(kind)))),
	)
}
