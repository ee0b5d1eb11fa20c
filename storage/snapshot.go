package storage

import (
	"fmt"

	"github.com/emsdb/tsdb/storage/internal/durable"
)

// Snapshot writes a consistent copy of the DB into dir, which must not
// exist: a Pebble checkpoint per shard (hard links where possible) plus the
// shard's WAL up to the last synced record. Opening dir as a data folder
// yields every write acknowledged before Snapshot began.
func (db *DB) Snapshot(dir string) (err error) {
	db.adminMu.Lock()
	defer db.adminMu.Unlock()
	if err := db.Writable(); err != nil {
		return err
	}
	fs := db.opts.FS
	if _, err := fs.Stat(dir); err == nil {
		return fmt.Errorf("storage: snapshot dir %s already exists", dir)
	}
	// A snapshot that failed half-way (a full disk) would pin its files.
	defer func() {
		if err != nil {
			_ = fs.RemoveAll(dir)
		}
	}()
	if err := durable.MkdirAll(fs, dir); err != nil {
		return fmt.Errorf("create snapshot dir: %w", err)
	}
	for _, sh := range db.shards {
		if err := sh.snapshot(fs.PathJoin(dir, fmt.Sprintf("shard-%03d", sh.id))); err != nil {
			return fmt.Errorf("snapshot shard %d: %w", sh.id, err)
		}
	}
	b, err := durable.ReadFile(fs, fs.PathJoin(db.dir, metaFile))
	if err != nil {
		return fmt.Errorf("read %s: %w", metaFile, err)
	}
	return durable.WriteFile(fs, fs.PathJoin(dir, metaFile), b)
}

func (s *shard) snapshot(dir string) error {
	fs := s.opts.FS
	if err := durable.MkdirAll(fs, dir); err != nil {
		return err
	}
	// Holding sealMu and appendMu freezes both the log and the chunks: the
	// checkpoint and the log copy describe the same moment.
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	// Memtables have no Pebble WAL to be checkpointed with: flush them.
	if err := s.flushPebble(); err != nil {
		return fmt.Errorf("flush pebble: %w", err)
	}
	if err := s.db.Checkpoint(fs.PathJoin(dir, "pebble")); err != nil {
		return fmt.Errorf("checkpoint pebble: %w", err)
	}
	if err := s.wal.CopyTo(fs.PathJoin(dir, "wal")); err != nil {
		return fmt.Errorf("copy wal: %w", err)
	}
	return nil
}
