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
// "<cacheMark>:<dataHash>:<key>=<digest>;<key>=<digest>;...", keys sorted.
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
// reconciler needs to know of the data.
func CacheManagedSecret(obj any) (any, error) {
	secret, ok := obj.(*corev1.Secret)
	if !ok || isCached(secret) {
		return obj, nil
	}
	var b strings.Builder
	b.WriteString(cacheMark + ":" + dataHash(secret.Data) + ":")
	for _, key := range slices.Sorted(maps.Keys(secret.Data)) {
		b.WriteString(key + "=" + digest(secret.Data[key]) + ";")
	}
	annotations := maps.Clone(secret.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[cachedData] = b.String()
	secret.Annotations = annotations
	secret.ManagedFields, secret.Data, secret.StringData = nil, nil, nil
	return secret, nil
}

// digest stands for a value in the cache: 16 bytes of its SHA-256. Secret
// keys hold only [-._a-zA-Z0-9], and the encoding none of ":=;".
func digest(value []byte) string {
	sum := sha256.Sum256(value)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// cached splits a cached Secret's annotation; ok is false for a Secret
// that did not come from this process's cache.
func cached(secret *corev1.Secret) (hash, digests string, ok bool) {
	mark, rest, _ := strings.Cut(secret.Annotations[cachedData], ":")
	if mark != cacheMark {
		return "", "", false
	}
	hash, digests, _ = strings.Cut(rest, ":")
	return hash, digests, true
}

func isCached(secret *corev1.Secret) bool {
	_, _, ok := cached(secret)
	return ok
}

// observedDataHash is the hash of the data the API server holds for secret.
func observedDataHash(secret *corev1.Secret) string {
	if hash, _, ok := cached(secret); ok {
		return hash
	}
	return dataHash(secret.Data)
}

// holds reports whether secret's data holds value under key.
func holds(secret *corev1.Secret, key string, value []byte) bool {
	if _, digests, ok := cached(secret); ok {
		return strings.Contains(";"+digests, ";"+key+"="+digest(value)+";")
	}
	held, ok := secret.Data[key]
	return ok && string(held) == string(value)
}

// dataKeys is secret's data with every value left out: as the base of a
// merge patch, it makes the patch remove any key the new data lacks.
func dataKeys(secret *corev1.Secret) map[string][]byte {
	_, digests, ok := cached(secret)
	if !ok {
		return secret.Data
	}
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
