package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/emsdb/tsdb/ingest/kafka"
	"github.com/emsdb/tsdb/storage"
)

// clusterParts are the pieces of the cluster the leadership needs.
type clusterParts struct {
	cfg     kafka.Config
	reg     *kafka.Registry
	reader  *kafka.Reader
	state   *kafka.State
	leader  *kafka.Leader
	metrics *kafka.Metrics
	log     *slog.Logger
}

// itsmTick is how often the ITSM timers (escalation, SLA, maintenance
// windows' ends) are checked.
const itsmTick = 5 * time.Second

// openLeadership, in a cluster, joins the leader election and consumes
// the state topic: the node that leads runs the rules, the ITSM timers
// and outbox, and the KPIs (lead); the others keep them paused. In a
// single node they run from the start (openAlerting) and this does
// nothing.
func (s *server) openLeadership(lc *lifecycle) error {
	if s.kc == nil {
		return nil
	}
	kc := s.kc
	ctx, cancel := context.WithTimeout(lc.ctx, 30*time.Second)
	defer cancel()
	l, err := kafka.NewLeader(ctx, kc.cfg, s.lead, &kafka.Options{Logger: kc.log, Metrics: kc.metrics})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	kc.leader = l
	kc.reg.SetLeader(l)
	kc.reader.SetLeader(l)
	// Closed first: the term ends (rules, ITSM, KPIs stop and the ITSM's
	// last events are produced) before the state topic, the producer and
	// storage close.
	lc.onClose("kafka leader", noErr(l.Close))
	lc.run("kafka state", kc.state.Run)
	lc.run("kafka leader", l.Run)
	kc.log.Info("cluster: joined the leader election", "group", kafka.LeaderGroup, "topic", kc.cfg.LeaderTopic(),
		"member", kc.cfg.InstanceID(), "state_topic", kc.cfg.StateTopic())
	return nil
}

// lead is one term of this node's leadership: it catches up with the
// state topic, so that what the last leader stored is here, then resumes
// the ITSM manager (incidents, outbox, settings from the store) and the
// rules (their `for` state from ALERTS_FOR_STATE, read through the
// cluster), and runs the ITSM timers and the KPIs until ctx is done. It
// then stops them all before returning: the revocation waits for it.
func (s *server) lead(ctx context.Context) {
	kc, start := s.kc, time.Now()
	for {
		err := kc.state.WaitCaughtUp(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		kc.log.Error("cluster: leader: the state topic is not caught up yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	caught := time.Since(start)
	if s.itsm != nil {
		for {
			err := s.itsm.Resume()
			if err == nil {
				break
			}
			kc.log.Error("cluster: leader: ITSM state not loaded; retrying", "err", err)
			select {
			case <-ctx.Done():
				s.itsm.Pause()
				return
			case <-time.After(time.Second):
			}
		}
	}
	if err := s.ruler.LoadStored(s.kv); err != nil {
		kc.log.Error("rule groups stored through the API not loaded", "err", err)
	}
	s.ruler.Resume()
	var wg sync.WaitGroup
	if s.itsm != nil {
		wg.Go(func() { tick(ctx, itsmTick, s.itsm.Tick) })
	}
	if s.kpis != nil {
		wg.Go(func() { s.kpis.Run(ctx) })
	}
	kc.log.Info("cluster: leading: rules, ITSM and KPIs started", "state_caught_up_in", caught.Round(time.Millisecond),
		"took", time.Since(start).Round(time.Millisecond), "groups", len(s.ruler.Groups()))
	<-ctx.Done()
	s.ruler.Pause() // first: no alert reaches ITSM any more
	wg.Wait()
	if s.itsm != nil {
		s.itsm.Pause()
	}
}

// stateChanged learns of each key that another node's record changed in
// the local store: rule groups stored through the API on any node run on
// the leader (a paused ruler just keeps them).
func (s *server) stateChanged(key string) {
	if strings.HasPrefix(key, "rules/") {
		if err := s.ruler.LoadStored(s.kv); err != nil {
			s.log.Error("rule groups stored through the API not loaded", "err", err)
		}
	}
}

// leaderRetry is the Retry-After of the leader-only APIs while no
// leader is known.
const leaderRetry = 5 * time.Second

// toLeader says where the leader-only APIs (ITSM, KPIs, the rules' and
// alerts' state) are served: "" here (a single node, or this node leads),
// else the leader's advertised URL, from the registry: a follower
// forwards them there. While no leader is known (an election under way,
// Kafka out of reach) it returns an error the API answers with 503 and
// Retry-After.
func (s *server) toLeader(ctx context.Context) (string, error) {
	if s.kc == nil || s.kc.leader == nil {
		return "", nil
	}
	if ok, _ := s.kc.leader.Leading(); ok {
		return "", nil
	}
	nodes := s.kc.reg.Nodes()
	st := s.kc.leader.Status(ctx, nodes)
	if st.Self {
		return "", nil
	}
	for _, n := range nodes {
		if st.Node != "" && n.Zone+"/"+n.Node == st.Node && n.URL != "" {
			return n.URL, nil
		}
	}
	why := "an election is under way"
	if st.Error != "" {
		why = st.Error
	} else if st.Node != "" {
		why = "the leader " + st.Node + " has announced no URL"
	}
	return "", &noLeaderError{fmt.Errorf("%w: this API is served by the cluster's leader and none is known now (%s); retry in %v",
		storage.ErrUnavailable, why, leaderRetry)}
}

// noLeaderError is a leader-only API request while no leader is known.
type noLeaderError struct{ error }

func (e *noLeaderError) Unwrap() error             { return e.error }
func (e *noLeaderError) RetryAfter() time.Duration { return leaderRetry }

// nodeName names this node in a cluster (zone/node), "" on a single node.
func (s *server) nodeName() string {
	if s.kc == nil {
		return ""
	}
	return s.kc.cfg.Zone + "/" + s.kc.cfg.Node
}
