// Package wal is the write-ahead log of one storage shard: numbered
// segment files of framed records, written by one background flusher that
// group-commits (one fsync serves every writer waiting at that moment).
//
// Each record is framed as
//
//	┌──────────────────┬───────────────────┬─────────┐
//	│ u32 LE len(data) │ u32 LE crc32c(data)│ data    │
//	└──────────────────┴───────────────────┴─────────┘
//
// A torn or zero-filled tail of the last segment (a crash) ends Replay
// quietly; a bad record in an older segment is ErrCorrupt.
//
// Segments are zero-filled ahead of their records (preallocStep), so that
// the fsync after each round writes into blocks the file already has and
// has no change of size to journal: on ext4 half the CPU and half the
// latency of an fsync that extends the file (about 55 µs not 105). A
// zero-filled tail, every byte after the last record zero, therefore ends
// any segment, not only the last.
//
// A write or fsync that fails (a full disk) fails the writers waiting for
// it, and the log refuses appends until Retry succeeds: the flusher does
// not loop. Retry writes the failed round again at the same offsets, so the
// log never keeps a torn record between good ones, and re-writing what an
// fsync may have dropped makes it durable again.
//
//	w, _ := wal.Open(dir, nil)
//	_ = w.Replay(func(rec []byte) error { return nil })
//	pos, _ := w.Append(rec)
//	err := w.Wait(ctx, pos) // durable
package wal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/emsdb/tsdb/storage/internal/durable"
)

var (
	// ErrCorrupt marks a damaged record outside the crash-torn tail.
	ErrCorrupt = errors.New("wal: corrupt log")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrFailed is returned while a write or fsync has failed and Retry has
	// not yet succeeded: appends are refused and waiters are not durable.
	ErrFailed = errors.New("wal: log failed")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const headerLen = 8

// Options configures a WAL. A zero field means its default.
type Options struct {
	SegmentSize int64 // default 64 MiB
	NoSync      bool  // tests only: skip fsync
	Logger      *slog.Logger
	// FS holds the segment files. Default vfs.Default, the operating
	// system's; tests pass vfs.NewCrashableMem() to simulate power cuts.
	FS vfs.FS

	// zeroAhead is how far past its records a segment is zero-filled:
	// preallocStep but in tests.
	zeroAhead int64
}

// Pos is the position just after a record.
type Pos struct {
	Segment int
	Offset  int64
}

func (p Pos) less(o Pos) bool {
	return p.Segment < o.Segment || (p.Segment == o.Segment && p.Offset < o.Offset)
}

// WAL is safe for concurrent use.
type WAL struct {
	dir  string
	opts Options

	mu struct {
		sync.Mutex
		buf      []byte // appended, not yet written
		seg      int    // segment Append writes to
		off      int64  // offset after the last appended record
		segs     []int  // existing segment numbers, ascending
		written  Pos    // everything up to here is written and synced
		synced   chan struct{}
		err      error // why the last round failed; nil once Retry succeeds
		closed   bool
		rotateTo []pendingRotate
		// segSize is the size at which Append and Next start a new
		// segment: Options.SegmentSize until SetSegmentSize.
		segSize int64
	}
	// The segment file being written, its number and the bytes in it:
	// owned by the flusher, and by Close once the flusher has exited.
	file    vfs.File // nil until the segment is (re)created
	fileSeg int
	fileOff int64
	// fileZero is where the zero-filled part of the file ends: bytes
	// before it are allocated, written and synced (or being synced).
	fileZero int64

	kick    chan struct{}
	retry   chan chan error // Retry asks the failed flusher to try again
	closing chan struct{}   // closed by Close
	done    chan struct{}
	// fsyncs counts fsync calls, for tests.
	fsyncs int64
}

// round is what the flusher took from the buffer in one go, and how far it
// got: it is kept whole across a failure, so Retry writes the rest.
type round struct {
	buf  []byte
	rot  []pendingRotate
	seg  int   // Append's segment when the round was taken
	off  int64 // and its offset: the round ends at Pos{seg, off}
	done int   // bytes of buf written and synced
	nrot int   // rotations done
}

type pendingRotate struct{ at int } // buffer offset where the next segment begins

// Open opens or creates the log in dir.
func Open(dir string, opts *Options) (*WAL, error) {
	w := &WAL{dir: dir, kick: make(chan struct{}, 1), retry: make(chan chan error),
		closing: make(chan struct{}), done: make(chan struct{})}
	if opts != nil {
		w.opts = *opts
	}
	if w.opts.SegmentSize <= 0 {
		w.opts.SegmentSize = 64 << 20
	}
	if w.opts.zeroAhead <= 0 {
		w.opts.zeroAhead = preallocStep
	}
	if w.opts.Logger == nil {
		w.opts.Logger = slog.New(slog.DiscardHandler)
	}
	if w.opts.FS == nil {
		w.opts.FS = vfs.Default
	}
	fs := w.opts.FS
	if err := durable.MkdirAll(fs, dir); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("list wal dir: %w", err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, ".tmp") {
			// A torn tail being cut off when the process died: the
			// segment itself is still whole, so the copy is not needed.
			if err := fs.Remove(fs.PathJoin(dir, name)); err != nil {
				return nil, fmt.Errorf("remove %s: %w", name, err)
			}
			continue
		}
		n, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if fi, err := fs.Stat(fs.PathJoin(dir, name)); err != nil {
			return nil, fmt.Errorf("stat segment %d: %w", n, err)
		} else if fi.Mode().IsRegular() {
			w.mu.segs = append(w.mu.segs, n)
		}
	}
	slices.Sort(w.mu.segs)
	w.mu.synced = make(chan struct{})
	w.mu.segSize = w.opts.SegmentSize
	return w, nil
}

func (w *WAL) path(seg int) string { return w.opts.FS.PathJoin(w.dir, fmt.Sprintf("%08d", seg)) }

// Replay calls fn for every intact record in order, truncates a torn tail
// of the last segment, and then starts a new segment for appends. It must
// be called once, before Append.
func (w *WAL) Replay(fn func(rec []byte) error) error {
	return w.ReplayAt(func(rec []byte, _ Pos) error { return fn(rec) })
}

// ReplayAt is Replay that also gives fn the position just after each
// record: what Append returned for it. Positions grow with the log, across
// restarts too, as long as the log's folder is kept.
func (w *WAL) ReplayAt(fn func(rec []byte, end Pos) error) error {
	segs := w.mu.segs
	for i, seg := range segs {
		last := i == len(segs)-1
		if err := w.replaySegment(seg, last, fn); err != nil {
			return err
		}
	}
	next := 1
	if len(segs) > 0 {
		next = segs[len(segs)-1] + 1
	}
	return w.start(next)
}

func (w *WAL) replaySegment(seg int, last bool, fn func([]byte, Pos) error) error {
	data, err := durable.ReadFile(w.opts.FS, w.path(seg))
	if err != nil {
		return fmt.Errorf("read segment %d: %w", seg, err)
	}
	off := 0
	for off < len(data) {
		bad := ""
		if len(data)-off < headerLen {
			bad = "short header"
		} else {
			n := int(binary.LittleEndian.Uint32(data[off:]))
			crc := binary.LittleEndian.Uint32(data[off+4:])
			switch {
			case n == 0:
				bad = "zero length"
			case n > len(data)-off-headerLen:
				bad = "length beyond end of file"
			case crc32.Checksum(data[off+headerLen:off+headerLen+n], castagnoli) != crc:
				bad = "checksum mismatch"
			default:
				end := off + headerLen + n
				if err := fn(data[off+headerLen:end], Pos{Segment: seg, Offset: int64(end)}); err != nil {
					return err
				}
				off += headerLen + n
				continue
			}
		}
		if allZero(data[off:]) {
			break // the zero-filled room for more records
		}
		if !last {
			return fmt.Errorf("%w: segment %d offset %d: %s", ErrCorrupt, seg, off, bad)
		}
		w.opts.Logger.Warn("truncating torn wal tail", "segment", seg, "offset", off, "reason", bad, "dropped_bytes", len(data)-off)
		// vfs.File cannot truncate: the intact prefix replaces the
		// segment atomically, so that a crash now leaves either form,
		// both of which replay the same way.
		if err := durable.WriteFile(w.opts.FS, w.path(seg), data[:off]); err != nil {
			return fmt.Errorf("truncate segment %d: %w", seg, err)
		}
		break
	}
	return nil
}

// start creates segment seg and the flusher.
func (w *WAL) start(seg int) error {
	f, err := w.create(seg)
	if err != nil {
		return err
	}
	w.file, w.fileSeg, w.fileOff, w.fileZero = f, seg, 0, 0
	w.mu.Lock()
	w.mu.seg, w.mu.off = seg, 0
	w.mu.segs = append(w.mu.segs, seg)
	w.mu.written = Pos{Segment: seg}
	w.mu.Unlock()
	go w.flushLoop()
	return nil
}

func (w *WAL) create(seg int) (vfs.File, error) {
	f, err := w.opts.FS.Create(w.path(seg), vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", seg, err)
	}
	if err := w.syncDir(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (w *WAL) syncDir() error {
	if w.opts.NoSync {
		return nil
	}
	return durable.SyncDir(w.opts.FS, w.dir)
}

// Append buffers rec and returns the position after it.
func (w *WAL) Append(rec []byte) (Pos, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.closed {
		return Pos{}, ErrClosed
	}
	if w.mu.err != nil {
		return Pos{}, fmt.Errorf("%w: %w", ErrFailed, w.mu.err)
	}
	if w.mu.written.Segment == 0 {
		return Pos{}, errors.New("wal: Append before Replay")
	}
	size := int64(headerLen + len(rec))
	// NB: a record that crosses the segment size still goes into the
	// segment, and the next one starts a new segment: so Next can tell
	// where a record will land before it is encoded.
	if w.mu.off >= w.mu.segSize {
		w.rotateLocked()
	}
	var h [headerLen]byte
	binary.LittleEndian.PutUint32(h[:], uint32(len(rec)))
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(rec, castagnoli))
	w.mu.buf = append(w.mu.buf, h[:]...)
	w.mu.buf = append(w.mu.buf, rec...)
	w.mu.off += size
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return Pos{Segment: w.mu.seg, Offset: w.mu.off}, nil
}

// rotateLocked makes later appends go to a new segment; the flusher
// switches files when it reaches this point of the buffer.
func (w *WAL) rotateLocked() {
	w.mu.rotateTo = append(w.mu.rotateTo, pendingRotate{at: len(w.mu.buf)})
	w.mu.seg++
	w.mu.off = 0
	w.mu.segs = append(w.mu.segs, w.mu.seg)
}

// Rotate starts a new segment for later appends and returns its number.
func (w *WAL) Rotate() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.closed {
		return 0, ErrClosed
	}
	if w.mu.off > 0 {
		w.rotateLocked()
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return w.mu.seg, nil
}

// Next returns the segment the next Append writes to, first starting a
// new one when the current segment has reached the segment size (Append
// rotates only then, and Rotate). A writer whose records depend on earlier
// records of their segment (storage's sample prediction: every segment
// must replay on its own once older ones are truncated) calls Next and
// then Append under the lock that orders its appends and rotations.
func (w *WAL) Next() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.mu.closed && w.mu.written.Segment != 0 && w.mu.off >= w.mu.segSize {
		w.rotateLocked()
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	return w.mu.seg
}

// Segment returns the segment Append writes to.
func (w *WAL) Segment() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.seg
}

// Current returns the segment Append writes to and the bytes appended to
// it so far.
func (w *WAL) Current() (seg int, size int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.seg, w.mu.off
}

// SetSegmentSize changes the size at which a segment is followed by a
// new one, for later appends (at most Options.SegmentSize, at least one
// record: n ≤ 0 means Options.SegmentSize). A log whose older segments
// are truncated as soon as what they hold is stored elsewhere keeps less
// on disk with smaller segments.
func (w *WAL) SetSegmentSize(n int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n <= 0 || n > w.opts.SegmentSize {
		n = w.opts.SegmentSize
	}
	w.mu.segSize = n
}

// Wait blocks until everything up to pos is written and synced. It fails
// at once while the log has failed (see Retry).
func (w *WAL) Wait(ctx context.Context, pos Pos) error {
	for {
		w.mu.Lock()
		if !w.mu.written.less(pos) {
			w.mu.Unlock()
			return nil
		}
		if w.mu.err != nil {
			err := w.mu.err
			w.mu.Unlock()
			return fmt.Errorf("%w: %w", ErrFailed, err)
		}
		if w.mu.closed && len(w.mu.buf) == 0 {
			w.mu.Unlock()
			return ErrClosed
		}
		ch := w.mu.synced
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// flushLoop writes buffered records and fsyncs, one round at a time. After
// a failure it keeps the round and waits for Retry or Close.
func (w *WAL) flushLoop() {
	defer close(w.done)
	var r round
	for {
		w.mu.Lock()
		if r.buf == nil && r.rot == nil {
			for len(w.mu.buf) == 0 && len(w.mu.rotateTo) == 0 && !w.mu.closed {
				w.mu.Unlock()
				<-w.kick
				w.mu.Lock()
			}
			r = round{buf: w.mu.buf, rot: w.mu.rotateTo, seg: w.mu.seg, off: w.mu.off}
			w.mu.buf, w.mu.rotateTo = nil, nil
		}
		closed := w.mu.closed
		w.mu.Unlock()

		err := w.finishRound(&r, w.writeRound(&r))
		// NB: no retry loop here: a full disk stays full for a while, and
		// the owner decides when to try again (Retry), with backoff.
		for err != nil {
			select {
			case reply := <-w.retry:
				err = w.finishRound(&r, w.writeRound(&r))
				reply <- err
			case <-w.closing:
				// One last try; what it cannot write was never acknowledged.
				if w.finishRound(&r, w.writeRound(&r)) != nil {
					return
				}
				err = nil
			}
		}
		w.mu.Lock()
		stop := closed && len(w.mu.buf) == 0 && len(w.mu.rotateTo) == 0
		w.mu.Unlock()
		if stop {
			return
		}
	}
}

// finishRound records the outcome of an attempt at r and wakes the
// waiters: on success r is durable and reset.
func (w *WAL) finishRound(r *round, err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.err = err
	if err == nil {
		// seg/off are where Append stood when the round was taken.
		w.mu.written = Pos{Segment: r.seg, Offset: r.off}
		*r = round{}
	}
	close(w.mu.synced)
	w.mu.synced = make(chan struct{})
	return err
}

// writeRound writes what is left of r, switching files at each rotation
// point and syncing each file before leaving it. It can be called again
// after a failure: each piece is written at its offset in its file, so a
// second attempt rewrites the same bytes in the same places.
func (w *WAL) writeRound(r *round) error {
	for {
		end := len(r.buf)
		if r.nrot < len(r.rot) {
			end = r.rot[r.nrot].at
		}
		seg := r.seg - (len(r.rot) - r.nrot)
		if w.file == nil || w.fileSeg != seg {
			if w.file != nil {
				if err := w.file.Close(); err != nil {
					return fmt.Errorf("close segment: %w", err)
				}
				w.file = nil
			}
			f, err := w.create(seg)
			if err != nil {
				return err
			}
			w.file, w.fileSeg, w.fileOff, w.fileZero = f, seg, 0, 0
		}
		if err := w.writeSync(w.file, r.buf[r.done:end], w.fileOff); err != nil {
			return err
		}
		w.fileOff += int64(end - r.done)
		r.done = end
		if r.nrot == len(r.rot) {
			return nil
		}
		r.nrot++
	}
}

// writeSync writes b at off and syncs the file. NB: WriteAt, not Write:
// after a short write or a failed fsync the same call is repeated, and
// must land in the same place.
func (w *WAL) writeSync(f vfs.File, b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	end := off + int64(len(b))
	if err := w.zeroFill(f, end); err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("write segment: %w", err)
	}
	if w.opts.NoSync {
		return nil
	}
	w.fsyncs++
	if err := f.Sync(); err != nil {
		// The zero-filled blocks may be lost with the pages the
		// failed fsync dropped: fill again from here.
		w.fileZero = min(w.fileZero, off)
		return fmt.Errorf("fsync segment: %w", err)
	}
	return nil
}

// preallocStep is how far a segment is zero-filled past the record that
// reaches beyond its zero-filled part: the fsync of that round journals
// the larger size, the next rounds' do not. Small next to a segment, so
// that a log of a few thousand series is not mostly zeros.
const preallocStep = 64 << 10

var zeros [64 << 10]byte

// zeroFillMinFree is the free space below which segments are not
// zero-filled: on a nearly full disk the zeros would take the room of
// records, and the first to fail them would stop writes (health).
const zeroFillMinFree = 64 << 20

// zeroFill writes zeros from the end of the zero-filled part up to
// Options.zeroAhead past end, when end lies beyond it; the caller's fsync
// makes them durable with its records.
func (w *WAL) zeroFill(f vfs.File, end int64) error {
	if end <= w.fileZero || w.opts.NoSync {
		return nil
	}
	if du, err := w.opts.FS.GetDiskUsage(w.dir); err != nil || du.AvailBytes < zeroFillMinFree {
		return nil // as without zero-filling: the file grows with its records
	}
	from, to := max(w.fileZero, end), end+w.opts.zeroAhead
	for off := from; off < to; {
		n := min(int64(len(zeros)), to-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("zero-fill segment: %w", err)
		}
		off += n
	}
	w.fileZero = to
	return nil
}

// allZero reports whether every byte of b is zero.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Err returns why the log refuses appends, or nil.
func (w *WAL) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, w.mu.err)
	}
	return nil
}

// Retry writes again what a failed write or fsync left, and returns nil
// once it is durable: appends are then taken again. It returns at once
// when the log has not failed.
func (w *WAL) Retry() error {
	if w.Err() == nil {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case w.retry <- reply:
	case <-w.done:
		return w.Err()
	}
	if err := <-reply; err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return nil
}

// Truncate deletes segments numbered below seg, never the current one
// nor one the flusher has not finished, and returns the segment it
// truncated to.
func (w *WAL) Truncate(seg int) (int, error) {
	w.mu.Lock()
	seg = min(seg, w.mu.seg, w.mu.written.Segment)
	var del []int
	keep := w.mu.segs[:0]
	for _, s := range w.mu.segs {
		if s < seg {
			del = append(del, s)
		} else {
			keep = append(keep, s)
		}
	}
	w.mu.segs = keep
	w.mu.Unlock()
	for _, s := range del {
		if err := w.opts.FS.Remove(w.path(s)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return seg, fmt.Errorf("remove segment %d: %w", s, err)
		}
	}
	if len(del) > 0 {
		return seg, w.syncDir()
	}
	return seg, nil
}

// CopyTo copies the log up to the last synced record into dir.
func (w *WAL) CopyTo(dir string) error {
	w.mu.Lock()
	segs := slices.Clone(w.mu.segs)
	written := w.mu.written
	w.mu.Unlock()
	fs := w.opts.FS
	if err := durable.MkdirAll(fs, dir); err != nil {
		return err
	}
	for _, s := range segs {
		if s > written.Segment {
			break
		}
		limit := int64(-1)
		if s == written.Segment {
			limit = written.Offset
		}
		if err := copyFile(fs, w.path(s), fs.PathJoin(dir, fs.PathBase(w.path(s))), limit); err != nil {
			return fmt.Errorf("copy segment %d: %w", s, err)
		}
	}
	return durable.SyncDir(fs, dir)
}

func copyFile(fs vfs.FS, src, dst string, limit int64) error {
	in, err := fs.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fs.Create(dst, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	var r io.Reader = in
	if limit >= 0 {
		r = io.LimitReader(in, limit)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Size returns the bytes of all segment files.
func (w *WAL) Size() int64 {
	w.mu.Lock()
	segs := slices.Clone(w.mu.segs)
	w.mu.Unlock()
	var n int64
	for _, s := range segs {
		if fi, err := w.opts.FS.Stat(w.path(s)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Close writes and syncs what is buffered, then closes the log.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		return nil
	}
	w.mu.closed = true
	started := w.mu.written.Segment != 0
	w.mu.Unlock()
	if !started {
		return nil
	}
	close(w.closing)
	select {
	case w.kick <- struct{}{}:
	default:
	}
	<-w.done
	err := w.Err()
	if w.file != nil {
		if cerr := w.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
