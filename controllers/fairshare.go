package controllers

import (
	"errors"
	"sync"
	"time"
)

// fairShare bounds how many refreshes of one namespace may be waiting for,
// or making, cloud API calls at once. All namespaces share the calls per
// second the operator allows (cloud.Throttle), and a refresh waiting for its
// turn holds a worker. Without a bound, one namespace with many resources
// due, or forcing refreshes, would hold every worker and queue ahead of
// everybody else's due refreshes. With it, the others always find a worker,
// and their calls queue behind at most perNamespace calls of any other
// namespace: the throttle serves waiting calls in order.
type fairShare struct {
	perNamespace int

	mu   sync.Mutex
	busy map[string]int
}

func newFairShare(perNamespace int) *fairShare {
	return &fairShare{perNamespace: max(perNamespace, 1), busy: map[string]int{}}
}

// acquire takes one of namespace's places; ok is false when it has none
// left. release gives the place back.
func (f *fairShare) acquire(namespace string) (release func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy[namespace] >= f.perNamespace {
		return nil, false
	}
	f.busy[namespace]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.busy[namespace]--; f.busy[namespace] <= 0 {
			delete(f.busy, namespace)
		}
	}, true
}

// errBudgetBusy: the namespace's places are taken; the refresh comes back
// shortly without recording a failure.
var errBudgetBusy = errors.New("this namespace's share of the cloud API's budget is in use")

// busyRetryDelay is when a refresh turned away by fairShare comes back:
// between one and two seconds, spread so that the turned-away refreshes of
// a namespace do not all come back together.
func busyRetryDelay(jitter01 float64) time.Duration {
	return time.Second + time.Duration(jitter01*float64(time.Second))
}
