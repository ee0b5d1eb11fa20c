package itsm

import (
	"sort"
	"time"
)

// PriorityReport is one priority's line of the SLA report.
type PriorityReport struct {
	Priority   string  `json:"priority"`
	Incidents  int     `json:"incidents"`
	MTTA       string  `json:"mtta"`
	MTTR       string  `json:"mttr"`
	MTTASecs   float64 `json:"mtta_seconds"`
	MTTRSecs   float64 `json:"mttr_seconds"`
	Compliance float64 `json:"sla_compliance_percent"`
}

// SLAReport is the periodic SLA report.
type SLAReport struct {
	From       time.Time        `json:"from"`
	To         time.Time        `json:"to"`
	Priorities []PriorityReport `json:"priorities"`
	TopCIs     []map[string]any `json:"top_cis"`
}

// SLAReport summarises incidents opened in [from, to].
func (m *Manager) SLAReport(tenant string, from, to time.Time) SLAReport {
	rep := SLAReport{From: from, To: to, Priorities: []PriorityReport{}, TopCIs: []map[string]any{}}
	type acc struct {
		n, acked, resolved, ok int
		ackSum, resSum         time.Duration
	}
	by := map[string]*acc{}
	cis := map[string]int{}
	for _, inc := range m.Incidents(tenant, "", "", "", from) {
		if inc.OpenedAt.After(to) {
			continue
		}
		a := by[inc.Priority]
		if a == nil {
			a = &acc{}
			by[inc.Priority] = a
		}
		a.n++
		cis[inc.CI]++
		if inc.AcknowledgedAt != nil {
			a.acked++
			a.ackSum += inc.AcknowledgedAt.Sub(inc.OpenedAt)
		}
		if inc.ResolvedAt != nil {
			a.resolved++
			a.resSum += inc.ResolvedAt.Sub(inc.OpenedAt)
		}
		if !inc.SLA.AcknowledgeBreached && !inc.SLA.ResolveBreached {
			a.ok++
		}
	}
	for _, p := range []string{"P1", "P2", "P3", "P4", "P5"} {
		a := by[p]
		if a == nil {
			continue
		}
		r := PriorityReport{Priority: p, Incidents: a.n, Compliance: 100 * float64(a.ok) / float64(a.n)}
		if a.acked > 0 {
			d := a.ackSum / time.Duration(a.acked)
			r.MTTA, r.MTTASecs = FormatDuration(d), d.Seconds()
		}
		if a.resolved > 0 {
			d := a.resSum / time.Duration(a.resolved)
			r.MTTR, r.MTTRSecs = FormatDuration(d), d.Seconds()
		}
		rep.Priorities = append(rep.Priorities, r)
	}
	names := make([]string, 0, len(cis))
	for c := range cis {
		names = append(names, c)
	}
	sort.Slice(names, func(i, j int) bool {
		if cis[names[i]] != cis[names[j]] {
			return cis[names[i]] > cis[names[j]]
		}
		return names[i] < names[j]
	})
	for i, c := range names {
		if i == 10 {
			break
		}
		rep.TopCIs = append(rep.TopCIs, map[string]any{"ci": c, "incidents": cis[c]})
	}
	return rep
}

// Now is the manager's clock: the default end of a report.
func (m *Manager) Now() time.Time { return m.now() }
