package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// LeaderGroup is the consumer group every node joins to elect the leader:
// the member assigned partition 0 of the leader topic
// (Config.LeaderTopic) leads. NB: a zone may therefore not be named
// "leader" (its group would be this one).
const LeaderGroup = "tsdb-leader"

// Leader is this node's member of LeaderGroup (docs/cluster.md,
// Leadership). While the group assigns it partition 0 of the leader
// topic, the node leads: Leader runs the lead function given to
// NewLeader with a context that is cancelled when the partition is
// revoked or lost, and waits for lead to return before the revocation
// completes, so that the next leader is assigned the partition only
// after this one stopped (fencing; a node cut off from Kafka, whose
// partition is lost rather than revoked, stops when its client notices,
// see docs/cluster.md for that window).
//
// Every method is safe for concurrent use.
type Leader struct {
	cl      *kgo.Client
	cfg     Config
	lead    func(ctx context.Context)
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time

	mu struct {
		sync.Mutex
		since  time.Time          // zero while not leading
		cancel context.CancelFunc // of the running term
		done   chan struct{}      // closed when the term's lead returned
		closed bool
	}
}

// InstanceID is the node's static member name in LeaderGroup:
// "<zone>.<node>", as node names are unique only within a zone.
func (c *Config) InstanceID() string { return c.Zone + "." + c.Node }

// NewLeader creates the leader topic when missing (one partition, no
// records are ever written to it) and joins LeaderGroup, statically as
// cfg.InstanceID, with cfg's session timeout. lead runs on this node for
// each term it leads, in its own goroutine, and must return soon after
// its context is done. Run must be called to take part.
func NewLeader(ctx context.Context, cfg Config, lead func(ctx context.Context), opts *Options) (*Leader, error) {
	o := opts.orDefault()
	l := &Leader{cfg: cfg, lead: lead, log: o.Logger, metrics: o.Metrics, now: time.Now}
	cl, err := cfg.newClient(
		kgo.ConsumerGroup(LeaderGroup),
		kgo.ConsumeTopics(cfg.LeaderTopic()),
		kgo.InstanceID(cfg.InstanceID()),
		kgo.SessionTimeout(time.Duration(cfg.SessionTimeout)),
		kgo.HeartbeatInterval(min(time.Duration(cfg.SessionTimeout)/4, 3*time.Second)),
		// Sticky: a node joining or restarting does not move the
		// leadership (an eager balancer would revoke it at every join).
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(l.assigned),
		kgo.OnPartitionsRevoked(l.revoked),
		kgo.OnPartitionsLost(l.lost),
		kgo.WithLogger(kgoLogger(o.Logger)),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka leader: %w", err)
	}
	if err := ensureSmallTopic(ctx, kadm.NewClient(cl), cfg, cfg.LeaderTopic(), false); err != nil {
		cl.Close()
		return nil, err
	}
	l.cl = cl
	return l, nil
}

// Run takes part in the election until ctx is done. It polls the leader
// topic (which holds no records) so that the group keeps its session.
func (l *Leader) Run(ctx context.Context) error {
	for {
		fs := l.cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			l.log.Warn("cluster: leader group fetch", "topic", t, "partition", p, "err", err)
		})
	}
}

// Close stops leading (waiting for the term's lead to return), leaves the
// group and disconnects. As a static member the node would otherwise keep
// its partition until the session timeout; Close removes it from the
// group at once (kadm LeaveGroup by instance id), so another node leads
// within a rebalance.
func (l *Leader) Close() {
	l.mu.Lock()
	l.mu.closed = true
	l.mu.Unlock()
	l.stop("shutting down")
	l.cl.Close()
	cl, err := l.cfg.newClient()
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(LeaderGroup).InstanceIDs(l.cfg.InstanceID()).Reason("shutting down")); err != nil {
		l.log.Warn("cluster: leader group not left; another node leads after the session timeout", "err", err)
	}
}

// Leading reports whether this node leads now, and since when.
func (l *Leader) Leading() (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.mu.since.IsZero(), l.mu.since
}

func (l *Leader) assigned(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	if slices.Contains(ps[l.cfg.LeaderTopic()], 0) {
		l.start()
	}
}

// revoked stops the term before the partition goes to the next leader:
// the group's rebalance waits for this callback.
func (l *Leader) revoked(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	if slices.Contains(ps[l.cfg.LeaderTopic()], 0) {
		l.stop("leadership revoked")
	}
}

// lost stops the term when the session ended without a revocation (this
// node was silent past the session timeout): another node may lead
// already.
func (l *Leader) lost(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	if slices.Contains(ps[l.cfg.LeaderTopic()], 0) {
		l.stop("leadership lost (session expired)")
	}
}

func (l *Leader) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.mu.since.IsZero() || l.mu.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l.mu.since, l.mu.cancel, l.mu.done = l.now(), cancel, done
	l.metrics.leader.Set(1)
	l.metrics.leaderTerms.Inc()
	l.log.Info("cluster: this node leads: rules, ITSM and KPIs run here", "group", LeaderGroup, "member", l.cfg.InstanceID())
	go func() {
		defer close(done)
		l.lead(ctx)
	}()
}

// stop ends the running term, if any, and waits for its lead to return.
func (l *Leader) stop(why string) {
	l.mu.Lock()
	cancel, done, since := l.mu.cancel, l.mu.done, l.mu.since
	l.mu.since, l.mu.cancel, l.mu.done = time.Time{}, nil, nil
	l.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	l.metrics.leader.Set(0)
	l.log.Info("cluster: this node no longer leads; rules, ITSM and KPIs stopped", "why", why, "led_for", l.now().Sub(since).Round(time.Millisecond))
}

// LeaderStatus is the leadership in /api/v1/status/cluster.
type LeaderStatus struct {
	// Node is the leading node, zone/node ("" while none leads: between
	// a leader's death and the end of its session).
	Node string `json:"node"`
	// Since is when it started leading, by its own clock (its
	// announcement); zero when unknown.
	Since time.Time `json:"since,omitzero"`
	// Self says whether this node leads.
	Self bool `json:"self"`
	// Group is the consumer group's state (Stable, PreparingRebalance…).
	Group string `json:"group_state"`
	Error string `json:"error,omitempty"`
}

// Status describes who leads, as the group coordinator says (kadm
// DescribeGroups); nodes maps an instance id to zone/node and its
// leader_since.
func (l *Leader) Status(ctx context.Context, nodes []NodeInfo) LeaderStatus {
	var st LeaderStatus
	if self, since := l.Leading(); self {
		st.Self, st.Since = true, since.UTC()
		st.Node = l.cfg.Zone + "/" + l.cfg.Node
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	gs, err := kadm.NewClient(l.cl).DescribeGroups(dctx, LeaderGroup)
	if err == nil {
		err = gs.Error()
	}
	if err != nil {
		st.Error = err.Error()
		return st
	}
	g := gs[LeaderGroup]
	st.Group = g.State
	for _, m := range g.Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok || m.InstanceID == nil {
			continue
		}
		for _, t := range ca.Topics {
			if t.Topic != l.cfg.LeaderTopic() || !slices.Contains(t.Partitions, 0) {
				continue
			}
			for _, n := range nodes {
				if n.Zone+"."+n.Node == *m.InstanceID {
					st.Node = n.Zone + "/" + n.Node
					if !st.Self && n.LeaderSince > 0 {
						st.Since = time.UnixMilli(n.LeaderSince).UTC()
					}
				}
			}
			if st.Node == "" {
				st.Node = *m.InstanceID
			}
		}
	}
	return st
}
