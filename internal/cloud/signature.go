package cloud

import (
	"crypto/sha1" //nolint:gosec // SHA-1 is what the provider's signature scheme specifies.
	"encoding/hex"
	"sort"
	"strings"
)

// Sign computes the request signature the provider expects: every sent
// parameter except Signature, ordered by name in plain byte order, written
// as name+value without separators or escaping, followed by the private key,
// hashed with SHA-1 and hex-encoded in lower case.
func Sign(params map[string]string, privateKey string) string {
	names := make([]string, 0, len(params))
	for name := range params {
		if name != paramSignature {
			names = append(names, name)
		}
	}
	sort.Strings(names) // byte order, as the provider's gateway sorts

	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteString(params[name])
	}
	b.WriteString(privateKey)

	sum := sha1.Sum([]byte(b.String())) //nolint:gosec // see import comment
	return hex.EncodeToString(sum[:])
}
