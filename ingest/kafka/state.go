package kafka

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// StatePrefixes are the key-value keys State replicates: the ITSM layer's
// state (incidents, problems, the outbox and its sequence lease, held and
// suppressed alerts, maintenance windows, groups, CIs, rotations,
// escalation policies, ticket references), the rule groups stored
// through the ruler config API and the KPIs' trackers and open incidents.
// Everything else (the audit log, the Alertmanager notifier's outbox,
// usage metering) stays the node's own.
var StatePrefixes = []string{"itsm/", "rules/", "kpis/"}

// Replicated reports whether State replicates key.
func Replicated(key string) bool {
	for _, p := range StatePrefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// KV is a node's local key-value store (storage.DB): PutKV is durable
// when it returns, DeleteKV of a missing key is not an error, ListKV
// returns copies.
type KV interface {
	PutKV(key string, value []byte) error
	DeleteKV(key string) error
	ListKV(prefix string) (map[string][]byte, error)
}

// The headers of a state record.
const (
	stateOpHeader     = "op"     // "del" on a tombstone
	stateWriterHeader = "writer" // the process that produced it (zone/node/start)
)

// State replicates the leader's state through the compacted state topic
// (Config.StateTopic, one partition): it is a KV that, for the keys of
// StatePrefixes, produces every change (record key = the KV key, value =
// the document, a tombstone for a delete; acks=all) before writing it
// locally, and it consumes the topic into the local KV of every node, so
// that a node that becomes the leader loads the last leader's state once
// it has caught up (WaitCaughtUp). Other keys go to the local KV alone.
//
// A change that Kafka does not acknowledge within the produce timeout
// fails (and is not written locally). At start the whole topic is read
// and the local keys under StatePrefixes made equal to it (keys it does
// not hold are deleted, unless the topic is empty: a single node that
// becomes a cluster keeps its state until it writes again).
//
// Every method is safe for concurrent use.
type State struct {
	cl      *kgo.Client
	adm     *kadm.Client
	cfg     Config
	kv      KV
	opts    Options
	writer  string // this process, in the writer header
	timeout time.Duration
	// onChange, when set, learns of each key a record from another
	// process changed in the local KV.
	onChange func(key string)

	mu struct {
		sync.Mutex
		next   int64 // the offset after the last record applied
		caught bool  // the start's catch-up is done
		// idle counts polls that found nothing after the catch-up.
		idle    int
		changed chan struct{}
	}
}

// NewState creates the state topic when missing (compacted, one
// partition) and connects; Run consumes it into kv. onChange, when not
// nil, is called (from Run's goroutine) with each key another process's
// record changed locally.
func NewState(ctx context.Context, cfg Config, kv KV, onChange func(key string), opts *Options) (*State, error) {
	o := opts.orDefault()
	s := &State{cfg: cfg, kv: kv, opts: o, onChange: onChange, timeout: time.Duration(cfg.ProduceTimeout),
		writer: fmt.Sprintf("%s/%s/%d", cfg.Zone, cfg.Node, time.Now().UnixNano())}
	s.mu.changed = make(chan struct{})
	cl, err := cfg.newClient(
		kgo.DefaultProduceTopic(cfg.StateTopic()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(time.Duration(cfg.ProduceTimeout)),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.StateTopic(): {0: kgo.NewOffset().AtStart()}}),
		kgo.WithLogger(kgoLogger(o.Logger)),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka state: %w", err)
	}
	s.cl, s.adm = cl, kadm.NewClient(cl)
	if err := ensureSmallTopic(ctx, s.adm, cfg, cfg.StateTopic(), true); err != nil {
		cl.Close()
		return nil, err
	}
	return s, nil
}

// Close disconnects.
func (s *State) Close() { s.cl.Close() }

var _ KV = (*State)(nil)

// PutKV implements KV: a replicated key is produced, then written
// locally.
func (s *State) PutKV(key string, value []byte) error {
	if Replicated(key) {
		if value == nil {
			value = []byte{} // nil is a tombstone
		}
		if err := s.produce(&kgo.Record{Key: []byte(key), Value: value}); err != nil {
			return err
		}
	}
	return s.kv.PutKV(key, value)
}

// DeleteKV implements KV: a replicated key's tombstone is produced, then
// the key deleted locally.
func (s *State) DeleteKV(key string) error {
	if Replicated(key) {
		if err := s.produce(&kgo.Record{Key: []byte(key), Headers: []kgo.RecordHeader{{Key: stateOpHeader, Value: []byte("del")}}}); err != nil {
			return err
		}
	}
	return s.kv.DeleteKV(key)
}

// ListKV implements KV: it lists the local KV.
func (s *State) ListKV(prefix string) (map[string][]byte, error) { return s.kv.ListKV(prefix) }

func (s *State) produce(r *kgo.Record) error {
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: stateWriterHeader, Value: []byte(s.writer)})
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := s.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		s.opts.Metrics.stateErrors.Inc()
		return &unavailableError{fmt.Errorf("state change %s to topic %s: %w", r.Key, s.cfg.StateTopic(), err)}
	}
	s.opts.Metrics.stateProduced.Inc()
	return nil
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Run reads the whole topic, makes the local replicated keys equal to it,
// then applies every new record as it comes, until ctx is done.
func (s *State) Run(ctx context.Context) error {
	var end int64
	for {
		var err error
		if end, err = s.endOffset(ctx); err == nil {
			break
		}
		s.opts.Logger.Warn("cluster: state topic end offset not listed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	// The catch-up: the last value of every key up to end, then the
	// local KV made equal to it at once.
	last := map[string][]byte{} // nil value: deleted
	var next int64
	for idle := 0; next < end && idle < 2; {
		recs, ok := s.poll(ctx)
		if !ok {
			return nil
		}
		if len(recs) == 0 {
			idle++ // NB: the topic's last records were compacted away
			continue
		}
		for _, r := range recs {
			if header(r, stateOpHeader) == "del" {
				last[string(r.Key)] = nil
			} else {
				last[string(r.Key)] = bytes.Clone(r.Value)
			}
			next = r.Offset + 1
		}
	}
	if err := s.sync(last, end > 0); err != nil {
		return fmt.Errorf("kafka state: %w", err)
	}
	s.advance(next, false)
	s.opts.Logger.Info("cluster: replicated state loaded", "topic", s.cfg.StateTopic(), "keys", len(last), "offset", next)
	for {
		recs, ok := s.poll(ctx)
		if !ok {
			return nil
		}
		for _, r := range recs {
			s.apply(r)
		}
		if len(recs) > 0 {
			s.advance(recs[len(recs)-1].Offset+1, false)
		} else {
			s.advance(0, true)
		}
	}
}

// pollWait bounds one poll of the state topic: a poll that finds nothing
// for that long says the node holds the whole topic.
const pollWait = 500 * time.Millisecond

// poll returns the next records, none after pollWait; false once ctx is
// done or the client closed.
func (s *State) poll(ctx context.Context) ([]*kgo.Record, bool) {
	pctx, cancel := context.WithTimeout(ctx, pollWait)
	defer cancel()
	fs := s.cl.PollFetches(pctx)
	if ctx.Err() != nil || fs.IsClientClosed() {
		return nil, false
	}
	fs.EachError(func(t string, p int32, err error) {
		if pctx.Err() == nil {
			s.opts.Logger.Warn("cluster: state topic fetch", "topic", t, "partition", p, "err", err)
		}
	})
	return fs.Records(), true
}

// sync makes the local replicated keys equal to last; with prune, keys
// the topic does not hold are deleted.
func (s *State) sync(last map[string][]byte, prune bool) error {
	local := map[string][]byte{}
	for _, p := range StatePrefixes {
		m, err := s.kv.ListKV(p)
		if err != nil {
			return err
		}
		for k, v := range m {
			local[k] = v
		}
	}
	for k, v := range last {
		if !Replicated(k) {
			continue
		}
		cur, ok := local[k]
		switch {
		case v == nil && ok:
			if err := s.kv.DeleteKV(k); err != nil {
				return err
			}
		case v != nil && (!ok || !bytes.Equal(cur, v)):
			if err := s.kv.PutKV(k, v); err != nil {
				return err
			}
		}
	}
	if prune {
		for k := range local {
			if _, ok := last[k]; !ok {
				if err := s.kv.DeleteKV(k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// apply writes one record to the local KV. A record this process
// produced was written locally already, in order: applying it again
// could undo a later change for a moment.
func (s *State) apply(r *kgo.Record) {
	key := string(r.Key)
	if !Replicated(key) || header(r, stateWriterHeader) == s.writer {
		return
	}
	cur, err := s.kv.ListKV(key)
	if err != nil {
		s.opts.Metrics.stateErrors.Inc()
		s.opts.Logger.Error("cluster: state record not applied", "key", key, "offset", r.Offset, "err", err)
		return
	}
	old, had := cur[key]
	if header(r, stateOpHeader) == "del" {
		if !had {
			return
		}
		err = s.kv.DeleteKV(key)
	} else {
		if had && bytes.Equal(old, r.Value) {
			return
		}
		err = s.kv.PutKV(key, r.Value)
	}
	if err != nil {
		s.opts.Metrics.stateErrors.Inc()
		s.opts.Logger.Error("cluster: state record not applied", "key", key, "offset", r.Offset, "err", err)
		return
	}
	s.opts.Metrics.stateApplied.Inc()
	if s.onChange != nil {
		s.onChange(key)
	}
}

// advance records that the records before next are applied, or (idle)
// that a poll found nothing.
func (s *State) advance(next int64, idle bool) {
	s.mu.Lock()
	s.mu.next = max(s.mu.next, next)
	s.mu.caught = true
	if idle {
		s.mu.idle++
	}
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
	s.mu.Unlock()
}

func (s *State) endOffset(ctx context.Context) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := s.adm.ListEndOffsets(lctx, s.cfg.StateTopic())
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("kafka: list end offset of %s: %w", s.cfg.StateTopic(), err)
	}
	o, ok := l.Lookup(s.cfg.StateTopic(), 0)
	if !ok {
		return 0, fmt.Errorf("kafka: no partition 0 in %s", s.cfg.StateTopic())
	}
	return o.Offset, nil
}

// WaitCaughtUp waits until every record of the state topic written before
// the call is in the local KV: a new leader calls it before it loads the
// state. It returns ctx's error when ctx is done first, or Kafka's.
func (s *State) WaitCaughtUp(ctx context.Context) error {
	end, err := s.endOffset(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	idle0 := s.mu.idle
	s.mu.Unlock()
	for {
		s.mu.Lock()
		next, caught, idle, changed := s.mu.next, s.mu.caught, s.mu.idle, s.mu.changed
		s.mu.Unlock()
		// Two empty polls since the call: the records up to end were
		// compacted away (a tombstone past delete.retention.ms).
		if caught && (next >= end || idle >= idle0+2) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
