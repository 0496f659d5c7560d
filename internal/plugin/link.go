package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	uredisv1alpha1 "github.com/dezai/uredis-backup-operator/api/v1alpha1"
)

// Link is a download link and when it expires. URL is a bearer credential:
// it is printed by `url` and nowhere else.
type Link struct {
	URL       string
	ExpiresAt time.Time
	BackupID  string
}

// URL prints the resource's link if it stays valid for at least
// minValidity, after asking the operator for a new one if needed.
func (p *Plugin) URL(ctx context.Context, name string, minValidity, timeout time.Duration) error {
	link, err := p.ValidLink(ctx, name, minValidity, timeout)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(p.Out, link.URL)
	return err
}

// ValidLink returns the resource's link if it stays valid for at least
// minValidity. Otherwise it requests a refresh, waits at most timeout for
// the operator's answer and returns the new link, or an error saying why
// there is none. When links live no longer than minValidity (judged from the
// current one: its expiry minus when the operator obtained it), it fails at
// once, without a request: a new link would not be valid long enough either.
func (p *Plugin) ValidLink(ctx context.Context, name string, minValidity, timeout time.Duration) (Link, error) {
	export, err := p.getExport(ctx, name)
	if err != nil {
		return Link{}, err
	}
	if lifetime, ok := linkLifetime(export); ok && minValidity >= lifetime {
		return Link{}, fmt.Errorf("links of redisbackupexport %s live about %s (the current one was obtained at %s and expires at %s): none can stay valid for --min-validity %s; ask for less",
			name, duration.HumanDuration(lifetime), formatTime(export.Status.LastRefreshTime.Time), formatTime(export.Status.ExpiresAt.Time), minValidity)
	}
	link, err := p.readLink(ctx, export)
	if err == nil {
		left := link.ExpiresAt.Sub(p.Clock.Now())
		if left >= minValidity {
			return link, nil
		}
		p.notef("the link is valid for %s, less than %s: asking the operator for a new one", humanLeft(left), minValidity)
	} else {
		var missing *noLinkError
		if !errors.As(err, &missing) {
			return Link{}, err
		}
		p.notef("%s: asking the operator for a new one", err)
	}

	before, value, err := p.requestRefresh(ctx, name)
	if err != nil {
		return Link{}, err
	}
	answer, err := p.waitForAnswer(ctx, before, value, timeout)
	if err != nil {
		return Link{}, err
	}
	if err := p.answerError(ctx, answer); err != nil {
		return Link{}, err
	}
	link, err = p.readLink(ctx, answer.Export)
	if err != nil {
		return Link{}, err
	}
	if left := link.ExpiresAt.Sub(p.Clock.Now()); left < minValidity {
		return Link{}, fmt.Errorf("the new link is valid for only %s, less than --min-validity %s: the provider hands out shorter links than the last one", humanLeft(left), minValidity)
	}
	p.notef("new link valid until %s", formatTime(link.ExpiresAt))
	return link, nil
}

// linkLifetime is how long the operator's last link lived from when it was
// obtained to its expiry.
func linkLifetime(export *uredisv1alpha1.RedisBackupExport) (time.Duration, bool) {
	st := export.Status
	if st.LastRefreshTime == nil || st.ExpiresAt == nil || !st.ExpiresAt.After(st.LastRefreshTime.Time) {
		return 0, false
	}
	return st.ExpiresAt.Sub(st.LastRefreshTime.Time), true
}

func humanLeft(left time.Duration) string {
	if left <= 0 {
		return "no time (it has expired)"
	}
	return duration.HumanDuration(left)
}

// noLinkError: the resource has no link to hand out yet.
type noLinkError struct{ why string }

func (e *noLinkError) Error() string { return e.why }

// readLink reads the link from the target Secret, the contract consumers
// rely on (the status may not carry it: --link-in-status=false). The
// Secret must be the resource's own; its keys may be renamed by
// spec.target.keys. Without the link key (a template that replaces the
// default keys) the status' link is used, if it has one.
func (p *Plugin) readLink(ctx context.Context, export *uredisv1alpha1.RedisBackupExport) (Link, error) {
	st := export.Status
	secretName := export.TargetSecretName()
	secret := &corev1.Secret{}
	err := p.Client.Get(ctx, client.ObjectKey{Namespace: export.Namespace, Name: secretName}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return Link{}, &noLinkError{fmt.Sprintf("the operator has not written Secret %s yet (Ready: %s)", secretName, readySummary(export))}
	case err != nil:
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return Link{}, fmt.Errorf("reading Secret %s/%s: %s", export.Namespace, secretName, status.Status().Message)
		}
		return Link{}, fmt.Errorf("reading Secret %s/%s: %w", export.Namespace, secretName, err)
	}
	if secret.Labels[uredisv1alpha1.LabelManagedBy] != uredisv1alpha1.ManagedByValue || secret.Annotations[uredisv1alpha1.AnnotationExportUID] != string(export.UID) {
		return Link{}, fmt.Errorf("secret %s/%s is not the one the operator writes for redisbackupexport %s (no %s label or %s annotation naming it): not used",
			export.Namespace, secretName, export.Name, uredisv1alpha1.LabelManagedBy, uredisv1alpha1.AnnotationExportUID)
	}
	keys := export.Spec.Target.Keys.Resolved()
	link := Link{
		URL:      string(secret.Data[keys.BackupPath]),
		BackupID: string(secret.Data[keys.BackupID]),
	}
	expires := string(secret.Data[keys.ExpiresAt])
	if link.URL == "" {
		if st.BackupPath == "" || st.ExpiresAt == nil {
			return Link{}, fmt.Errorf("secret %s/%s has no key %s and status.backupPath is empty (the operator runs with --link-in-status=false): no link to read",
				export.Namespace, secretName, keys.BackupPath)
		}
		link.URL, expires = st.BackupPath, formatTime(st.ExpiresAt.Time)
	}
	if link.BackupID == "" {
		link.BackupID = st.BackupID
	}
	if expires == "" && st.ExpiresAt != nil {
		expires = formatTime(st.ExpiresAt.Time)
	}
	at, err := time.Parse(time.RFC3339, expires)
	if err != nil {
		return Link{}, fmt.Errorf("secret %s/%s: the link's expiry %q is not an RFC 3339 time", export.Namespace, secretName, expires)
	}
	link.ExpiresAt = at
	return link, nil
}
