package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
)

// credentialsError is a problem with the credentials Secret that the user
// must fix; it is reported on the Ready condition and never retried hot.
type credentialsError struct {
	reason  string
	message string
}

func (e *credentialsError) Error() string { return e.message }

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

// Load returns the credentials a resource names. knownVersion is the
// Secret's resourceVersion as the metadata cache last saw it ("" if unknown);
// a stored copy of that version is reused without a read.
func (s *credentialStore) Load(ctx context.Context, export *uredisv1alpha1.RedisBackupExport, knownVersion string) (cloud.Credentials, error) {
	ref := export.Spec.CredentialsRef
	key := types.NamespacedName{Namespace: export.Namespace, Name: ref.Name}

	secret, err := s.secret(ctx, key, knownVersion)
	if apierrors.IsNotFound(err) {
		return cloud.Credentials{}, &credentialsError{
			reason:  uredisv1alpha1.ReasonCredentialsNotFound,
			message: fmt.Sprintf("credentials Secret %q not found in namespace %q: create it with the keys %q and %q", key.Name, key.Namespace, publicKeyKey(ref), privateKeyKey(ref)),
		}
	}
	if err != nil {
		return cloud.Credentials{}, err
	}
	return credentialsFrom(secret, ref)
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
			s.forget(key)
		}
		return nil, err
	}
	s.mu.Lock()
	s.byName[key] = storedCredentials{resourceVersion: secret.ResourceVersion, secret: secret}
	s.mu.Unlock()
	return secret, nil
}

// forget drops a stored Secret, for example after it was deleted.
func (s *credentialStore) forget(key types.NamespacedName) {
	s.mu.Lock()
	delete(s.byName, key)
	s.mu.Unlock()
}

func credentialsFrom(secret *corev1.Secret, ref uredisv1alpha1.CredentialsReference) (cloud.Credentials, error) {
	var missing []string
	value := func(key string) string {
		v := strings.TrimSpace(string(secret.Data[key]))
		if v == "" {
			missing = append(missing, key)
		}
		return v
	}
	creds := cloud.Credentials{PublicKey: value(publicKeyKey(ref)), PrivateKey: value(privateKeyKey(ref))}
	if len(missing) > 0 {
		return cloud.Credentials{}, &credentialsError{
			reason:  uredisv1alpha1.ReasonCredentialsInvalid,
			message: fmt.Sprintf("credentials Secret %q has no value for the key(s) %s", secret.Name, strings.Join(quoteAll(missing), ", ")),
		}
	}
	return creds, nil
}

func publicKeyKey(ref uredisv1alpha1.CredentialsReference) string {
	return defaultString(ref.PublicKeyKey, "publicKey")
}

func privateKeyKey(ref uredisv1alpha1.CredentialsReference) string {
	return defaultString(ref.PrivateKeyKey, "privateKey")
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
