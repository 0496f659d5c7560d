package cloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/dezai/uredis-backup-operator/internal/expiring"
)

// SharedResolver lets resources that ask for the same backup link with the
// same credentials share one API call: concurrent requests share the call in
// flight, and a request that arrives shortly after may take its answer.
// Answers are keyed by a digest of the credentials, so they are never shared
// between different accounts, keys or tokens.
type SharedResolver struct {
	client *Client
	now    func() time.Time
	group  singleflight.Group

	recent *expiring.Map[string, BackupLink]
}

// NewSharedResolver wraps client.
func NewSharedResolver(client *Client) *SharedResolver {
	return &SharedResolver{client: client, now: client.now, recent: expiring.New[string, BackupLink](rememberFor, client.now)}
}

// ResolveBackupLink returns a link for req. An answer obtained by another
// caller at most maxAge (and at most a tenth of its lifetime) ago is reused; maxAge 0 asks for a new call (which
// may still be shared with a call in flight, whose answer is new too).
func (s *SharedResolver) ResolveBackupLink(ctx context.Context, creds Credentials, req BackupURLRequest, maxAge time.Duration) (BackupLink, error) {
	key := shareKey(creds, req)
	if link, ok := s.reusable(key, maxAge); ok {
		return link, nil
	}
	// The call must not fail for everyone when the first caller gives up,
	// so it runs detached from that caller's cancellation; the client's
	// own timeout still bounds it.
	ch := s.group.DoChan(key, func() (any, error) {
		link, err := s.client.DescribeBackupURL(context.WithoutCancel(ctx), creds, req)
		if err == nil {
			s.recent.Put(key, link)
		}
		return link, err
	})
	select {
	case <-ctx.Done():
		return BackupLink{}, &TransportError{Action: ActionDescribeBackupURL, Err: ctx.Err()}
	case res := <-ch:
		if res.Err != nil {
			return BackupLink{}, res.Err
		}
		return res.Val.(BackupLink), nil
	}
}

func (s *SharedResolver) reusable(key string, maxAge time.Duration) (BackupLink, bool) {
	if maxAge <= 0 {
		return BackupLink{}, false
	}
	link, ok := s.recent.Get(key)
	if !ok {
		return BackupLink{}, false
	}
	// A shared answer must be nearly as good as a new one: never older than
	// a tenth of its lifetime, or the taker would have to refresh early.
	age := s.now().Sub(link.ObtainedAt)
	return link, age <= maxAge && age <= link.ExpiresAt.Sub(link.ObtainedAt)/10
}

// rememberFor bounds how long answers are kept for reuse: longer than any
// maxAge the reconciler asks for, and short, because an answer is held for
// every backup the operator exports.
const rememberFor = 30 * time.Second

// shareKey digests everything that makes two calls interchangeable. The
// private key takes part so that answers never cross accounts; only its
// digest is kept.
func shareKey(creds Credentials, req BackupURLRequest) string {
	h := sha256.New()
	for _, part := range []string{creds.PublicKey, creds.PrivateKey, creds.SecurityToken} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	params := req.params()
	for _, name := range slices.Sorted(maps.Keys(params)) {
		h.Write([]byte(name + "=" + params[name]))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
