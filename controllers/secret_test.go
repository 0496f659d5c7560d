package controllers

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

func TestHoldsStatusLink(t *testing.T) {
	export := exportWithLink()
	good := func() *corev1.Secret {
		data := secretData(exportTarget(export), linkData{backupPath: export.Status.BackupPath, innerBackupPath: "https://inner.example.com/x", backupID: "b", expiresAt: export.Status.ExpiresAt.Time})
		secret := &corev1.Secret{}
		shapeSecret(secret, exportTarget(export), plain(data))
		return secret
	}
	tests := []struct {
		name   string
		mutate func(*corev1.Secret)
		want   bool
	}{
		{"untouched", func(*corev1.Secret) {}, true},
		{"link edited", func(s *corev1.Secret) { s.Data[uredisv1alpha1.KeyBackupPath] = []byte("https://evil.example.com/") }, false},
		{"inner link edited", func(s *corev1.Secret) { s.Data[uredisv1alpha1.KeyInnerBackupPath] = []byte("x") }, false},
		{"key added", func(s *corev1.Secret) { s.Data["extra"] = []byte("x") }, false},
		{"link and hash forged together", func(s *corev1.Secret) {
			s.Data[uredisv1alpha1.KeyBackupPath] = []byte("https://evil.example.com/")
			s.Annotations[uredisv1alpha1.AnnotationDataHash] = dataHash(s.Data)
		}, false},
		{"owned by another resource", func(s *corev1.Secret) {
			s.OwnerReferences[0].UID = "other"
			s.Annotations[uredisv1alpha1.AnnotationExportUID] = "other"
		}, false},
		{"owner reference removed by someone", func(s *corev1.Secret) { s.OwnerReferences = nil }, false},
		{"someone else's label added", func(s *corev1.Secret) { s.Labels["team"] = "a" }, true},
		{"spec label removed by someone", func(s *corev1.Secret) { delete(s.Labels, "app") }, false},
		{"hash annotation removed", func(s *corev1.Secret) { delete(s.Annotations, uredisv1alpha1.AnnotationDataHash) }, false},
	}
	for _, tt := range tests {
		secret := good()
		tt.mutate(secret)
		if got := holdsStatusLink(secret, export); got != tt.want {
			t.Errorf("%s: holdsStatusLink() = %v, want %v", tt.name, got, tt.want)
		}
	}
	if holdsStatusLink(nil, export) {
		t.Error("a missing Secret holds no link")
	}

	// With the link kept out of status, the rest of the data and the hash
	// vouch for the Secret.
	omitted := exportWithLink()
	omitted.Status.BackupPath = ""
	if !holdsStatusLink(good(), omitted) {
		t.Error("with the link out of status, an untouched Secret holds it")
	}
	edited := good()
	edited.Data[uredisv1alpha1.KeyExpiresAt] = []byte("2030-01-01T00:00:00Z")
	edited.Annotations[uredisv1alpha1.AnnotationDataHash] = dataHash(edited.Data)
	if holdsStatusLink(edited, omitted) {
		t.Error("with the link out of status, another expiry is another link")
	}
}

func TestKnownInSync(t *testing.T) {
	export := exportWithLink()
	export.Status.SecretResourceVersion = "42"
	cached := func() *metav1.PartialObjectMetadata {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "42"}}
		shapeSecret(secret, exportTarget(export), plain(statusData(export)))
		obj, err := CacheManagedSecret(&metav1.PartialObjectMetadata{ObjectMeta: secret.ObjectMeta})
		if err != nil {
			t.Fatal(err)
		}
		return obj.(*metav1.PartialObjectMetadata)
	}
	if !knownInSync(cached(), export) {
		t.Fatal("the version the operator recorded is known to hold the status' link")
	}
	edited := cached()
	edited.ResourceVersion = "43"
	if knownInSync(edited, export) {
		t.Error("any other version must be read before it is trusted")
	}
	if knownInSync(nil, export) {
		t.Error("a missing Secret is not in sync")
	}
	unrecorded := exportWithLink()
	if knownInSync(cached(), unrecorded) {
		t.Error("a status without a recorded version (written by an older operator) proves nothing")
	}
	orphan := exportWithLink()
	orphan.Status.SecretResourceVersion = "42"
	orphan.Spec.Target.CreationPolicy = uredisv1alpha1.CreationPolicyOrphan
	if knownInSync(cached(), orphan) {
		t.Error("a Secret still owned after the policy became Orphan needs a write")
	}
}

func TestDataHashIsStableAndUnambiguous(t *testing.T) {
	a := map[string][]byte{"ab": []byte("c"), "x": []byte("1")}
	b := map[string][]byte{"a": []byte("bc"), "x": []byte("1")}
	if dataHash(a) != dataHash(map[string][]byte{"x": []byte("1"), "ab": []byte("c")}) {
		t.Error("the hash must not depend on map order")
	}
	if dataHash(a) == dataHash(b) {
		t.Error("moving bytes between key and value must change the hash")
	}
}

func TestShapeSecret(t *testing.T) {
	export := exportWithLink()
	export.Spec.Target.Keys = uredisv1alpha1.SecretKeys{BackupPath: "BACKUP_URL", ExpiresAt: "BACKUP_EXPIRES_AT"}
	export.Spec.Target.Annotations = map[string]uredisv1alpha1.AnnotationValue{"reloader": "yes"}
	data := secretData(exportTarget(export), linkData{backupPath: "https://x.example.com/", backupID: "b", expiresAt: now})
	if string(data["BACKUP_URL"]) != "https://x.example.com/" || string(data["BACKUP_EXPIRES_AT"]) != "2026-11-27T10:00:00Z" || string(data["backupId"]) != "b" {
		t.Fatalf("renamed keys not applied: %v", data)
	}
	if _, ok := data["innerBackupPath"]; ok {
		t.Fatal("innerBackupPath only when the API returned one")
	}

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "a"}}}
	shapeSecret(secret, exportTarget(export), plain(data))
	if secret.Labels["team"] != "a" || secret.Labels["app"] != "restore" || secret.Labels[uredisv1alpha1.LabelManagedBy] != uredisv1alpha1.ManagedByValue {
		t.Errorf("labels = %v", secret.Labels)
	}
	if secret.Annotations["reloader"] != "yes" || secret.Annotations[uredisv1alpha1.AnnotationExportUID] != "uid-1" || secret.Annotations[uredisv1alpha1.AnnotationDataHash] != dataHash(data) {
		t.Errorf("annotations = %v", secret.Annotations)
	}
	if len(secret.OwnerReferences) != 1 || !*secret.OwnerReferences[0].Controller || !*secret.OwnerReferences[0].BlockOwnerDeletion {
		t.Fatalf("Owner policy wants a controller reference: %+v", secret.OwnerReferences)
	}

	export.Spec.Target.CreationPolicy = uredisv1alpha1.CreationPolicyOrphan
	shapeSecret(secret, exportTarget(export), plain(data))
	if len(secret.OwnerReferences) != 0 {
		t.Fatalf("Orphan policy must drop the owner reference: %+v", secret.OwnerReferences)
	}
	if !ownsSecret(secret, export) {
		t.Fatal("an orphaned Secret is still recognised as the resource's own")
	}
}

func TestCacheManagedSecretKeepsOnlyWhatTheReconcilerReads(t *testing.T) {
	export := exportWithLink()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: "target", Namespace: "ns", UID: "s-1", ResourceVersion: "7",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}}
	shapeSecret(secret, exportTarget(export), plain(statusData(export)))
	// What a tenant can add to a labelled Secret's metadata, however large.
	big := strings.Repeat("x", 200<<10)
	secret.Labels["team"] = "a"
	secret.Annotations["notes"] = big
	secret.Annotations[uredisv1alpha1.AnnotationExportUID] = string(export.UID)
	secret.Finalizers = []string{"example.com/" + strings.Repeat("f", 200)}
	for i := range 100 {
		secret.OwnerReferences = append(secret.OwnerReferences, metav1.OwnerReference{Kind: "ConfigMap", Name: big[:200], UID: types.UID(fmt.Sprint(i))})
	}

	obj, err := CacheManagedSecret(&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{Kind: "Secret", APIVersion: "v1"}, ObjectMeta: secret.ObjectMeta})
	if err != nil {
		t.Fatal(err)
	}
	cached := obj.(*metav1.PartialObjectMetadata)
	if size := len(cached.String()); size > 1024 {
		t.Errorf("the cache keeps %d bytes of a labelled Secret's metadata, want a few hundred", size)
	}
	if !ownsSecret(cached, export) || !ownerAsWanted(cached, exportTarget(export)) || cached.ResourceVersion != "7" || cached.Name != "target" ||
		cached.Labels[uredisv1alpha1.LabelManagedBy] != uredisv1alpha1.ManagedByValue || cached.Annotations[uredisv1alpha1.AnnotationDataHash] == "" {
		t.Errorf("the cache must keep what the reconciler reads: %+v", cached.ObjectMeta)
	}
	again, _ := CacheManagedSecret(cached.DeepCopy())
	if !reflect.DeepEqual(again, cached) {
		t.Error("the transform must be idempotent: informers may hand it an object it already transformed")
	}
	// A long value under the operator's own annotation is not one it wrote.
	forged := cached.DeepCopy()
	forged.Annotations[uredisv1alpha1.AnnotationExportUID] = big
	obj, _ = CacheManagedSecret(forged)
	if _, kept := obj.(*metav1.PartialObjectMetadata).Annotations[uredisv1alpha1.AnnotationExportUID]; kept {
		t.Error("an oversized annotation value must not be cached")
	}
}

func TestJSONPatchReplacesDataOnlyAtTheCachedVersion(t *testing.T) {
	export := exportWithLink()
	export.Spec.Target.Annotations = map[string]uredisv1alpha1.AnnotationValue{"example.com/a~b": "v"}
	patch, err := jsonPatch("42", exportTarget(export), plain(statusData(export)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := patch.Data(nil)
	if err != nil {
		t.Fatal(err)
	}
	var ops []map[string]any
	if err := json.Unmarshal(body, &ops); err != nil {
		t.Fatal(err)
	}
	if ops[0]["op"] != "replace" || ops[0]["path"] != "/metadata/resourceVersion" || ops[0]["value"] != "42" {
		t.Errorf("the patch must first pin the resourceVersion the cache holds: %v", ops[0])
	}
	paths := map[string]bool{}
	for _, op := range ops {
		paths[op["path"].(string)] = true
	}
	for _, want := range []string{"/data", "/metadata/labels/app", "/metadata/labels/app.kubernetes.io~1managed-by",
		"/metadata/annotations/example.com~1a~0b", "/metadata/annotations/uredis.dezai.com~1data-hash"} {
		if !paths[want] {
			t.Errorf("the patch lacks %s: %s", want, body)
		}
	}
	if strings.Contains(string(body), export.Status.BackupPath) {
		t.Error("data values are base64, as the API server expects them")
	}
}

func TestRefusedWriteKeepsTheServersTextOut(t *testing.T) {
	export := exportWithLink()
	webhook := apierrors.NewInternalError(errors.New("webhook saw https://link.example.com/?sig=secret"))
	err := refusedWrite(exportTarget(export), webhook)
	if strings.Contains(err.Error(), "sig=secret") || !apierrors.IsInternalError(err) {
		t.Errorf("refusedWrite() = %v: the server's text must go, its kind stay", err)
	}
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "target", errors.New("the object has been modified"))
	if err := refusedWrite(exportTarget(export), conflict); !apierrors.IsConflict(err) || !isKubernetesAPIError(err) {
		t.Errorf("a conflict stays a conflict, retried by the work queue: %v", err)
	}
	invalid := apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "target", field.ErrorList{field.TooLong(field.NewPath("metadata", "annotations"), "", 262144)})
	if reason := reasonFor(refusedWrite(exportTarget(export), invalid)); reason != uredisv1alpha1.ReasonTargetInvalid {
		t.Errorf("a 422 naming fields is TargetInvalid, got %s", reason)
	}
	policy := apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "target", nil)
	if reason := reasonFor(refusedWrite(exportTarget(export), policy)); reason != uredisv1alpha1.ReasonSecretWriteRefused {
		t.Errorf("a 422 naming no field (an admission policy) is SecretWriteRefused, got %s", reason)
	}
}

// plain is the content of a Secret without a template.
func plain(data map[string][]byte) secretContent {
	return secretContent{data: data, hash: dataHash(data)}
}

func withTemplate(policy uredisv1alpha1.TemplateMergePolicy, data map[string]uredisv1alpha1.TemplateText) *uredisv1alpha1.RedisBackupExport {
	export := exportWithLink()
	export.Spec.Target.Template = &uredisv1alpha1.SecretTemplate{Data: data, Type: uredisv1alpha1.SecretTypeOpaque, MergePolicy: policy}
	return export
}

// TestTemplatedContent: Replace holds only the templated keys, Merge the
// default ones too (a templated key wins), and the hash covers the link's
// expiry.
func TestTemplatedContent(t *testing.T) {
	templates := map[string]uredisv1alpha1.TemplateText{
		"curl.conf": `url = {{ .backupPath | quote }}`,
		"region":    `{{ .region | upper }}`,
	}
	link := statusLink(exportWithLink())
	replaced, err := contentFor(exportTarget(withTemplate(uredisv1alpha1.MergePolicyReplace, templates)), link)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"curl.conf": `url = "https://old.example.com/x"`, "region": "R"}; !reflect.DeepEqual(stringData(replaced.data), want) {
		t.Errorf("Replace: %v, want %v", stringData(replaced.data), want)
	}
	merged, err := contentFor(exportTarget(withTemplate(uredisv1alpha1.MergePolicyMerge, templates)), link)
	if err != nil {
		t.Fatal(err)
	}
	got := stringData(merged.data)
	if got["curl.conf"] != `url = "https://old.example.com/x"` || got["region"] != "R" || got["backupPath"] != "https://old.example.com/x" || len(got) != 5 {
		t.Errorf("Merge: %v", got)
	}
	later := link
	later.expiresAt = later.expiresAt.Add(time.Second)
	again, _ := contentFor(exportTarget(withTemplate(uredisv1alpha1.MergePolicyReplace, map[string]uredisv1alpha1.TemplateText{"region": `{{ .region }}`})), link)
	other, _ := contentFor(exportTarget(withTemplate(uredisv1alpha1.MergePolicyReplace, map[string]uredisv1alpha1.TemplateText{"region": `{{ .region }}`})), later)
	if !reflect.DeepEqual(again.data, other.data) || again.hash == other.hash {
		t.Errorf("the same data for two links must hash differently")
	}
}

func stringData(data map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range data {
		out[k] = string(v)
	}
	return out
}

func TestHoldsStatusLinkTemplated(t *testing.T) {
	export := withTemplate(uredisv1alpha1.MergePolicyReplace, map[string]uredisv1alpha1.TemplateText{
		"inner": `{{ .innerBackupPath }}`, "url": `{{ .backupPath }}`,
	})
	// Written with the internal link the status does not keep.
	link := statusLink(export)
	link.innerBackupPath = "https://inner.example.com/x"
	good := func(link linkData) *corev1.Secret {
		content, err := contentFor(exportTarget(export), link)
		if err != nil {
			t.Fatal(err)
		}
		secret := &corev1.Secret{}
		shapeSecret(secret, exportTarget(export), content)
		return secret
	}
	if !holdsStatusLink(good(link), export) {
		t.Error("the operator's own rendering of the status' link")
	}
	edited := good(link)
	edited.Data["url"] = []byte("https://evil.example.com/")
	if holdsStatusLink(edited, export) {
		t.Error("an edited value")
	}
	older := link
	older.expiresAt = older.expiresAt.Add(-time.Hour)
	if holdsStatusLink(good(older), export) {
		t.Error("a rendering of another link (an older Secret restored from a backup)")
	}
	labelled := good(link)
	labelled.Labels["team"] = "a"
	if !holdsStatusLink(labelled, export) {
		t.Error("someone else's label changes nothing")
	}
}

func checkExportTemplates(export *uredisv1alpha1.RedisBackupExport) error {
	return checkTemplates(export.Spec.Target, export.Spec.BackupSelection, now)
}

// TestTemplateFailures: TemplateInvalid names the key; the placeholder
// check shows the error, the real link's rendering never quotes it.
func TestTemplateFailures(t *testing.T) {
	typo := withTemplate(uredisv1alpha1.MergePolicyReplace, map[string]uredisv1alpha1.TemplateText{"url": `{{ .backupURL }}`})
	err := checkExportTemplates(typo)
	if reasonFor(err) != uredisv1alpha1.ReasonTemplateInvalid || !strings.Contains(err.Error(), `key "url"`) || !strings.Contains(err.Error(), `backupURL`) {
		t.Errorf("a field of another name is found before any call: %v", err)
	}
	unparsed := withTemplate(uredisv1alpha1.MergePolicyReplace, map[string]uredisv1alpha1.TemplateText{"url": `{{ .backupPath `})
	if err := checkExportTemplates(unparsed); reasonFor(err) != uredisv1alpha1.ReasonTemplateInvalid || !strings.Contains(err.Error(), "does not parse") {
		t.Errorf("%v", err)
	}
	// Works on the placeholder, fails on a link without "Expires=".
	fragile := withTemplate(uredisv1alpha1.MergePolicyReplace, map[string]uredisv1alpha1.TemplateText{"expires": `{{ index (splitList "Expires=" .backupPath) 1 }}`})
	if err := checkExportTemplates(fragile); err != nil {
		t.Fatalf("the placeholder has an Expires parameter: %v", err)
	}
	_, err = contentFor(exportTarget(fragile), linkData{backupPath: "https://storage.example.com/b?Signature=SECRET", expiresAt: now})
	if reasonFor(err) != uredisv1alpha1.ReasonTemplateInvalid || !strings.Contains(err.Error(), `key "expires" fails to render at line 1, column 3`) {
		t.Errorf("%v", err)
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "storage.example.com") {
		t.Errorf("the message quotes the link: %v", err)
	}
	if checkExportTemplates(exportWithLink()) != nil {
		t.Error("no template, nothing to check")
	}
}

// TestRestorableOnlyWithoutTheInternalLink: the status keeps the link but
// never the internal one, so a template that uses the internal link is not
// rendered again from the status (it would write a Secret that does not
// work), while one that does not is.
func TestRestorableOnlyWithoutTheInternalLink(t *testing.T) {
	for text, want := range map[uredisv1alpha1.TemplateText]bool{
		`url = {{ .backupPath }}`:                true,
		`url = {{ .innerBackupPath }}`:           false,
		`{{ .backupPath }} {{.innerBackupPath}}`: false,
	} {
		export := exportWithLink()
		export.Spec.Target.Template = &uredisv1alpha1.SecretTemplate{Data: map[string]uredisv1alpha1.TemplateText{"conf": text}}
		if _, ok := restorable(export); ok != want {
			t.Errorf("%q: restorable = %v, want %v", text, ok, want)
		}
	}
	export := exportWithLink()
	if _, ok := restorable(export); !ok {
		t.Error("the default keys are restorable")
	}
}
