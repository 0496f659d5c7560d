package simulator

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // HMAC-SHA1 is what object-storage query signing uses.
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	downloadPrefix = "/download/"
	innerPrefix    = "/inner/"
	// storagePublicKey plays the object-storage service's own access key
	// that real links carry; it is deliberately not any user's key.
	storagePublicKey = "uredis-backup-storage@simulator.local"
)

// link is the query-string authentication of one download link.
type link struct {
	backupID string
	expires  string // unix seconds; "" for a link without Expires
}

// linkSignature is standard base64 (with + / =, as real links have) of
// HMAC-SHA1 over "<backupId>\n<expires>" with this server's secret.
func (s *Server) linkSignature(l link) string {
	mac := hmac.New(sha1.New, s.storageSecret)
	mac.Write([]byte(l.backupID + "\n" + l.expires))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// url renders the link under base (ending in "/") and prefix. The query is
// written by hand, unescaped, exactly as the real service writes it: the
// signature's '+', '/' and '=' appear raw, and clients must use it verbatim.
func (s *Server) linkURL(base, prefix string, l link) string {
	query := "UCloudPublicKey=" + storagePublicKey
	if l.expires != "" {
		query += "&Expires=" + l.expires
	}
	query += "&Signature=" + s.linkSignature(l)
	return base + strings.TrimPrefix(prefix, "/") + url.PathEscape(l.backupID) + "?" + query
}

func expiresAt(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// linkBase is where links point: the started server's URL, or else the host
// the request was addressed to (for a Handler served by someone else).
func (s *Server) linkBase(r *http.Request) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/"
}

// serveDownload serves a backup's content for a valid, unexpired link.
func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, downloadPrefix), innerPrefix)
	if reason := s.checkLink(id, r.URL.RawQuery); reason != "" {
		s.logf("simulator: download refused: %s", reason)
		http.Error(w, reason, http.StatusForbidden)
		return
	}
	backup, ok := s.findBackup(id)
	if !ok {
		s.logf("simulator: download refused: no such backup")
		http.Error(w, "no such backup", http.StatusNotFound)
		return
	}
	fault := DownloadFault{}
	if r.Method == http.MethodGet {
		s.countDownload()
		fault = s.takeDownloadFault()
	}
	requested := r.Header.Get("Range")
	if fault.IgnoreRange {
		r.Header.Del("Range")
		r.Header.Del("If-Range")
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	rec := &downloadRecorder{ResponseWriter: w, status: http.StatusOK, limit: -1}
	if fault.CutAfter > 0 {
		rec.limit = fault.CutAfter
	}
	defer func() {
		s.recordDownload(DownloadRequest{Method: r.Method, Range: requested, Status: rec.status, Bytes: rec.written, Cut: rec.cut})
	}()
	// Object storage honours Range (and If-Range): ServeContent answers 206
	// with Content-Range, or 416, as it does.
	http.ServeContent(rec, r, "", backup.Time, bytes.NewReader(backup.Content))
	if rec.cut {
		// Drop the connection, the announced length unmet, as a broken
		// network would.
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) countDownload() {
	s.mu.Lock()
	s.downloads++
	s.mu.Unlock()
	s.logf("simulator: download served")
}

// checkLink returns why the link is refused, or "" if it is good. The
// reasons are short and never echo the expected signature.
func (s *Server) checkLink(id, rawQuery string) string {
	query, ok := parseRawQuery(rawQuery)
	if !ok {
		return "malformed query"
	}
	if query["UCloudPublicKey"] != storagePublicKey {
		return "unknown access key"
	}
	expires, hasExpires := query["Expires"]
	if !hmac.Equal([]byte(s.linkSignature(link{backupID: id, expires: expires})), []byte(query["Signature"])) {
		return "signature mismatch"
	}
	if !hasExpires {
		return "" // signed without Expires: valid forever
	}
	deadline, err := strconv.ParseInt(expires, 10, 64)
	if err != nil {
		return "invalid Expires"
	}
	if s.now().Unix() > deadline {
		return "link expired"
	}
	return ""
}

// parseRawQuery decodes %XX escapes but, unlike url.ParseQuery, keeps '+'
// as '+': a signature's '+' turned into a space must fail, as it would on
// the real storage service. A repeated name makes the link ambiguous.
func parseRawQuery(raw string) (map[string]string, bool) {
	query := map[string]string{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(part, "=")
		name, errName := url.PathUnescape(rawName)
		value, errValue := url.PathUnescape(rawValue)
		if errName != nil || errValue != nil {
			return nil, false
		}
		if _, repeated := query[name]; repeated {
			return nil, false
		}
		query[name] = value
	}
	return query, true
}
