package controllers

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/expiring"
)

// OperatorCredentials are the operator's own credentials, for resources
// without spec.credentialsRef in namespaces the administrator allows. They
// are off unless a namespace list or selector is configured.
type OperatorCredentials struct {
	// Static credentials, from the operator's environment.
	Static *cloud.Credentials
	// Secret in the operator's namespace, read like a credentialsRef with
	// the default key names; used when Static is nil.
	Secret types.NamespacedName
	// AllowedNamespaces may use the credentials.
	AllowedNamespaces []string
	// NamespaceSelector selects more namespaces that may use them.
	NamespaceSelector labels.Selector
}

func (o *OperatorCredentials) configured() bool {
	return o != nil && (o.Static != nil || o.Secret.Name != "") &&
		(len(o.AllowedNamespaces) > 0 || (o.NamespaceSelector != nil && !o.NamespaceSelector.Empty()))
}

// operatorCredentialsIndex is the index value of resources that use the
// operator's own credentials.
const operatorCredentialsIndex = "<operator>"

// credentialSource is where a resource's credentials come from.
type credentialSource struct {
	// secret to read; empty for static operator credentials.
	secret types.NamespacedName
	ref    uredisv1alpha1.CredentialsReference
	static *cloud.Credentials
}

// credentialSourceFor resolves a resource's credentials source, refusing
// the operator's own credentials to namespaces that may not use them.
func (r *RedisBackupExportReconciler) credentialSourceFor(ctx context.Context, export *uredisv1alpha1.RedisBackupExport) (credentialSource, error) {
	if ref := export.Spec.CredentialsRef; ref != nil {
		return credentialSource{secret: types.NamespacedName{Namespace: export.Namespace, Name: ref.Name}, ref: *ref}, nil
	}
	allowed, err := r.operatorCredentialsAllowed(ctx, export.Namespace)
	if err != nil {
		return credentialSource{}, err
	}
	if !allowed {
		return credentialSource{}, newFailure(uredisv1alpha1.ReasonCredentialsNotAllowed,
			"spec.credentialsRef is not set and the operator's own credentials are not available to namespace %q: "+
				"set spec.credentialsRef to a Secret in this namespace, or ask the operator's administrator to allow the namespace", export.Namespace)
	}
	o := r.OperatorCredentials
	return credentialSource{secret: o.Secret, static: o.Static}, nil
}

func (r *RedisBackupExportReconciler) operatorCredentialsAllowed(ctx context.Context, namespace string) (bool, error) {
	o := r.OperatorCredentials
	if !o.configured() {
		return false, nil
	}
	if slices.Contains(o.AllowedNamespaces, namespace) {
		return true, nil
	}
	if o.NamespaceSelector == nil || o.NamespaceSelector.Empty() {
		return false, nil
	}
	ns := &corev1.Namespace{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return false, err
	}
	return o.NamespaceSelector.Matches(labels.Set(ns.Labels)), nil
}

// credentialStore reads credentials Secrets straight from the API server
// (the operator does not cache Secrets it does not manage) and keeps, per
// Secret resourceVersion and key names, only the few strings a call needs, for
// a while: a thousand resources sharing one credentials Secret cost one read,
// not a thousand, and a Secret no resource uses any more is forgotten.
type credentialStore struct {
	reader  client.Reader
	entries *expiring.Map[credentialKey, storedCredentials]
}

// credentialKey names what was read: a Secret, with the key names a
// resource reads it with.
type credentialKey struct {
	secret                 types.NamespacedName
	public, private, token string
}

type storedCredentials struct {
	resourceVersion string
	creds           cloud.Credentials
}

// credentialsTTL is how long credentials read from a Secret are kept.
const credentialsTTL = 10 * time.Minute

func newCredentialStore(reader client.Reader) *credentialStore {
	return &credentialStore{reader: reader, entries: expiring.New[credentialKey, storedCredentials](credentialsTTL, time.Now)}
}

// Load returns the credentials of source. knownVersion is the Secret's
// resourceVersion as the metadata cache last saw it ("" if unknown); stored
// credentials of that version are reused without a read.
func (s *credentialStore) Load(ctx context.Context, source credentialSource, knownVersion string) (cloud.Credentials, error) {
	if source.static != nil {
		return *source.static, nil
	}
	ref := source.ref
	key := credentialKey{secret: source.secret, public: publicKeyKey(ref), private: privateKeyKey(ref), token: securityTokenKey(ref)}
	if stored, ok := s.entries.Get(key); ok && knownVersion != "" && stored.resourceVersion == knownVersion {
		return stored.creds, nil
	}
	if err := checkKeyNames(key); err != nil {
		return cloud.Credentials{}, err
	}
	secret := &corev1.Secret{}
	err := s.reader.Get(ctx, source.secret, secret)
	if apierrors.IsNotFound(err) {
		return cloud.Credentials{}, newFailure(uredisv1alpha1.ReasonCredentialsNotFound,
			"credentials Secret %q not found in namespace %q: create it with the keys %q and %q",
			source.secret.Name, source.secret.Namespace, key.public, key.private)
	}
	if err != nil {
		return cloud.Credentials{}, err
	}
	creds, err := credentialsFrom(secret, key)
	if err != nil {
		return cloud.Credentials{}, err
	}
	s.entries.Put(key, storedCredentials{resourceVersion: secret.ResourceVersion, creds: creds})
	return creds, nil
}

// Credential key names must look like what they name, so that a resource
// cannot have another value of the Secret (a service account token, a TLS
// key) sent to the cloud API. Admission checks the same patterns (the
// CRD's, on spec.credentialsRef); this check covers resources admitted
// before it existed.
var (
	publicKeyName     = regexp.MustCompile(`^[-._a-zA-Z0-9]*(?i:public[-_.]?key)$`)
	privateKeyName    = regexp.MustCompile(`^[-._a-zA-Z0-9]*(?i:private[-_.]?key)$`)
	securityTokenName = regexp.MustCompile(`^[-._a-zA-Z0-9]*(?i:security[-_.]?token)$`)
)

func checkKeyNames(key credentialKey) error {
	for _, name := range []struct {
		field, value string
		pattern      *regexp.Regexp
	}{
		{"publicKeyKey", key.public, publicKeyName},
		{"privateKeyKey", key.private, privateKeyName},
		{"securityTokenKey", key.token, securityTokenName},
	} {
		if !name.pattern.MatchString(name.value) {
			return newFailure(uredisv1alpha1.ReasonCredentialsInvalid,
				"spec.credentialsRef.%s must name a key that looks like a credential (matching %s), so that no other value of the Secret is ever sent to the cloud API",
				name.field, name.pattern)
		}
	}
	return nil
}

// Limits on the shape of credential values: a key pair is a short run of
// printable characters, a security token a longer one. Anything else (a
// certificate, a kubeconfig, a multi-line file) is not sent.
const (
	maxKeyLength   = 256
	maxTokenLength = 4096
)

// credentialsFrom reads the key pair (and optional token) from a Secret,
// naming exactly what is missing or malformed: the message never contains
// a value, nor the names of the Secret's other keys.
func credentialsFrom(secret *corev1.Secret, key credentialKey) (cloud.Credentials, error) {
	var missing, empty []string
	value := func(k string) string {
		raw, found := secret.Data[k]
		v := strings.TrimSpace(string(raw))
		switch {
		case !found:
			missing = append(missing, k)
		case v == "":
			empty = append(empty, k)
		}
		return v
	}
	creds := cloud.Credentials{PublicKey: value(key.public), PrivateKey: value(key.private)}
	switch {
	case len(missing) > 0:
		return cloud.Credentials{}, newFailure(uredisv1alpha1.ReasonCredentialsKeyMissing,
			"credentials Secret %q has no key %s", secret.Name, strings.Join(quoteAll(missing), " or "))
	case len(empty) > 0:
		return cloud.Credentials{}, newFailure(uredisv1alpha1.ReasonCredentialsValueEmpty,
			"credentials Secret %q has an empty value for %s", secret.Name, strings.Join(quoteAll(empty), " and "))
	}
	creds.SecurityToken = strings.TrimSpace(string(secret.Data[key.token]))
	for _, v := range []struct {
		key, value string
		max        int
	}{{key.public, creds.PublicKey, maxKeyLength}, {key.private, creds.PrivateKey, maxKeyLength}, {key.token, creds.SecurityToken, maxTokenLength}} {
		if !credentialShaped(v.value, v.max) {
			return cloud.Credentials{}, newFailure(uredisv1alpha1.ReasonCredentialsInvalid,
				"credentials Secret %q: the value of %q does not look like a credential (at most %d printable ASCII characters without spaces), so it is not sent",
				secret.Name, v.key, v.max)
		}
	}
	return creds, nil
}

// credentialShaped: at most max printable ASCII characters, no spaces.
func credentialShaped(value string, max int) bool {
	if len(value) > max {
		return false
	}
	for i := 0; i < len(value); i++ {
		if value[i] <= ' ' || value[i] > '~' {
			return false
		}
	}
	return true
}

func publicKeyKey(ref uredisv1alpha1.CredentialsReference) string {
	return defaultString(ref.PublicKeyKey, "publicKey")
}

func privateKeyKey(ref uredisv1alpha1.CredentialsReference) string {
	return defaultString(ref.PrivateKeyKey, "privateKey")
}

func securityTokenKey(ref uredisv1alpha1.CredentialsReference) string {
	return defaultString(ref.SecurityTokenKey, "securityToken")
}

func defaultString(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}

func quoteAll(values []string) []string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return quoted
}
