package storage

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// prefixKV holds small configuration documents (rule groups written
// through the API, …) in shard 0: 0x06 key -> value.
const prefixKV byte = 0x06

func kvKey(key string) []byte { return append([]byte{prefixKV}, key...) }

// PutKV stores a small document durably (it is on disk when PutKV
// returns). Keys are free-form; callers scope them (tenant, kind).
func (db *DB) PutKV(key string, value []byte) error {
	return db.kvWrite(func(b *pebble.Batch) error { return b.Set(kvKey(key), value, nil) })
}

// DeleteKV removes a document; a missing key is not an error.
func (db *DB) DeleteKV(key string) error {
	return db.kvWrite(func(b *pebble.Batch) error { return b.Delete(kvKey(key), nil) })
}

func (db *DB) kvWrite(f func(*pebble.Batch) error) error {
	if err := db.Writable(); err != nil {
		return err
	}
	sh := db.shards[0]
	b := sh.db.NewBatch()
	defer b.Close()
	if err := f(b); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("kv write: %w", err)
	}
	// Pebble runs without its own log: flush to make it durable.
	if err := sh.flushPebble(); err != nil {
		return fmt.Errorf("kv flush: %w", err)
	}
	return nil
}

// GetKV returns a document, or ok false.
func (db *DB) GetKV(key string) (value []byte, ok bool, err error) {
	if db.closed.Load() {
		return nil, false, ErrClosed
	}
	v, closer, err := db.shards[0].db.Get(kvKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

// ListKV returns the documents whose keys start with prefix.
func (db *DB) ListKV(prefix string) (map[string][]byte, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	lo := kvKey(prefix)
	it, err := db.shards[0].db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := map[string][]byte{}
	for it.First(); it.Valid(); it.Next() {
		out[string(it.Key()[1:])] = bytes.Clone(it.Value())
	}
	return out, it.Error()
}
