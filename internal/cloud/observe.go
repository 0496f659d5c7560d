package cloud

import (
	"errors"
	"fmt"
	"time"
)

// RequestObserver is told about every request, for metrics.
type RequestObserver interface {
	ObserveRequest(action, outcome string, duration time.Duration)
}

// Outcome names a request's result with a small, bounded vocabulary fit for
// a metric label: "success", "retcode_<n>", "http_4xx"/"http_5xx" (429 is
// "http_429"), "transport_error" or "invalid_response".
func Outcome(err error) string {
	var apiErr *APIError
	var statusErr *HTTPStatusError
	var respErr *ResponseError
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &apiErr):
		return fmt.Sprintf("retcode_%d", apiErr.RetCode)
	case errors.As(err, &statusErr) && statusErr.StatusCode == 429:
		return "http_429"
	case errors.As(err, &statusErr):
		return fmt.Sprintf("http_%dxx", statusErr.StatusCode/100)
	case errors.As(err, &respErr):
		return "invalid_response"
	default:
		return "transport_error"
	}
}
