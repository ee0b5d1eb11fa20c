package kafka

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// ClusterStatus is the answer of /api/v1/status/cluster.
type ClusterStatus struct {
	Self       string       `json:"self"` // this node, zone/node
	Topic      string       `json:"topic"`
	Partitions int          `json:"partitions"`
	Nodes      []NodeStatus `json:"nodes"`
	Zones      []ZoneStatus `json:"zones"`
	// Leader is who runs rules, ITSM and KPIs (docs/cluster.md).
	Leader *LeaderStatus `json:"leader,omitempty"`
}

// NodeStatus is one node of ClusterStatus.
type NodeStatus struct {
	Zone     string    `json:"zone"`
	Node     string    `json:"node"`
	URL      string    `json:"url"`
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last_seen"`
	Healthy  bool      `json:"healthy"`
	Owned    []int32   `json:"owned"` // the partitions it consumes now
	Held     []int32   `json:"held"`  // the partitions it holds samples of
}

// ZoneStatus is one zone of ClusterStatus.
type ZoneStatus struct {
	Zone       string            `json:"zone"`
	Group      string            `json:"group"`
	State      string            `json:"state"` // the consumer group's: Stable, PreparingRebalance, Empty…
	Error      string            `json:"error,omitempty"`
	Refreshed  time.Time         `json:"refreshed"`
	Partitions []PartitionStatus `json:"partitions"`
}

// PartitionStatus is one partition in one zone.
type PartitionStatus struct {
	Partition int32  `json:"partition"`
	Owner     string `json:"owner"` // "" while unassigned
	Committed int64  `json:"committed_offset"`
	End       int64  `json:"end_offset"`
	Lag       int64  `json:"lag"` // end − committed, -1 when unknown
	// Readable says whether the zone can answer for the partition whole
	// now (its owner and every node holding its samples are healthy).
	Readable bool `json:"readable"`
}

// Status describes the cluster as this node sees it (web.Cluster).
func (r *Reader) Status(ctx context.Context) (any, error) {
	r.reg.Refresh(ctx)
	nodes, _ := r.reg.members()
	r.reg.mu.Lock()
	zones := make([]ZoneState, 0, len(r.reg.mu.zones))
	for _, z := range r.reg.mu.zones {
		zones = append(zones, *z)
	}
	r.reg.mu.Unlock()
	slices.SortFunc(zones, func(a, b ZoneState) int {
		switch {
		case a.Zone == r.cfg.Zone:
			return -1
		case b.Zone == r.cfg.Zone:
			return 1
		}
		return cmp.Compare(a.Zone, b.Zone)
	})
	out := ClusterStatus{Self: r.cfg.Zone + "/" + r.cfg.Node, Topic: r.cfg.Topic, Partitions: r.cfg.Partitions}
	if l := r.leader.Load(); l != nil {
		ls := l.Status(ctx, r.reg.Nodes())
		out.Leader = &ls
	}
	for _, n := range nodes {
		ns := NodeStatus{Zone: n.Zone, Node: n.Node, URL: n.URL, Started: time.UnixMilli(n.Started).UTC(),
			LastSeen: time.UnixMilli(n.Seen).UTC(), Healthy: n.Healthy, Held: n.Held, Owned: []int32{}}
		for _, z := range zones {
			if z.Zone != n.Zone {
				continue
			}
			for p, o := range z.Owner {
				if o == n.Node {
					ns.Owned = append(ns.Owned, p)
				}
			}
		}
		slices.Sort(ns.Owned)
		out.Nodes = append(out.Nodes, ns)
	}
	for _, z := range zones {
		zs := ZoneStatus{Zone: z.Zone, Group: z.Group, State: z.State, Error: z.Err, Refreshed: z.Refreshed.UTC()}
		// What the planner would read from this zone alone.
		var zoneNodes []member
		for _, n := range nodes {
			if n.Zone == z.Zone {
				zoneNodes = append(zoneNodes, n)
			}
		}
		_, missing := plan(r.cfg.Partitions, z.Zone, zoneNodes, map[string]map[int32]string{z.Zone: z.Owner})
		for p := range int32(r.cfg.Partitions) {
			ps := PartitionStatus{Partition: p, Owner: z.Owner[p], Committed: -1, End: -1, Lag: -1, Readable: !slices.Contains(missing, p)}
			if c, ok := z.Committed[p]; ok {
				ps.Committed = c
			}
			if e, ok := z.End[p]; ok {
				ps.End = e
			}
			if ps.End >= 0 {
				ps.Lag = ps.End - max(ps.Committed, 0)
			}
			zs.Partitions = append(zs.Partitions, ps)
		}
		out.Zones = append(out.Zones, zs)
	}
	return out, nil
}
