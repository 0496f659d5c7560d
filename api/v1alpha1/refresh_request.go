package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
)

// EventRefreshRequestDeclined (Normal): a refresh-requested-at value was
// acknowledged (status.lastHandledRefreshRequest) without a refresh: too
// soon after the last attempt, credentials the provider rejected, or a
// suspended resource. The note says which.
const EventRefreshRequestDeclined = "RefreshRequestDeclined"

// RefreshRequestDeclinedPrefix begins the note of every
// RefreshRequestDeclined Event; the rest says why.
const RefreshRequestDeclinedPrefix = "refresh request acknowledged without a refresh: "

// maxRefreshRequest is the longest refresh-requested-at value the status
// keeps as it is; a timestamp needs far less.
const maxRefreshRequest = 64

// HandledRefreshRequest is how status.lastHandledRefreshRequest records a
// refresh-requested-at value: the value itself, or its SHA-256 when it is
// longer than a timestamp needs, so that the status does not grow with
// whatever the annotation holds.
func HandledRefreshRequest(value string) string {
	if len(value) <= maxRefreshRequest {
		return value
	}
	sum := sha256.Sum256([]byte(value))
	return "sha256:" + hex.EncodeToString(sum[:])
}
