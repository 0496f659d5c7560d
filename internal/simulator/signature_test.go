package simulator

import (
	"crypto/sha1"
	"encoding/hex"
	"testing"
)

func TestSignatureMatchesDocumentedVector(t *testing.T) {
	params := map[string]string{
		"Action":    "DescribeUHostInstance",
		"Region":    "cn-bj2",
		"Limit":     "10",
		"PublicKey": "ucloudsomeone@example.com1296235120854146120",
	}
	const privateKey = "46f09bb9fab4f12dfc160dae12273d5332b5debe"
	const want = "cba5cf5ec4d4233d206b1b54951e3787350a642f"

	if got := apiSignature(params, privateKey); got != want {
		t.Errorf("apiSignature = %s, want %s", got, want)
	}
	if got := testSign(params, privateKey); got != want {
		t.Errorf("test helper signature = %s, want %s", got, want)
	}
	params["Signature"] = want
	if !signatureValid(params, privateKey) {
		t.Error("documented signature rejected (Signature must not be part of the signed string)")
	}
	params["Signature"] = "CBA5CF5EC4D4233D206B1B54951E3787350A642F"
	if signatureValid(params, privateKey) {
		t.Error("upper-case hex accepted; the API signs in lower case")
	}
}

func TestSignatureSortsInByteOrderWithoutEscaping(t *testing.T) {
	params := map[string]string{"foo": "a b&c", "PublicKey": "pk", "Backends.2": "x", "Backends.10": "y"}
	sum := sha1.Sum([]byte("Backends.10yBackends.2xPublicKeypkfooa b&c" + "secret"))
	if got, want := apiSignature(params, "secret"), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("apiSignature = %s, want %s", got, want)
	}
}
