// Package durable holds the few file operations storage needs to survive a
// power cut, over Pebble's vfs.FS so that tests can run them on a
// crashable in-memory filesystem (vfs.NewCrashableMem). MkdirAll syncs
// every directory entry it creates, so that a new folder does not vanish
// with the files inside it. WriteFile replaces a small file atomically
// (temporary file, fsync, rename, fsync of the folder): after a crash the
// file holds either the old or the new bytes, never a mix. Remove syncs
// the folder after deleting.
//
//	err := durable.WriteFile(fs, fs.PathJoin(dir, "tsdb.json"), b)
package durable

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// MkdirAll creates dir and any missing parents, and syncs the folder
// holding each one it created.
func MkdirAll(fs vfs.FS, dir string) error {
	var missing []string
	for d := dir; ; {
		if _, err := fs.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		parent := fs.PathDir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if parent := fs.PathDir(missing[i]); parent != missing[i] {
			if err := SyncDir(fs, parent); err != nil {
				return err
			}
		}
	}
	return nil
}

// SyncDir fsyncs a folder, making the entries created, renamed or removed
// in it durable.
func SyncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return d.Close()
}

// WriteFile replaces path with data atomically and durably: it writes
// path.tmp, syncs it, renames it over path and syncs the folder.
func WriteFile(fs vfs.FS, path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	// NB: vfs.File.Write may modify its argument (MemFS does under the
	// invariants tag), so write a copy.
	if _, err := f.Write(append([]byte(nil), data...)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(fs, fs.PathDir(path))
}

// ReadFile returns the contents of path.
func ReadFile(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Remove deletes path durably (the folder is synced); a missing file is
// not an error.
func Remove(fs vfs.FS, path string) error {
	if err := fs.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return SyncDir(fs, fs.PathDir(path))
}
