package storage

import "errors"

// Crash closes db the way a crash would leave it: nothing is sealed or
// flushed beyond what writes already made durable, and the WAL is kept.
func Crash(db *DB) error {
	db.closed.Store(true)
	close(db.quit)
	db.wg.Wait()
	var errs []error
	for _, sh := range db.shards {
		close(sh.quit)
		sh.wg.Wait()
		errs = append(errs, sh.wal.Close(), sh.closePebble())
	}
	db.cache.Close()
	db.blocks.Unref()
	return errors.Join(errs...)
}

// Maintain runs every shard's periodic maintenance once.
func Maintain(db *DB) error {
	var errs []error
	for _, sh := range db.shards {
		errs = append(errs, sh.maintain(false))
	}
	return errors.Join(errs...)
}

// WALBytes returns the WAL bytes on disk.
func WALBytes(db *DB) int64 {
	var n int64
	for _, sh := range db.shards {
		n += sh.wal.Size()
	}
	return n
}

// KeyCacheLen returns the number of keys the key cache holds.
func KeyCacheLen(db *DB) int { return db.keys.len() }
