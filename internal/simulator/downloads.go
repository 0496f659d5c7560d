package simulator

import (
	"net/http"
	"slices"
)

// DownloadFault changes how one download (a GET of a valid link) is served.
type DownloadFault struct {
	// CutAfter, when positive, sends the answer's headers (announcing the
	// full length) and this many bytes of the body, then drops the
	// connection, as a broken network would.
	CutAfter int64
	// IgnoreRange serves the whole file with 200 even when a Range is
	// asked for, as storage without range support does.
	IgnoreRange bool
}

// DownloadRequest is one request for a valid link, as the simulator
// answered it (links that were refused are not recorded).
type DownloadRequest struct {
	Method string
	// Range is the request's Range header ("" without one).
	Range string
	// Status is the HTTP status answered (200, 206, 416...).
	Status int
	// Bytes is how many bytes of the body were sent.
	Bytes int64
	// Cut: the connection was dropped before the body was complete.
	Cut bool
}

// QueueDownloadFaults appends faults applied to the next downloads, one per
// GET of a valid link, in order.
func (s *Server) QueueDownloadFaults(f ...DownloadFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downloadFaults = append(s.downloadFaults, f...)
}

func (s *Server) takeDownloadFault() DownloadFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.downloadFaults) == 0 {
		return DownloadFault{}
	}
	f := s.downloadFaults[0]
	s.downloadFaults = slices.Delete(s.downloadFaults, 0, 1)
	return f
}

func (s *Server) recordDownload(d DownloadRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downloadLog = append(s.downloadLog, d)
}

// DownloadRequests returns a copy of the log of requests for valid links.
func (s *Server) DownloadRequests() []DownloadRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.downloadLog)
}

// downloadRecorder records the status and the bytes sent, and stops the
// body after limit bytes (limit < 0: no limit).
type downloadRecorder struct {
	http.ResponseWriter
	status  int
	written int64
	limit   int64
	cut     bool
}

func (d *downloadRecorder) WriteHeader(status int) {
	d.status = status
	d.ResponseWriter.WriteHeader(status)
}

func (d *downloadRecorder) Write(p []byte) (int, error) {
	if d.limit >= 0 && d.written+int64(len(p)) > d.limit {
		p = p[:d.limit-d.written]
		d.cut = true
	}
	n, err := d.ResponseWriter.Write(p)
	d.written += int64(n)
	if d.cut {
		_ = http.NewResponseController(d.ResponseWriter).Flush()
		return n, http.ErrAbortHandler
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (d *downloadRecorder) Unwrap() http.ResponseWriter { return d.ResponseWriter }
