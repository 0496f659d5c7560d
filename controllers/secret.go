package controllers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/expiring"
	"github.com/dezai/uredis-backup-operator/internal/secrettemplate"
)

// linkData is what a Secret carries, before key names are applied.
type linkData struct {
	backupPath, innerBackupPath, backupID string
	expiresAt                             time.Time
}

// secretTarget is a Secret the operator writes for a resource of either
// kind: where, shaped by which spec.target, for which region, and owned by
// which resource. The code that writes Secrets knows nothing else about the
// resource.
type secretTarget struct {
	// owner is the resource (its UID marks the Secret as its own), of kind
	// gvk.
	owner metav1.Object
	gvk   schema.GroupVersionKind
	// key is the Secret's namespace and name.
	key    types.NamespacedName
	spec   uredisv1alpha1.TargetSecret
	region string
}

// exportTarget is the target Secret of a RedisBackupExport.
func exportTarget(export *uredisv1alpha1.RedisBackupExport) secretTarget {
	return secretTarget{
		owner: export, gvk: uredisv1alpha1.GroupVersionKind,
		key:  types.NamespacedName{Namespace: export.Namespace, Name: export.TargetSecretName()},
		spec: export.Spec.Target, region: export.Spec.Region,
	}
}

// secretData is the contract content of the target Secret, under the key
// names the spec chose.
func secretData(t secretTarget, link linkData) map[string][]byte {
	keys := t.spec.Keys.Resolved()
	data := map[string][]byte{
		keys.BackupPath: []byte(link.backupPath),
		keys.ExpiresAt:  []byte(formatTime(link.expiresAt)),
		keys.BackupID:   []byte(link.backupID),
		keys.Region:     []byte(t.region),
	}
	if link.innerBackupPath != "" {
		data[keys.InnerBackupPath] = []byte(link.innerBackupPath)
	}
	return data
}

// secretContent is the data of a target Secret and the hash written
// beside it (AnnotationDataHash).
type secretContent struct {
	data map[string][]byte
	hash string
}

// contentFor is what the target Secret holds for a link: the default keys
// (secretData), the templates of spec.target.template rendered, or both.
// Without a template the hash is the data's; with one it also covers the
// link's expiry, so that a Secret holding an older rendering (restored
// from a backup, say) is never taken for the current link's, although its
// values need not say which link they come from. A template that fails to
// render is a TemplateInvalid failure that never quotes the link.
//
// It serves both kinds: a ClusterRedisBackupExport renders once per
// refresh (its target with no namespace) and writes the result everywhere.
func contentFor(t secretTarget, link linkData) (secretContent, error) {
	data := secretData(t, link)
	tmpl := t.spec.Template
	if tmpl == nil {
		return secretContent{data: data, hash: dataHash(data)}, nil
	}
	set, err := parseTemplates(tmpl)
	if err != nil {
		return secretContent{}, err
	}
	rendered, err := set.Render(templateFields(t, link))
	if err != nil {
		return secretContent{}, templateFailure(err, false)
	}
	if tmpl.MergePolicy == uredisv1alpha1.MergePolicyMerge {
		maps.Copy(data, rendered)
		rendered = data
	}
	return secretContent{data: rendered, hash: templatedHash(rendered, link.expiresAt)}, nil
}

// contentHash is the hash contentFor gives data that a Secret of target
// holds for a link expiring at expiresAt: the data's, or with a template
// templatedHash. A Secret holds that link (unedited) when its data has the
// hash recorded for it.
func contentHash(target uredisv1alpha1.TargetSecret, data map[string][]byte, expiresAt time.Time) string {
	if target.Template == nil {
		return dataHash(data)
	}
	return templatedHash(data, expiresAt)
}

// templatedHash is the hash of a templated Secret's data and its link's
// expiry (under the key "", which no Secret key can be).
func templatedHash(data map[string][]byte, expiresAt time.Time) string {
	withExpiry := maps.Clone(data)
	if withExpiry == nil {
		withExpiry = map[string][]byte{}
	}
	withExpiry[""] = []byte(formatTime(expiresAt))
	return dataHash(withExpiry)
}

func parseTemplates(tmpl *uredisv1alpha1.SecretTemplate) (*secrettemplate.Set, error) {
	texts := make(map[string]string, len(tmpl.Data))
	for key, text := range tmpl.Data {
		texts[key] = string(text)
	}
	set, err := secrettemplate.Parse(texts)
	if err != nil {
		return nil, templateFailure(err, true)
	}
	return set, nil
}

func templateFields(t secretTarget, link linkData) secrettemplate.Fields {
	return secrettemplate.Fields{
		BackupPath: link.backupPath, InnerBackupPath: link.innerBackupPath, ExpiresAt: link.expiresAt,
		BackupID: link.backupID, Region: t.region,
	}
}

// checkTemplates parses the target's template and renders it with a
// placeholder link for backup before any API call, so that a template
// that cannot work costs no quota. A template that only fails on the real
// link is found after the call, and the Secret is left as it is then too.
func checkTemplates(target uredisv1alpha1.TargetSecret, backup uredisv1alpha1.BackupSelection, now time.Time) error {
	if target.Template == nil {
		return nil
	}
	set, err := parseTemplates(target.Template)
	if err != nil {
		return err
	}
	if _, err := set.Render(secrettemplate.Placeholder(backup.BackupID, backup.Region, now.Add(time.Hour))); err != nil {
		return templateFailure(err, true)
	}
	return nil
}

// templateFailure is TemplateInvalid for a template error. Only a rendering
// of the placeholder link may show the underlying error's text: with the
// real link it may quote it.
func templateFailure(err error, placeholder bool) error {
	text := err.Error()
	var e *secrettemplate.Error
	if errors.As(err, &e) && placeholder {
		text = e.WithCause()
		if !strings.Contains(text, "does not parse") && !strings.Contains(text, "may not use") {
			text += " (rendered with a placeholder link before any API call)"
		}
	}
	return newFailure(uredisv1alpha1.ReasonTemplateInvalid,
		"spec.target.template: %s; the Secret is left as it is, and nothing is retried until the spec changes", truncate(text, maxErrorText))
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// dataHash is a stable digest of a Secret's data.
func dataHash(data map[string][]byte) string {
	h := sha256.New() // a hash.Hash's Write never returns an error
	var prefix []byte
	for _, key := range slices.Sorted(maps.Keys(data)) {
		prefix = fmt.Appendf(prefix[:0], "%d:%s%d:", len(key), key, len(data[key]))
		h.Write(prefix)
		h.Write(data[key])
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// ownsSecret reports whether secret was created for this very resource.
func ownsSecret(secret metav1.Object, owner metav1.Object) bool {
	return metav1.IsControlledBy(secret, owner) || secret.GetAnnotations()[uredisv1alpha1.AnnotationExportUID] == string(owner.GetUID())
}

// ownerAsWanted reports whether secret's controller reference is the one the
// creation policy asks for: the resource's, or none.
func ownerAsWanted(secret metav1.Object, t secretTarget) bool {
	if secret.GetAnnotations()[uredisv1alpha1.AnnotationDataHash] == releasedHash {
		// A released Secret taken back: it still carries the owner
		// reference that hands it to the garbage collector (the cache
		// keeps only controller references), which must go.
		return false
	}
	return metav1.IsControlledBy(secret, t.owner) == (t.spec.CreationPolicy != uredisv1alpha1.CreationPolicyOrphan)
}

// statusLink is the link in status (the internal link aside, which the
// status does not keep).
func statusLink(export *uredisv1alpha1.RedisBackupExport) linkData {
	st := export.Status
	return linkData{backupPath: st.BackupPath, backupID: st.BackupID, expiresAt: st.ExpiresAt.Time}
}

// statusData is the default keys' data the target Secret holds for the
// link in status.
func statusData(export *uredisv1alpha1.RedisBackupExport) map[string][]byte {
	return secretData(exportTarget(export), statusLink(export))
}

// knownInSync reports, from the cached metadata alone, that the target
// Secret is exactly what the operator last wrote or checked for the link in
// status: its resourceVersion is the one recorded with that link, so nobody
// changed it since.
func knownInSync(secret *metav1.PartialObjectMetadata, export *uredisv1alpha1.RedisBackupExport) bool {
	st := export.Status
	return secret != nil && st.ExpiresAt != nil && st.SecretResourceVersion != "" &&
		secret.ResourceVersion == st.SecretResourceVersion && ownsSecret(secret, export) && ownerAsWanted(secret, exportTarget(export))
}

// holdsStatusLink reports whether secret, read in full, holds the link in
// status, unedited (its data still has the hash the operator wrote beside
// it), shaped as the current spec asks.
func holdsStatusLink(secret *corev1.Secret, export *uredisv1alpha1.RedisBackupExport) bool {
	if secret == nil || export.Status.ExpiresAt == nil || !ownsSecret(secret, export) {
		return false
	}
	hash := contentHash(export.Spec.Target, secret.Data, export.Status.ExpiresAt.Time)
	if secret.Annotations[uredisv1alpha1.AnnotationDataHash] != hash {
		return false
	}
	if export.Spec.Target.Template != nil {
		// The data is the operator's own rendering for this very link (the
		// hash covers the expiry); it cannot be rendered again to compare,
		// as the status keeps neither the internal link nor, with
		// --link-in-status=false, the link.
		return shapedAsWanted(secret, exportTarget(export), hash)
	}
	want := statusData(export)
	if export.Status.BackupPath == "" {
		// The link is kept out of status (--link-in-status=false): the
		// rest of the data and the hash vouch for it.
		link := export.Spec.Target.Keys.Resolved().BackupPath
		if _, found := secret.Data[link]; !found {
			return false
		}
		delete(want, link)
	}
	for key, value := range want {
		if !bytes.Equal(secret.Data[key], value) {
			return false
		}
	}
	return shapedAsWanted(secret, exportTarget(export), hash)
}

// targetInSync reports whether the target Secret holds the link in status.
// The cached metadata usually proves it (knownInSync). A Secret changed since
// the operator last wrote or checked it is read from the API server once;
// verified is then its resourceVersion if it does hold the link, to be
// recorded in status so that it is not read again.
func (r *RedisBackupExportReconciler) targetInSync(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, cached *metav1.PartialObjectMetadata) (inSync bool, verified string, err error) {
	switch {
	case cached == nil || export.Status.ExpiresAt == nil || !ownsSecret(cached, export):
		return false, "", nil
	case knownInSync(cached, export):
		return true, "", nil
	}
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cached), secret); err != nil {
		return false, "", client.IgnoreNotFound(err)
	}
	if !holdsStatusLink(secret, export) {
		return false, "", nil
	}
	return true, secret.ResourceVersion, nil
}

// writeSecret creates or updates the target Secret with data and returns its
// new resourceVersion. current is the cached metadata of the Secret of that
// name, nil when the cache has none; the cache only holds Secrets this
// operator manages. With dryRun the API server validates the write (schema,
// admission) without making it.
func (r *RedisBackupExportReconciler) writeSecret(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, current *metav1.PartialObjectMetadata, content secretContent, dryRun bool) (string, error) {
	return r.secrets().write(ctx, exportTarget(export), current, content, dryRun)
}

func (r *RedisBackupExportReconciler) secrets() secretWriter {
	return secretWriter{client: r.Client, reader: r.APIReader, ownWrites: r.ownWrites}
}

// secretWriter writes the Secrets of either kind.
type secretWriter struct {
	// client writes; reader reads uncached, a Secret the cache cannot show
	// in full.
	client client.Client
	reader client.Reader
	// ownWrites receives the resourceVersion of every write.
	ownWrites *expiring.Map[string, struct{}]
}

// write creates or updates t's Secret with data and returns its new
// resourceVersion (see writeSecret).
func (w secretWriter) write(ctx context.Context, t secretTarget, current *metav1.PartialObjectMetadata, content secretContent, dryRun bool) (string, error) {
	var version string
	var err error
	if current == nil {
		version, err = w.create(ctx, t, content, dryRun)
	} else {
		version, err = w.patch(ctx, t, current, content, dryRun)
	}
	if err == nil && !dryRun {
		w.ownWrites.Put(version, struct{}{})
	}
	return version, err
}

func (w secretWriter) patch(ctx context.Context, t secretTarget, current *metav1.PartialObjectMetadata, content secretContent, dryRun bool) (string, error) {
	if !ownsSecret(current, t.owner) {
		return "", newConflictError(t)
	}
	secret, patch, err := w.secretPatch(ctx, t, current, content)
	if err != nil {
		return "", err
	}
	var opts []client.PatchOption
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	if err := w.client.Patch(ctx, secret, patch, opts...); err != nil {
		return "", refusedWrite(t, err)
	}
	return secret.ResourceVersion, nil
}

// secretPatch is the patch that gives the Secret data and the shape the
// spec asks for, on the condition that the Secret is still the version the
// cache holds: a Secret deleted and recreated by someone else, or edited,
// since the cache saw it makes the patch fail with a conflict, never
// receive the link. The data is replaced whole, so keys added by anyone
// else go. Labels and annotations are added to what others set. Only when
// the owner reference must change, or the annotations are gone, is the
// Secret read, and a merge patch computed from it (pinned to the version
// read).
func (w secretWriter) secretPatch(ctx context.Context, t secretTarget, current *metav1.PartialObjectMetadata, content secretContent) (*corev1.Secret, client.Patch, error) {
	// A JSON patch adds annotations one by one: it needs the map to exist,
	// which the operator's own annotations ensure unless someone removed
	// them all.
	if ownerAsWanted(current, t) && len(current.Annotations) > 0 {
		patch, err := jsonPatch(current.ResourceVersion, t, content)
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: current.Name, Namespace: current.Namespace}}, patch, err
	}
	secret := &corev1.Secret{}
	if err := w.reader.Get(ctx, client.ObjectKeyFromObject(current), secret); err != nil {
		return nil, nil, err
	}
	if !ownsSecret(secret, t.owner) {
		return nil, nil, newConflictError(t)
	}
	desired := secret.DeepCopy()
	shapeSecret(desired, t, content)
	return desired, client.MergeFromWithOptions(secret, client.MergeFromWithOptimisticLock{}), nil
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// jsonPatch sets resourceVersion (the API server refuses the patch with a
// conflict if the Secret has another), the operator's and the spec's labels
// and annotations, and the whole data.
func jsonPatch(resourceVersion string, t secretTarget, content secretContent) (client.Patch, error) {
	ops := []patchOp{{Op: "replace", Path: "/metadata/resourceVersion", Value: resourceVersion}}
	labels, annotations := secretMetadata(t, content.hash)
	for _, key := range slices.Sorted(maps.Keys(labels)) {
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/labels/" + escapePointer(key), Value: labels[key]})
	}
	for _, key := range slices.Sorted(maps.Keys(annotations)) {
		ops = append(ops, patchOp{Op: "add", Path: "/metadata/annotations/" + escapePointer(key), Value: annotations[key]})
	}
	ops = append(ops, patchOp{Op: "add", Path: "/data", Value: content.data})
	body, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	return client.RawPatch(types.JSONPatchType, body), nil
}

// escapePointer escapes a map key for a JSON pointer (RFC 6901).
func escapePointer(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}

func (w secretWriter) create(ctx context.Context, t secretTarget, content secretContent, dryRun bool) (string, error) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: t.key.Name, Namespace: t.key.Namespace},
		Type:       corev1.SecretTypeOpaque,
	}
	shapeSecret(secret, t, content)
	var opts []client.CreateOption
	if dryRun {
		opts = append(opts, client.DryRunAll)
	}
	err := w.client.Create(ctx, secret, opts...)
	if apierrors.IsAlreadyExists(err) {
		return "", w.classifyExisting(ctx, t)
	}
	if err != nil {
		return "", refusedWrite(t, err)
	}
	return secret.ResourceVersion, nil
}

// classifyExistingSecret explains a failed create: either a Secret we do
// not own, or our own one that the cache has not seen yet (a retry fixes).
func (r *RedisBackupExportReconciler) classifyExistingSecret(ctx context.Context, export *uredisv1alpha1.RedisBackupExport) error {
	return r.secrets().classifyExisting(ctx, exportTarget(export))
}

func (w secretWriter) classifyExisting(ctx context.Context, t secretTarget) error {
	existing := &corev1.Secret{}
	if err := w.reader.Get(ctx, t.key, existing); err != nil {
		return err
	}
	if ownsSecret(existing, t.owner) && existing.Labels[uredisv1alpha1.LabelManagedBy] == uredisv1alpha1.ManagedByValue {
		return errCacheLagging
	}
	return newConflictError(t)
}

// shapeSecret sets everything the operator decides about a Secret: data,
// the spec's labels and annotations (added to, never replacing, what others
// put there), the operator's own label and annotations, and the owner
// reference that the creation policy asks for.
func shapeSecret(secret *corev1.Secret, t secretTarget, content secretContent) {
	shapeMetadata(secret, t, content.hash)
	// A copy: a ClusterRedisBackupExport writes the same content into many
	// Secrets at once, and the client decodes each answer into its
	// Secret's Data map.
	secret.Data = maps.Clone(content.data)
	secret.StringData = nil
}

// shapeMetadata is shapeSecret without the data, whose hash it is given.
func shapeMetadata(secret *corev1.Secret, t secretTarget, hash string) {
	labels, annotations := secretMetadata(t, hash)
	secret.Labels = mergeMaps(secret.Labels, labels)
	secret.Annotations = mergeMaps(secret.Annotations, annotations)
	secret.OwnerReferences = slices.DeleteFunc(secret.OwnerReferences, func(ref metav1.OwnerReference) bool { return isOwnReference(ref, t.owner) })
	if t.spec.CreationPolicy != uredisv1alpha1.CreationPolicyOrphan {
		secret.OwnerReferences = append(secret.OwnerReferences, *metav1.NewControllerRef(t.owner, t.gvk))
	}
}

// isOwnReference: ref names owner, or is the reference a
// ClusterRedisBackupExport leaves behind when it releases a Secret
// (releasedOwnerReference).
func isOwnReference(ref metav1.OwnerReference, owner metav1.Object) bool {
	return ref.UID == owner.GetUID() || ref.UID == releasedUID(owner)
}

// shapedAsWanted reports whether secret's metadata is what shapeMetadata
// makes of it for data of the given hash.
func shapedAsWanted(secret *corev1.Secret, t secretTarget, hash string) bool {
	shaped := secret.DeepCopy()
	shapeMetadata(shaped, t, hash)
	return metadataEqual(secret, shaped)
}

// secretMetadata are the labels and annotations the operator sets on a
// Secret holding data of the given hash: the spec's, and its own.
func secretMetadata(t secretTarget, hash string) (labels, annotations map[string]string) {
	target := t.spec
	labels = map[string]string{uredisv1alpha1.LabelManagedBy: uredisv1alpha1.ManagedByValue}
	for key, value := range target.Labels {
		labels[key] = string(value)
	}
	annotations = map[string]string{
		uredisv1alpha1.AnnotationDataHash:  hash,
		uredisv1alpha1.AnnotationExportUID: string(t.owner.GetUID()),
	}
	for key, value := range target.Annotations {
		annotations[key] = string(value)
	}
	return labels, annotations
}

func mergeMaps(base map[string]string, overlays ...map[string]string) map[string]string {
	merged := maps.Clone(base)
	if merged == nil {
		merged = map[string]string{}
	}
	for _, overlay := range overlays {
		maps.Copy(merged, overlay)
	}
	return merged
}

// metadataEqual compares what shapeMetadata decides.
func metadataEqual(a, b *corev1.Secret) bool {
	return maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Annotations, b.Annotations) &&
		slices.EqualFunc(a.OwnerReferences, b.OwnerReferences, func(x, y metav1.OwnerReference) bool {
			return x.UID == y.UID && ptr.Equal(x.Controller, y.Controller)
		})
}
