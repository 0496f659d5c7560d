// Package simulator is a local stand-in for the UCloud-compatible cloud API
// that the operator calls. It speaks the real wire protocol over HTTP
// (signed requests, JSON answers with RetCode, object-storage style signed
// download links) so that the operator's tests exercise its real client code.
//
// Request signatures are verified by this package's own implementation, on
// purpose independent of the operator's client: a misunderstanding of the
// signing algorithm shared by both sides could otherwise pass every test.
package simulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	mathrand "math/rand"
	"net"
	"net/http"
	"sync"
	"time"
)

// Account is a set of API credentials the simulator accepts.
type Account struct {
	PublicKey, PrivateKey string
	// SecurityToken is optional: if non-empty, requests from this account
	// must carry a SecurityToken parameter equal to it (signed like any
	// other parameter); a wrong or missing token is answered with RetCode 174.
	SecurityToken string
	// Projects is optional: if non-empty, a ProjectId that is given and not
	// in this list is answered with RetCode 292. An absent ProjectId means
	// the default project and is always allowed.
	Projects []string
}

// Backup is a URedis backup the simulator knows about.
type Backup struct {
	ID, Region, Zone, GroupID, Name string
	Type                            string    // "Auto" | "Manual" (default "Manual")
	State                           string    // "Success" (default) | "Backuping" | "Error" | "Expired"
	Time                            time.Time // BackupTime; zero means "when it was added"
	Content                         []byte    // the file served by the download endpoint
	// Owner is an optional PublicKey; if set, other accounts get RetCode
	// 20004 from DescribeURedisBackupURL and do not see it in listings.
	Owner string
}

// Config configures a Server.
type Config struct {
	Accounts     []Account
	Backups      []Backup
	LinkLifetime time.Duration    // default 1h; how long a returned link is valid
	Now          func() time.Time // default time.Now; injectable clock
	Seed         int64            // for the fault-rate random choices (reproducible)
	// RetCodeAsString sends "RetCode":"0" instead of 0 (some gateways do).
	RetCodeAsString bool
	// DocumentedShape answers DescribeURedisBackupURL exactly like the
	// example in the API's documentation: a short token in BackupPath and
	// InnerBackupPath, the link only in BackupURL (with a trailing newline).
	DocumentedShape bool
	// RateLimit is an optional per-account limit in requests per second of
	// the Now clock (so a frozen test clock never refills the bucket);
	// beyond it calls are answered with RetCode 153. 0 means unlimited.
	RateLimit float64
	// RateBurst is the bucket size; default max(1, RateLimit).
	RateBurst int
	// Logf, if set, receives one line per call. Lines never hold keys,
	// signatures, tokens or links.
	Logf func(format string, args ...any)
	// TLS makes Start serve the API and the download links over HTTPS, with
	// a certificate for 127.0.0.1 signed by a CA made for this server alone
	// (CACertPEM, Client); links then start with https://.
	TLS bool
}

const defaultLinkLifetime = time.Hour

// Server is the simulated API. All methods are safe for concurrent use.
type Server struct {
	accounts      map[string]Account // immutable after New
	storageSecret []byte             // immutable after New
	now           func() time.Time
	logf          func(format string, args ...any)
	retCodeString bool
	handler       http.Handler

	// closed is closed by Close so that injected latencies stop waiting.
	closed    chan struct{}
	closeOnce sync.Once

	httpServer *http.Server // nil unless started by Start
	baseURL    string       // "" unless started by Start
	tls        *serverTLS   // nil unless started by Start with Config.TLS

	mu           sync.Mutex
	backups      []Backup // insertion order, which listings keep
	linkLifetime time.Duration
	documented   bool
	calls        []Call
	downloads    int
	// downloadFaults are applied to the next downloads; downloadLog
	// records the requests for valid links.
	downloadFaults []DownloadFault
	downloadLog    []DownloadRequest
	faults         faultState
	limiter        rateLimiter
}

// New builds a Server that is not listening; serve its Handler yourself.
// Links it returns then point at the host the request was addressed to.
func New(cfg Config) *Server {
	s := &Server{
		accounts:      make(map[string]Account, len(cfg.Accounts)),
		storageSecret: randomSecret(),
		now:           cfg.Now,
		logf:          cfg.Logf,
		retCodeString: cfg.RetCodeAsString,
		closed:        make(chan struct{}),
		linkLifetime:  cfg.LinkLifetime,
		documented:    cfg.DocumentedShape,
		faults:        faultState{rng: mathrand.New(mathrand.NewSource(cfg.Seed))}, //nolint:gosec // seeded so that a fault sequence can be replayed; nothing secret is drawn
		limiter:       newRateLimiter(cfg.RateLimit, cfg.RateBurst),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	if s.linkLifetime <= 0 {
		s.linkLifetime = defaultLinkLifetime
	}
	for _, a := range cfg.Accounts {
		s.accounts[a.PublicKey] = a
	}
	for _, b := range cfg.Backups {
		s.AddBackup(b)
	}
	s.handler = s.routes()
	return s
}

// randomSecret makes the per-server key that signs download links, so a
// link from one server (or one test) is never accepted by another.
func randomSecret() []byte {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		panic(fmt.Sprintf("simulator: no randomness: %v", err))
	}
	return secret
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", s.serveAPI)
	mux.HandleFunc(downloadPrefix, s.serveDownload)
	mux.HandleFunc(innerPrefix, s.serveDownload)
	return mux
}

// Handler returns the HTTP handler serving the API at "/" and the download
// links under /download/ and /inner/.
func (s *Server) Handler() http.Handler { return s.handler }

// Start is New plus listening on a free loopback port (never on other
// interfaces: the simulator has no business being reachable from outside),
// over HTTPS with Config.TLS.
func Start(cfg Config) (*Server, error) {
	s := New(cfg)
	scheme := "http"
	if cfg.TLS {
		serverTLS, err := newServerTLS()
		if err != nil {
			return nil, fmt.Errorf("simulator: TLS certificate: %w", err)
		}
		s.tls, scheme = serverTLS, "https"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") //nolint:noctx // an IP literal: nothing to resolve, nothing to cancel
	if err != nil {
		return nil, fmt.Errorf("simulator: listen on loopback: %w", err)
	}
	s.baseURL = scheme + "://" + ln.Addr().String() + "/"
	if s.tls != nil {
		// HTTP/1.1 only (no ALPN), like the plain listener, so that a
		// dropped connection is still a hijacked and closed one.
		ln = tls.NewListener(ln, s.tls.config)
	}
	s.httpServer = &http.Server{Handler: s.handler, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := s.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logf("simulator: serve: %v", err)
		}
	}()
	return s, nil
}

// URL returns the API endpoint with a trailing slash, e.g.
// "http://127.0.0.1:41234/" ("https://" with Config.TLS), or "" for a
// server made by New.
func (s *Server) URL() string { return s.baseURL }

// Close stops listening, drops open connections and ends injected waits.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.httpServer != nil {
			_ = s.httpServer.Close()
		}
	})
}

// AddBackup adds a backup, or replaces the one with the same ID in place.
func (s *Server) AddBackup(b Backup) {
	b = s.withDefaults(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.backupIndex(b.ID); i >= 0 {
		s.backups[i] = b
		return
	}
	s.backups = append(s.backups, b)
}

func (s *Server) withDefaults(b Backup) Backup {
	if b.Type == "" {
		b.Type = "Manual"
	}
	if b.State == "" {
		b.State = StateSuccess
	}
	if b.Time.IsZero() {
		b.Time = s.now()
	}
	// Our own copy, so the caller may reuse its slice without a data race.
	b.Content = bytes.Clone(b.Content)
	return b
}

// RemoveBackup forgets a backup; links already handed out stop working.
func (s *Server) RemoveBackup(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.backupIndex(id); i >= 0 {
		s.backups = append(s.backups[:i], s.backups[i+1:]...)
	}
}

// SetBackupState changes a backup's State; unknown IDs are ignored.
func (s *Server) SetBackupState(id, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.backupIndex(id); i >= 0 {
		s.backups[i].State = state
	}
}

// SetDocumentedShape switches Config.DocumentedShape on or off.
func (s *Server) SetDocumentedShape(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.documented = on
}

// SetLinkLifetime changes the lifetime of links returned from now on;
// d <= 0 restores the default of one hour.
func (s *Server) SetLinkLifetime(d time.Duration) {
	if d <= 0 {
		d = defaultLinkLifetime
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linkLifetime = d
}

// backupIndex must be called with s.mu held.
func (s *Server) backupIndex(id string) int {
	for i := range s.backups {
		if s.backups[i].ID == id {
			return i
		}
	}
	return -1
}

// findBackup returns a copy of the backup, safe to use without the lock
// (Content is never mutated in place, only replaced).
func (s *Server) findBackup(id string) (Backup, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.backupIndex(id); i >= 0 {
		return s.backups[i], true
	}
	return Backup{}, false
}

// wait sleeps for d, returning false early if the request is abandoned or
// the server closes, so that injected latency never outlives its caller.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}
