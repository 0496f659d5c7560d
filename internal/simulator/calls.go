package simulator

import (
	"maps"
	"time"
)

// Call is one API call as the simulator saw it, for test assertions.
type Call struct {
	Time      time.Time
	Action    string
	PublicKey string
	// Params holds every parameter except Signature and SecurityToken,
	// which are secrets and never kept.
	Params     map[string]string
	RetCode    int // -1 when no well-formed JSON answer was sent
	HTTPStatus int // 0 when the connection was dropped or abandoned
	Fault      string
}

// redactedParams copies params without the secret ones.
func redactedParams(params map[string]string) map[string]string {
	kept := maps.Clone(params)
	if kept == nil {
		kept = map[string]string{}
	}
	delete(kept, "Signature")
	delete(kept, "SecurityToken")
	return kept
}

func (s *Server) recordCall(c Call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	s.logf("simulator: call %s RetCode=%d HTTP=%d fault=%q", c.Action, c.RetCode, c.HTTPStatus, c.Fault)
}

// Calls returns a copy of the API call log (downloads are not in it).
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		c.Params = maps.Clone(c.Params)
		out[i] = c
	}
	return out
}

// CallCount counts logged API calls of one action; "" counts them all.
func (s *Server) CallCount(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if action == "" {
		return len(s.calls)
	}
	n := 0
	for _, c := range s.calls {
		if c.Action == action {
			n++
		}
	}
	return n
}

// ResetCalls empties the call log, the download counter and the download
// log.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
	s.downloads = 0
	s.downloadLog = nil
}

// Downloads counts successful downloads.
func (s *Server) Downloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads
}
