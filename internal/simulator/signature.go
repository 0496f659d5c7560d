package simulator

import (
	"crypto/sha1" //nolint:gosec // SHA-1 is what the API's signing algorithm uses.
	"crypto/subtle"
	"encoding/hex"
	"sort"
	"strings"
)

// apiSignature computes the API request signature the way the provider's
// documentation describes it: every parameter except Signature, sorted by
// name in plain byte order, written as name+value with no separators and no
// escaping, followed by the private key; SHA-1; lower-case hex.
func apiSignature(params map[string]string, privateKey string) string {
	names := make([]string, 0, len(params))
	for name := range params {
		if name != "Signature" {
			names = append(names, name)
		}
	}
	sort.Strings(names) // byte order: "PublicKey" < "foo", "Backends.10" < "Backends.2"

	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteString(params[name])
	}
	b.WriteString(privateKey)

	sum := sha1.Sum([]byte(b.String())) //nolint:gosec // mandated by the API
	return hex.EncodeToString(sum[:])
}

// signatureValid compares in constant time so that the simulator does not
// model a timing oracle. The expected signature is never reported anywhere.
func signatureValid(params map[string]string, privateKey string) bool {
	want := apiSignature(params, privateKey)
	return equalConstantTime(want, params["Signature"])
}

func equalConstantTime(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
