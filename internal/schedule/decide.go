package schedule

import "time"

// Action is what a reconcile should do with a resource now.
type Action int

const (
	// Wait: nothing to do until the planned attempt (status.nextRefreshTime;
	// the controller's summarize turns it into the requeue).
	Wait Action = iota
	// Refresh: ask the API for a new link and write it.
	Refresh
)

func (a Action) String() string {
	if a == Refresh {
		return "Refresh"
	}
	return "Wait"
}

// Observation is what a reconcile knows about a resource, gathered from the
// API server before any decision.
type Observation struct {
	Now time.Time
	// SpecChanged: the spec's generation differs from the one the current
	// link was obtained for.
	SpecChanged bool
	// RefreshRequested: a new force-refresh annotation value is pending.
	RefreshRequested bool
	// LastAttempt is when the last refresh attempt (a success or a failure)
	// was made; zero when none was.
	LastAttempt time.Time
	// HasLink: status holds a link and its expiry.
	HasLink   bool
	ExpiresAt time.Time
	// NextAttempt is status.nextRefreshTime: the planned refresh after a
	// success, or the next retry after a failure.
	NextAttempt time.Time
	// WaitingOnUser: the last attempt failed in a way only the user can fix
	// (credentials, permissions, an unknown backup); retry early only when
	// the credentials changed.
	WaitingOnUser      bool
	CredentialsChanged bool
	// CredentialsRefused: the last attempt failed because the provider
	// rejected the credentials, which only new credentials can fix.
	CredentialsRefused bool
	// CheapToRecheck: the last attempt failed before any API call (the
	// credentials Secret, the target Secret, the namespace's permission),
	// so looking again on any event costs no quota.
	CheapToRecheck bool
	// SecretInSync: the target Secret exists and holds exactly the link in
	// status.
	SecretInSync bool
	// Suspended: spec.suspend is true; nothing is called or written.
	Suspended bool
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// Reason says why, for logs.
	Reason string
	// Declined says why a pending force-refresh request is acknowledged
	// without a refresh; NotDeclined otherwise.
	Declined Decline
	// Forced: the refresh is the one a force-refresh request asked for, and
	// wants a link of its own rather than one another resource just got.
	Forced bool
}

// Decide picks the next step for a resource. A suspended resource always
// waits. Otherwise it never asks for an API call
// while a fresh link exists for an unchanged spec and an intact Secret, which
// is what makes an operator restart free of API calls; while the user has
// something to fix it waits for the slow retry unless the credentials change;
// and it turns down forced refreshes that come faster than
// Policy.ForcedRefreshMinInterval, or while rejected credentials are
// unchanged, so that no one can make the operator call the API in a loop.
func Decide(p Policy, o Observation) Decision {
	if o.Suspended {
		// Before anything else: a suspended resource makes no call for any
		// reason, and a force-refresh request is acknowledged, not kept
		// for the resume.
		if o.RefreshRequested {
			return Decision{Action: Wait, Reason: "refresh requested while suspended", Declined: DeclinedSuspended}
		}
		return Decision{Action: Wait, Reason: "suspended"}
	}
	due := !o.Now.Before(o.NextAttempt) // also true when nothing was ever attempted
	linkUsable := o.HasLink && o.Now.Before(o.ExpiresAt.Add(-p.MinMargin))
	held := o.CredentialsRefused && !o.CredentialsChanged && !due
	decision := decide(o, due, linkUsable, held, o.RefreshRequested && !held && !p.tooSoonToForce(o))
	if o.RefreshRequested && decision.Action == Wait {
		decision.Declined, decision.Reason = DeclinedTooSoon, "refresh requested too soon after the last attempt"
		if held {
			decision.Declined, decision.Reason = DeclinedCredentialsRejected, "refresh requested while the credentials stay rejected"
		}
	}
	return decision
}

// Decline is why a force-refresh request is turned down.
type Decline int

const (
	NotDeclined Decline = iota
	// DeclinedTooSoon: less than Policy.ForcedRefreshMinInterval after the
	// last attempt.
	DeclinedTooSoon
	// DeclinedCredentialsRejected: the provider rejected the credentials,
	// and they have not changed.
	DeclinedCredentialsRejected
	// DeclinedSuspended: spec.suspend is true.
	DeclinedSuspended
)

func decide(o Observation, due, linkUsable, held, forced bool) Decision {
	switch {
	case held:
		return Decision{Action: Wait, Reason: "credentials rejected: waiting for new credentials or the planned retry"}
	case o.SpecChanged:
		return refresh("spec changed")
	case forced:
		return Decision{Action: Refresh, Reason: "refresh requested", Forced: true}
	case o.WaitingOnUser && o.CredentialsChanged:
		return refresh("credentials changed")
	case o.CheapToRecheck:
		return refresh("re-checking what failed before any API call")
	case due && !o.HasLink:
		return refresh("no link yet")
	case due:
		return refresh("refresh due")
	case linkUsable && !o.SecretInSync && !o.WaitingOnUser:
		return refresh("secret out of sync")
	default:
		return Decision{Action: Wait, Reason: "scheduled"}
	}
}

// tooSoonToForce: a forced refresh now would come less than
// ForcedRefreshMinInterval after the last attempt.
func (p Policy) tooSoonToForce(o Observation) bool {
	return !o.LastAttempt.IsZero() && o.Now.Before(o.LastAttempt.Add(p.ForcedRefreshMinInterval))
}

func refresh(reason string) Decision { return Decision{Action: Refresh, Reason: reason} }
