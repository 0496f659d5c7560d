package simulator

import "fmt"

// RetCodes the simulator answers with (see cloud-api-facts.md).
const (
	retSuccess             = 0
	retServiceUnavailable  = 150
	retThrottled           = 153
	retMissingAction       = 160
	retUnknownAction       = 161
	retMissingSignature    = 170
	retBadSignature        = 171
	retUnknownUser         = 172
	retBadToken            = 174
	retParamError          = 230
	retUnknownProject      = 292
	retFailedToGetInfo     = 20003
	retNoPermission        = 20004
	retBackupNotReady      = 20206
	retNoAnswer            = -1 // call log only: no well-formed JSON answer was sent
	defaultFaultRetCode    = retServiceUnavailable
	defaultFaultHTTPStatus = 500
)

// Backup states, as the API spells them.
const (
	StateSuccess   = "Success"
	StateBackuping = "Backuping"
	StateError     = "Error"
	StateExpired   = "Expired"
)

// defaultMessages are the gateway's wording where we know it, used when a
// fault does not bring its own Message.
var defaultMessages = map[int]string{
	110:                   "API response timeout",
	130:                   "gateway error",
	retServiceUnavailable: "service unavailable",
	retThrottled:          "request throttled",
	retMissingAction:      "Missing Action",
	retUnknownAction:      "Action not exist",
	retMissingSignature:   "Missing Signature",
	retBadSignature:       "signature error",
	retUnknownUser:        "user not exist",
	retBadToken:           "token not exist",
	retParamError:         "Params not valid",
	retUnknownProject:     "project not exist",
	293:                   "zone permission error",
	294:                   "IP denied",
	295:                   "security-lock check failed",
	299:                   "IAM denied",
	retFailedToGetInfo:    "failed to get info",
	retNoPermission:       "insufficient permission",
	20202:                 "failed to get info",
	retBackupNotReady:     "backup not ready",
}

func defaultMessage(retCode int) string {
	if msg, ok := defaultMessages[retCode]; ok {
		return msg
	}
	return fmt.Sprintf("error %d", retCode)
}

// apiError is a failed call's RetCode and Message. Messages must never
// contain keys, signatures, tokens or links.
type apiError struct {
	RetCode int
	Message string
}

func newAPIError(retCode int) *apiError {
	return &apiError{RetCode: retCode, Message: defaultMessage(retCode)}
}

func missingParam(name string) *apiError {
	return &apiError{RetCode: retParamError, Message: "Missing params: " + name}
}

func invalidParam(name, why string) *apiError {
	return &apiError{RetCode: retParamError, Message: fmt.Sprintf("Params [%s] not valid: %s", name, why)}
}

func invalidRequest(why string) *apiError {
	return &apiError{RetCode: retParamError, Message: "Params not valid: " + why}
}
