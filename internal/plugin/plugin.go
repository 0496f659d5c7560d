// Package plugin is kubectl-rbe, the kubectl plugin for RedisBackupExports:
// it shows their state, asks the operator for a refresh and waits for its
// answer, and hands out (or downloads through) a link only while it stays
// valid long enough. cmd/kubectl-rbe is its main; the commands take their
// client, clock and output from a Plugin, so that tests can inject them.
//
// The link is a bearer credential: only `url` prints it, and no message or
// error carries it.
package plugin

import (
	"fmt"
	"io"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// Plugin is what the commands share.
type Plugin struct {
	// Client reads and patches RedisBackupExports, reads their Secrets and
	// (if allowed) their Events, straight from the API server.
	Client client.Client
	// Namespace is the namespace of the resources named on the command line.
	Namespace string
	Clock     clock.Clock
	// Out receives what the command is for (the table, the link, a
	// download to stdout); ErrOut the progress and notes.
	Out, ErrOut io.Writer
	// PollInterval is how often a wait reads the resource again.
	PollInterval time.Duration
	// HTTPClient downloads backups (download only).
	HTTPClient *http.Client
	// Progress shows a progress line on ErrOut during downloads (on a
	// terminal).
	Progress bool
}

// DefaultPollInterval paces the waits for the operator's answer.
const DefaultPollInterval = time.Second

// Scheme holds the kinds the plugin reads.
func Scheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(eventsv1.AddToScheme(scheme))
	utilruntime.Must(uredisv1alpha1.AddToScheme(scheme))
	return scheme
}

// notef prints a note on ErrOut. A note that cannot be written changes
// nothing the command does.
func (p *Plugin) notef(format string, args ...any) {
	_, _ = fmt.Fprintf(p.ErrOut, format+"\n", args...)
}

func (p *Plugin) pollInterval() time.Duration {
	if p.PollInterval > 0 {
		return p.PollInterval
	}
	return DefaultPollInterval
}
