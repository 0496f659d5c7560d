package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestFairShareBoundsANamespaceAndWakesWhoWaited(t *testing.T) {
	share := newFairShare(5) // two places per namespace, four in all
	key := func(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
	releaseA1, ok1 := share.acquire(key("a", "1"))
	_, ok2 := share.acquire(key("a", "2"))
	if !ok1 || !ok2 {
		t.Fatal("a namespace has two places")
	}
	for range 2 { // turned away twice, remembered once
		if _, ok := share.acquire(key("a", "3")); ok {
			t.Fatal("a third refresh of the namespace must wait")
		}
	}
	if _, ok := share.acquire(key("a", "4")); ok {
		t.Fatal("a fourth neither")
	}
	if _, ok := share.acquire(key("b", "1")); !ok {
		t.Fatal("another namespace is not affected")
	}
	select {
	case e := <-share.wake:
		t.Fatalf("nobody is woken before a place frees up: %v", e.Object.GetName())
	default:
	}
	releaseA1()
	select {
	case e := <-share.wake:
		if e.Object.GetNamespace() != "a" || e.Object.GetName() != "3" {
			t.Fatalf("woke %s/%s, want the first to wait, a/3", e.Object.GetNamespace(), e.Object.GetName())
		}
	case <-time.After(time.Second):
		t.Fatal("the first waiting refresh must be woken")
	}
	if len(share.waiting["a"]) != 1 {
		t.Fatalf("a/4 still waits, once: %v", share.waiting["a"])
	}
	// a/3 takes its place: it no longer waits.
	if _, ok := share.acquire(key("a", "3")); !ok || len(share.waiting["a"]) != 1 {
		t.Fatalf("a/3 takes the freed place; a/4 still waits: %v", share.waiting["a"])
	}
	if d := busyRetryDelay(0.5); d < 5*time.Second || d > 10*time.Second {
		t.Errorf("busyRetryDelay = %s", d)
	}
}

func TestFairShareKeepsAWorkerFreeAndWakesNamespacesInTurn(t *testing.T) {
	share := newFairShare(4) // two places per namespace, three in all
	key := func(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
	releaseA, _ := share.acquire(key("a", "1"))
	share.acquire(key("a", "2"))
	if _, ok := share.acquire(key("b", "1")); !ok {
		t.Fatal("b has a place of its own")
	}
	if _, ok := share.acquire(key("c", "1")); ok {
		t.Fatal("three places in all: the fourth worker stays free")
	}
	share.acquire(key("b", "2"))
	share.acquire(key("a", "3"))
	// c waited first: a's freed place goes to c, then b, then a.
	releaseA()
	if e := <-share.wake; e.Object.GetNamespace() != "c" {
		t.Fatalf("woke %s, want c, the first namespace to wait", e.Object.GetNamespace())
	}
	if got := share.order; len(got) != 2 || got[0] != "b" || got[1] != "a" {
		t.Fatalf("namespaces still waiting, in turn: %v", got)
	}
}
