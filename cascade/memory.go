package cascade

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"sync"
	"time"
)

// MemoryStore is an in-process key/value store with TTLs and a broadcast channel: what NewMemory runs
// on. Registries sharing one MemoryStore see each other as nodes of one cluster. Safe for concurrent use.
type MemoryStore struct {
	mu   sync.Mutex
	keys map[string]memEntry      // guarded by mu
	subs map[chan []byte]struct{} // guarded by mu
	now  func() time.Time         // time source
}

type memEntry struct {
	val []byte
	exp time.Time
}

// memorySubBuffer is each subscriber's queue; a subscriber that falls this far behind loses events
// (WaitFor's safety poll covers a lost announcement).
const memorySubBuffer = 1024

// NewMemoryStore makes an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{keys: map[string]memEntry{}, subs: map[chan []byte]struct{}{}, now: time.Now}
}

// getLocked returns key's live entry, dropping it if it expired. s.mu must be held.
func (s *MemoryStore) getLocked(key string) ([]byte, bool) {
	e, ok := s.keys[key]
	if !ok {
		return nil, false
	}
	if !s.now().Before(e.exp) {
		delete(s.keys, key)

		return nil, false
	}

	return e.val, true
}

func (s *MemoryStore) setLocked(key string, val []byte, ttl time.Duration) {
	s.keys[key] = memEntry{val: bytes.Clone(val), exp: s.now().Add(ttl)}
}

// memoryBackend is a backend over a MemoryStore.
type memoryBackend struct{ s *MemoryStore }

var _ backend = memoryBackend{}

func (m memoryBackend) setNX(_ context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if _, ok := m.s.getLocked(key); ok {
		return false, nil
	}
	m.s.setLocked(key, val, ttl)

	return true, nil
}

func (m memoryBackend) get(_ context.Context, key string) ([]byte, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	v, _ := m.s.getLocked(key)

	return bytes.Clone(v), nil
}

func (m memoryBackend) replace(_ context.Context, key string, old, val []byte, ttl time.Duration) (bool, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	cur, ok := m.s.getLocked(key)
	if !ok || !bytes.Equal(cur, old) {
		return false, nil
	}
	m.s.setLocked(key, val, ttl)

	return true, nil
}

func (m memoryBackend) refresh(_ context.Context, key, token string, val []byte, ttl time.Duration) (refreshResult, []byte, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	cur, ok := m.s.getLocked(key)
	switch {
	case !ok:
		m.s.setLocked(key, val, ttl)

		return refreshRetaken, nil, nil
	case ownerToken(cur) == token:
		m.s.keys[key] = memEntry{val: cur, exp: m.s.now().Add(ttl)}

		return refreshOK, nil, nil
	}

	return refreshLost, bytes.Clone(cur), nil
}

func (m memoryBackend) release(_ context.Context, key, token string) (bool, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	cur, ok := m.s.getLocked(key)
	if !ok || ownerToken(cur) != token {
		return false, nil
	}
	delete(m.s.keys, key)

	return true, nil
}

func (m memoryBackend) set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	m.s.setLocked(key, val, ttl)

	return nil
}

func (m memoryBackend) deleteIf(_ context.Context, key string, val []byte) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if cur, ok := m.s.getLocked(key); ok && bytes.Equal(cur, val) {
		delete(m.s.keys, key)
	}

	return nil
}

func (m memoryBackend) scan(_ context.Context, prefix string) ([][]byte, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	keys := make([]string, 0, len(m.s.keys))
	for k := range m.s.keys {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([][]byte, 0, len(keys))
	for _, k := range keys {
		if v, ok := m.s.getLocked(k); ok {
			out = append(out, bytes.Clone(v))
		}
	}

	return out, nil
}

func (m memoryBackend) publish(_ context.Context, msg []byte) error {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	for ch := range m.s.subs {
		select {
		case ch <- bytes.Clone(msg):
		default: // subscriber too slow: it loses this event
		}
	}

	return nil
}

func (m memoryBackend) subscribe() (<-chan []byte, func()) {
	ch := make(chan []byte, memorySubBuffer)
	m.s.mu.Lock()
	m.s.subs[ch] = struct{}{}
	m.s.mu.Unlock()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			m.s.mu.Lock()
			delete(m.s.subs, ch)
			m.s.mu.Unlock()
			close(ch)
		})
	}

	return ch, stop
}

func (m memoryBackend) ping(context.Context) error { return nil }

func (m memoryBackend) close() error { return nil }
