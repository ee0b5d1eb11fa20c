package outbox

import (
	"strings"
	"sync"
)

// MemStore is a Store in memory, for tests and for outboxes that need
// order and retries but not durability: what it holds is lost on exit.
type MemStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: map[string][]byte{}} }

// PutKV stores a copy of value.
func (s *MemStore) PutKV(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}

// DeleteKV removes key; a missing key is not an error.
func (s *MemStore) DeleteKV(key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

// ListKV returns copies of the values whose keys start with prefix.
func (s *MemStore) ListKV(prefix string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range s.m {
		if strings.HasPrefix(k, prefix) {
			out[k] = append([]byte(nil), v...)
		}
	}
	return out, nil
}
