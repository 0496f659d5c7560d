// Package version holds the operator's build version, set at link time with
// -ldflags "-X github.com/dezai/uredis-backup-operator/internal/version.Version=v1.2.3".
package version

// Version is the operator's release version; "dev" for local builds.
var Version = "dev"

// UserAgent is sent with every cloud API request so the provider can tell
// which tool (and which release of it) is calling.
func UserAgent() string { return "uredis-backup-operator/" + Version }
