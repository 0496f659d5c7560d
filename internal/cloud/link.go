package cloud

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxLinkLength bounds what we accept as a link; real object-storage links
// are a few hundred bytes and anything far larger is not a link.
const maxLinkLength = 4096

// Link is a download link as the provider returned it.
type Link struct {
	// URL is the link, verbatim apart from trimmed surrounding whitespace.
	// Its query carries a storage signature in raw base64, so it must never
	// be re-encoded.
	URL string
	// ExpiresAt is the link's Expires query parameter, or ObtainedAt plus the
	// client's default lifetime when the link has none.
	ExpiresAt time.Time
	// ExpiryFromLink is false when ExpiresAt is an assumed default.
	ExpiryFromLink bool
}

// String keeps the bearer link out of logs and error messages.
func (l Link) String() string {
	return "Link{redacted, expiresAt=" + l.ExpiresAt.UTC().Format(time.RFC3339) + "}"
}

// parseLink validates a link and reads its expiry. Errors describe what is
// wrong without repeating the link, which is a bearer credential.
func parseLink(raw string, obtainedAt time.Time, defaultLifetime time.Duration) (Link, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Link{}, fmt.Errorf("the link is empty")
	}
	if len(raw) > maxLinkLength {
		return Link{}, fmt.Errorf("the link is %d bytes long, more than the %d accepted", len(raw), maxLinkLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Link{}, fmt.Errorf("the link is not a valid URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return Link{}, fmt.Errorf("the link's scheme is neither https nor http")
	}
	if u.Host == "" {
		return Link{}, fmt.Errorf("the link has no host")
	}

	expires, found, err := expiresParam(u.RawQuery)
	if err != nil {
		return Link{}, err
	}
	if !found {
		return Link{URL: raw, ExpiresAt: obtainedAt.Add(defaultLifetime).Truncate(time.Second)}, nil
	}
	return Link{URL: raw, ExpiresAt: expires, ExpiryFromLink: true}, nil
}

// expiresParam reads the Expires query parameter (Unix seconds). The query is
// split by hand rather than with url.ParseQuery, which would fail on, or
// silently rewrite, the raw base64 signature next to it.
func expiresParam(rawQuery string) (time.Time, bool, error) {
	for _, pair := range strings.Split(rawQuery, "&") {
		name, value, _ := strings.Cut(pair, "=")
		if name != "Expires" {
			continue
		}
		seconds, err := strconv.ParseInt(value, 10, 64)
		if err != nil || seconds <= 0 || seconds > maxUnixSeconds {
			return time.Time{}, false, fmt.Errorf("the link's Expires parameter is not a Unix time in seconds")
		}
		return time.Unix(seconds, 0).UTC(), true, nil
	}
	return time.Time{}, false, nil
}

// maxUnixSeconds is the start of year 10000: later than any real expiry and
// small enough to keep time arithmetic far from overflow.
const maxUnixSeconds = 253402300800
