package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// apiRequest is one API call being answered.
type apiRequest struct {
	params   map[string]string
	account  Account
	now      time.Time
	fault    Fault
	linkBase string
}

// actionHandler answers one action once the request is authenticated.
type actionHandler struct {
	required []string
	answer   func(s *Server, req *apiRequest) (map[string]any, *apiError)
}

var actions = map[string]actionHandler{
	"DescribeURedisBackupURL": {required: []string{"Region", "BackupId"}, answer: (*Server).describeBackupURL},
	"DescribeURedisBackup":    {required: []string{"Region"}, answer: (*Server).describeBackups},
}

// reply is what goes back on the wire, decided before anything is written
// so that the call is in the log by the time the client sees the answer.
type reply struct {
	status      int
	contentType string
	body        []byte
	retCode     int
	drop        bool
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	params, parseErr := readParams(r)
	call := Call{
		Time:      s.now(),
		Action:    params["Action"],
		PublicKey: params["PublicKey"],
		Params:    redactedParams(params),
	}
	fault, latency := s.takeFault(params["PublicKey"])
	call.Fault = string(fault.Kind)
	if !s.wait(r.Context(), latency) {
		call.RetCode = retNoAnswer
		s.recordCall(call) // the client gave up (or we closed) first
		return
	}

	out := s.decideReply(r, params, parseErr, fault)
	call.RetCode, call.HTTPStatus = out.retCode, out.status
	if out.drop {
		call.HTTPStatus = 0
	}
	s.recordCall(call)
	writeReply(w, out)
}

func (s *Server) decideReply(r *http.Request, params map[string]string, parseErr *apiError, fault Fault) reply {
	action := params["Action"]
	switch fault.Kind {
	case FaultHTTPStatus:
		return httpStatusReply(fault.HTTPStatus)
	case FaultRetCode:
		return s.jsonReply(action, nil, faultAPIError(fault))
	case FaultMalformedJSON:
		return malformedReply(action)
	case FaultDropConnection:
		return reply{drop: true, retCode: retNoAnswer}
	}
	if parseErr != nil {
		return s.jsonReply(action, nil, parseErr)
	}
	req := &apiRequest{params: params, now: s.now(), fault: fault, linkBase: s.linkBase(r)}
	fields, err := s.answer(req)
	return s.jsonReply(action, fields, err)
}

// answer runs the gateway's checks in the gateway's order, then the action.
func (s *Server) answer(req *apiRequest) (map[string]any, *apiError) {
	name := req.params["Action"]
	if name == "" {
		return nil, newAPIError(retMissingAction)
	}
	handler, ok := actions[name]
	if !ok {
		return nil, &apiError{RetCode: retUnknownAction, Message: fmt.Sprintf("Action [%s] not exist", name)}
	}
	account, err := s.authenticate(req.params)
	if err != nil {
		return nil, err
	}
	req.account = account
	if err := checkRequired(req.params, handler.required); err != nil {
		return nil, err
	}
	if err := checkProject(account, req.params["ProjectId"]); err != nil {
		return nil, err
	}
	if !s.allowRate(account.PublicKey, req.now) {
		return nil, newAPIError(retThrottled)
	}
	return handler.answer(s, req)
}

func (s *Server) authenticate(params map[string]string) (Account, *apiError) {
	if params["Signature"] == "" {
		return Account{}, newAPIError(retMissingSignature)
	}
	account, ok := s.accounts[params["PublicKey"]]
	if !ok || params["PublicKey"] == "" {
		return Account{}, newAPIError(retUnknownUser)
	}
	if !signatureValid(params, account.PrivateKey) {
		return Account{}, newAPIError(retBadSignature)
	}
	// The token is part of the signed string, so it is checked only once the
	// signature proves the client meant to send it.
	if account.SecurityToken != "" && !equalConstantTime(account.SecurityToken, params["SecurityToken"]) {
		return Account{}, newAPIError(retBadToken)
	}
	return account, nil
}

func checkRequired(params map[string]string, required []string) *apiError {
	for _, name := range required {
		if params[name] == "" {
			return missingParam(name)
		}
	}
	return nil
}

// checkProject: an absent ProjectId means the default project, always allowed.
func checkProject(account Account, projectID string) *apiError {
	if projectID == "" || len(account.Projects) == 0 || slices.Contains(account.Projects, projectID) {
		return nil
	}
	return newAPIError(retUnknownProject)
}

func faultAPIError(f Fault) *apiError {
	code := f.RetCode
	if code == 0 {
		code = defaultFaultRetCode
	}
	e := newAPIError(code)
	if f.Message != "" {
		e.Message = f.Message
	}
	return e
}

// jsonReply encodes an answer with encoding/json's defaults, which escape
// '&' as \u0026 in links exactly as the real API does.
func (s *Server) jsonReply(action string, fields map[string]any, failure *apiError) reply {
	body := make(map[string]any, len(fields)+3)
	for k, v := range fields {
		body[k] = v
	}
	body["Action"] = action + "Response"
	code := retSuccess
	if failure != nil {
		code = failure.RetCode
		body["Message"] = failure.Message
	}
	body["RetCode"] = code
	if s.retCodeString {
		body["RetCode"] = strconv.Itoa(code)
	}
	encoded, err := json.Marshal(body)
	if err != nil { // only plain strings, numbers and slices go in
		panic(fmt.Sprintf("simulator: encoding answer: %v", err))
	}
	return reply{status: http.StatusOK, contentType: "application/json", body: encoded, retCode: code}
}

// httpStatusReply mimics a load balancer's error page: HTML, not JSON.
func httpStatusReply(status int) reply {
	if status == 0 {
		status = defaultFaultHTTPStatus
	}
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	page := "<html><head><title>" + text + "</title></head><body><h1>" + text + "</h1></body></html>\n"
	return reply{status: status, contentType: "text/html; charset=utf-8", body: []byte(page), retCode: retNoAnswer}
}

// malformedReply is a success answer cut off mid-way, as a broken proxy
// might deliver it.
func malformedReply(action string) reply {
	body := `{"Action":"` + action + `Response","RetCode":0,"BackupPath":"http://`
	return reply{status: http.StatusOK, contentType: "application/json", body: []byte(body), retCode: retNoAnswer}
}

func writeReply(w http.ResponseWriter, out reply) {
	if out.drop {
		dropConnection(w)
		return
	}
	w.Header().Set("Content-Type", out.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(out.body)))
	if out.status == http.StatusTooManyRequests || out.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(out.status)
	_, _ = w.Write(out.body)
}

// dropConnection closes the TCP connection without a byte of answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (e.g. HTTP/2): the server aborts the stream instead.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
