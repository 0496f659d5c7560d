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

// fairShare bounds how many refreshes of one namespace, and of all
// together, may be waiting for, or making, cloud API calls at once. All namespaces share the calls per
// second the operator allows (cloud.Throttle), and a refresh waiting for its
// turn holds a worker. Without a bound, one namespace with many resources
// due, or forcing refreshes, would hold every worker and queue ahead of
// everybody else's due refreshes. With it, the others always find a worker,
// and their calls queue behind at most perNamespace calls of any other
// namespace: the throttle serves waiting calls in order. And however many
// namespaces are busy, a worker stays free of the budget.
//
// A refresh turned away does not hold a worker either: it is remembered, in
// order, and sent back to the work queue (wake) as soon as a place of its
// namespace is free.
type fairShare struct {
	perNamespace int
	// total bounds the places of all namespaces together, one short of the
	// workers: a worker is always free for everything that makes no call.
	total int
	wake  chan event.GenericEvent

	mu   sync.Mutex
	busy map[string]int
	used int
	// waiting holds, per namespace, the refreshes turned away, in order;
	// order lists the namespaces with waiting refreshes, to wake them in
	// turn.
	waiting map[string][]types.NamespacedName
	order   []string
}

// wakeBuffer bounds the wake-ups not yet taken by the work queue; one lost
// to a full buffer comes back with busyRetryDelay instead.
const wakeBuffer = 1024

// newFairShare gives each namespace half the workers' places (at least
// one), and all of them together one less than the workers.
func newFairShare(workers int) *fairShare {
	return &fairShare{
		perNamespace: max(workers/2, 1),
		total:        max(workers-1, 1),
		wake:         make(chan event.GenericEvent, wakeBuffer),
		busy:         map[string]int{},
		waiting:      map[string][]types.NamespacedName{},
	}
}

// acquire takes a place for the resource; ok is false when its namespace
// has none left, or all are taken, and the resource is then woken when one
// frees up. release gives the place back.
func (f *fairShare) acquire(key types.NamespacedName) (release func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ns := key.Namespace
	if f.busy[ns] >= f.perNamespace || f.used >= f.total {
		if !slices.Contains(f.waiting[ns], key) {
			if len(f.waiting[ns]) == 0 {
				f.order = append(f.order, ns)
			}
			f.waiting[ns] = append(f.waiting[ns], key)
		}
		return nil, false
	}
	f.forget(key)
	f.busy[ns]++
	f.used++
	return func() { f.release(ns) }, true
}

// forget drops key from the waiting refreshes (it got its place).
func (f *fairShare) forget(key types.NamespacedName) {
	ns := key.Namespace
	i := slices.Index(f.waiting[ns], key)
	if i < 0 {
		return
	}
	if f.waiting[ns] = slices.Delete(f.waiting[ns], i, i+1); len(f.waiting[ns]) == 0 {
		delete(f.waiting, ns)
		f.order = slices.DeleteFunc(f.order, func(o string) bool { return o == ns })
	}
}

// release frees a place and wakes the next waiting refresh of the first
// namespace in turn that may take it.
func (f *fairShare) release(ns string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy[ns]--; f.busy[ns] <= 0 {
		delete(f.busy, ns)
	}
	f.used--
	for i, candidate := range f.order {
		if f.busy[candidate] >= f.perNamespace {
			continue
		}
		next := f.waiting[candidate][0]
		f.forget(next)
		if len(f.waiting[candidate]) > 0 { // its turn is over: to the back
			f.order = append(slices.Delete(f.order, i, i+1), candidate)
		}
		select {
		case f.wake <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: next.Namespace, Name: next.Name}}}:
		default: // the work queue is far behind; busyRetryDelay brings it back
		}
		return
	}
}

// errBudgetBusy: the namespace's places, or all places, are taken; the
// refresh comes back when one is free, without recording a failure.
var errBudgetBusy = errors.New("no place on the cloud API's budget is free for this namespace")

// busyRetryDelay brings back a refresh turned away by fairShare should its
// wake-up be lost: between five and ten seconds, spread.
func busyRetryDelay(jitter01 float64) time.Duration {
	return 5*time.Second + time.Duration(jitter01*float64(5*time.Second))
}
