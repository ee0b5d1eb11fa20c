package kpi

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Warning is one predicted-breach warning a backtest raised.
type Warning struct {
	At time.Time `json:"at"`
	// Breach is when the KPI crossed its target after the warning; Lead
	// is how long before. Both are zero for a false warning.
	Breach *time.Time    `json:"breach,omitempty"`
	Lead   time.Duration `json:"lead,omitempty"`
	// False: cancelled, or no breach within the horizon.
	False bool `json:"false"`
}

// Report is what a backtest found.
type Report struct {
	KPI         string        `json:"kpi"`
	From        time.Time     `json:"from"`
	To          time.Time     `json:"to"`
	Evaluations int           `json:"evaluations"`
	Failed      int           `json:"failed"` // evaluations without a forecast (too little history)
	Warnings    []Warning     `json:"warnings"`
	Breaches    []time.Time   `json:"breaches"`
	Missed      []time.Time   `json:"missed"` // breaches no warning foretold
	Definition  Definition    `json:"-"`
	MedianLead  time.Duration `json:"median_lead"`
}

// Backtest replays a KPI over [from, to], one evaluation every interval,
// as the engine runs it (models, probability, confirm and hysteresis,
// holidays) from the history up to each evaluation only, and reports
// when it would have warned, how early, the false warnings and the
// breaches it missed. It writes nothing and touches no incident.
func (e *Engine) Backtest(ctx context.Context, tenant, name string, from, to time.Time) (*Report, error) {
	k := e.find(tenant, name)
	if k == nil {
		return nil, ErrUnknown
	}
	k.mu.Lock()
	d := k.def
	k.mu.Unlock()
	if to.Before(from) || to.Sub(from)/d.Interval > 100_000 {
		return nil, fmt.Errorf("kpi %s: backtest: want from ≤ to and at most 100000 evaluations", d.Name)
	}
	r := &Report{KPI: d.Name, From: from, To: to, Definition: d, Warnings: []Warning{}, Breaches: []time.Time{}, Missed: []time.Time{}}
	tr := NewTracker(d.WarnProbability, d.WarnAtOnce, d.Confirm)
	open := -1 // the warning in force
	for t := from; !t.After(to); t = t.Add(d.Interval) {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		r.Evaluations++
		x, a, err := e.assess(ctx, &d, t)
		if err != nil {
			r.Failed++
			continue
		}
		var eta time.Time
		if x.ETA != nil {
			eta = *x.ETA
		}
		switch tr.Observe(t, x.breaching, a.Probability, eta) {
		case Warn:
			r.Warnings = append(r.Warnings, Warning{At: t})
			open = len(r.Warnings) - 1
		case Cancel:
			if open >= 0 {
				r.Warnings[open].False = true
				open = -1
			}
		case Breach:
			r.Breaches = append(r.Breaches, t)
			if open >= 0 && t.Sub(r.Warnings[open].At) <= d.Horizon {
				w := &r.Warnings[open]
				w.Breach, w.Lead = &t, t.Sub(w.At)
			} else {
				if open >= 0 {
					r.Warnings[open].False = true
				}
				r.Missed = append(r.Missed, t)
			}
			open = -1
		}
		if open >= 0 && t.Sub(r.Warnings[open].At) > d.Horizon {
			r.Warnings[open].False = true // the horizon passed without a breach
			open = -1
		}
	}
	var leads []time.Duration
	for _, w := range r.Warnings {
		if w.Breach != nil {
			leads = append(leads, w.Lead)
		}
	}
	if len(leads) > 0 {
		slices.Sort(leads)
		r.MedianLead = leads[len(leads)/2]
	}
	return r, nil
}
