package kafka

import (
	"slices"
)

// member is a node as the read planner sees it.
type member struct {
	NodeInfo
	Local   bool // this node
	Healthy bool // announced lately and not failing requests
}

// target is one node of a plan and the partitions it is asked for.
type target struct {
	member
	Partitions []int32
	// Owns are the partitions of Partitions that the node consumes now: a
	// read-your-writes read waits on it for those.
	Owns []int32
}

// plan picks, for each of the partitions 0..n-1, a zone that can answer
// for it whole, and returns the nodes to ask and the partitions no zone
// can answer for. A zone can answer for partition p when the node that
// consumes p in it (owners[zone][p]) is healthy and so is every node of
// the zone that holds samples of p (a partition's history stays on the
// nodes that consumed it before). The local zone comes first, then the
// others by name. Within the chosen zone every holder of p is asked.
//
// Each series lives in exactly one partition and each partition is read
// from one zone, so the answers of the targets never hold the same
// series twice, except from two nodes of one zone that both consumed
// the same records (a partition that moved before its offsets were
// committed): those samples are equal and the merge keeps one.
func plan(n int, self string, nodes []member, owners map[string]map[int32]string) (targets []target, missing []int32) {
	zones := []string{self}
	byZone := map[string][]member{}
	for _, m := range nodes {
		if len(byZone[m.Zone]) == 0 && m.Zone != self {
			zones = append(zones, m.Zone)
		}
		byZone[m.Zone] = append(byZone[m.Zone], m)
	}
	slices.Sort(zones[1:])
	idx := map[string]int{} // node key -> index in targets
	add := func(m member, p int32, owns bool) {
		i, ok := idx[m.key()]
		if !ok {
			i = len(targets)
			idx[m.key()] = i
			targets = append(targets, target{member: m})
		}
		targets[i].Partitions = append(targets[i].Partitions, p)
		if owns {
			targets[i].Owns = append(targets[i].Owns, p)
		}
	}
	for p := range int32(n) {
		chosen := false
		for _, z := range zones {
			owner := owners[z][p]
			if owner == "" {
				continue
			}
			ok, found := true, false
			for _, m := range byZone[z] {
				if m.Node == owner {
					found = true
				}
				if (m.Node == owner || slices.Contains(m.Held, p)) && !m.Healthy {
					ok = false
				}
			}
			if !ok || !found {
				continue
			}
			for _, m := range byZone[z] {
				if m.Node == owner || slices.Contains(m.Held, p) {
					add(m, p, m.Node == owner)
				}
			}
			chosen = true
			break
		}
		if !chosen {
			missing = append(missing, p)
		}
	}
	return targets, missing
}
