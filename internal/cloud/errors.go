package cloud

import (
	"errors"
	"fmt"
	"net/http"
)

// Class tells the reconciler how to treat a failed call.
type Class int

const (
	// Transient failures (network, timeouts, throttling, provider outages)
	// are retried with backoff.
	Transient Class = iota
	// Permanent failures will not go away by retrying the same request with
	// the same credentials: the user must change the spec, the credentials
	// or the account's permissions.
	Permanent
)

func (c Class) String() string {
	if c == Permanent {
		return "Permanent"
	}
	return "Transient"
}

// APIError is a response whose RetCode is not 0. Message is the provider's
// own text; neither carries request parameters or credentials.
type APIError struct {
	Action  string
	RetCode int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s failed: RetCode %d: %s", e.Action, e.RetCode, e.Message)
}

// Throttled reports whether the provider asked us to slow down.
func (e *APIError) Throttled() bool { return e.RetCode == RetCodeThrottled }

// Well-known gateway RetCodes; cloud-api-facts.md has the full table.
const (
	RetCodeSuccess        = 0
	RetCodeTimeout        = 110
	RetCodeGatewayError   = 130
	RetCodeUnavailable    = 150
	RetCodeThrottled      = 153
	RetCodeSignatureError = 171
	RetCodeUnknownUser    = 172
)

// HTTPStatusError is an HTTP status of 400 or more, whatever the body said.
type HTTPStatusError struct {
	Action     string
	StatusCode int
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("%s failed: HTTP %d %s", e.Action, e.StatusCode, http.StatusText(e.StatusCode))
}

// Throttled reports whether the gateway asked us to slow down.
func (e *HTTPStatusError) Throttled() bool { return e.StatusCode == http.StatusTooManyRequests }

// ResponseError is a response that could not be understood: broken JSON, an
// oversized body, or a success without a usable link.
type ResponseError struct {
	Action string
	Reason string
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("%s returned an unusable response: %s", e.Action, e.Reason)
}

// TransportError is a request that got no HTTP answer: connection refused or
// reset, DNS failure, timeout.
type TransportError struct {
	Action string
	Err    error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("%s failed: %v", e.Action, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// Classify sorts an error returned by the client into a Class.
func Classify(err error) Class {
	var apiErr *APIError
	var statusErr *HTTPStatusError
	switch {
	case err == nil:
		return Transient
	case errors.As(err, &apiErr):
		return classifyRetCode(apiErr.RetCode)
	case errors.As(err, &statusErr):
		return classifyHTTPStatus(statusErr.StatusCode)
	default:
		// Transport failures, timeouts, cancellations and garbled
		// responses: the next attempt may well succeed.
		return Transient
	}
}

func classifyRetCode(code int) Class {
	switch code {
	case RetCodeTimeout, RetCodeGatewayError, RetCodeUnavailable, RetCodeThrottled:
		return Transient
	}
	// Everything else the gateway reports is about the request, the
	// credentials or the account (16x, 17x, 23x, 29x), or a product error for
	// this input (2xxxx): retrying the identical request will not help.
	return Permanent
}

func classifyHTTPStatus(status int) Class {
	if status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500 {
		return Transient
	}
	return Permanent
}

// IsThrottled reports whether err asks the caller to slow down.
func IsThrottled(err error) bool {
	var throttled interface{ Throttled() bool }
	return errors.As(err, &throttled) && throttled.Throttled()
}

// RetCodeOf returns the provider's RetCode carried by err, if any.
func RetCodeOf(err error) (int, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.RetCode, true
	}
	return 0, false
}

// CredentialsRejected reports whether the provider refused the credentials
// themselves: RetCodes 170 to 174 (missing or wrong signature, unknown key
// or token). Only new credentials fix that.
func CredentialsRejected(err error) bool {
	code, ok := RetCodeOf(err)
	return ok && code >= 170 && code <= 174
}
