package schedule

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	p := DefaultPolicy()
	now := t0
	fresh := Observation{Now: now, HasLink: true, ExpiresAt: now.Add(time.Hour), NextAttempt: now.Add(20 * time.Minute), SecretInSync: true}
	with := func(mutate func(*Observation)) Observation {
		o := fresh
		mutate(&o)
		return o
	}
	tests := []struct {
		name string
		obs  Observation
		want Action
		// declined: why a pending force-refresh request is turned down.
		declined Decline
	}{
		{name: "new resource", obs: Observation{Now: now}, want: Refresh},
		{name: "fresh link: wait for the planned refresh", obs: fresh, want: Wait},
		{name: "refresh due", obs: with(func(o *Observation) { o.NextAttempt = now }), want: Refresh},
		{name: "spec changed", obs: with(func(o *Observation) { o.SpecChanged = true }), want: Refresh},
		{name: "force refresh", obs: with(func(o *Observation) { o.RefreshRequested = true }), want: Refresh},
		{name: "secret deleted or edited", obs: with(func(o *Observation) { o.SecretInSync = false }), want: Refresh},
		{name: "secret deleted, link inside the margin, backoff running: wait", obs: with(func(o *Observation) {
			o.SecretInSync, o.ExpiresAt, o.NextAttempt = false, now.Add(5*time.Second), now.Add(time.Minute)
		}), want: Wait},
		{name: "waiting on the user: wait for the slow retry", obs: with(func(o *Observation) {
			o.WaitingOnUser, o.NextAttempt = true, now.Add(10*time.Minute)
		}), want: Wait},
		{name: "waiting on the user, credentials changed", obs: with(func(o *Observation) {
			o.WaitingOnUser, o.CredentialsChanged, o.NextAttempt = true, true, now.Add(10*time.Minute)
		}), want: Refresh},
		{name: "credentials changed while healthy: nothing to do", obs: with(func(o *Observation) { o.CredentialsChanged = true }), want: Wait},
		{name: "waiting on the user with a lost secret: still no hot retry", obs: with(func(o *Observation) {
			o.WaitingOnUser, o.SecretInSync, o.NextAttempt = true, false, now.Add(10*time.Minute)
		}), want: Wait},
		{name: "waiting on the user, slow retry due", obs: with(func(o *Observation) {
			o.WaitingOnUser, o.NextAttempt = true, now
		}), want: Refresh},
		{name: "a failure found before any API call is re-checked on every event", obs: with(func(o *Observation) {
			o.HasLink, o.CheapToRecheck, o.NextAttempt = false, true, now.Add(5*time.Minute)
		}), want: Refresh},
		{name: "transient backoff running", obs: with(func(o *Observation) { o.HasLink, o.NextAttempt = false, now.Add(8*time.Second) }), want: Wait},
		{name: "force refresh 31 s after the last attempt", obs: with(func(o *Observation) {
			o.RefreshRequested, o.LastAttempt = true, now.Add(-31*time.Second)
		}), want: Refresh},
		{name: "force refresh 10 s after the last attempt: declined", obs: with(func(o *Observation) {
			o.RefreshRequested, o.LastAttempt = true, now.Add(-10*time.Second)
		}), want: Wait, declined: DeclinedTooSoon},
		{name: "force refresh too soon, but the refresh is due anyway", obs: with(func(o *Observation) {
			o.RefreshRequested, o.LastAttempt, o.NextAttempt = true, now.Add(-10*time.Second), now
		}), want: Refresh},
		{name: "credentials rejected: a forced refresh waits for the slow retry", obs: with(func(o *Observation) {
			o.WaitingOnUser, o.CredentialsRefused, o.RefreshRequested = true, true, true
			o.LastAttempt, o.NextAttempt = now.Add(-time.Hour), now.Add(10*time.Minute)
		}), want: Wait, declined: DeclinedCredentialsRejected},
		{name: "credentials rejected: a spec change waits for the slow retry", obs: with(func(o *Observation) {
			o.WaitingOnUser, o.CredentialsRefused, o.SpecChanged, o.NextAttempt = true, true, true, now.Add(10*time.Minute)
		}), want: Wait},
		{name: "credentials rejected, then changed: at once", obs: with(func(o *Observation) {
			o.WaitingOnUser, o.CredentialsRefused, o.CredentialsChanged, o.SpecChanged, o.NextAttempt = true, true, true, true, now.Add(10*time.Minute)
		}), want: Refresh},
		{name: "credentials rejected, slow retry due", obs: with(func(o *Observation) {
			o.WaitingOnUser, o.CredentialsRefused, o.NextAttempt = true, true, now
		}), want: Refresh},
		{name: "suspended: the planned refresh is due, but nothing is called", obs: with(func(o *Observation) {
			o.Suspended, o.NextAttempt = true, now
		}), want: Wait},
		{name: "suspended: the Secret is lost, and not repaired", obs: with(func(o *Observation) {
			o.Suspended, o.SecretInSync = true, false
		}), want: Wait},
		{name: "suspended: no link at all", obs: Observation{Now: now, Suspended: true}, want: Wait},
		{name: "suspended: a spec change waits for the resume", obs: with(func(o *Observation) {
			o.Suspended, o.SpecChanged = true, true
		}), want: Wait},
		{name: "suspended: a forced refresh is declined", obs: with(func(o *Observation) {
			o.Suspended, o.RefreshRequested, o.LastAttempt = true, true, now.Add(-time.Hour)
		}), want: Wait, declined: DeclinedSuspended},
		{name: "suspended: a failure found before any call is not re-checked", obs: with(func(o *Observation) {
			o.Suspended, o.HasLink, o.CheapToRecheck = true, false, true
		}), want: Wait},
		{name: "resumed inside the refresh window: at once", obs: with(func(o *Observation) { o.NextAttempt = now.Add(-time.Minute) }), want: Refresh},
		{name: "provider rejected the request: a spec change retries at once", obs: with(func(o *Observation) {
			o.WaitingOnUser, o.SpecChanged, o.NextAttempt = true, true, now.Add(10*time.Minute)
		}), want: Refresh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(p, tt.obs)
			if got.Action != tt.want {
				t.Fatalf("Decide() = %v (%s), want %v", got.Action, got.Reason, tt.want)
			}
			if got.Declined != tt.declined {
				t.Fatalf("Decide().Declined = %v (%s), want %v", got.Declined, got.Reason, tt.declined)
			}
		})
	}
}

func TestOnlyTheForcedRefreshAsksForAnAnswerOfItsOwn(t *testing.T) {
	p := DefaultPolicy()
	now := t0
	forced := Decide(p, Observation{Now: now, HasLink: true, ExpiresAt: now.Add(time.Hour), NextAttempt: now.Add(time.Minute), SecretInSync: true,
		RefreshRequested: true, LastAttempt: now.Add(-time.Hour)})
	if forced.Action != Refresh || !forced.Forced {
		t.Errorf("a request after the interval is a forced refresh: %+v", forced)
	}
	// Too soon to force, but the Secret was deleted: a refresh, not a
	// forced one (it may take another resource's recent answer).
	lost := Decide(p, Observation{Now: now, HasLink: true, ExpiresAt: now.Add(time.Hour), NextAttempt: now.Add(time.Minute), SecretInSync: false,
		RefreshRequested: true, LastAttempt: now.Add(-time.Second)})
	if lost.Action != Refresh || lost.Forced || lost.Declined != NotDeclined {
		t.Errorf("a lost Secret refreshes without forcing: %+v", lost)
	}
}
