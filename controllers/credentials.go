package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
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
// (the operator does not cache Secrets it does not manage) and remembers the
// keys per Secret resourceVersion, so that a thousand resources sharing one
// credentials Secret cost one read, not a thousand.
type credentialStore struct {
	reader client.Reader

	mu     sync.Mutex
	byName map[types.NamespacedName]storedCredentials
}

type storedCredentials struct {
	resourceVersion string
	secret          *corev1.Secret
}

func newCredentialStore(reader client.Reader) *credentialStore {
	return &credentialStore{reader: reader, byName: map[types.NamespacedName]storedCredentials{}}
}

// Load returns the credentials of source. knownVersion is the Secret's
// resourceVersion as the metadata cache last saw it ("" if unknown); a stored
// copy of that version is reused without a read.
func (s *credentialStore) Load(ctx context.Context, source credentialSource, knownVersion string) (cloud.Credentials, error) {
	if source.static != nil {
		return *source.static, nil
	}
	secret, err := s.secret(ctx, source.secret, knownVersion)
	if apierrors.IsNotFound(err) {
		return cloud.Credentials{}, newFailure(uredisv1alpha1.ReasonCredentialsNotFound,
			"credentials Secret %q not found in namespace %q: create it with the keys %q and %q",
			source.secret.Name, source.secret.Namespace, publicKeyKey(source.ref), privateKeyKey(source.ref))
	}
	if err != nil {
		return cloud.Credentials{}, err
	}
	return credentialsFrom(secret, source.ref)
}

func (s *credentialStore) secret(ctx context.Context, key types.NamespacedName, knownVersion string) (*corev1.Secret, error) {
	s.mu.Lock()
	stored, ok := s.byName[key]
	s.mu.Unlock()
	if ok && knownVersion != "" && stored.resourceVersion == knownVersion {
		return stored.secret, nil
	}

	secret := &corev1.Secret{}
	if err := s.reader.Get(ctx, key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			s.mu.Lock()
			delete(s.byName, key)
			s.mu.Unlock()
		}
		return nil, err
	}
	s.mu.Lock()
	s.byName[key] = storedCredentials{resourceVersion: secret.ResourceVersion, secret: secret}
	s.mu.Unlock()
	return secret, nil
}

// credentialsFrom reads the key pair (and optional token) from a Secret,
// naming exactly what is missing: the message never contains a value.
func credentialsFrom(secret *corev1.Secret, ref uredisv1alpha1.CredentialsReference) (cloud.Credentials, error) {
	var missing, empty []string
	value := func(key string) string {
		raw, found := secret.Data[key]
		v := strings.TrimSpace(string(raw))
		switch {
		case !found:
			missing = append(missing, key)
		case v == "":
			empty = append(empty, key)
		}
		return v
	}
	creds := cloud.Credentials{PublicKey: value(publicKeyKey(ref)), PrivateKey: value(privateKeyKey(ref))}
	switch {
	case len(missing) > 0:
		return cloud.Credentials{}, newFailure(uredisv1alpha1.ReasonCredentialsKeyMissing,
			"credentials Secret %q has no key %s (it has %s)", secret.Name, strings.Join(quoteAll(missing), " or "), describeKeys(secret))
	case len(empty) > 0:
		return cloud.Credentials{}, newFailure(uredisv1alpha1.ReasonCredentialsValueEmpty,
			"credentials Secret %q has an empty value for %s", secret.Name, strings.Join(quoteAll(empty), " and "))
	}
	creds.SecurityToken = strings.TrimSpace(string(secret.Data[securityTokenKey(ref)]))
	return creds, nil
}

// describeKeys lists a Secret's key names (never values), to help spot a
// misspelt key.
func describeKeys(secret *corev1.Secret) string {
	if len(secret.Data) == 0 {
		return "no keys"
	}
	keys := make([]string, 0, len(secret.Data))
	for key := range secret.Data {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return "the keys " + strings.Join(quoteAll(keys), ", ")
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
