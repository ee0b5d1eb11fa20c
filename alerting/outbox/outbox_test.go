package outbox

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// receiver records what Deliver hands it; while down it fails.
type receiver struct {
	mu       sync.Mutex
	down     map[string]bool
	got      map[string][]Item
	attempts int
}

func newReceiver() *receiver { return &receiver{down: map[string]bool{}, got: map[string][]Item{}} }

func (r *receiver) deliver(_ context.Context, it Item) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.down[it.Queue] {
		return errors.New("503 Service Unavailable")
	}
	r.got[it.Queue] = append(r.got[it.Queue], it)
	return nil
}

func (r *receiver) set(queue string, down bool) {
	r.mu.Lock()
	r.down[queue] = down
	r.mu.Unlock()
}

func (r *receiver) events(queue string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, it := range r.got[queue] {
		out = append(out, it.Event)
	}
	return out
}

func open(t *testing.T, st Store, r *receiver, queues ...string) *Outbox {
	t.Helper()
	o, err := Open(st, Options{Prefix: "test/outbox/", Queues: queues, Deliver: r.deliver})
	require.NoError(t, err)
	return o
}

func enqueue(t *testing.T, o *Outbox, queue string, events ...string) {
	t.Helper()
	for _, e := range events {
		_, err := o.Enqueue(queue, e, "ref/"+e, []byte(e))
		require.NoError(t, err)
	}
}

// TestRetainedUntilDelivered: a receiver that is down keeps its items
// (retried with backoff, others unaffected); after a restart they are
// still there; when it comes back it gets them once each, in order.
func TestRetainedUntilDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, r := NewMemStore(), newReceiver()
		r.set("a", true)
		o := open(t, st, r, "a", "b")
		enqueue(t, o, "a", "e1", "e2", "e3")
		enqueue(t, o, "b", "x1")
		time.Sleep(10 * time.Minute) // fake time: the retries run
		synctest.Wait()
		require.Equal(t, map[string]int{"a": 3, "b": 0}, o.Pending())
		require.Equal(t, []string{"x1"}, r.events("b"), "one receiver down does not hold the others")
		r.mu.Lock()
		attempts := r.attempts
		r.mu.Unlock()
		// 10 minutes of backoff from 500ms doubling to 1m (±50%): about a dozen tries, not thousands.
		require.Greater(t, attempts, 6)
		require.Less(t, attempts, 30)
		o.Close()

		o = open(t, st, r, "a", "b")
		require.Equal(t, map[string]int{"a": 3, "b": 0}, o.Pending(), "undelivered items survive the restart")
		enqueue(t, o, "a", "e4")
		r.set("a", false)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		require.Equal(t, []string{"e1", "e2", "e3", "e4"}, r.events("a"))
		require.Equal(t, map[string]int{"a": 0, "b": 0}, o.Pending())
		o.Close()
		left, err := st.ListKV("test/outbox/")
		require.NoError(t, err)
		require.Len(t, left, 1, "only the sequence lease is left: %v", left)
		require.Contains(t, left, "test/outbox/seq")
	})
}

// TestIDsUniqueForever: the same ref enqueued again after a restart with
// an empty outbox gets a new ID (the bug: the sequence restarted at 1).
func TestIDsUniqueForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, r := NewMemStore(), newReceiver()
		seen := map[string]bool{}
		var last uint64
		for run := range 3 {
			o := open(t, st, r, "a", "b")
			for i := range LeaseSize + 10 { // past one lease
				q := []string{"a", "b"}[i%2]
				it, err := o.Enqueue(q, "updated", "acme/INC-000001/updated", nil)
				require.NoError(t, err)
				require.False(t, seen[it.ID], "run %d: id %s handed out twice", run, it.ID)
				seen[it.ID] = true
				require.Greater(t, it.Seq, last)
				last = it.Seq
			}
			synctest.Wait()
			require.Equal(t, map[string]int{"a": 0, "b": 0}, o.Pending())
			o.Close()
		}
	})
}

// TestLegacyItems: items stored before leases existed (no "seq" key, the
// counter restarted at 1 on every start) are delivered, and new numbers
// start above any such counter.
func TestLegacyItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, r := NewMemStore(), newReceiver()
		require.NoError(t, st.PutKV("test/outbox/a/00000000000000000007",
			[]byte(`{"receiver":"a","event":"opened","id":"acme/INC-000001/opened/7","body":"e30="}`)))
		o := open(t, st, r, "a")
		it, err := o.Enqueue("a", "resolved", "acme/INC-000001/resolved", nil)
		require.NoError(t, err)
		require.Greater(t, it.Seq, uint64(time.Now().UnixMicro())-1, "above any restarted counter")
		synctest.Wait()
		o.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		require.Len(t, r.got["a"], 2)
		require.Equal(t, Item{Queue: "a", Seq: 7, Event: "opened", ID: "acme/INC-000001/opened/7", Body: []byte("{}")}, r.got["a"][0])
		require.Equal(t, "resolved", r.got["a"][1].Event)
	})
}

// TestPermanentAndFull: a permanent refusal drops the item and the queue
// goes on; a full queue drops its oldest waiting item.
func TestPermanentAndFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := NewMemStore()
		var mu sync.Mutex
		var got []string
		block := make(chan struct{})
		deliver := func(ctx context.Context, it Item) error {
			if it.Event == "bad" {
				return Permanent(errors.New("400 Bad Request"))
			}
			if it.Event == "slow" {
				select {
				case <-block:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			mu.Lock()
			got = append(got, it.Event)
			mu.Unlock()
			return nil
		}
		o, err := Open(st, Options{Prefix: "p/", Queues: []string{"a"}, Deliver: deliver, MaxPending: 3})
		require.NoError(t, err)
		enqueue(t, o, "a", "bad", "ok")
		synctest.Wait()
		require.Equal(t, []string{"ok"}, got)
		enqueue(t, o, "a", "slow") // in flight, blocked
		synctest.Wait()
		enqueue(t, o, "a", "d1", "d2", "d3", "d4") // full at 3: d1, then d2 dropped; "slow" is in flight
		require.Equal(t, map[string]int{"a": 3}, o.Pending())
		close(block)
		synctest.Wait()
		require.Equal(t, []string{"ok", "slow", "d3", "d4"}, got)
		require.Equal(t, map[string]int64{"a": 3}, o.Dropped(), "bad, d1, d2")
		o.Close()
		left, _ := st.ListKV("p/a/")
		require.Empty(t, left)
	})
}

// TestCloseIsPrompt: Close cancels the delivery in flight and does not
// wait for a retry; the items stay stored.
func TestCloseIsPrompt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := NewMemStore()
		hang := func(ctx context.Context, it Item) error {
			if it.Queue == "down" {
				return errors.New("connection refused")
			}
			<-ctx.Done()
			return ctx.Err()
		}
		o, err := Open(st, Options{Prefix: "p/", Queues: []string{"hang", "down"}, Deliver: hang, MinBackoff: time.Hour})
		require.NoError(t, err)
		enqueue(t, o, "hang", "h1")
		enqueue(t, o, "down", "d1")
		synctest.Wait() // one hangs in Deliver, the other waits an hour to retry
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		require.ErrorIs(t, o.Drain(ctx), context.DeadlineExceeded, "one receiver is still trying")
		require.Equal(t, time.Minute, time.Since(start))
		start = time.Now()
		o.Close()
		require.Zero(t, time.Since(start), "no fake time passed: Close waited for nothing")
		_, err = o.Enqueue("hang", "late", "r", nil)
		require.ErrorIs(t, err, ErrClosed)
		left, _ := st.ListKV("p/")
		require.Len(t, left, 3, "both items and the lease stay stored")
	})
}

// TestDrain: Drain returns once the queues are empty, or at once when the
// only receivers with items are failing.
func TestDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newReceiver()
		o := open(t, NewMemStore(), r, "a")
		enqueue(t, o, "a", "1", "2")
		require.NoError(t, o.Drain(context.Background()))
		require.Equal(t, []string{"1", "2"}, r.events("a"))
		r.set("a", true)
		enqueue(t, o, "a", "3")
		start := time.Now()
		require.ErrorContains(t, o.Drain(context.Background()), "failing")
		require.Zero(t, time.Since(start))
		o.Close()
	})
}

// failStore fails every write.
type failStore struct{ *MemStore }

func (failStore) PutKV(string, []byte) error { return errors.New("disk full") }

// TestStoreFailure: an outbox that cannot store its lease does not open;
// one that cannot store an item still delivers it, and says so.
func TestStoreFailure(t *testing.T) {
	_, err := Open(failStore{NewMemStore()}, Options{Prefix: "p/", Queues: []string{"a"}, Deliver: newReceiver().deliver})
	require.ErrorContains(t, err, "disk full")

	synctest.Test(t, func(t *testing.T) {
		st := &flakyStore{MemStore: NewMemStore()}
		r := newReceiver()
		o := open(t, st, r, "a")
		st.fail = true
		_, err := o.Enqueue("a", "e1", "r", nil)
		require.ErrorContains(t, err, "queued in memory only")
		synctest.Wait()
		require.Equal(t, []string{"e1"}, r.events("a"))
		o.Close()
	})
}

type flakyStore struct {
	*MemStore
	fail bool
}

func (s *flakyStore) PutKV(k string, v []byte) error {
	if s.fail {
		return errors.New("disk full")
	}
	return s.MemStore.PutKV(k, v)
}

func TestOptions(t *testing.T) {
	d := newReceiver().deliver
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Prefix: "p", Deliver: d}, "must end with /"},
		{Options{Prefix: "p/"}, "no Deliver"},
	} {
		_, err := Open(NewMemStore(), c.o)
		require.ErrorContains(t, err, c.want)
	}
	st := NewMemStore()
	require.NoError(t, st.PutKV("p/seq", []byte("x")))
	_, err := Open(st, Options{Prefix: "p/", Deliver: d})
	require.ErrorContains(t, err, "lease")
	o, err := Open(NewMemStore(), Options{Prefix: "p/", Queues: []string{"a"}, Deliver: d})
	require.NoError(t, err)
	defer o.Close()
	_, err = o.Enqueue("b", "e", "r", nil)
	require.ErrorIs(t, err, ErrUnknownQueue)
}
