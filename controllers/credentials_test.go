package controllers

import (
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCredentialKeyNames(t *testing.T) {
	for _, tt := range []struct {
		key  credentialKey
		good bool
	}{
		{credentialKey{public: "publicKey", private: "privateKey", token: "securityToken"}, true},
		{credentialKey{public: "UCLOUD_PUBLIC_KEY", private: "ucloud.private-key", token: "SECURITY_TOKEN"}, true},
		{credentialKey{public: "token", private: "privateKey", token: "securityToken"}, false},
		{credentialKey{public: "publicKey", private: "tls.key", token: "securityToken"}, false},
		{credentialKey{public: "publicKey", private: "privateKey", token: "token"}, false},
		{credentialKey{public: "publicKey", private: "privateKey", token: "ca.crt"}, false},
	} {
		if err := checkKeyNames(tt.key); (err == nil) != tt.good {
			t.Errorf("checkKeyNames(%+v) = %v, want good=%v", tt.key, err, tt.good)
		}
	}
}

// The operator checks at run time the key-name patterns admission checks,
// for resources admitted before they existed: they must be the same.
func TestCredentialKeyPatternsMatchTheCRD(t *testing.T) {
	crd, err := os.ReadFile("../config/crd/bases/uredis.dezai.com_redisbackupexports.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{publicKeyName.String(), privateKeyName.String(), securityTokenName.String()} {
		if !strings.Contains(string(crd), "pattern: "+pattern+"\n") {
			t.Errorf("the CRD has no pattern %s", pattern)
		}
	}
}

func TestCredentialValuesMustLookLikeCredentials(t *testing.T) {
	key := credentialKey{public: "publicKey", private: "privateKey", token: "securityToken"}
	secret := func(data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	creds, err := credentialsFrom(secret(map[string]string{"publicKey": " pk\n", "privateKey": "sk", "securityToken": "tok"}), key)
	if err != nil || creds.PublicKey != "pk" || creds.SecurityToken != "tok" {
		t.Fatalf("credentialsFrom() = %+v, %v", creds, err)
	}
	for name, data := range map[string]map[string]string{
		"a PEM file":         {"publicKey": "pk", "privateKey": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"},
		"a kubeconfig":       {"publicKey": "apiVersion: v1\nkind: Config", "privateKey": "sk"},
		"a 5,000-byte token": {"publicKey": "pk", "privateKey": "sk", "securityToken": strings.Repeat("t", 5000)},
		"a non-ASCII key":    {"publicKey": "pk\u00e9", "privateKey": "sk"},
	} {
		_, err := credentialsFrom(secret(data), key)
		if err == nil || reasonFor(err) != "CredentialsInvalid" {
			t.Errorf("%s: err = %v, want CredentialsInvalid", name, err)
			continue
		}
		if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), "apiVersion") || strings.Contains(err.Error(), "ttt") {
			t.Errorf("%s: the message quotes the value: %s", name, err)
		}
	}
	_, err = credentialsFrom(secret(map[string]string{"publicKey": "pk", "privatekey": "sk", "other": "x"}), key)
	if err == nil || strings.Contains(err.Error(), "privatekey") || strings.Contains(err.Error(), "other") {
		t.Errorf("a missing key names only the key asked for, not the Secret's others: %v", err)
	}
}
