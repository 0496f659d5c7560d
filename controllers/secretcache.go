package controllers

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// The Secrets the operator manages are cached without their data. The
// reconciler never needs a value back, only to know whether a value is the
// one it would write, and whether anyone edited the data since the operator
// wrote it. So the cache keeps, in one annotation that only ever exists in
// the cache, the hash of the whole data as the API server holds it and a
// digest of each value. At 10,000 resources the values (two links of a few
// hundred bytes per Secret) and their map were the larger part of the
// Secrets' cost in memory; and a labelled Secret of 512 KiB costs the cache
// a few dozen bytes per key.

// cachedData is the annotation, set by CacheManagedSecret and never written
// to the API server, that holds what the cache knows of a Secret's data:
// "<cacheMark>:" and its summarize.
// Writes are merge patches computed from the cached object, which carries
// the annotation unchanged, so it never appears in a patch.
const cachedData = "uredis.dezai.com/cached-data"

// cacheMark tells a Secret this process has cached from one that merely
// carries the annotation: the informer may hand the transform an object it
// already transformed (client-go asks for idempotent transforms), and
// anyone who can edit a Secret could set the annotation on it. The mark is
// random per process and never leaves it.
var cacheMark = rand.Text()

// CacheManagedSecret is the cache transform of the managed Secrets: it
// drops managedFields and the data, recording in cachedData what the
// reconciler needs to know of the data. Informers hand a transform a fresh
// object, so it works in place.
func CacheManagedSecret(obj any) (any, error) {
	secret, ok := obj.(*corev1.Secret)
	if !ok || isCached(secret) {
		return obj, nil
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[cachedData] = cacheMark + ":" + summarize(secret.Data)
	secret.ManagedFields, secret.Data, secret.StringData = nil, nil, nil
	return secret, nil
}

// summarize is what the reconciler knows of a Secret's data:
// "<dataHash>:<key>=<digest>;<key>=<digest>;...", keys sorted. A digest is
// 16 bytes of the value's SHA-256; Secret keys hold only [-._a-zA-Z0-9],
// and the encoding none of ":=;".
func summarize(data map[string][]byte) string {
	var b strings.Builder
	b.WriteString(dataHash(data) + ":")
	for _, key := range slices.Sorted(maps.Keys(data)) {
		b.WriteString(key + "=" + digest(data[key]) + ";")
	}
	return b.String()
}

func digest(value []byte) string {
	sum := sha256.Sum256(value)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// summary is secret's summarize, read from the cache's annotation when
// secret came from this process's cache, computed from its data otherwise.
func summary(secret *corev1.Secret) (hash, digests string) {
	s, ok := strings.CutPrefix(secret.Annotations[cachedData], cacheMark+":")
	if !ok {
		s = summarize(secret.Data)
	}
	hash, digests, _ = strings.Cut(s, ":")
	return hash, digests
}

func isCached(secret *corev1.Secret) bool {
	return strings.HasPrefix(secret.Annotations[cachedData], cacheMark+":")
}

// observedDataHash is the hash of the data the API server holds for secret.
func observedDataHash(secret *corev1.Secret) string {
	hash, _ := summary(secret)
	return hash
}

// holds reports whether secret's data holds value under key.
func holds(secret *corev1.Secret, key string, value []byte) bool {
	_, digests := summary(secret)
	return strings.Contains(";"+digests, ";"+key+"="+digest(value)+";")
}

// dataKeys is secret's data with every value left out: as the base of a
// merge patch, it makes the patch remove any key the new data lacks.
func dataKeys(secret *corev1.Secret) map[string][]byte {
	_, digests := summary(secret)
	keys := map[string][]byte{}
	for entry := range strings.SplitSeq(digests, ";") {
		if key, _, found := strings.Cut(entry, "="); found {
			keys[key] = nil
		}
	}
	return keys
}

// unedited reports whether secret's data is what the operator last wrote:
// the hash it wrote beside the data still matches the data.
func unedited(secret *corev1.Secret) bool {
	written := secret.Annotations[uredisv1alpha1.AnnotationDataHash]
	return written != "" && written == observedDataHash(secret)
}
