package controllers

import (
	"errors"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// fairShare bounds how many refreshes of one namespace may be waiting for,
// or making, cloud API calls at once. All namespaces share the calls per
// second the operator allows (cloud.Throttle), and a refresh waiting for its
// turn holds a worker. Without a bound, one namespace with many resources
// due, or forcing refreshes, would hold every worker and queue ahead of
// everybody else's due refreshes. With it, the others always find a worker,
// and their calls queue behind at most perNamespace calls of any other
// namespace: the throttle serves waiting calls in order.
//
// A refresh turned away does not hold a worker either: it is remembered, in
// order, and sent back to the work queue (wake) as soon as a place of its
// namespace is free.
type fairShare struct {
	perNamespace int
	wake         chan event.GenericEvent

	mu      sync.Mutex
	busy    map[string]int
	waiting map[string][]types.NamespacedName
}

// wakeBuffer bounds the wake-ups not yet taken by the work queue; one lost
// to a full buffer comes back with busyRetryDelay instead.
const wakeBuffer = 1024

func newFairShare(perNamespace int) *fairShare {
	return &fairShare{
		perNamespace: max(perNamespace, 1),
		wake:         make(chan event.GenericEvent, wakeBuffer),
		busy:         map[string]int{},
		waiting:      map[string][]types.NamespacedName{},
	}
}

// acquire takes one of the resource's namespace's places; ok is false when
// it has none left, and the resource is then woken when one frees up.
// release gives the place back.
func (f *fairShare) acquire(key types.NamespacedName) (release func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ns := key.Namespace
	if f.busy[ns] >= f.perNamespace {
		if !slices.Contains(f.waiting[ns], key) {
			f.waiting[ns] = append(f.waiting[ns], key)
		}
		return nil, false
	}
	f.busy[ns]++
	return func() { f.release(ns) }, true
}

func (f *fairShare) release(ns string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy[ns]--; f.busy[ns] <= 0 {
		delete(f.busy, ns)
	}
	queue := f.waiting[ns]
	if len(queue) == 0 {
		return
	}
	next := queue[0]
	if f.waiting[ns] = queue[1:]; len(f.waiting[ns]) == 0 {
		delete(f.waiting, ns)
	}
	select {
	case f.wake <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: next.Namespace, Name: next.Name}}}:
	default: // the work queue is far behind; busyRetryDelay brings it back
	}
}

// errBudgetBusy: the namespace's places are taken; the refresh comes back
// when one is free, without recording a failure.
var errBudgetBusy = errors.New("this namespace's share of the cloud API's budget is in use")

// busyRetryDelay brings back a refresh turned away by fairShare should its
// wake-up be lost: between five and ten seconds, spread.
func busyRetryDelay(jitter01 float64) time.Duration {
	return 5*time.Second + time.Duration(jitter01*float64(5*time.Second))
}
