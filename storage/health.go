package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// NotWritableError says why the DB refuses writes for now: its disk is
// full or failing. It wraps ErrNotWritable and the first error that
// showed it. The DB probes the disk with backoff and takes writes again by
// itself once the disk does.
type NotWritableError struct {
	Dir   string    // the data folder
	Since time.Time // when writes started failing
	Cause error
}

func (e *NotWritableError) Error() string {
	if isNoSpace(e.Cause) {
		return "storage: no space left on device: free space in " + e.Dir
	}
	return fmt.Sprintf("storage: not writable: disk writes in %s fail: %v", e.Dir, e.Cause)
}

func (e *NotWritableError) Unwrap() []error { return []error{ErrNotWritable, e.Cause} }

// isNoSpace reports a full disk or an exhausted quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// Writable returns nil while the DB takes writes; otherwise a
// *NotWritableError saying why (a full disk: "storage: no space left on
// device: free space in DIR"), or ErrClosed. It is cheap: readiness probes
// and every Write call it.
func (db *DB) Writable() error {
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.health.err(); err != nil {
		return err
	}
	return nil
}

// health is whether the DB can write to its disk. Anything that sees a
// disk write fail reports it (fail): the DB then refuses writes, Pebble's
// background flushes and compactions wait (see guardFS), and the probe
// loop checks the disk with growing waits until it takes writes again
// (ok). Each change is logged once; failures while failed are not logged.
type health struct {
	dir string
	log *slog.Logger
	now func() time.Time

	state atomic.Pointer[NotWritableError] // nil: writable
	mu    struct {
		sync.Mutex
		changed chan struct{} // closed at the next change of state
	}
	failed chan struct{} // wakes the probe loop; capacity 1
}

func newHealth(dir string, log *slog.Logger, now func() time.Time) *health {
	h := &health{dir: dir, log: log, now: now, failed: make(chan struct{}, 1)}
	h.mu.changed = make(chan struct{})
	return h
}

// err returns why writes cannot succeed, or nil.
func (h *health) err() error {
	if e := h.state.Load(); e != nil {
		return e
	}
	return nil
}

// watch returns a channel closed at the next change of state, and the
// current state.
func (h *health) watch() (<-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.changed, h.err()
}

// fail records that a disk write failed with cause. Only the first failure
// of an episode is logged and kept as the reason.
func (h *health) fail(cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state.Load() != nil {
		return
	}
	e := &NotWritableError{Dir: h.dir, Since: h.now(), Cause: cause}
	h.state.Store(e)
	close(h.mu.changed)
	h.mu.changed = make(chan struct{})
	h.log.Error("storage stopped taking writes; it checks the disk with backoff and resumes by itself",
		"reason", e.Error(), "cause", cause)
	select {
	case h.failed <- struct{}{}:
	default:
	}
}

// ok records that the disk takes writes again.
func (h *health) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.state.Load()
	if e == nil {
		return
	}
	h.state.Store(nil)
	close(h.mu.changed)
	h.mu.changed = make(chan struct{})
	h.log.Info("storage takes writes again", "not_writable_for", h.now().Sub(e.Since).Round(time.Millisecond))
}

// waitWritable blocks while the disk does not take writes; it returns the
// failure at once when stop is closed.
func (h *health) waitWritable(stop <-chan struct{}) error {
	for {
		changed, err := h.watch()
		if err == nil {
			return nil
		}
		select {
		case <-changed:
		case <-stop:
			return err
		}
	}
}

// probeBytes is what a probe writes and syncs: enough that a disk with
// this much free space can also take Pebble's small MANIFEST updates.
const probeBytes = 1 << 20

// probeName is the file a probe writes in the data folder.
const probeName = "write-probe.tmp"

// probe checks that dir takes probeBytes of writes: it writes, syncs and
// removes a file, and reports the first error.
func probe(fs vfs.FS, dir string) (err error) {
	p := fs.PathJoin(dir, probeName)
	f, err := fs.Create(p, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if rerr := fs.Remove(p); err == nil {
			err = rerr
		}
	}()
	buf := make([]byte, 64<<10)
	for n := 0; n < probeBytes; n += len(buf) {
		if _, err := f.Write(buf); err != nil {
			return err
		}
	}
	return f.Sync()
}

// healthLoop waits for a failure, then probes the disk with growing waits
// (100ms doubling up to Options.WriteRetryMax) until it takes writes again:
// the probe file first, then every shard's failed write-ahead log. NB: a
// failure within a minute of recovering is the same episode going on (a
// probe fits where a Pebble table does not): the waits keep growing, so
// that writes flapping on a nearly full disk log at most twice per
// WriteRetryMax.
func (db *DB) healthLoop() {
	defer db.wg.Done()
	const first = 100 * time.Millisecond
	wait := first
	var recovered time.Time
	for {
		select {
		case <-db.health.failed:
		case <-db.quit:
			return
		}
		if time.Since(recovered) > time.Minute {
			wait = first
		}
		for db.health.err() != nil {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-db.quit:
				t.Stop()
				return
			}
			wait = min(2*wait, db.opts.WriteRetryMax)
			if err := db.recoverDisk(); err != nil {
				db.opts.Logger.Debug("disk still not writable", "err", err, "next_probe", wait)
				continue
			}
			db.health.ok()
			recovered = time.Now()
		}
	}
}

// recoverDisk probes the disk and retries the failed logs.
func (db *DB) recoverDisk() error {
	if err := probe(db.rawFS, db.dir); err != nil {
		return err
	}
	for _, sh := range db.shards {
		if err := sh.wal.Retry(); err != nil {
			return fmt.Errorf("wal of shard %d: %w", sh.id, err)
		}
	}
	return nil
}

// guardFS is the filesystem every file of the DB goes through. Every
// failed write reports to health, so the first ENOSPC anywhere (the WAL,
// Pebble's tables, a snapshot) stops writes. For Pebble it also holds new
// tables back while the disk does not take writes: Pebble retries a failed
// flush at once, forever, and would otherwise spin on a full disk. hold is
// nil for all but Pebble's; when it is closed (the shard closes), nothing
// waits any more.
type guardFS struct {
	vfs.FS
	h    *health
	hold <-chan struct{}
}

func (g *guardFS) Unwrap() vfs.FS { return g.FS }

func (g *guardFS) check(err error) error {
	if err != nil && isDiskWriteError(err) {
		g.h.fail(err)
	}
	return err
}

// isDiskWriteError reports an error that means the disk does not take
// writes (as opposed to a missing file, say).
func isDiskWriteError(err error) bool {
	return isNoSpace(err) || errors.Is(err, syscall.EIO) || errors.Is(err, syscall.EROFS)
}

func (g *guardFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, g.check(err)
	}
	return &guardFile{File: f, g: g}, nil
}

func (g *guardFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if g.hold != nil && (strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob")) {
		// A flush or compaction: wait until the disk takes writes.
		if err := g.h.waitWritable(g.hold); err != nil {
			return nil, err
		}
	}
	return g.wrap(g.FS.Create(name, category))
}

func (g *guardFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return g.wrap(g.FS.OpenReadWrite(name, category, opts...))
}

func (g *guardFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	return g.wrap(g.FS.ReuseForWrite(oldname, newname, category))
}

func (g *guardFS) Link(oldname, newname string) error {
	return g.check(g.FS.Link(oldname, newname))
}

func (g *guardFS) Rename(oldname, newname string) error {
	return g.check(g.FS.Rename(oldname, newname))
}

func (g *guardFS) MkdirAll(dir string, perm os.FileMode) error {
	return g.check(g.FS.MkdirAll(dir, perm))
}

type guardFile struct {
	vfs.File
	g *guardFS
}

func (f *guardFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.g.check(err)
}

func (f *guardFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.g.check(err)
}

func (f *guardFile) Sync() error { return f.g.check(f.File.Sync()) }

func (f *guardFile) SyncData() error { return f.g.check(f.File.SyncData()) }

func (f *guardFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.g.check(err)
}
