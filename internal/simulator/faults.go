package simulator

import (
	mathrand "math/rand"
	"slices"
	"time"
)

// FaultKind names a way the simulated API misbehaves.
type FaultKind string

// Fault kinds. Link faults only change a successful DescribeURedisBackupURL
// answer; on any other call, or a call that fails anyway, they do nothing
// (but are still used up).
const (
	// FaultLatency sleeps Fault.Latency, then answers normally.
	FaultLatency FaultKind = "latency"
	// FaultHTTPStatus answers Fault.HTTPStatus (default 500) with a short
	// HTML body, as a load balancer in front of the gateway would.
	FaultHTTPStatus FaultKind = "http-status"
	// FaultRetCode answers a JSON error with Fault.RetCode (default 150) and
	// Fault.Message (default: the gateway's wording for that code).
	FaultRetCode FaultKind = "retcode"
	// FaultMalformedJSON answers 200 with a truncated JSON body.
	FaultMalformedJSON FaultKind = "malformed-json"
	// FaultLinkWithoutExpires returns a link without the Expires parameter
	// (such a link never expires, and downloads fine).
	FaultLinkWithoutExpires FaultKind = "link-without-expires"
	// FaultExpiredLink returns a correctly signed link whose Expires is an
	// hour in the past.
	FaultExpiredLink FaultKind = "expired-link"
	// FaultDropConnection closes the TCP connection without answering.
	FaultDropConnection FaultKind = "drop-connection"
	// FaultOnlyBackupURL answers with an empty BackupPath and only the
	// deprecated BackupURL set.
	FaultOnlyBackupURL FaultKind = "only-backup-url"
	// FaultEmptyLink answers RetCode 0 with neither BackupPath nor BackupURL.
	FaultEmptyLink FaultKind = "empty-link"
)

// Fault is one injected misbehaviour; only the fields of its Kind matter.
type Fault struct {
	Kind       FaultKind
	Latency    time.Duration
	HTTPStatus int // e.g. 500, 502, 503, 429
	RetCode    int
	Message    string
	// PublicKey, if set, makes the fault apply only to calls that name this
	// PublicKey (e.g. to throttle one account while others go on); calls
	// from other accounts pass it by and leave it in place.
	PublicKey string
}

// faultState is guarded by Server.mu.
type faultState struct {
	queue      []Fault
	rate       float64
	rateFaults []Fault
	rng        *mathrand.Rand // seeded once by New, so runs are reproducible
	latency    time.Duration
}

// QueueFaults appends faults applied to the next API calls (not downloads),
// one per call, in order, whatever the call is (a fault with a PublicKey
// waits for the next call from that account).
func (s *Server) QueueFaults(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.queue = append(s.faults.queue, f...)
}

// SetFaultRate makes each API call, once the queue has no fault for it,
// suffer with probability rate one of f chosen at random (from Config.Seed);
// a chosen fault with another account's PublicKey does nothing.
func (s *Server) SetFaultRate(rate float64, f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.rate = min(max(rate, 0), 1)
	s.faults.rateFaults = append([]Fault(nil), f...)
}

// SetLatency adds d to every API call.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// ClearFaults empties the queue and removes the fault rate and the latency.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.queue = nil
	s.faults.rate = 0
	s.faults.rateFaults = nil
	s.faults.latency = 0
}

// takeFault picks the fault for one API call naming publicKey (Kind "" for
// none) and the total latency to add before answering.
func (s *Server) takeFault(publicKey string) (Fault, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fault := s.faults.next(publicKey)
	latency := s.faults.latency
	if fault.Kind == FaultLatency {
		latency += fault.Latency
	}
	return fault, latency
}

func (f *faultState) next(publicKey string) Fault {
	for i, fault := range f.queue {
		if fault.appliesTo(publicKey) {
			f.queue = slices.Delete(f.queue, i, i+1)
			return fault
		}
	}
	if f.rate > 0 && len(f.rateFaults) > 0 && f.rng.Float64() < f.rate {
		if fault := f.rateFaults[f.rng.Intn(len(f.rateFaults))]; fault.appliesTo(publicKey) {
			return fault
		}
	}
	return Fault{}
}

func (f Fault) appliesTo(publicKey string) bool {
	return f.PublicKey == "" || f.PublicKey == publicKey
}
