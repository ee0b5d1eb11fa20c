package kafka

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// NodeInfo is a node's announcement in the registry topic
// (Config.RegistryTopic): who it is, where its peers reach it, and which
// partitions it holds samples of. The record's key is "<zone>/<node>",
// its value this struct in JSON; the topic is compacted, so the last
// announcement of every node stays.
type NodeInfo struct {
	Zone string `json:"zone"`
	Node string `json:"node"`
	URL  string `json:"url"`
	// Started and Seen are the node's start and the time of this
	// announcement, in Unix milliseconds (the node's clock).
	Started int64 `json:"started"`
	Seen    int64 `json:"seen"`
	// Held are the partitions whose samples the node has written to its
	// storage at some time, ascending: reads of those partitions in its
	// zone need it, as a partition's history stays on the nodes that
	// consumed it.
	Held []int32 `json:"held"`
	// LeaderSince is when the node started leading (Unix milliseconds),
	// 0 while it does not lead.
	LeaderSince int64 `json:"leader_since,omitempty"`
}

func (n *NodeInfo) key() string { return n.Zone + "/" + n.Node }

// Registry announces this node in the registry topic every heartbeat and
// reads every node's announcements; it also describes the zones'
// consumer groups (owners, committed offsets, lag) every refresh. It is
// the membership the read path plans with (docs/cluster.md).
type Registry struct {
	cl    *kgo.Client
	adm   *kadm.Client
	cfg   Config
	self  NodeInfo
	owned func() []int32 // this node's partitions now
	// leading, when set, says whether and since when this node leads.
	leading func() (bool, time.Time)
	wrote   func() []int32 // the partitions it has written records of since it started
	// cons is this node's consumer, whose partitions readiness waits
	// for; nil in the tests' registry without Kafka.
	cons    *Consumer
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time

	mu struct {
		sync.Mutex
		nodes  map[string]NodeInfo // by key, the last announcement
		held   map[int32]bool      // this node's, from its announcements and its consumer
		zones  map[string]*ZoneState
		failed map[string]time.Time // node key -> until when a failed peer is avoided
		// kafka is the outcome of the last look at Kafka (Refresh).
		kafka kafkaSeen
		// target is, per partition this node owns, the end offset it
		// must write up to before it counts as caught up (Ready).
		target map[int32]catchUp
	}
}

// ZoneState is what a zone's consumer group looked like at the last
// refresh.
type ZoneState struct {
	Zone, Group, State string
	// Owner is the node (its static member name) consuming each
	// partition; absent while unassigned.
	Owner map[int32]string
	// Committed and End are the group's committed offset and the
	// partition's end offset (-1 when unknown).
	Committed, End map[int32]int64
	Refreshed      time.Time
	Err            string
}

// heartbeat is how often a node announces itself; staleAfter is how long
// after its last announcement a node counts as gone.
func (r *Registry) heartbeat() time.Duration {
	return min(time.Duration(r.cfg.SessionTimeout)/3, 5*time.Second)
}

func (r *Registry) staleAfter() time.Duration {
	return time.Duration(r.cfg.SessionTimeout) + r.heartbeat()
}

// failedFor is how long a peer that failed a request is avoided.
const failedFor = 5 * time.Second

// NewRegistry creates the registry topic when it is missing and
// connects; url is this node's advertised address, c its consumer (the
// partitions it owns and has written). Run announces and reads.
func NewRegistry(ctx context.Context, cfg Config, url string, c *Consumer, opts *Options) (*Registry, error) {
	o := opts.orDefault()
	cl, err := cfg.newClient(
		kgo.DefaultProduceTopic(cfg.RegistryTopic()),
		kgo.ConsumeTopics(cfg.RegistryTopic()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(time.Duration(cfg.ProduceTimeout)),
		kgo.WithLogger(kgoLogger(o.Logger)),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka registry: %w", err)
	}
	r := &Registry{cl: cl, adm: kadm.NewClient(cl), cfg: cfg, owned: c.Owned, wrote: c.Wrote, cons: c, metrics: o.Metrics, log: o.Logger, now: time.Now}
	r.self = NodeInfo{Zone: cfg.Zone, Node: cfg.Node, URL: url, Started: r.now().UnixMilli()}
	r.mu.nodes, r.mu.held, r.mu.zones, r.mu.failed = map[string]NodeInfo{}, map[int32]bool{}, map[string]*ZoneState{}, map[string]time.Time{}
	r.mu.target = map[int32]catchUp{}
	if err := ensureRegistryTopic(ctx, r.adm, cfg); err != nil {
		cl.Close()
		return nil, err
	}
	// NB: before this node announces anything: its first announcement
	// must carry the partitions it held before a restart, which only its
	// last announcement says. Announcing first (held: []) made the other
	// nodes plan reads without its history for a heartbeat: strong reads
	// answered short, without a warning.
	if err := r.catchUp(ctx); err != nil {
		r.log.Warn("cluster: the registry not read to its end before the first announcement; this node's older partitions are announced once read", "err", err)
	}
	announce := r.announceSync
	c.announceHeld.Store(&announce)
	return r, nil
}

// SetLeader makes the node's announcements say when it leads (before
// Run).
func (r *Registry) SetLeader(l *Leader) {
	r.mu.Lock()
	r.leading = l.Leading
	r.mu.Unlock()
}

// Nodes returns the last announcement of every node, this one's as it
// would be sent now.
func (r *Registry) Nodes() []NodeInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	self := r.selfLocked()
	out := []NodeInfo{self}
	for k, n := range r.mu.nodes {
		if k != self.key() {
			out = append(out, n)
		}
	}
	return out
}

// Close disconnects.
func (r *Registry) Close() { r.cl.Close() }

// Self is this node's announcement, as it would be sent now.
func (r *Registry) Self() NodeInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.selfLocked()
}

func (r *Registry) selfLocked() NodeInfo {
	for _, p := range r.wrote() {
		r.mu.held[p] = true
	}
	n := r.self
	n.Seen = r.now().UnixMilli()
	n.Held = make([]int32, 0, len(r.mu.held))
	for p := range r.mu.held {
		n.Held = append(n.Held, p)
	}
	slices.Sort(n.Held)
	if r.leading != nil {
		if ok, since := r.leading(); ok {
			n.LeaderSince = since.UnixMilli()
		}
	}
	return n
}

// Run announces this node every heartbeat, reads the announcements and
// refreshes the zones' groups every refresh, until ctx is done.
func (r *Registry) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { r.read(ctx) })
	wg.Go(func() {
		t := time.NewTicker(r.heartbeat())
		defer t.Stop()
		for {
			r.announce(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	wg.Go(func() {
		t := time.NewTicker(refreshEvery)
		defer t.Stop()
		for {
			r.Refresh(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	wg.Wait()
	return nil
}

// refreshEvery is how often the zones' groups are described.
const refreshEvery = 2 * time.Second

func (r *Registry) announce(ctx context.Context) {
	if err := r.announceSync(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("cluster: announcement not written to the registry topic", "topic", r.cfg.RegistryTopic(), "err", err)
	}
}

// announceSync announces this node now and returns once Kafka has it.
func (r *Registry) announceSync(ctx context.Context) error {
	self := r.Self()
	v, _ := json.Marshal(self)
	pctx, cancel := context.WithTimeout(ctx, time.Duration(r.cfg.ProduceTimeout))
	defer cancel()
	return r.cl.ProduceSync(pctx, &kgo.Record{Key: []byte(self.key()), Value: v}).FirstErr()
}

func (r *Registry) read(ctx context.Context) {
	for {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			r.log.Warn("cluster: registry fetch", "topic", t, "partition", p, "err", err)
		})
		fs.EachRecord(r.apply)
	}
}

// apply takes one record of the registry topic.
func (r *Registry) apply(rec *kgo.Record) {
	var n NodeInfo
	if len(rec.Value) == 0 { // a tombstone: the node was retired
		r.mu.Lock()
		delete(r.mu.nodes, string(rec.Key))
		r.mu.Unlock()
		return
	}
	if err := json.Unmarshal(rec.Value, &n); err != nil || n.key() != string(rec.Key) {
		r.log.Warn("cluster: registry record skipped", "key", string(rec.Key), "offset", rec.Offset, "err", err)
		return
	}
	r.mu.Lock()
	if old, ok := r.mu.nodes[n.key()]; !ok || old.Seen <= n.Seen {
		r.mu.nodes[n.key()] = n
	}
	if n.Zone == r.self.Zone && n.Node == r.self.Node { // what this node held before a restart
		for _, p := range n.Held {
			r.mu.held[p] = true
		}
	}
	r.mu.Unlock()
}

// registryCatchUpTimeout bounds reading the registry at start.
const registryCatchUpTimeout = 30 * time.Second

// catchUp reads the registry topic up to the end it has now (the
// consumer then goes on from there in Run).
func (r *Registry) catchUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, registryCatchUpTimeout)
	defer cancel()
	ends, err := r.adm.ListEndOffsets(ctx, r.cfg.RegistryTopic())
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", r.cfg.RegistryTopic(), err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	for len(want) > 0 {
		fs := r.cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", r.cfg.RegistryTopic(), err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			r.apply(rec)
			if end, ok := want[rec.Partition]; ok && rec.Offset+1 >= end {
				delete(want, rec.Partition)
			}
		})
	}
	return nil
}

// Refresh describes every known zone's consumer group: its owners,
// committed and end offsets. Errors are kept in the zone's state.
func (r *Registry) Refresh(ctx context.Context) {
	if r.adm == nil { // the tests' registry, without Kafka
		return
	}
	r.mu.Lock()
	zones := map[string]bool{r.cfg.Zone: true}
	for _, n := range r.mu.nodes {
		zones[n.Zone] = true
	}
	r.mu.Unlock()
	groups := make([]string, 0, len(zones))
	for z := range zones {
		groups = append(groups, "tsdb-"+z)
	}
	rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	began := r.now()
	lags, err := r.adm.Lag(rctx, groups...)
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.sawKafkaLocked(began, now, lags, err)
	for z := range zones {
		zs := &ZoneState{Zone: z, Group: "tsdb-" + z, Owner: map[int32]string{}, Committed: map[int32]int64{}, End: map[int32]int64{}, Refreshed: now}
		if err != nil {
			zs.Err = err.Error()
			if old := r.mu.zones[z]; old != nil { // keep the last known owners
				zs.Owner, zs.Committed, zs.End = old.Owner, old.Committed, old.End
			}
			r.mu.zones[z] = zs
			continue
		}
		l, ok := lags[zs.Group]
		if !ok {
			zs.Err = "not described"
			r.mu.zones[z] = zs
			continue
		}
		zs.State = l.State
		if e := l.Error(); e != nil && !errors.Is(e, kerr.GroupIDNotFound) {
			zs.Err = e.Error()
		}
		for p, ml := range l.Lag[r.cfg.Topic] {
			if int(p) >= r.cfg.Partitions {
				continue
			}
			if ml.Member != nil && ml.Member.InstanceID != nil {
				zs.Owner[p] = *ml.Member.InstanceID
			}
			zs.Committed[p], zs.End[p] = ml.Commit.At, ml.End.Offset
			if ml.Lag >= 0 {
				r.metrics.partitionLag.WithLabelValues(z, strconv.Itoa(int(p))).Set(float64(ml.Lag))
			}
		}
		r.mu.zones[z] = zs
	}
}

// EndOffsets lists the end offset of every partition: a read-your-writes
// read waits until the owners have consumed up to them.
func (r *Registry) EndOffsets(ctx context.Context) (map[int32]int64, error) {
	l, err := r.adm.ListEndOffsets(ctx, r.cfg.Topic)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: list end offsets of %s: %w", r.cfg.Topic, err)
	}
	out := map[int32]int64{}
	l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// markFailed avoids node key for a while after a request to it failed.
func (r *Registry) markFailed(key string) {
	r.mu.Lock()
	r.mu.failed[key] = r.now().Add(failedFor)
	r.mu.Unlock()
}

// members returns the nodes and zones as the planner sees them now.
func (r *Registry) members() ([]member, map[string]map[int32]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	self := r.selfLocked()
	nodes := map[string]NodeInfo{self.key(): self}
	for k, n := range r.mu.nodes {
		if k != self.key() {
			nodes[k] = n
		}
	}
	out := make([]member, 0, len(nodes))
	for k, n := range nodes {
		local := k == self.key()
		healthy := local || (now.Sub(time.UnixMilli(n.Seen)) < r.staleAfter() && now.After(r.mu.failed[k]))
		out = append(out, member{NodeInfo: n, Local: local, Healthy: healthy})
	}
	slices.SortFunc(out, func(a, b member) int { return cmp.Compare(a.key(), b.key()) })
	owners := map[string]map[int32]string{}
	for z, zs := range r.mu.zones {
		owners[z] = zs.Owner
	}
	{ // this node knows its own partitions at once
		mine := r.owned()
		m := map[int32]string{}
		for p, o := range owners[r.cfg.Zone] {
			if o != r.cfg.Node || slices.Contains(mine, p) {
				m[p] = o
			}
		}
		for _, p := range mine {
			m[p] = r.cfg.Node
		}
		owners[r.cfg.Zone] = m
	}
	return out, owners
}

// ensureRegistryTopic creates the registry topic when it is missing: one
// partition, compacted, replicated as the samples' topic.
func ensureRegistryTopic(ctx context.Context, adm *kadm.Client, cfg Config) error {
	return ensureSmallTopic(ctx, adm, cfg, cfg.RegistryTopic(), true)
}

// ensureSmallTopic creates a one-partition topic of the cluster when it
// is missing, replicated as the samples' topic (with min.insync.replicas
// 2 when there are 3 replicas or more), compacted when compact is set.
func ensureSmallTopic(ctx context.Context, adm *kadm.Client, cfg Config, name string, compact bool) error {
	topics, err := adm.ListTopics(ctx, name)
	if err != nil {
		return fmt.Errorf("kafka: list topic %s: %w", name, err)
	}
	if td, ok := topics[name]; ok && td.Err == nil {
		return nil
	}
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("kafka: list brokers: %w", err)
	}
	rf := min(cfg.ReplicationFactor, len(brokers))
	isr := strconv.Itoa(min(rf, 2))
	conf := map[string]*string{"min.insync.replicas": &isr}
	if compact {
		policy := "compact"
		conf["cleanup.policy"] = &policy
	}
	resp, err := adm.CreateTopic(ctx, 1, int16(rf), conf, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("kafka: create topic %s: %w", name, err)
	}
	return nil
}

// ErrNoSuchNode reports a node the registry topic does not hold.
var ErrNoSuchNode = errors.New("kafka: no such node in the registry")

// RetireNode removes node name (<zone>.<node> or <zone>/<node>) from the
// registry topic for good: it writes the tombstone of its key, which
// every node honours (docs/cluster.md). It refuses a node that announced
// itself within the session timeout and a heartbeat (alive, or only just
// stopped) unless force is set. It returns the node's last announcement.
func RetireNode(ctx context.Context, cfg Config, name string, force bool, now time.Time) (NodeInfo, error) {
	cl, err := cfg.newClient(
		kgo.DefaultProduceTopic(cfg.RegistryTopic()),
		kgo.ConsumeTopics(cfg.RegistryTopic()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	if err != nil {
		return NodeInfo{}, fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, cfg.RegistryTopic())
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return NodeInfo{}, fmt.Errorf("kafka: list end offsets of %s: %w", cfg.RegistryTopic(), err)
	}
	end := int64(0)
	ends.Each(func(o kadm.ListedOffset) { end = max(end, o.Offset) })
	nodes := map[string]NodeInfo{}
	for next := int64(0); next < end; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return NodeInfo{}, fmt.Errorf("kafka: read %s: %w", cfg.RegistryTopic(), err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			next = rec.Offset + 1
			var n NodeInfo
			if len(rec.Value) == 0 {
				delete(nodes, string(rec.Key))
			} else if json.Unmarshal(rec.Value, &n) == nil && n.key() == string(rec.Key) {
				nodes[n.key()] = n
			}
		})
	}
	var n NodeInfo
	found := false
	for _, c := range nodes {
		if c.Zone+"."+c.Node == name || c.key() == name {
			n, found = c, true
			break
		}
	}
	if !found {
		known := make([]string, 0, len(nodes))
		for k := range nodes {
			known = append(known, k)
		}
		slices.Sort(known)
		return NodeInfo{}, fmt.Errorf("%w: %s is not in %s (its nodes: %v)", ErrNoSuchNode, name, cfg.RegistryTopic(), known)
	}
	r := &Registry{cfg: cfg}
	if age := now.Sub(time.UnixMilli(n.Seen)); age < r.staleAfter() && !force {
		return n, fmt.Errorf("kafka: node %s announced itself %v ago: it is alive or only just stopped; stop it, wait %v, or retire it with --force",
			n.key(), age.Round(time.Millisecond), r.staleAfter().Round(time.Second))
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(n.key()), Headers: []kgo.RecordHeader{{Key: "op", Value: []byte("retire")}}}).FirstErr(); err != nil {
		return n, fmt.Errorf("kafka: write the tombstone of %s to %s: %w", n.key(), cfg.RegistryTopic(), err)
	}
	return n, nil
}
