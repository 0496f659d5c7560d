// Package cloud is the operator's client for the UCloud-compatible cloud
// API: request signing, transport, response decoding and typed errors.
package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dezai/uredis-backup-operator/internal/version"
)

const (
	paramAction        = "Action"
	paramPublicKey     = "PublicKey"
	paramSecurityToken = "SecurityToken"
	paramSignature     = "Signature"

	// DefaultEndpoint is the provider's public API gateway.
	DefaultEndpoint = "https://api.dezai.com/"
	// DefaultTimeout matches the provider's official SDK.
	DefaultTimeout = 30 * time.Second
	// DefaultLinkLifetime is assumed for a link that carries no Expires.
	DefaultLinkLifetime = time.Hour

	// maxResponseBytes bounds how much of a response body is read: real
	// answers are well under a kilobyte.
	maxResponseBytes = 1 << 20
)

// Credentials is an API key pair, optionally with a temporary token. Its
// String and MarshalLog methods never reveal the private key or the token.
type Credentials struct {
	PublicKey     string
	PrivateKey    string
	SecurityToken string
}

// String keeps secrets out of fmt output.
func (c Credentials) String() string { return "Credentials{redacted}" }

// MarshalLog keeps secrets out of structured logs (logr.Marshaler).
func (c Credentials) MarshalLog() any { return c.String() }

// Options configure a Client.
type Options struct {
	// Endpoint is the API base URL; DefaultEndpoint when empty.
	Endpoint string
	// HTTPClient sends the requests; a client with default transport
	// settings when nil. Its own Timeout is left alone: Timeout below applies
	// per request through the context.
	HTTPClient *http.Client
	// Timeout bounds each request; DefaultTimeout when zero.
	Timeout time.Duration
	// UserAgent is sent with every request; the operator's name and version
	// when empty.
	UserAgent string
	// DefaultLinkLifetime is assumed for links without Expires;
	// DefaultLinkLifetime when zero.
	DefaultLinkLifetime time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Throttle paces all calls (one budget for all, a pause per public key
	// after a throttled answer); unlimited when nil.
	Throttle *Throttle
	// Observer is told about every request; none when nil.
	Observer RequestObserver
}

// Client calls the cloud API. It is safe for concurrent use.
type Client struct {
	endpoint            string
	http                *http.Client
	timeout             time.Duration
	userAgent           string
	defaultLinkLifetime time.Duration
	now                 func() time.Time
	throttle            *Throttle
	observer            RequestObserver
}

// New returns a Client for opts.
func New(opts Options) (*Client, error) {
	c := &Client{
		endpoint:            opts.Endpoint,
		http:                opts.HTTPClient,
		timeout:             opts.Timeout,
		userAgent:           opts.UserAgent,
		defaultLinkLifetime: opts.DefaultLinkLifetime,
		now:                 opts.Now,
		throttle:            opts.Throttle,
		observer:            opts.Observer,
	}
	if c.endpoint == "" {
		c.endpoint = DefaultEndpoint
	}
	if err := validateEndpoint(c.endpoint); err != nil {
		return nil, err
	}
	if c.http == nil {
		c.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.userAgent == "" {
		c.userAgent = version.UserAgent()
	}
	if c.defaultLinkLifetime <= 0 {
		c.defaultLinkLifetime = DefaultLinkLifetime
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.throttle == nil {
		c.throttle = NewThrottle(0, 1)
	}
	return c, nil
}

func validateEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("API endpoint %q is not an absolute http(s) URL", endpoint)
	}
	return nil
}

// envelope holds the fields every response carries.
type envelope struct {
	Action  string   `json:"Action"`
	RetCode *retCode `json:"RetCode"`
	Message string   `json:"Message"`
}

func (e *envelope) result() *envelope { return e }

type response interface{ result() *envelope }

// retCode accepts RetCode as a JSON number or, as some gateways send it, a
// string holding one.
type retCode int

func (r *retCode) UnmarshalJSON(data []byte) error {
	text := strings.Trim(string(data), `"`)
	code, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil {
		return fmt.Errorf("RetCode %s is not an integer", data)
	}
	*r = retCode(code)
	return nil
}

// call waits for its turn, makes one request and reports how it went.
func (c *Client) call(ctx context.Context, creds Credentials, action string, params map[string]string, out response) error {
	if err := c.throttle.Wait(ctx, creds.PublicKey); err != nil {
		return &TransportError{Action: action, Err: err}
	}
	start := time.Now()
	err := c.roundTrip(ctx, creds, action, params, out)
	c.throttle.Observe(creds.PublicKey, err)
	if c.observer != nil {
		c.observer.ObserveRequest(action, Outcome(err), time.Since(start))
	}
	return err
}

// roundTrip signs params for action, sends them and decodes the answer into
// out.
func (c *Client) roundTrip(ctx context.Context, creds Credentials, action string, params map[string]string, out response) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := c.newRequest(ctx, creds, action, params)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &TransportError{Action: action, Err: transportCause(ctx, err)}
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return &TransportError{Action: action, Err: transportCause(ctx, err)}
	}
	if resp.StatusCode >= http.StatusBadRequest {
		return &HTTPStatusError{Action: action, StatusCode: resp.StatusCode}
	}
	return decodeResponse(action, body, out)
}

func (c *Client) newRequest(ctx context.Context, creds Credentials, action string, params map[string]string) (*http.Request, error) {
	signed := make(map[string]string, len(params)+4)
	for name, value := range params {
		if value != "" { // unset optional parameters are neither sent nor signed
			signed[name] = value
		}
	}
	signed[paramAction] = action
	signed[paramPublicKey] = creds.PublicKey
	if creds.SecurityToken != "" {
		signed[paramSecurityToken] = creds.SecurityToken
	}
	signed[paramSignature] = Sign(signed, creds.PrivateKey)

	form := make(url.Values, len(signed))
	for name, value := range signed {
		form.Set(name, value)
	}
	// The official SDK posts to <base>?Action=<Action> with a form body; the
	// Action in the URL makes gateway logs readable and carries no secret.
	target := c.endpoint + "?" + url.Values{paramAction: {action}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("building %s request: %w", action, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	return req, nil
}

// transportCause prefers the context's reason (deadline, cancellation) over
// the wrapped network error, whose text would repeat the request URL.
func transportCause(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

func decodeResponse(action string, body []byte, out response) error {
	if len(body) > maxResponseBytes {
		return &ResponseError{Action: action, Reason: fmt.Sprintf("the body exceeds %d bytes", maxResponseBytes)}
	}
	decoder := json.NewDecoder(bytes.NewReader(body))
	if err := decoder.Decode(out); err != nil {
		return &ResponseError{Action: action, Reason: "the body is not the expected JSON: " + jsonReason(err)}
	}
	if decoder.More() {
		return &ResponseError{Action: action, Reason: "the body holds more than one JSON value"}
	}
	head := out.result()
	if head.RetCode == nil {
		return &ResponseError{Action: action, Reason: "the body has no RetCode"}
	}
	if code := int(*head.RetCode); code != RetCodeSuccess {
		return &APIError{Action: action, RetCode: code, Message: strings.TrimSpace(head.Message)}
	}
	return nil
}

// jsonReason names what was wrong without quoting the body, which may hold a
// link.
func jsonReason(err error) string {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("syntax error at byte %d", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %s has the wrong type", typeErr.Field)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated"
	default:
		return "invalid"
	}
}
