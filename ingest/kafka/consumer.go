package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/emsdb/tsdb/ingest/remotewrite"
	"github.com/emsdb/tsdb/storage"
)

// Consumer is a storage node's member of its zone's consumer group: it
// writes the records of the partitions assigned to it into local storage
// and commits their offsets once they are durable there.
type Consumer struct {
	cl   *kgo.Client
	cfg  Config
	w    storage.Writer
	opts Options
	decs sync.Pool // *remotewrite.Decoder

	mu struct {
		sync.Mutex
		written []*kgo.Record // durable locally, offsets not committed yet
		// next is, per partition, the offset after the last record
		// written to local storage (a read-your-writes read waits for it).
		next map[int32]int64
		// owned are the partitions assigned to this node now, and when
		// each was assigned (readiness waits until each is caught up).
		owned map[int32]time.Time
		// wrote are the partitions whose records this node has written
		// since it started.
		wrote map[int32]bool
		// changed is closed and replaced whenever next moves.
		changed chan struct{}
		// announced are the partitions the registry has announced this
		// node holds (announceHeld).
		announced map[int32]bool
	}
	// announceHeld, when set (by the Registry), announces synchronously
	// that this node holds samples of the partitions it wrote: a commit
	// waits for it the first time it covers a partition, so that no
	// committed record's samples are on a node the others do not know
	// holds them (a read would silently miss them once the partition
	// moved).
	announceHeld atomic.Pointer[func(ctx context.Context) error]
}

// maxPollRecords bounds the records handled between two commits (and
// between two chances for the group to rebalance).
const maxPollRecords = 2000

// maxMerge bounds the consecutive records of one tenant in a partition
// written to storage as one batch.
const maxMerge = 64

// NewConsumer joins cfg's zone group (cfg must be validated) and will write
// what it consumes into w, which must return only once a write is durable.
// Partitions never committed are read from their start.
func NewConsumer(cfg Config, w storage.Writer, opts *Options) (*Consumer, error) {
	c := &Consumer{cfg: cfg, w: w, opts: opts.orDefault()}
	c.mu.next, c.mu.owned, c.mu.wrote, c.mu.changed = map[int32]int64{}, map[int32]time.Time{}, map[int32]bool{}, make(chan struct{})
	c.mu.announced = map[int32]bool{}
	c.decs.New = func() any { return remotewrite.NewDecoder() }
	cl, err := cfg.newClient(
		kgo.ConsumerGroup(cfg.Group()),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.InstanceID(cfg.Node), // static membership: a restarted node gets its partitions back at once
		kgo.SessionTimeout(time.Duration(cfg.SessionTimeout)),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(), // no rebalance while a poll's records are being written
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(MaxRecordBytes),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		kgo.WithLogger(kgoLogger(c.opts.Logger)),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	c.cl = cl
	return c, nil
}

// Close leaves the group, committing what was written (the node's
// partitions move to the others at once, or, as a static member, after
// the session timeout unless it comes back first).
func (c *Consumer) Close() { c.cl.Close() }

// Run consumes until ctx is done. Errors of fetches are logged and
// retried; it returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	for {
		fs := c.cl.PollRecords(ctx, maxPollRecords)
		if ctx.Err() != nil || fs.IsClientClosed() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c.commit(cctx)
			cancel()
			c.cl.AllowRebalance()
			return nil
		}
		fs.EachError(func(topic string, p int32, err error) {
			c.opts.Logger.Warn("kafka fetch", "topic", topic, "partition", p, "err", err)
		})
		var wg sync.WaitGroup
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if len(ftp.Records) == 0 {
				return
			}
			wg.Go(func() { c.consumePartition(ctx, ftp.FetchPartition) })
		})
		wg.Wait()
		c.commit(ctx)
		c.cl.AllowRebalance()
	}
}

// consumePartition writes a fetch's records of one partition, in order,
// merging runs of records of one tenant into one write. It stops at the
// first record it cannot write before ctx is done; the records before it
// are kept for the next commit.
func (c *Consumer) consumePartition(ctx context.Context, fp kgo.FetchPartition) {
	recs := fp.Records
	for len(recs) > 0 {
		n := 1
		tenant := tenantOf(recs[0])
		for n < len(recs) && n < maxMerge && tenantOf(recs[n]) == tenant {
			n++
		}
		if err := c.writeRecords(ctx, tenant, recs[:n]); err != nil {
			return // ctx done
		}
		c.mu.Lock()
		c.mu.written = append(c.mu.written, recs[:n]...)
		c.mu.next[fp.Partition] = recs[n-1].Offset + 1
		c.mu.wrote[fp.Partition] = true
		close(c.mu.changed)
		c.mu.changed = make(chan struct{})
		c.mu.Unlock()
		c.opts.Metrics.consumed.Add(float64(n))
		last := recs[n-1]
		c.opts.Metrics.lag.WithLabelValues(strconv.Itoa(int(fp.Partition))).Set(float64(max(fp.HighWatermark-last.Offset-1, 0)))
		recs = recs[n:]
	}
}

func tenantOf(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == TenantHeader {
			return string(h.Value)
		}
	}
	return ""
}

// writeRecords decodes recs, all of tenant, and writes them as one batch.
// A record that does not decode is skipped; when storage refuses the
// batch for good (invalid, over a series limit), the records are written
// one by one and those refused are skipped. Either is logged and counted.
// It returns an error only when ctx is done.
func (c *Consumer) writeRecords(ctx context.Context, tenant string, recs []*kgo.Record) error {
	var b storage.Batch
	var decs []*remotewrite.Decoder
	defer func() {
		for _, d := range decs {
			d.Trim(1 << 16)
			c.decs.Put(d)
		}
	}()
	ok := recs[:0:0]
	for _, r := range recs {
		d := c.decs.Get().(*remotewrite.Decoder)
		decs = append(decs, d)
		var rb storage.Batch
		_, err := d.DecodeV2(r.Value, &rb)
		if err == nil && tenant == "" {
			err = errors.New("no tenant header")
		}
		if err != nil {
			c.skip("malformed", r, err)
			continue
		}
		b.Series = append(b.Series, rb.Series...)
		b.Metadata = append(b.Metadata, rb.Metadata...)
		// The series come by Key (2.0's labels in 1.0's wire form): any
		// of the decoders decodes any of them.
		b.Decode = rb.Decode
		ok = append(ok, r)
	}
	if len(ok) == 0 {
		return nil
	}
	err := c.writeDurably(ctx, tenant, &b)
	if err == nil || ctx.Err() != nil {
		return ctx.Err()
	}
	if len(ok) == 1 {
		c.skip("rejected", ok[0], err)
		return nil
	}
	for _, r := range ok { // find the culprits; the others are written (again: harmless)
		d := decs[0]
		var rb storage.Batch
		if _, err := d.DecodeV2(r.Value, &rb); err != nil {
			c.skip("malformed", r, err)
			continue
		}
		if err := c.writeDurably(ctx, tenant, &rb); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.skip("rejected", r, err)
		}
	}
	return nil
}

// writeDurably writes b, retrying while storage cannot take writes for now
// (a full disk): the partition waits rather than skip samples. It returns
// storage's error when the batch itself is refused, or ctx's.
func (c *Consumer) writeDurably(ctx context.Context, tenant string, b *storage.Batch) error {
	backoff := 100 * time.Millisecond
	var lastLog time.Time
	for {
		err := c.w.Write(ctx, tenant, b)
		if err == nil || refused(err) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.opts.Metrics.writeRetries.Inc()
		if time.Since(lastLog) > 30*time.Second {
			c.opts.Logger.Error("consumed records not written to local storage; retrying", "tenant", tenant, "err", err)
			lastLog = time.Now()
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// refused reports an error about the batch itself, which a retry would
// meet again.
func refused(err error) bool {
	return errors.Is(err, storage.ErrInvalidSeries) || errors.Is(err, storage.ErrInvalidSample) ||
		errors.Is(err, storage.ErrTooManySeries)
}

func (c *Consumer) skip(reason string, r *kgo.Record, err error) {
	c.opts.Metrics.skipped.WithLabelValues(reason).Inc()
	c.opts.Logger.Error("skipped a Kafka record", "reason", reason, "partition", r.Partition, "offset", r.Offset,
		"tenant", tenantOf(r), "err", err)
}

// commit commits the offsets of the records written so far. Records
// whose commit failed are kept for the next commit; those not committed
// when the node dies are consumed again after a restart, which rewrites
// the same samples.
func (c *Consumer) commit(ctx context.Context) {
	c.mu.Lock()
	recs := c.mu.written
	c.mu.written = nil
	c.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	if err := c.announce(ctx, recs); err != nil {
		c.mu.Lock()
		c.mu.written = append(recs, c.mu.written...)
		c.mu.Unlock()
		if ctx.Err() == nil {
			c.opts.Logger.Warn("kafka offsets not committed yet: the partitions this node holds are not announced", "err", err)
		}
		return
	}
	if err := c.cl.CommitRecords(ctx, recs...); err != nil {
		c.mu.Lock()
		c.mu.written = append(recs, c.mu.written...)
		c.mu.Unlock()
		if ctx.Err() == nil {
			c.opts.Logger.Warn("kafka offsets not committed yet", "records", len(recs), "err", err)
		}
	}
}

// announce has the registry announce the partitions of recs this node
// has not announced yet, before their offsets are committed.
func (c *Consumer) announce(ctx context.Context, recs []*kgo.Record) error {
	f := c.announceHeld.Load()
	if f == nil {
		return nil
	}
	c.mu.Lock()
	fresh := false
	for _, r := range recs {
		if !c.mu.announced[r.Partition] {
			fresh = true
			break
		}
	}
	c.mu.Unlock()
	if !fresh {
		return nil
	}
	if err := (*f)(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	for _, r := range recs {
		c.mu.announced[r.Partition] = true
	}
	c.mu.Unlock()
	return nil
}

func (c *Consumer) assigned(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	n := len(ps[c.cfg.Topic])
	now := time.Now()
	c.mu.Lock()
	for _, p := range ps[c.cfg.Topic] {
		c.mu.owned[p] = now
	}
	c.mu.Unlock()
	c.opts.Logger.Info("kafka partitions assigned", "group", c.cfg.Group(), "partitions", ps[c.cfg.Topic])
	c.opts.Metrics.owned.Add(float64(n))
}

// revoked commits what was written before the partitions go to another
// node, which resumes from there.
func (c *Consumer) revoked(ctx context.Context, _ *kgo.Client, ps map[string][]int32) {
	c.commit(ctx)
	c.forget(ps)
}

func (c *Consumer) lost(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	c.mu.Lock()
	c.mu.written = nil // the commit would be refused; the next owner rewrites them
	c.mu.Unlock()
	c.forget(ps)
}

func (c *Consumer) forget(ps map[string][]int32) {
	c.mu.Lock()
	for _, p := range ps[c.cfg.Topic] {
		delete(c.mu.owned, p)
		delete(c.mu.next, p) // the next owner moves it on
	}
	c.mu.Unlock()
	for _, p := range ps[c.cfg.Topic] {
		c.opts.Metrics.lag.DeleteLabelValues(strconv.Itoa(int(p)))
	}
	c.opts.Metrics.owned.Sub(float64(len(ps[c.cfg.Topic])))
	if len(ps[c.cfg.Topic]) > 0 {
		c.opts.Logger.Info("kafka partitions revoked", "group", c.cfg.Group(), "partitions", ps[c.cfg.Topic])
	}
}

// Owned returns the partitions assigned to this node now, ascending.
func (c *Consumer) Owned() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int32, 0, len(c.mu.owned))
	for p := range c.mu.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Assigned returns the partitions assigned to this node now, each with
// the time of its assignment.
func (c *Consumer) Assigned() map[int32]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.mu.owned)
}

// Position returns the offset up to which this node has written
// partition p to local storage (exclusive), or its group committed it;
// -1 when neither is known.
func (c *Consumer) Position(p int32) int64 {
	c.mu.Lock()
	pos, ok := c.mu.next[p]
	c.mu.Unlock()
	if !ok {
		pos = -1
	}
	if eo, ok := c.cl.CommittedOffsets()[c.cfg.Topic][p]; ok {
		pos = max(pos, eo.Offset)
	}
	return pos
}

// Wrote returns the partitions whose records this node has written to
// its storage since it started, ascending.
func (c *Consumer) Wrote() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int32, 0, len(c.mu.wrote))
	for p := range c.mu.wrote {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// WaitConsumed waits until this node has written partition p up to
// offset off (exclusive: every record before off is in local storage).
// It returns ErrNotOwner when p is not, or no longer, this node's, and
// ctx's error when it is done first.
func (c *Consumer) WaitConsumed(ctx context.Context, p int32, off int64) error {
	committed := func() int64 {
		if eo, ok := c.cl.CommittedOffsets()[c.cfg.Topic][p]; ok {
			return eo.Offset
		}
		return -1
	}
	for {
		c.mu.Lock()
		_, owned := c.mu.owned[p]
		next, changed := c.mu.next[p], c.mu.changed
		c.mu.Unlock()
		if !owned {
			return fmt.Errorf("%w: partition %d", ErrNotOwner, p)
		}
		if next >= off || committed() >= off {
			return nil
		}
		t := time.NewTimer(50 * time.Millisecond) // committed offsets move without a signal
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-changed:
			t.Stop()
		case <-t.C:
		}
	}
}

// ErrNotOwner reports a partition this node does not consume.
var ErrNotOwner = errors.New("kafka: partition not owned by this node")
