package cloud

import "testing"

func TestSignMatchesDocumentedVector(t *testing.T) {
	params := map[string]string{
		"Action":    "DescribeUHostInstance",
		"Region":    "cn-bj2",
		"Limit":     "10",
		"PublicKey": "ucloudsomeone@example.com1296235120854146120",
	}
	got := Sign(params, "46f09bb9fab4f12dfc160dae12273d5332b5debe")
	if want := "cba5cf5ec4d4233d206b1b54951e3787350a642f"; got != want {
		t.Fatalf("Sign() = %s, want %s", got, want)
	}
}

func TestSignIgnoresSignatureAndSortsByBytes(t *testing.T) {
	base := map[string]string{"foo": "1", "PublicKey": "pk", "Backends.10": "a", "Backends.2": "b"}
	withSignature := map[string]string{"Signature": "ignored"}
	for k, v := range base {
		withSignature[k] = v
	}
	if Sign(base, "secret") != Sign(withSignature, "secret") {
		t.Fatal("the Signature parameter must not take part in its own computation")
	}
	// Byte order: "Backends.10" < "Backends.2" < "PublicKey" < "foo".
	want := sha1Hex("Backends.10aBackends.2bPublicKeypkfoo1secret")
	if got := Sign(base, "secret"); got != want {
		t.Fatalf("Sign() = %s, want %s (byte-ordered concatenation)", got, want)
	}
}
