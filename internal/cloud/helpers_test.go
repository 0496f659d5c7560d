package cloud

import (
	"crypto/sha1" // SHA-1: the provider's scheme
	"encoding/hex"
)

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s)) // SHA-1: the provider's scheme
	return hex.EncodeToString(sum[:])
}
