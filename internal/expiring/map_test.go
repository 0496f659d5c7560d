package expiring

import (
	"testing"
	"time"
)

func TestMap(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	m := New[string, int](10*time.Second, func() time.Time { return clock })
	m.Put("a", 1)
	if v, ok := m.Get("a"); !ok || v != 1 {
		t.Fatalf("Get = %v, %v", v, ok)
	}
	clock = clock.Add(11 * time.Second)
	if _, ok := m.Get("a"); ok {
		t.Fatal("an expired entry must not be returned")
	}
	if m.Len() != 0 {
		t.Fatalf("Get, more than ttl after the last sweep, must sweep: %d left", m.Len())
	}
	m.Put("b", 2)
	clock = clock.Add(time.Second)
	m.Put("c", 3) // within ttl of the last sweep: no sweep, nothing expired anyway
	m.Delete("b")
	if _, ok := m.Get("b"); ok || m.Len() != 1 {
		t.Fatal("Delete must remove the entry")
	}
	// Put sweeps too: "c" expires, and nothing but Put touches the map.
	clock = clock.Add(11 * time.Second)
	m.Put("d", 4)
	if m.Len() != 1 {
		t.Fatalf("Put, more than ttl after the last sweep, must sweep: %d left", m.Len())
	}
}
