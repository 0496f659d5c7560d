package integration

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
	"github.com/dezai/uredis-backup-operator/internal/cloud"
	"github.com/dezai/uredis-backup-operator/internal/operator"
	"github.com/dezai/uredis-backup-operator/internal/simulator"
)

const (
	tokenPublicKey  = "temporary-public-key"
	tokenPrivateKey = "temporary-private-key"
	securityToken   = "temporary-security-token"
)

func withTokenAccount() fixtureOption {
	return withSimulator(func(c *simulator.Config) {
		c.Accounts = append(c.Accounts, simulator.Account{PublicKey: tokenPublicKey, PrivateKey: tokenPrivateKey, SecurityToken: securityToken})
	})
}

// TestBrokenCredentialsEachHaveTheirOwnReason: every way credentials can be
// wrong is reported with its own reason and a message that says what to fix,
// and none of them is retried hot.
func TestBrokenCredentialsEachHaveTheirOwnReason(t *testing.T) {
	f := newFixture(t, withTokenAccount())
	secrets := map[string]map[string]string{
		"missing-key":     {"publicKey": publicKey, "privatekey": privateKey},
		"empty-value":     {"publicKey": publicKey, "privateKey": "\n"},
		"wrong-private":   {"publicKey": publicKey, "privateKey": "not-the-private-key"},
		"unknown-public":  {"publicKey": "nobody", "privateKey": privateKey},
		"wrong-token":     {"publicKey": tokenPublicKey, "privateKey": tokenPrivateKey, "securityToken": "expired-token"},
		"token":           {"publicKey": tokenPublicKey, "privateKey": tokenPrivateKey, "securityToken": securityToken},
		"renamed-keys-ok": {"UCLOUD_PUBLIC_KEY": publicKey, "UCLOUD_PRIVATE_KEY": privateKey},
		"not-a-key":       {"publicKey": publicKey, "privateKey": "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----"},
		"long-token":      {"publicKey": tokenPublicKey, "privateKey": tokenPrivateKey, "securityToken": strings.Repeat("t", 5000)},
	}
	for name, data := range secrets {
		f.g.Expect(f.c.Create(f.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns}, StringData: data})).To(Succeed())
	}
	tests := []struct {
		name, secret, reason, message string
		ref                           func(*uredisv1alpha1.CredentialsReference)
	}{
		{name: "no-secret", secret: "does-not-exist", reason: uredisv1alpha1.ReasonCredentialsNotFound, message: `credentials Secret "does-not-exist" not found`},
		{name: "missing-key", secret: "missing-key", reason: uredisv1alpha1.ReasonCredentialsKeyMissing, message: `has no key "privateKey"`},
		{name: "not-a-key", secret: "not-a-key", reason: uredisv1alpha1.ReasonCredentialsInvalid, message: `the value of "privateKey" does not look like a credential`},
		{name: "long-token", secret: "long-token", reason: uredisv1alpha1.ReasonCredentialsInvalid, message: `the value of "securityToken" does not look like a credential`},
		{name: "empty-value", secret: "empty-value", reason: uredisv1alpha1.ReasonCredentialsValueEmpty, message: `has an empty value for "privateKey"`},
		{name: "wrong-private", secret: "wrong-private", reason: uredisv1alpha1.ReasonCredentialsRejected, message: `RetCode 171`},
		{name: "unknown-public", secret: "unknown-public", reason: uredisv1alpha1.ReasonCredentialsRejected, message: `RetCode 172`},
		{name: "wrong-token", secret: "wrong-token", reason: uredisv1alpha1.ReasonCredentialsRejected, message: `RetCode 174`},
		{name: "no-ref", secret: "", reason: uredisv1alpha1.ReasonCredentialsNotAllowed, message: `operator's own credentials are not available to namespace`},
	}
	// Resources are named after their case; their target Secrets get an
	// "rbe-" prefix so that none is named like its credentials Secret.
	for _, tt := range tests {
		f.create(f.newExport(tt.name, func(e *uredisv1alpha1.RedisBackupExport) {
			e.Spec.Target.Name = "rbe-" + tt.name
			e.Spec.CredentialsRef = &uredisv1alpha1.CredentialsReference{Name: tt.secret}
			if tt.secret == "" {
				e.Spec.CredentialsRef = nil
			}
		}))
	}
	f.create(f.newExport("token", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.CredentialsRef.Name, e.Spec.Target.Name = "token", "rbe-token"
	}))
	f.create(f.newExport("renamed-keys-ok", func(e *uredisv1alpha1.RedisBackupExport) {
		e.Spec.CredentialsRef = &uredisv1alpha1.CredentialsReference{Name: "renamed-keys-ok", PublicKeyKey: "UCLOUD_PUBLIC_KEY", PrivateKeyKey: "UCLOUD_PRIVATE_KEY"}
		e.Spec.Target.Name = "rbe-renamed-keys-ok"
	}))

	for _, tt := range tests {
		cond := f.eventuallyNotReady(tt.name, tt.reason)
		f.g.Expect(cond.Message).To(ContainSubstring(tt.message), tt.name)
		f.g.Expect(findCondition(f.get(tt.name), uredisv1alpha1.ConditionStalled)).NotTo(BeNil(), tt.name)
	}
	// Neither conditions nor Events name the keys a Secret has (the view
	// role reads both), nor show a value that was not sent.
	for _, tt := range tests {
		f.g.Expect(f.ready(tt.name).Message).NotTo(Or(ContainSubstring(`"privatekey"`), ContainSubstring("BEGIN PRIVATE KEY"), ContainSubstring("ttttt")), tt.name)
	}
	f.g.Eventually(func() []string { return f.eventNotes() }).Should(ContainElement(ContainSubstring(`has no key "privateKey"`)))
	f.g.Expect(f.eventNotes()).NotTo(ContainElement(Or(ContainSubstring(`"privatekey"`), ContainSubstring("BEGIN PRIVATE KEY"))))
	f.eventuallyReady("token")
	f.eventuallyReady("renamed-keys-ok")
	// The token was sent (and signed) only for the account that uses one.
	for _, call := range f.sim.Calls() {
		if call.PublicKey == tokenPublicKey && call.RetCode == 0 {
			f.g.Expect(call.Params).NotTo(HaveKey("SecurityToken"), "the call log redacts the token")
		}
	}
	// Three rejected resources, one call each; nothing retried hot.
	f.g.Consistently(func() int { return f.sim.CallCount("") }).WithTimeout(5 * time.Second).Should(Equal(5))
}

func TestOperatorCredentialsOnlyForAllowedNamespaces(t *testing.T) {
	static := &cloud.Credentials{PublicKey: tokenPublicKey, PrivateKey: tokenPrivateKey, SecurityToken: securityToken}
	allowed := newFixture(t, withTokenAccount(), withOperatorOptions(func(o *operator.Options) {
		o.OperatorCredentialsFromEnv = static
		o.OperatorCredentialsNamespaceSelector = "uredis.dezai.com/shared-credentials=true"
	}))
	allowed.create(allowed.newExport("shared", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.CredentialsRef = nil }))
	cond := allowed.eventuallyNotReady("shared", uredisv1alpha1.ReasonCredentialsNotAllowed)
	f := allowed
	f.g.Expect(cond.Message).To(ContainSubstring(f.ns))
	f.g.Expect(f.sim.CallCount("")).To(BeZero())

	// Labelling the namespace lets it use the operator's credentials: the
	// next reconcile (a spec or annotation change) picks it up.
	ns := &corev1.Namespace{}
	f.g.Expect(f.c.Get(f.ctx, clientKey("", f.ns), ns)).To(Succeed())
	ns.Labels["uredis.dezai.com/shared-credentials"] = "true"
	f.g.Expect(f.c.Update(f.ctx, ns)).To(Succeed())
	f.annotate("shared", "touch", "1")
	f.eventuallyReady("shared")
}

func TestOperatorCredentialsFromASecretInTheOperatorNamespace(t *testing.T) {
	f := newFixture(t, withTokenAccount(), withOperatorOptions(func(o *operator.Options) {
		o.OperatorCredentialsSecret = "operator-credentials"
		o.OperatorNamespace = o.WatchNamespaces[0] // the test's namespace doubles as the operator's
		o.OperatorCredentialsNamespaces = o.WatchNamespaces
	}))
	f.create(f.newExport("shared", func(e *uredisv1alpha1.RedisBackupExport) { e.Spec.CredentialsRef = nil }))
	f.eventuallyNotReady("shared", uredisv1alpha1.ReasonCredentialsNotFound)
	// Creating the operator's Secret recovers every resource that uses it.
	f.g.Expect(f.c.Create(f.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "operator-credentials", Namespace: f.ns},
		StringData: map[string]string{"publicKey": tokenPublicKey, "privateKey": tokenPrivateKey, "securityToken": securityToken},
	})).To(Succeed())
	f.g.Eventually(func() string { return conditionSummary(f.ready("shared")) }).WithTimeout(10 * time.Second).Should(HavePrefix("True/"))
}
