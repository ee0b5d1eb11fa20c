package storage

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

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

// SnapshotInfo describes one snapshot folder.
type SnapshotInfo struct {
	Name string
	// Created is the folder's modification time: when it was written.
	Created time.Time
	// Size is the bytes of its files. NB: Pebble's tables are hard links
	// that share their bytes with the data folder until compaction
	// deletes the originals; from then on the snapshot alone keeps them.
	Size int64
}

// Snapshots lists the snapshot folders in dir (each folder in it), oldest
// first. A dir that does not exist holds none.
func (db *DB) Snapshots(dir string) ([]SnapshotInfo, error) {
	fs := db.opts.FS
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return []SnapshotInfo{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	out := []SnapshotInfo{}
	for _, name := range names {
		p := fs.PathJoin(dir, name)
		fi, err := fs.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", name, err)
		}
		if !fi.IsDir() {
			continue
		}
		size, err := dirSize(fs, p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("snapshot %s: %w", name, err)
		}
		out = append(out, SnapshotInfo{Name: name, Created: fi.ModTime(), Size: size})
	}
	slices.SortFunc(out, func(a, b SnapshotInfo) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// RemoveSnapshots removes the snapshot folders in dir written before
// cutoff and returns them. A backup killed before it deleted its snapshot
// leaves it behind, pinning disk space: the server calls this at start.
func (db *DB) RemoveSnapshots(dir string, cutoff time.Time) ([]SnapshotInfo, error) {
	db.adminMu.Lock() // not one being written
	defer db.adminMu.Unlock()
	all, err := db.Snapshots(dir)
	if err != nil {
		return nil, err
	}
	var removed []SnapshotInfo
	var errs []error
	for _, si := range all {
		if !si.Created.Before(cutoff) {
			continue
		}
		if err := db.opts.FS.RemoveAll(db.opts.FS.PathJoin(dir, si.Name)); err != nil {
			errs = append(errs, fmt.Errorf("remove snapshot %s: %w", si.Name, err))
			continue
		}
		removed = append(removed, si)
	}
	return removed, errors.Join(errs...)
}

// dirSize is the bytes of the files under dir.
func dirSize(fs vfs.FS, dir string) (int64, error) {
	names, err := fs.List(dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, name := range names {
		p := fs.PathJoin(dir, name)
		fi, err := fs.Stat(p)
		if err != nil {
			return n, err
		}
		if fi.IsDir() {
			k, err := dirSize(fs, p)
			n += k
			if err != nil {
				return n, err
			}
			continue
		}
		n += fi.Size()
	}
	return n, nil
}
