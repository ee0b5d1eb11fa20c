package ruler

import (
	"time"

	"github.com/emsdb/tsdb/alerting/rulefmt"
)

// GroupStatus is a copy of a group's evaluation state, as /api/v1/rules
// shows it.
type GroupStatus struct {
	Name, File     string
	Interval       time.Duration
	Limit          int
	LastEvaluation time.Time
	EvaluationTime time.Duration
	Rules          []RuleStatus
}

// RuleStatus is a copy of a rule's evaluation state.
type RuleStatus struct {
	Def            rulefmt.Rule
	Kind           string // "recording" or "alerting"
	Health         string
	LastError      string
	LastEvaluation time.Time
	EvaluationTime time.Duration
	// Alerts are copies of the rule's active alerts (pending and firing).
	Alerts []*Alert
}

// Status returns the state of one tenant's groups, in evaluation order.
// The result is the caller's.
func (r *Ruler) Status(tenant string) []GroupStatus {
	var out []GroupStatus
	for _, g := range r.Groups() {
		if g.tenant() != tenant {
			continue
		}
		g.mu.Lock()
		gs := GroupStatus{Name: g.Name, File: g.File, Interval: g.Interval, Limit: g.Limit,
			LastEvaluation: g.last, EvaluationTime: g.dur}
		g.mu.Unlock()
		for _, rl := range g.Rules {
			rl.mu.Lock()
			rs := RuleStatus{Def: rl.Def, Kind: rl.Kind, Health: rl.health, LastError: rl.lastErr,
				LastEvaluation: rl.lastEval, EvaluationTime: rl.evalDur}
			for _, a := range rl.active {
				if a.State != StateInactive {
					c := *a
					rs.Alerts = append(rs.Alerts, &c)
				}
			}
			rl.mu.Unlock()
			gs.Rules = append(gs.Rules, rs)
		}
		out = append(out, gs)
	}
	return out
}

// TenantAlerts returns copies of the active alerts of one tenant's rules,
// firing and pending, ordered by labels.
func (r *Ruler) TenantAlerts(tenant string) []*Alert { return r.alerts(tenant) }
