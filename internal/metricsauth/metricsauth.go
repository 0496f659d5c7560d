// Package metricsauth guards the metrics endpoint the way kube-rbac-proxy
// and kubebuilder's scaffold do: a scrape gets through only with a bearer
// token that the Kubernetes API server authenticates (a TokenReview), for a
// user it authorizes to use the path (a SubjectAccessReview on the
// non-resource URL, with the lower-cased HTTP method as the verb: get for a
// GET of /metrics, as the metrics-reader ClusterRole grants).
//
// It does with the typed clients of client-go, already part of the manager,
// what controller-runtime's pkg/metrics/filters does with k8s.io/apiserver's
// authenticator and authorizer: that package, measured, added 20 MB to the
// stripped binary and 15 MiB to the idle manager's RSS (docs/operations.md,
// "Why not controller-runtime's filters").
//
// The token is never logged, echoed or kept: verdicts are cached under its
// SHA-256, and it is stripped from the request before the metrics handler
// sees it.
package metricsauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
)

const (
	// AllowedTTL is how long an allowed verdict is reused: revoking the
	// metrics-reader role takes effect within it.
	AllowedTTL = time.Minute
	// DeniedTTL is how long a refusal (unknown token, or no right) is
	// reused: granting the role takes effect within it.
	DeniedTTL = 10 * time.Second
	// CacheSize bounds the verdicts kept; the least recently used go first.
	// A scraper needs one per token and path.
	CacheSize = 1024
	// ReviewTimeout bounds the two reviews of one request, about a
	// Prometheus scrape's default timeout.
	ReviewTimeout = 10 * time.Second
	// ReviewRate and ReviewBurst bound the reviews asked of the API server
	// for tokens not in the cache. The reviews share the manager's client,
	// and its rate limit with the reconciler: without this bound, anyone who
	// reaches the port could spend that budget with made-up tokens. Requests
	// beyond it get 429; cached verdicts are served all the same.
	ReviewRate  = 5
	ReviewBurst = 10
	// StaleAllowedTTL is how long an allowed verdict may still be served,
	// past AllowedTTL, while the reviews are limited: a flood of made-up
	// tokens must not lock out the Prometheus whose verdict just expired.
	// Revoking the role takes effect within it under such a flood.
	StaleAllowedTTL = 10 * time.Minute
)

// errTooManyReviews: a request needs a review while the API server has
// been asked ReviewBurst reviews faster than ReviewRate.
var errTooManyReviews = errors.New("too many token reviews")

// Authorizer authenticates and authorizes requests through the API server.
type Authorizer struct {
	tokens authenticationv1client.TokenReviewInterface
	access authorizationv1client.SubjectAccessReviewInterface
	// verdicts holds cachedVerdicts: refusals for DeniedTTL, allowed
	// verdicts for StaleAllowedTTL (fresh for AllowedTTL of it).
	verdicts *cache.LRUExpireCache
	reviews  *rate.Limiter
	clock    cache.Clock
}

// New asks the API server of cfg, through httpClient (the manager's: a
// metricsserver.Options.FilterProvider gets both).
func New(cfg *rest.Config, httpClient *http.Client) (*Authorizer, error) {
	authn, err := authenticationv1client.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("the TokenReview client: %w", err)
	}
	authz, err := authorizationv1client.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("the SubjectAccessReview client: %w", err)
	}
	return newAuthorizer(authn.TokenReviews(), authz.SubjectAccessReviews(), nil), nil
}

// newAuthorizer takes the reviews' clients, and a clock for the cache (the
// real one when nil).
func newAuthorizer(tokens authenticationv1client.TokenReviewInterface, access authorizationv1client.SubjectAccessReviewInterface, clock cache.Clock) *Authorizer {
	if clock == nil {
		clock = realClock{}
	}
	return &Authorizer{
		tokens:   tokens,
		access:   access,
		verdicts: cache.NewLRUExpireCacheWithClock(CacheSize, clock),
		reviews:  rate.NewLimiter(ReviewRate, ReviewBurst),
		clock:    clock,
	}
}

// Handler passes to next the requests the API server authenticates and
// authorizes, without their Authorization header; it answers the others
// itself: 401 without a bearer token or with one the API server does not
// authenticate, 403 when its user may not use the path, 500 when a review
// fails (nothing is let through on an error). Refusals are logged at V(1),
// failures as errors, never with the token.
func (a *Authorizer) Handler(log logr.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r.Header)
		if !ok {
			unauthorized(w)
			return
		}
		v, err := a.decide(r.Context(), token, strings.ToLower(r.Method), r.URL.Path)
		if errors.Is(err, errTooManyReviews) {
			log.V(1).Info("metrics request refused: too many tokens to review", "path", r.URL.Path)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "Too Many Requests: too many tokens to review", http.StatusTooManyRequests)
			return
		}
		if err != nil {
			log.Error(err, "cannot authenticate or authorize a metrics request", "path", r.URL.Path)
			http.Error(w, "Internal Server Error: cannot check the token with the Kubernetes API server", http.StatusInternalServerError)
			return
		}
		switch {
		case !v.authenticated:
			log.V(1).Info("metrics request refused: the API server does not authenticate its token", "path", r.URL.Path, "reason", v.reason)
			unauthorized(w)
		case !v.allowed:
			log.V(1).Info("metrics request refused: its user may not use the path", "path", r.URL.Path, "user", v.user, "reason", v.reason)
			http.Error(w, fmt.Sprintf("Forbidden: user %q may not %s %s", v.user, strings.ToLower(r.Method), r.URL.Path), http.StatusForbidden)
		default:
			r = r.Clone(r.Context())
			r.Header.Del("Authorization")
			next.ServeHTTP(w, r)
		}
	})
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
	http.Error(w, "Unauthorized: a bearer token the Kubernetes API server authenticates is required", http.StatusUnauthorized)
}

// bearerToken is the token of an "Authorization: Bearer <token>" header
// (the scheme in any case, one space, a token without blanks).
func bearerToken(h http.Header) (string, bool) {
	scheme, token, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", false
	}
	return token, true
}

// verdict is what the API server said about a token, for a verb and path.
type verdict struct {
	authenticated, allowed bool
	// user is the name the API server authenticated; reason its reason
	// for a refusal, without the token.
	user, reason string
}

// key identifies a verdict: the token's SHA-256 (never the token), the verb
// and the path.
type key struct {
	token      [sha256.Size]byte
	verb, path string
}

// decide returns the cached verdict, or asks the API server: a TokenReview,
// then, for an authenticated user, a SubjectAccessReview. A failed review
// is an error, and is not cached.
func (a *Authorizer) decide(ctx context.Context, token, verb, path string) (verdict, error) {
	k := key{token: sha256.Sum256([]byte(token)), verb: verb, path: path}
	now := a.clock.Now()
	entry, found := a.verdicts.Get(k)
	cached, _ := entry.(cachedVerdict)
	if found && now.Before(cached.freshUntil) {
		return cached.verdict, nil
	}
	if !a.reviews.AllowN(now, 1) {
		if found && cached.allowed {
			return cached.verdict, nil // stale, see StaleAllowedTTL
		}
		return verdict{}, errTooManyReviews
	}
	ctx, cancel := context.WithTimeout(ctx, ReviewTimeout)
	defer cancel()

	review, err := a.tokens.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return verdict{}, redacted(fmt.Errorf("TokenReview: %w", err), token)
	}
	if !review.Status.Authenticated {
		v := verdict{reason: redact(review.Status.Error, token)}
		a.remember(k, v)
		return v, nil
	}
	user := review.Status.User
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for name, values := range user.Extra {
		extra[name] = authorizationv1.ExtraValue(values)
	}
	access, err := a.access.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:                  user.Username,
		UID:                   user.UID,
		Groups:                user.Groups,
		Extra:                 extra,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
	}}, metav1.CreateOptions{})
	if err != nil {
		return verdict{}, redacted(fmt.Errorf("SubjectAccessReview for %q: %w", user.Username, err), token)
	}
	v := verdict{authenticated: true, allowed: access.Status.Allowed, user: user.Username}
	if !v.allowed {
		v.reason = access.Status.Reason
		if access.Status.EvaluationError != "" {
			v.reason += " (" + access.Status.EvaluationError + ")"
		}
	}
	a.remember(k, v)
	return v, nil
}

// cachedVerdict is a verdict and the time until which it is reused
// without asking again.
type cachedVerdict struct {
	verdict
	freshUntil time.Time
}

// remember caches v: a refusal for DeniedTTL; an allowed verdict fresh for
// AllowedTTL and kept for StaleAllowedTTL, for when the reviews are
// limited. A new verdict replaces the old one, so a token refused since is
// never served as allowed.
func (a *Authorizer) remember(k key, v verdict) {
	fresh, keep := DeniedTTL, DeniedTTL
	if v.allowed {
		fresh, keep = AllowedTTL, StaleAllowedTTL
	}
	a.verdicts.Add(k, cachedVerdict{verdict: v, freshUntil: a.clock.Now().Add(fresh)}, keep)
}

// redact replaces the token wherever it appears in s: an API server error
// has no reason to quote it, and must not carry it into a log if it did.
func redact(s, token string) string { return strings.ReplaceAll(s, token, "[token]") }

func redacted(err error, token string) error {
	if !strings.Contains(err.Error(), token) {
		return err
	}
	return errors.New(redact(err.Error(), token))
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
