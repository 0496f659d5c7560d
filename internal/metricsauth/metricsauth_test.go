package metricsauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
)

// The fake API server's tokens.
const (
	readerToken = "reader-token-0123456789"
	nobodyToken = "nobody-token-0123456789"
	brokenToken = "broken-token-0123456789"
)

var reader = authenticationv1.UserInfo{
	Username: "system:serviceaccount:monitoring:prometheus",
	UID:      "6f1c6a0e-0000-4000-8000-000000000001",
	Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"},
	Extra:    map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"prometheus-0"}},
}

// fakeAPIServer answers the reviews: readerToken is reader, who may get
// /metrics; nobodyToken is a user without the right; any other token is
// unknown. failTokens and failAccess make the reviews fail, with an error
// quoting the token.
type fakeAPIServer struct {
	tokenReviews, accessReviews int
	failTokens, failAccess      bool
	lastAccess                  authorizationv1.SubjectAccessReviewSpec
}

func (s *fakeAPIServer) tokens() tokenReviewFunc {
	return func(_ context.Context, review *authenticationv1.TokenReview, _ metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
		s.tokenReviews++
		if s.failTokens {
			return nil, fmt.Errorf("connection reset while sending %q", review.Spec.Token)
		}
		out := review.DeepCopy()
		switch review.Spec.Token {
		case readerToken:
			out.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: reader}
		case nobodyToken:
			out.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "nobody", Groups: []string{"system:authenticated"}}}
		default:
			out.Status = authenticationv1.TokenReviewStatus{Error: "invalid bearer token " + review.Spec.Token}
		}
		return out, nil
	}
}

func (s *fakeAPIServer) access() accessReviewFunc {
	return func(_ context.Context, review *authorizationv1.SubjectAccessReview, _ metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error) {
		s.accessReviews++
		s.lastAccess = review.Spec
		if s.failAccess {
			return nil, errors.New("the server is currently unable to handle the request")
		}
		out := review.DeepCopy()
		attrs := review.Spec.NonResourceAttributes
		out.Status.Allowed = review.Spec.User == reader.Username && attrs != nil && attrs.Path == "/metrics" && attrs.Verb == "get"
		if !out.Status.Allowed {
			out.Status.Reason = "no RBAC policy matched"
		}
		return out, nil
	}
}

type tokenReviewFunc func(context.Context, *authenticationv1.TokenReview, metav1.CreateOptions) (*authenticationv1.TokenReview, error)

func (f tokenReviewFunc) Create(ctx context.Context, r *authenticationv1.TokenReview, o metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	return f(ctx, r, o)
}

type accessReviewFunc func(context.Context, *authorizationv1.SubjectAccessReview, metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error)

func (f accessReviewFunc) Create(ctx context.Context, r *authorizationv1.SubjectAccessReview, o metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error) {
	return f(ctx, r, o)
}

// guarded is a Handler in front of a metrics handler that records what
// reached it, logging at every level into logs.
type guarded struct {
	api     *fakeAPIServer
	clock   *clocktesting.FakeClock
	handler http.Handler
	logs    *strings.Builder
	// served counts the requests that reached the metrics handler;
	// authorization is the last one's Authorization header.
	served        int
	authorization string
}

func newGuarded() *guarded {
	g := &guarded{api: &fakeAPIServer{}, clock: clocktesting.NewFakeClock(time.Now()), logs: &strings.Builder{}}
	log := funcr.New(func(prefix, args string) { g.logs.WriteString(prefix + " " + args + "\n") }, funcr.Options{Verbosity: 10})
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.served++
		g.authorization = r.Header.Get("Authorization")
		_, _ = w.Write([]byte("uredis_backup_export_stalled 0\n"))
	})
	g.handler = newAuthorizer(g.api.tokens(), g.api.access(), g.clock).Handler(log, metrics)
	return g
}

// get sends method /metrics with the Authorization header (none if empty).
func (g *guarded) get(method, authorization string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "/metrics", nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	w := httptest.NewRecorder()
	g.handler.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name          string
		method        string
		authorization string
		failTokens    bool
		failAccess    bool
		wantStatus    int
		// wantReviews are the TokenReviews and SubjectAccessReviews asked.
		wantReviews [2]int
		wantBody    string
	}{
		{name: "no header", wantStatus: http.StatusUnauthorized, wantBody: "Unauthorized"},
		{name: "basic credentials", authorization: "Basic cmVhZGVyOnNlY3JldA==", wantStatus: http.StatusUnauthorized},
		{name: "bearer without a token", authorization: "Bearer", wantStatus: http.StatusUnauthorized},
		{name: "bearer with an empty token", authorization: "Bearer ", wantStatus: http.StatusUnauthorized},
		{name: "two tokens", authorization: "Bearer " + readerToken + " " + readerToken, wantStatus: http.StatusUnauthorized},
		{name: "token rejected", authorization: "Bearer not-a-token-the-api-server-issued", wantStatus: http.StatusUnauthorized, wantReviews: [2]int{1, 0}},
		{name: "not allowed", authorization: "Bearer " + nobodyToken, wantStatus: http.StatusForbidden, wantReviews: [2]int{1, 1}, wantBody: `Forbidden: user "nobody" may not get /metrics`},
		{name: "allowed", authorization: "Bearer " + readerToken, wantStatus: http.StatusOK, wantReviews: [2]int{1, 1}, wantBody: "uredis_backup_export_stalled 0"},
		{name: "allowed, scheme in lower case", authorization: "bearer " + readerToken, wantStatus: http.StatusOK, wantReviews: [2]int{1, 1}},
		{name: "a verb the role does not grant", method: http.MethodPost, authorization: "Bearer " + readerToken, wantStatus: http.StatusForbidden, wantReviews: [2]int{1, 1}},
		{name: "TokenReview fails", authorization: "Bearer " + brokenToken, failTokens: true, wantStatus: http.StatusInternalServerError, wantReviews: [2]int{1, 0}},
		{name: "SubjectAccessReview fails", authorization: "Bearer " + readerToken, failAccess: true, wantStatus: http.StatusInternalServerError, wantReviews: [2]int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuarded()
			g.api.failTokens, g.api.failAccess = tt.failTokens, tt.failAccess
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			w := g.get(method, tt.authorization)
			body := w.Body.String()
			if w.Code != tt.wantStatus {
				t.Errorf("status %d, want %d; body %q", w.Code, tt.wantStatus, body)
			}
			if got := [2]int{g.api.tokenReviews, g.api.accessReviews}; got != tt.wantReviews {
				t.Errorf("reviews asked (TokenReview, SubjectAccessReview): %v, want %v", got, tt.wantReviews)
			}
			if served := g.served == 1; served != (tt.wantStatus == http.StatusOK) {
				t.Errorf("the metrics handler was reached %d times with status %d", g.served, w.Code)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body %q, want it to hold %q", body, tt.wantBody)
			}
			if tt.wantStatus == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("a 401 without a WWW-Authenticate: Bearer challenge: %q", w.Header().Get("WWW-Authenticate"))
			}
			if tt.wantStatus != http.StatusOK && len(body) > 120 {
				t.Errorf("a refusal of %d bytes: %q", len(body), body)
			}
			for _, token := range []string{readerToken, nobodyToken, brokenToken, "not-a-token-the-api-server-issued", "cmVhZGVyOnNlY3JldA=="} {
				if strings.Contains(body, token) || strings.Contains(g.logs.String(), token) {
					t.Errorf("the token %q appears in the body %q or the logs:\n%s", token, body, g.logs)
				}
			}
			if g.authorization != "" {
				t.Errorf("the metrics handler saw the Authorization header %q", g.authorization)
			}
		})
	}
}

// TestTheFailureIsLoggedWithoutTheToken: a failed review is logged as an
// error, with the API server's error text but not the token it quoted.
func TestTheFailureIsLoggedWithoutTheToken(t *testing.T) {
	g := newGuarded()
	g.api.failTokens = true
	if w := g.get(http.MethodGet, "Bearer "+brokenToken); w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", w.Code)
	}
	logs := g.logs.String()
	if !strings.Contains(logs, "connection reset while sending") || !strings.Contains(logs, "[token]") {
		t.Errorf("the log lacks the review's error, redacted:\n%s", logs)
	}
	if strings.Contains(logs, brokenToken) {
		t.Errorf("the log holds the token:\n%s", logs)
	}
}

// TestSubjectAccessReview: the user is authorized as the API server
// authenticated them (name, UID, groups, extra), for the request's path
// and its method, lower-cased, as the verb.
func TestSubjectAccessReview(t *testing.T) {
	g := newGuarded()
	g.get(http.MethodGet, "Bearer "+readerToken)
	want := authorizationv1.SubjectAccessReviewSpec{
		User:                  reader.Username,
		UID:                   reader.UID,
		Groups:                reader.Groups,
		Extra:                 map[string]authorizationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"prometheus-0"}},
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"},
	}
	if !reflect.DeepEqual(g.api.lastAccess, want) {
		t.Errorf("SubjectAccessReview spec\n%+v\nwant\n%+v", g.api.lastAccess, want)
	}
}

// TestVerdictsAreCached: an allowed token is reviewed again only after
// AllowedTTL, a refused one after DeniedTTL, a failed review at once.
func TestVerdictsAreCached(t *testing.T) {
	g := newGuarded()
	reviews := func() [2]int { return [2]int{g.api.tokenReviews, g.api.accessReviews} }
	expect := func(authorization string, status int, want [2]int, when string) {
		t.Helper()
		if w := g.get(http.MethodGet, authorization); w.Code != status {
			t.Errorf("%s: status %d, want %d", when, w.Code, status)
		}
		if got := reviews(); got != want {
			t.Errorf("%s: reviews asked so far %v, want %v", when, got, want)
		}
	}

	expect("Bearer "+readerToken, http.StatusOK, [2]int{1, 1}, "the first scrape")
	expect("Bearer "+readerToken, http.StatusOK, [2]int{1, 1}, "the second scrape, from the cache")
	expect("Bearer "+nobodyToken, http.StatusForbidden, [2]int{2, 2}, "a refused token")
	expect("Bearer "+nobodyToken, http.StatusForbidden, [2]int{2, 2}, "the refused token again, from the cache")
	expect("Bearer unknown-token", http.StatusUnauthorized, [2]int{3, 2}, "an unknown token")
	expect("Bearer unknown-token", http.StatusUnauthorized, [2]int{3, 2}, "the unknown token again, from the cache")
	if g.served != 2 {
		t.Errorf("the metrics handler was reached %d times, want 2", g.served)
	}

	g.clock.Step(DeniedTTL + time.Second)
	expect("Bearer "+readerToken, http.StatusOK, [2]int{3, 2}, "the allowed token after DeniedTTL, from the cache")
	expect("Bearer "+nobodyToken, http.StatusForbidden, [2]int{4, 3}, "the refused token after DeniedTTL, asked again")
	expect("Bearer unknown-token", http.StatusUnauthorized, [2]int{5, 3}, "the unknown token after DeniedTTL, asked again")

	g.clock.Step(AllowedTTL)
	expect("Bearer "+readerToken, http.StatusOK, [2]int{6, 4}, "the allowed token after AllowedTTL, asked again")

	g.api.failTokens = true
	expect("Bearer "+brokenToken, http.StatusInternalServerError, [2]int{7, 4}, "a failed review")
	g.api.failTokens = false
	expect("Bearer "+brokenToken, http.StatusUnauthorized, [2]int{8, 4}, "the same token after a failed review, asked again")

}

// TestReviewsAreRateLimited: made-up tokens cannot spend the manager's
// API budget; beyond the burst they get 429 without a review, while a
// cached verdict is still served, and the budget comes back with time.
func TestReviewsAreRateLimited(t *testing.T) {
	g := newGuarded()
	if w := g.get(http.MethodGet, "Bearer "+readerToken); w.Code != http.StatusOK {
		t.Fatalf("the reader's first scrape: %d", w.Code)
	}
	limited := 0
	for i := range 3 * ReviewBurst {
		switch w := g.get(http.MethodGet, fmt.Sprintf("Bearer made-up-%d", i)); w.Code {
		case http.StatusTooManyRequests:
			limited++
			if w.Header().Get("Retry-After") == "" {
				t.Errorf("a 429 without Retry-After")
			}
		case http.StatusUnauthorized:
		default:
			t.Fatalf("made-up token %d: status %d", i, w.Code)
		}
	}
	if g.api.tokenReviews != ReviewBurst || limited != 3*ReviewBurst-(ReviewBurst-1) {
		t.Errorf("%d token reviews and %d refusals with 429; want %d reviews (the burst, the reader's first included) and the rest refused", g.api.tokenReviews, limited, ReviewBurst)
	}
	if w := g.get(http.MethodGet, "Bearer "+readerToken); w.Code != http.StatusOK {
		t.Errorf("the reader's cached verdict while the reviews are limited: %d", w.Code)
	}
	g.clock.Step(time.Second)
	if w := g.get(http.MethodGet, "Bearer made-up-again"); w.Code != http.StatusUnauthorized {
		t.Errorf("a second later a new token is reviewed again: %d", w.Code)
	}

	// The reader's verdict expires during a flood: it is served from the
	// allowed verdicts kept for StaleAllowedTTL, without a review, while a
	// token never allowed still gets 429.
	g.clock.Step(AllowedTTL + time.Second)
	for i := range ReviewBurst {
		g.get(http.MethodGet, fmt.Sprintf("Bearer flood-%d", i))
	}
	reviews := g.api.tokenReviews
	if w := g.get(http.MethodGet, "Bearer "+readerToken); w.Code != http.StatusOK {
		t.Errorf("the reader during a flood, its verdict expired: %d", w.Code)
	}
	if w := g.get(http.MethodGet, "Bearer "+nobodyToken); w.Code != http.StatusTooManyRequests {
		t.Errorf("a token never allowed during a flood: %d", w.Code)
	}
	if g.api.tokenReviews != reviews {
		t.Errorf("%d reviews asked while limited", g.api.tokenReviews-reviews)
	}
	g.clock.Step(StaleAllowedTTL)
	for i := range ReviewBurst {
		g.get(http.MethodGet, fmt.Sprintf("Bearer flood-again-%d", i))
	}
	if w := g.get(http.MethodGet, "Bearer "+readerToken); w.Code != http.StatusTooManyRequests {
		t.Errorf("the reader past StaleAllowedTTL during a flood: %d, want 429", w.Code)
	}
}

// TestCacheKeysHoldNoToken: the cache holds the token's hash, not the
// token.
func TestCacheKeysHoldNoToken(t *testing.T) {
	a := newAuthorizer((&fakeAPIServer{}).tokens(), (&fakeAPIServer{}).access(), nil)
	if _, err := a.decide(context.Background(), readerToken, "get", "/metrics"); err != nil {
		t.Fatal(err)
	}
	keys := a.verdicts.Keys()
	if len(keys) != 1 {
		t.Fatalf("%d verdicts cached, want 1", len(keys))
	}
	if s := fmt.Sprintf("%+v %q", keys, keys); strings.Contains(s, readerToken) {
		t.Errorf("a cache key holds the token: %s", s)
	}
}
