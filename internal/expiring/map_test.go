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
	m.Put("b", 2) // more than ttl since the last sweep: "a" goes
	if m.Len() != 1 {
		t.Fatalf("expired entries must be swept, %d left", m.Len())
	}
	clock = clock.Add(time.Second)
	m.Put("c", 3) // within ttl of the last sweep: no sweep, nothing expired anyway
	m.Delete("b")
	if _, ok := m.Get("b"); ok || m.Len() != 1 {
		t.Fatal("Delete must remove the entry")
	}
}
