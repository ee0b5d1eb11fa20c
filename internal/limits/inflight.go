package limits

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ErrTooLarge reports a request over a size limit, or one that would need
// more memory than the whole in-flight budget: the same request can never
// succeed (HTTP 413).
var ErrTooLarge = errors.New("request too large")

// ErrBusy reports that the in-flight budget is taken by other requests
// right now; the same request may succeed later (HTTP 503 with
// Retry-After, see BusyError).
var ErrBusy = errors.New("ingest busy")

// BusyError is a request refused because the in-flight budget stayed full
// for as long as it could wait.
type BusyError struct {
	Need, Used, Max int64
	Wait            time.Duration // how long to wait before retrying
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("ingest is busy: requests in flight hold %s of the %s in-flight budget (--ingest.max-inflight-bytes) and this one needs %s more; retry in %s",
		mib(e.Used), mib(e.Max), mib(e.Need), e.Wait)
}

// Unwrap makes errors.Is(err, ErrBusy) true.
func (e *BusyError) Unwrap() error { return ErrBusy }

// RetryAfter is when to retry (storage.RetryAfter finds it).
func (e *BusyError) RetryAfter() time.Duration { return e.Wait }

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", (n+1023)>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// InFlight is a budget of memory shared by every ingest request being
// decoded and written, whatever its protocol and tenant: a request reserves
// what it will hold (its body, the decoded body, the batches it builds)
// before it builds it, and releases it when done. Over the budget a request
// waits a little for others to finish, then is refused with a BusyError;
// one that needs more than the whole budget is refused at once with
// ErrTooLarge. So N hostile requests cannot together hold more than the
// budget, however they are made. InFlight is safe for concurrent use.
type InFlight struct {
	max  int64
	wait time.Duration

	mu struct {
		sync.Mutex
		used, peak int64
		// freed is closed, and replaced, whenever bytes are released.
		freed chan struct{}
	}
}

// Default in-flight budget and wait.
const (
	DefaultInFlightBytes = 256 << 20
	DefaultInFlightWait  = time.Second
)

// NewInFlight returns a budget of max bytes; a request waits up to wait for
// room. Zero values mean DefaultInFlightBytes and DefaultInFlightWait.
func NewInFlight(max int64, wait time.Duration) *InFlight {
	if max <= 0 {
		max = DefaultInFlightBytes
	}
	if wait <= 0 {
		wait = DefaultInFlightWait
	}
	f := &InFlight{max: max, wait: wait}
	f.mu.freed = make(chan struct{})
	return f
}

// Max returns the budget in bytes.
func (f *InFlight) Max() int64 { return f.max }

// Used returns the bytes reserved now.
func (f *InFlight) Used() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.used
}

// Peak returns the most bytes reserved at once so far.
func (f *InFlight) Peak() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.peak
}

// TooLarge returns an error wrapping ErrTooLarge if a request needing n
// bytes can never fit in the budget, nil if it can.
func (f *InFlight) TooLarge(n int64) error {
	if n <= f.max {
		return nil
	}
	return fmt.Errorf("%w: this request needs about %s to decode and write, more than the whole in-flight budget of %s (--ingest.max-inflight-bytes); send smaller requests",
		ErrTooLarge, mib(n), mib(f.max))
}

// Reserve takes n bytes of the budget, waiting for room as long as the
// budget's wait (or until ctx is done). Release the reservation when done.
func (f *InFlight) Reserve(ctx context.Context, n int64) (*Reservation, error) {
	res := &Reservation{f: f}
	if err := res.Grow(ctx, n); err != nil {
		return nil, err
	}
	return res, nil
}

// Reservation is bytes taken from an InFlight budget. It is not safe for
// concurrent use.
type Reservation struct {
	f *InFlight
	n int64
}

// Bytes returns the bytes held.
func (res *Reservation) Bytes() int64 { return res.n }

// Grow takes n more bytes, as Reserve does. NB: a request waiting to grow
// holds what it has; the wait is bounded, and the caller releases the
// whole reservation when Grow fails, so requests waiting for each other
// cannot hold the budget for long.
func (res *Reservation) Grow(ctx context.Context, n int64) error {
	f := res.f
	if n <= 0 {
		return nil
	}
	if err := f.TooLarge(res.n + n); err != nil {
		return err
	}
	var timer *time.Timer
	for {
		f.mu.Lock()
		if f.mu.used+n <= f.max {
			f.mu.used += n
			f.mu.peak = max(f.mu.peak, f.mu.used)
			f.mu.Unlock()
			res.n += n
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		freed, used := f.mu.freed, f.mu.used
		f.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(f.wait)
		}
		select {
		case <-freed:
		case <-timer.C:
			return &BusyError{Need: n, Used: used, Max: f.max, Wait: f.wait}
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
}

// Release gives back every byte held; it may be called more than once.
func (res *Reservation) Release() {
	if res == nil || res.n == 0 {
		return
	}
	f := res.f
	f.mu.Lock()
	f.mu.used -= res.n
	close(f.mu.freed)
	f.mu.freed = make(chan struct{})
	f.mu.Unlock()
	res.n = 0
}

// ReadAll reads r (a decompressing reader) to its end, as io.ReadAll does,
// reserving the buffer's memory as it grows. More than limit bytes is an
// error wrapping ErrTooLarge that names the limit
// (--ingest.max-decoded-bytes). sizeHint, when positive, is the size to
// expect: the buffer starts there.
func (res *Reservation) ReadAll(ctx context.Context, r io.Reader, limit, sizeHint int) ([]byte, error) {
	capacity := 64 << 10
	if sizeHint > 0 {
		capacity = min(sizeHint+512, limit+1)
	}
	if err := res.Grow(ctx, int64(capacity)); err != nil {
		return nil, err
	}
	b := make([]byte, 0, capacity)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > limit {
			return nil, fmt.Errorf("%w: the decoded body is larger than the limit of %d bytes (--ingest.max-decoded-bytes)", ErrTooLarge, limit)
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			// The old buffer is garbage once copied, but it stays in
			// the heap until the collector runs: count both.
			next := min(2*cap(b), limit+1)
			if err := res.Grow(ctx, int64(next)); err != nil {
				return nil, err
			}
			b = append(make([]byte, 0, next), b...)
		}
	}
}
