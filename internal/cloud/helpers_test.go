package cloud

import (
	"crypto/sha1" //nolint:gosec // the provider's scheme
	"encoding/hex"
)

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s)) //nolint:gosec // the provider's scheme
	return hex.EncodeToString(sum[:])
}
