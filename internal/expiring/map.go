// Package expiring holds a map whose entries expire: the operator keeps a
// few answers and statuses for seconds, for every resource it handles, and
// must not keep them for ever.
package expiring

import (
	"sync"
	"time"
)

// Map is a concurrency-safe map whose entries expire ttl after they were
// put. Expired entries are never returned, and are swept at most once per
// ttl (by Put or Get), so that both stay cheap however many entries there
// are.
type Map[K comparable, V any] struct {
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	entries   map[K]entry[V]
	lastSweep time.Time
}

type entry[V any] struct {
	value V
	putAt time.Time
}

// New returns an empty Map.
func New[K comparable, V any](ttl time.Duration, now func() time.Time) *Map[K, V] {
	return &Map[K, V]{ttl: ttl, now: now, entries: map[K]entry[V]{}, lastSweep: now()}
}

// Put stores value under key.
func (m *Map[K, V]) Put(key K, value V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	m.entries[key] = entry[V]{value: value, putAt: now}
}

// sweep drops the expired entries, at most once per ttl, so that a value
// is gone from memory at most twice ttl after it was put as long as the
// map is used at all.
func (m *Map[K, V]) sweep(now time.Time) {
	if now.Sub(m.lastSweep) <= m.ttl {
		return
	}
	for k, e := range m.entries {
		if now.Sub(e.putAt) > m.ttl {
			delete(m.entries, k)
		}
	}
	m.lastSweep = now
}

// Get returns the value under key unless it is missing or expired.
func (m *Map[K, V]) Get(key K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	e, ok := m.entries[key]
	if !ok || now.Sub(e.putAt) > m.ttl {
		var zero V
		return zero, false
	}
	return e.value, true
}

// Delete removes key.
func (m *Map[K, V]) Delete(key K) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, key)
}

// Len counts the entries held, expired ones not yet swept included.
func (m *Map[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}
