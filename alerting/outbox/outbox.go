package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Store is the durable key-value store items live in; storage.DB
// implements it. PutKV must be durable when it returns; DeleteKV of a
// missing key is not an error. The outbox calls it from several
// goroutines.
type Store interface {
	PutKV(key string, value []byte) error
	DeleteKV(key string) error
	ListKV(prefix string) (map[string][]byte, error)
}

// Item is one event waiting for one receiver.
type Item struct {
	Queue string `json:"-"`     // the receiver
	Seq   uint64 `json:"-"`     // unique forever within the outbox; orders the queue
	Event string `json:"event"` // what happened (free-form: for logs and headers)
	// ID is the idempotency key: the ref given to Enqueue, "/", Seq.
	ID   string `json:"id"`
	Body []byte `json:"body"`
}

// DeliverFunc sends one item. nil means the receiver has it: the item is
// deleted. An error is retried after a backoff, unless it is Permanent.
// ctx is cancelled by Close; Deliver must return soon after. Deliver is
// called from the queue's goroutine, one item at a time per queue.
type DeliverFunc func(ctx context.Context, it Item) error

// Options configures an Outbox. Prefix, Queues and Deliver are required;
// a zero field otherwise means its default.
type Options struct {
	Prefix     string        // where the items live in the Store, e.g. "itsm/outbox/"; ends with "/"
	Queues     []string      // the receivers, each delivered in order by its own goroutine
	Deliver    DeliverFunc   // sends an item
	MinBackoff time.Duration // first retry delay (±50% jitter); default 500ms
	MaxBackoff time.Duration // retry delays double up to this; default 1m
	// MaxPending bounds each queue; when it is full, Enqueue drops the
	// oldest item not in flight (counted by Dropped). 0: unbounded.
	MaxPending int
	Logger     *slog.Logger
}

// LeaseSize is how many sequence numbers one stored lease covers.
const LeaseSize = 1024

var (
	// ErrClosed is returned by Enqueue after Close.
	ErrClosed = errors.New("outbox: closed")
	// ErrUnknownQueue is returned by Enqueue for a queue not in Options.Queues.
	ErrUnknownQueue = errors.New("outbox: unknown queue")
)

type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent marks a Deliver error that retrying cannot fix (the receiver
// refused the item as malformed): the item is dropped, logged and
// counted by Dropped, and the queue goes on.
func Permanent(err error) error { return &permanent{err} }

// Outbox is a set of durable, ordered delivery queues. Its methods are
// safe for concurrent use.
type Outbox struct {
	st     Store
	opts   Options
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		seq, lease uint64
		queues     map[string]*queue
		closed     bool
		changed    chan struct{} // closed and replaced when a queue shrinks or starts failing
	}
}

type queue struct {
	name    string
	items   []Item // oldest first
	busy    bool   // items[0] is being delivered
	failing bool   // the last attempt failed; the queue is waiting to retry
	dropped int64
	wake    chan struct{}
}

// Open loads the undelivered items from st and starts delivering them.
func Open(st Store, opts Options) (*Outbox, error) {
	if opts.Prefix == "" || !strings.HasSuffix(opts.Prefix, "/") {
		return nil, fmt.Errorf("outbox: prefix %q must end with /", opts.Prefix)
	}
	if opts.Deliver == nil {
		return nil, errors.New("outbox: no Deliver function")
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	o := &Outbox{st: st, opts: opts, log: opts.Logger}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.mu.queues = map[string]*queue{}
	o.mu.changed = make(chan struct{})
	for _, name := range opts.Queues {
		o.mu.queues[name] = &queue{name: name, wake: make(chan struct{}, 1)}
	}

	stored, err := st.ListKV(opts.Prefix)
	if err != nil {
		return nil, fmt.Errorf("outbox: list %s: %w", opts.Prefix, err)
	}
	var maxSeq uint64
	haveLease := false
	stranded := map[string]int{}
	for k, v := range stored {
		rest := k[len(opts.Prefix):]
		i := strings.LastIndexByte(rest, '/')
		if i < 0 {
			if rest == "seq" {
				n, err := strconv.ParseUint(string(v), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("outbox: lease %s: %w", k, err)
				}
				maxSeq, haveLease = max(maxSeq, n), true
			}
			continue
		}
		seq, err := strconv.ParseUint(rest[i+1:], 10, 64)
		if err != nil {
			o.log.Warn("outbox: key without a sequence number; ignored", "key", k)
			continue
		}
		maxSeq = max(maxSeq, seq)
		it := Item{Queue: rest[:i], Seq: seq}
		if err := json.Unmarshal(v, &it); err != nil {
			o.log.Error("outbox: item does not decode; left in place", "key", k, "err", err)
			continue
		}
		q := o.mu.queues[it.Queue]
		if q == nil {
			stranded[it.Queue]++
			continue
		}
		q.items = append(q.items, it)
	}
	for name, n := range stranded {
		o.log.Warn("outbox: items for a receiver no longer configured stay stored", "receiver", name, "items", n)
	}
	for _, q := range o.mu.queues {
		slices.SortFunc(q.items, func(a, b Item) int { return cmpSeq(a.Seq, b.Seq) })
	}
	if !haveLease {
		// Above any counter an outbox without leases handed out (see doc.go).
		maxSeq = max(maxSeq, uint64(time.Now().UnixMicro()))
	}
	o.mu.seq, o.mu.lease = maxSeq, maxSeq
	if err := o.extendLeaseLocked(); err != nil {
		return nil, err
	}

	o.ctx, o.cancel = context.WithCancel(context.Background())
	for _, q := range o.mu.queues {
		o.wg.Add(1)
		go o.run(q)
	}
	return o, nil
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (o *Outbox) itemKey(it *Item) string {
	return fmt.Sprintf("%s%s/%020d", o.opts.Prefix, it.Queue, it.Seq)
}

// extendLeaseLocked stores a lease LeaseSize numbers above the last one
// handed out.
func (o *Outbox) extendLeaseLocked() error {
	next := o.mu.seq + LeaseSize
	if err := o.st.PutKV(o.opts.Prefix+"seq", []byte(strconv.FormatUint(next, 10))); err != nil {
		return fmt.Errorf("outbox: store sequence lease: %w", err)
	}
	o.mu.lease = next
	return nil
}

// Enqueue stores an event for queue and wakes its goroutine. ref is the
// caller's name for the event; the item's ID (the idempotency key) is
// ref + "/" + its sequence number, unique forever. When the store fails,
// the item is still queued in memory and delivered unless the process
// stops first, and the error says so.
func (o *Outbox) Enqueue(queue, event, ref string, body []byte) (Item, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.closed {
		return Item{}, ErrClosed
	}
	q := o.mu.queues[queue]
	if q == nil {
		return Item{}, fmt.Errorf("%w %q", ErrUnknownQueue, queue)
	}
	if o.mu.seq >= o.mu.lease {
		if err := o.extendLeaseLocked(); err != nil {
			return Item{}, err // no number is handed out without a lease covering it
		}
	}
	o.mu.seq++
	it := Item{Queue: queue, Seq: o.mu.seq, Event: event, ID: ref + "/" + strconv.FormatUint(o.mu.seq, 10), Body: body}
	if o.opts.MaxPending > 0 && len(q.items) >= o.opts.MaxPending {
		o.dropOldestLocked(q)
	}
	var err error
	raw, _ := json.Marshal(&it)
	if perr := o.st.PutKV(o.itemKey(&it), raw); perr != nil {
		err = fmt.Errorf("outbox: store %s item %d (queued in memory only): %w", queue, it.Seq, perr)
	}
	q.items = append(q.items, it)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return it, err
}

// dropOldestLocked drops the oldest item that is not being delivered.
func (o *Outbox) dropOldestLocked(q *queue) {
	i := 0
	if q.busy {
		i = 1
	}
	if i >= len(q.items) {
		return
	}
	victim := q.items[i]
	q.items = slices.Delete(q.items, i, i+1)
	q.dropped++
	if err := o.st.DeleteKV(o.itemKey(&victim)); err != nil {
		o.log.Error("outbox: delete dropped item", "queue", q.name, "seq", victim.Seq, "err", err)
	}
	o.log.Warn("outbox: queue full; oldest item dropped", "queue", q.name, "event", victim.Event, "id", victim.ID)
	o.changedLocked()
}

func (o *Outbox) changedLocked() {
	close(o.mu.changed)
	o.mu.changed = make(chan struct{})
}

func (o *Outbox) run(q *queue) {
	defer o.wg.Done()
	backoff := o.opts.MinBackoff
	for o.ctx.Err() == nil {
		o.mu.Lock()
		var it Item
		ok := len(q.items) > 0
		if ok {
			it, q.busy = q.items[0], true
		}
		o.mu.Unlock()
		if !ok {
			select {
			case <-o.ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		err := o.opts.Deliver(o.ctx, it)
		var perm *permanent
		switch {
		case err == nil:
		case errors.As(err, &perm):
			o.log.Error("outbox: receiver refused an item for good; dropped", "queue", q.name, "event", it.Event, "id", it.ID, "err", err)
		case o.ctx.Err() != nil:
			o.mu.Lock()
			q.busy = false
			o.mu.Unlock()
			return // closing: the item stays for the next Open
		default:
			o.log.Warn("outbox: delivery failed; will retry", "queue", q.name, "event", it.Event, "id", it.ID, "in", backoff, "err", err)
			o.mu.Lock()
			q.busy, q.failing = false, true
			o.changedLocked()
			o.mu.Unlock()
			wait := backoff/2 + rand.N(backoff)
			backoff = min(2*backoff, o.opts.MaxBackoff)
			t := time.NewTimer(wait)
			select {
			case <-o.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = o.opts.MinBackoff
		if err := o.st.DeleteKV(o.itemKey(&it)); err != nil {
			o.log.Error("outbox: delete delivered item (it will be delivered again after a restart)", "queue", q.name, "seq", it.Seq, "err", err)
		}
		o.mu.Lock()
		if i := slices.IndexFunc(q.items, func(x Item) bool { return x.Seq == it.Seq }); i >= 0 {
			q.items = slices.Delete(q.items, i, i+1)
		}
		if perm != nil {
			q.dropped++
		}
		q.busy, q.failing = false, false
		o.changedLocked()
		o.mu.Unlock()
	}
}

// Pending is the number of undelivered items per queue.
func (o *Outbox) Pending() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]int, len(o.mu.queues))
	for name, q := range o.mu.queues {
		out[name] = len(q.items)
	}
	return out
}

// Dropped is the number of items dropped per queue: by a full queue
// (Options.MaxPending) or refused for good by the receiver (Permanent).
func (o *Outbox) Dropped() map[string]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]int64, len(o.mu.queues))
	for name, q := range o.mu.queues {
		out[name] = q.dropped
	}
	return out
}

// Drain waits until every queue is empty, or until ctx is done, or until
// every queue that is not empty has failed its latest attempt (its
// receiver is down: waiting for the retry would only delay a shutdown).
// It returns nil when every queue is empty. Delivery goes on after Drain.
func (o *Outbox) Drain(ctx context.Context) error {
	for {
		o.mu.Lock()
		empty, stuck := true, true
		for _, q := range o.mu.queues {
			if len(q.items) > 0 {
				empty = false
				stuck = stuck && q.failing
			}
		}
		changed := o.mu.changed
		closed := o.mu.closed
		o.mu.Unlock()
		switch {
		case empty:
			return nil
		case stuck:
			return errors.New("outbox: receivers failing; undelivered items stay stored")
		case closed:
			return ErrClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Close stops delivering: the attempt in flight is cancelled, and Close
// returns when every queue's goroutine has stopped, without waiting for
// a retry. Undelivered items stay stored for the next Open.
func (o *Outbox) Close() {
	o.mu.Lock()
	if o.mu.closed {
		o.mu.Unlock()
		return
	}
	o.mu.closed = true
	o.changedLocked()
	o.mu.Unlock()
	o.cancel()
	o.wg.Wait()
}
