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
// a metric label: "success", "retcode_<n>" for a RetCode the operator knows
// (KnownRetCode), "retcode_other" for any other, "http_4xx"/"http_5xx"
// (429 is "http_429"), "transport_error" or "invalid_response". The
// provider's answers cannot add label values beyond these.
func Outcome(err error) string {
	var apiErr *APIError
	var statusErr *HTTPStatusError
	var respErr *ResponseError
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &apiErr):
		if !KnownRetCode(apiErr.RetCode) {
			return "retcode_other"
		}
		return fmt.Sprintf("retcode_%d", apiErr.RetCode)
	case errors.As(err, &statusErr) && statusErr.StatusCode == 429:
		return "http_429"
	case errors.As(err, &statusErr) && statusErr.StatusCode < 500:
		return "http_4xx"
	case errors.As(err, &statusErr):
		return "http_5xx" // and the non-standard 6xx to 9xx, transient alike
	case errors.As(err, &respErr):
		return "invalid_response"
	default:
		return "transport_error"
	}
}

// knownRetCodes are the gateway-wide RetCodes of cloud-api-facts.md (plus
// 230, the gateway's "parameter not valid") and the URedis product errors
// it names. Other product errors (20000-20208) are "retcode_other" too: the
// label's values must not depend on what the provider chooses to send.
var knownRetCodes = map[int]bool{
	RetCodeTimeout:        true,
	RetCodeGatewayError:   true,
	RetCodeUnavailable:    true,
	RetCodeThrottled:      true,
	160:                   true, // missing Action
	161:                   true, // Action does not exist
	170:                   true, // missing Signature
	RetCodeSignatureError: true,
	RetCodeUnknownUser:    true,
	174:                   true, // token does not exist
	230:                   true, // parameter not valid
	292:                   true, // project does not exist
	293:                   true, // zone permission error
	294:                   true, // IP denied
	295:                   true, // security-lock check failed
	299:                   true, // IAM denied
	20003:                 true, // failed to get info
	20004:                 true, // insufficient permission
	20202:                 true, // failed to get info
	20206:                 true, // failed to get info (backup not ready)
}

// KnownRetCode reports whether Outcome names code in its own label value.
// RetCode 0 is success, never a failure's label.
func KnownRetCode(code int) bool { return knownRetCodes[code] }
