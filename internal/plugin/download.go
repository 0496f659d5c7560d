package plugin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Download streams the resource's backup into output (a file, or "-" for
// stdout) through a link valid for at least minValidity (see ValidLink).
//
// A file download goes to output+".partial" first, with a small
// output+".partial.json" naming the backup and its size; it is renamed to
// output once every byte announced has arrived. An interrupted download
// leaves both behind, and the next run for the same backup asks only for
// the rest (Range: bytes=N-), checks that the storage answered with exactly
// that range of an object of the same size (Content-Range), and starts over
// when the storage ignores ranges. The byte count is checked against the
// length the storage announced.
func (p *Plugin) Download(ctx context.Context, name, output string, minValidity, timeout time.Duration) error {
	if output != "-" && output != "" {
		if _, err := os.Stat(output); err == nil {
			return fmt.Errorf("%s exists: remove it or choose another file with -o", output)
		}
	}
	link, err := p.ValidLink(ctx, name, minValidity, timeout)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(link.URL, "https://") {
		return errors.New("the link is not an https:// link: refused (the backup and the link would travel in clear)")
	}
	if output == "" {
		output = defaultOutput(link.BackupID, name)
		if _, err := os.Stat(output); err == nil {
			return fmt.Errorf("%s exists: remove it or choose another file with -o", output)
		}
	}
	if output == "-" {
		n, _, err := p.fetch(ctx, link.URL, 0, p.Out)
		if err != nil {
			return err
		}
		p.notef("downloaded %d bytes of backup %s", n, orNone(link.BackupID))
		return nil
	}
	n, err := p.downloadFile(ctx, link, output)
	if err != nil {
		return err
	}
	p.notef("downloaded %d bytes of backup %s to %s", n, orNone(link.BackupID), output)
	return nil
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// defaultOutput names the file after the backup, so that a resumed download
// continues the same backup.
func defaultOutput(backupID, name string) string {
	base := backupID
	if base == "" {
		base = name
	}
	return strings.TrimLeft(unsafeFileChars.ReplaceAllString(base, "_"), ".") + ".rdb"
}

// partialState is what output+".partial.json" records about a download in
// progress.
type partialState struct {
	BackupID string `json:"backupId"`
	// Size is the object's size as the storage announced it; -1 unknown.
	Size int64 `json:"size"`
}

func (p *Plugin) downloadFile(ctx context.Context, link Link, output string) (int64, error) {
	partial, statePath := output+".partial", output+".partial.json"
	offset := int64(0)
	if state, ok := readPartialState(statePath); ok && state.BackupID == link.BackupID && state.Size > 0 {
		if info, err := os.Stat(partial); err == nil && info.Size() > 0 && info.Size() <= state.Size {
			offset = info.Size()
			p.notef("resuming %s at byte %d of %d", partial, offset, state.Size)
		}
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if offset > 0 {
		flags = os.O_WRONLY | os.O_APPEND
	}
	file, err := os.OpenFile(partial, flags, 0o600) //nolint:gosec // the user names the file, with -o
	if err != nil {
		return 0, err
	}
	defer func() { _ = file.Close() }() // closed below on success; a second Close only fails

	w := &restartableFile{file: file, statePath: statePath, state: partialState{BackupID: link.BackupID, Size: -1}, offset: offset}
	if offset > 0 {
		w.state.Size, _ = sizeOf(statePath)
	}
	if offset > 0 && offset == w.state.Size {
		// Every byte arrived last time; only the rename was missed.
	} else if _, _, err := p.fetch(ctx, link.URL, offset, w); err != nil {
		if !errors.Is(err, errNotResumable) || offset == 0 {
			return 0, err
		}
		// The partial file is of another object, or the storage cannot
		// say: start over, once.
		p.notef("%v: downloading from the start", err)
		if err := w.restart(); err != nil {
			return 0, err
		}
		if _, _, err := p.fetch(ctx, link.URL, 0, w); err != nil {
			return 0, err
		}
	}
	if err := file.Sync(); err != nil {
		return 0, err
	}
	if err := file.Close(); err != nil {
		return 0, err
	}
	info, err := os.Stat(partial)
	if err != nil {
		return 0, err
	}
	if err := os.Rename(partial, output); err != nil {
		return 0, err
	}
	_ = os.Remove(statePath)
	return info.Size(), nil
}

func readPartialState(path string) (partialState, bool) {
	data, err := os.ReadFile(path) //nolint:gosec // next to the file the user named with -o
	if err != nil {
		return partialState{}, false
	}
	var state partialState
	if json.Unmarshal(data, &state) != nil {
		return partialState{}, false
	}
	return state, true
}

func sizeOf(statePath string) (int64, bool) {
	state, ok := readPartialState(statePath)
	return state.Size, ok
}

// restartableFile is the .partial file: it records the object's size next
// to it before the first byte, and can start over.
type restartableFile struct {
	file      *os.File
	statePath string
	state     partialState
	offset    int64
}

// begin records the size of the object about to be written from offset.
func (r *restartableFile) begin(size int64) error {
	r.state.Size = size
	data, err := json.Marshal(r.state)
	if err != nil {
		return err
	}
	return os.WriteFile(r.statePath, data, 0o600)
}

func (r *restartableFile) restart() error {
	if err := r.file.Truncate(0); err != nil {
		return err
	}
	_, err := r.file.Seek(0, io.SeekStart)
	r.offset = 0
	return err
}

func (r *restartableFile) Write(b []byte) (int, error) { return r.file.Write(b) }

// errNotResumable: the storage did not answer a Range request with the
// range asked for.
var errNotResumable = errors.New("the storage did not resume the download")

// fetch GETs the link from offset into w and checks the bytes received
// against the length announced. It returns how many bytes it wrote and the
// object's size (-1 unknown).
func (p *Plugin) fetch(ctx context.Context, link string, offset int64, w io.Writer) (int64, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return 0, 0, errors.New("the link is not a valid URL")
	}
	// The length announced must be the length received: no transparent
	// decompression.
	req.Header.Set("Accept-Encoding", "identity")
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := p.httpClient().Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("downloading: %w", withoutURL(err))
	}
	defer resp.Body.Close()

	var size int64
	expect := resp.ContentLength
	switch {
	case offset > 0 && resp.StatusCode == http.StatusPartialContent:
		start, total, err := contentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return 0, 0, fmt.Errorf("%w: %w", errNotResumable, err)
		}
		if known, ok := w.(*restartableFile); ok && known.state.Size >= 0 && total != known.state.Size {
			return 0, 0, fmt.Errorf("%w: the object now has %d bytes, the partial download was of %d", errNotResumable, total, known.state.Size)
		}
		if start != offset {
			return 0, 0, fmt.Errorf("%w: it answered from byte %d instead of %d", errNotResumable, start, offset)
		}
		size, expect = total, total-offset
	case offset > 0 && resp.StatusCode == http.StatusOK:
		return 0, 0, fmt.Errorf("%w: it ignores Range requests", errNotResumable)
	case resp.StatusCode == http.StatusOK:
		size = resp.ContentLength
	case resp.StatusCode == http.StatusForbidden:
		return 0, 0, errors.New("the storage refused the link (HTTP 403): it expired or is not valid")
	default:
		return 0, 0, fmt.Errorf("the storage answered HTTP %d", resp.StatusCode)
	}
	if file, ok := w.(*restartableFile); ok && offset == 0 {
		if err := file.begin(size); err != nil {
			return 0, 0, err
		}
	}
	progress := p.newProgress(offset, size)
	n, err := io.Copy(w, progress.reader(resp.Body))
	progress.done()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return n, size, fmt.Errorf("downloading: %w after %d bytes; run the same command again to resume", withoutURL(err), offset+n)
	}
	if expect >= 0 && n != expect {
		return n, size, fmt.Errorf("download incomplete: received %d of %d bytes; run the same command again to resume", offset+n, offset+expect)
	}
	return n, size, nil
}

// contentRange parses "bytes START-END/TOTAL" for a range that runs to the
// end of the object.
func contentRange(header string) (start, total int64, err error) {
	spec, ok := strings.CutPrefix(header, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("no usable Content-Range (%q)", header)
	}
	span, totalText, _ := strings.Cut(spec, "/")
	startText, endText, _ := strings.Cut(span, "-")
	start, err1 := strconv.ParseInt(startText, 10, 64)
	end, err2 := strconv.ParseInt(endText, 10, 64)
	total, err3 := strconv.ParseInt(totalText, 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || end != total-1 || start > end {
		return 0, 0, fmt.Errorf("no usable Content-Range (%q)", header)
	}
	return start, total, nil
}

// withoutURL drops the URL from a client error: the link is a credential.
func withoutURL(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

func (p *Plugin) httpClient() *http.Client {
	if p.HTTPClient != nil {
		return p.HTTPClient
	}
	return NewHTTPClient(nil)
}

// NewHTTPClient returns the client downloads use: the system's CAs plus
// extra (when not nil), HTTPS only (a redirect to anything else is
// refused), no transparent decompression, proxies from the environment.
func NewHTTPClient(extra *x509.CertPool) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableCompression = true
	transport.ResponseHeaderTimeout = time.Minute
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: extra}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Scheme != "https" {
				return errors.New("the storage redirected to a non-https URL: refused")
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}
}

// CertPool returns the system's CAs plus those of the PEM file caFile.
func CertPool(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(caFile) //nolint:gosec // the user names the file, with --ca-file
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return pool, nil
}
