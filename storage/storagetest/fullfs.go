package storagetest

import (
	"os"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FullFS is a vfs.FS whose disk can fill up: once the bytes allowed by
// SetFree have been written, every write fails with syscall.ENOSPC (after
// writing what still fits, as write(2) does) until space is freed again.
// Creating, renaming and removing files keep working, as they mostly do on
// a real full disk. It counts the writes it refused, so a test can tell a
// retry loop that backs off from one that spins.
//
//	fs := storagetest.NewFullFS(vfs.NewMem())
//	fs.SetFree(0)  // the disk is full
//	fs.SetFree(-1) // space was freed
type FullFS struct {
	vfs.FS
	free    atomic.Int64 // bytes that may still be written; negative: no limit
	refused atomic.Int64
}

// NewFullFS wraps fs with no limit yet.
func NewFullFS(fs vfs.FS) *FullFS {
	f := &FullFS{FS: fs}
	f.free.Store(-1)
	return f
}

// NewFullMemFS is a FullFS over an in-memory filesystem, for packages
// that may not import Pebble (storage.Options.FS takes it as is).
func NewFullMemFS() *FullFS { return NewFullFS(vfs.NewMem()) }

// SetFree lets n more bytes be written; a negative n lifts the limit.
func (f *FullFS) SetFree(n int64) { f.free.Store(n) }

// Refused is the number of writes (and syncs, preallocations) refused so
// far.
func (f *FullFS) Refused() int64 { return f.refused.Load() }

// take reserves up to n bytes and returns how many were granted.
func (f *FullFS) take(n int) int {
	for {
		free := f.free.Load()
		if free < 0 {
			return n
		}
		k := min(int64(n), free)
		if f.free.CompareAndSwap(free, free-k) {
			return int(k)
		}
	}
}

func (f *FullFS) full() bool { return f.free.Load() == 0 }

func (f *FullFS) enospc(op, name string) error {
	f.refused.Add(1)
	return &os.PathError{Op: op, Path: name, Err: syscall.ENOSPC}
}

// Unwrap implements vfs.FS.
func (f *FullFS) Unwrap() vfs.FS { return f.FS }

// Create implements vfs.FS.
func (f *FullFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	return &fullFile{File: file, fs: f, name: name}, nil
}

// OpenReadWrite implements vfs.FS.
func (f *FullFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.FS.OpenReadWrite(name, category, opts...)
	if err != nil {
		return nil, err
	}
	return &fullFile{File: file, fs: f, name: name}, nil
}

// ReuseForWrite implements vfs.FS.
func (f *FullFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return nil, err
	}
	return &fullFile{File: file, fs: f, name: newname}, nil
}

// GetDiskUsage implements vfs.FS: the free bytes are what SetFree allows.
func (f *FullFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	if free := f.free.Load(); free >= 0 {
		du = vfs.DiskUsage{AvailBytes: uint64(free), TotalBytes: du.UsedBytes + uint64(free), UsedBytes: du.UsedBytes}
		err = nil
	}
	return du, err
}

// fullFile is a file of a FullFS.
type fullFile struct {
	vfs.File
	fs   *FullFS
	name string
}

func (f *fullFile) Write(p []byte) (int, error) {
	k := f.fs.take(len(p))
	n, err := f.File.Write(p[:k])
	if err == nil && k < len(p) {
		err = f.fs.enospc("write", f.name)
	}
	return n, err
}

func (f *fullFile) WriteAt(p []byte, off int64) (int, error) {
	k := f.fs.take(len(p))
	n, err := f.File.WriteAt(p[:k], off)
	if err == nil && k < len(p) {
		err = f.fs.enospc("write", f.name)
	}
	return n, err
}

func (f *fullFile) Preallocate(off, n int64) error {
	if f.fs.full() {
		return f.fs.enospc("fallocate", f.name)
	}
	return f.File.Preallocate(off, n)
}
