package ruler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// evalAlerting evaluates an alerting rule at ts: it moves each alert
// through pending, firing, kept firing and resolved, writes ALERTS,
// ALERTS_FOR_STATE and ALERTS_TRANSITIONS into b, tells the event
// subscribers, and returns the alerts due to be sent.
func (g *Group) evalAlerting(ctx context.Context, rl *Rule, ts time.Time, b *storage.Batch) ([]*Alert, error) {
	res, err := g.r.eng.Instant(ctx, g.tenant(), rl.Def.Expr, ts.Add(-g.QueryOffset).UnixMilli())
	if err != nil {
		return nil, err
	}
	if res.Type != query.ValueVector {
		return nil, fmt.Errorf("alerting rule result is a %s, not a vector", res.Type)
	}
	current, err := g.alertsOf(ctx, rl, res.Series, ts.UnixMilli())
	if err != nil {
		return nil, err
	}
	if g.Limit > 0 && len(current) > g.Limit {
		rl.mu.Lock()
		rl.active = map[string]*Alert{}
		rl.mu.Unlock()
		return nil, fmt.Errorf("exceeded limit of %d with %d alerts", g.Limit, len(current))
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	events := g.transition(rl, current, ts, func(a *Alert) bool { return g.sourceSilent(ctx, rl, a, ts) })
	send := g.record(rl, ts, b)
	for _, e := range events { // the history of transitions, kept as a series
		if e.From == e.To {
			continue // a silent source's recovery: no state changed
		}
		lb := labels.NewBuilder(e.Alert.Labels)
		lb.Set(model.MetricNameLabel, "ALERTS_TRANSITIONS")
		lb.Set("transition_from", string(e.From))
		lb.Set("transition_to", string(e.To))
		b.Add(lb.Labels(), storage.Sample{T: ts.UnixMilli(), V: 1})
	}
	if len(events) > 0 {
		g.r.mu.Lock()
		subs := slices.Clone(g.r.events)
		g.r.mu.Unlock()
		for _, e := range events {
			for _, f := range subs {
				f(e)
			}
		}
	}
	return send, nil
}

// alertsOf makes the alerts a rule's vector asks for, by labels, with
// their labels and annotations templated.
func (g *Group) alertsOf(ctx context.Context, rl *Rule, series []query.Series, tms int64) (map[string]*Alert, error) {
	current := map[string]*Alert{}
	for _, s := range series {
		base := labels.NewBuilder(s.Metric).Del(model.MetricNameLabel).Labels()
		v := s.Points[0].F
		// As Prometheus: $labels are the sample's labels (with __name__
		// if the expression kept it), group labels are templates too, and
		// a template that fails leaves its error in place of the text.
		expand := func(text string) string {
			x, err := g.r.expand(ctx, g.tenant(), "__alert_"+rl.Def.Alert, text, s.Metric, v, tms)
			if err != nil {
				g.r.opts.Logger.Warn("expanding alert template failed", "alert", rl.Def.Alert, "err", err)
				return fmt.Sprintf("<error expanding template: %s>", err)
			}
			return x
		}
		lb := labels.NewBuilder(base)
		for k, tv := range g.Labels {
			lb.Set(k, expand(tv))
		}
		for k, tv := range rl.Def.Labels {
			lb.Set(k, expand(tv))
		}
		lb.Set("alertname", rl.Def.Alert)
		ls := lb.Labels()
		ab := labels.NewScratchBuilder(len(rl.Def.Annotations))
		for k, tv := range rl.Def.Annotations {
			ab.Add(k, expand(tv))
		}
		ab.Sort()
		key := ls.String()
		if current[key] != nil {
			return nil, errors.New("vector contains metrics with the same labelset after applying alert labels")
		}
		current[key] = &Alert{Labels: ls, Annotations: ab.Labels(), Value: v}
	}
	return current, nil
}

// transition moves the rule's alerts to their states at ts given the
// current ones and returns the transitions. silent reports whether an
// alert that went away did so because its source stopped reporting; it
// is asked only about firing alerts that went away and about those
// already silent. rl.mu is held.
func (g *Group) transition(rl *Rule, current map[string]*Alert, ts time.Time, silent func(*Alert) bool) []Event {
	var events []Event
	for key, cur := range current {
		a := rl.active[key]
		if a == nil || a.State == StateInactive {
			activeAt := ts
			g.mu.Lock()
			restoredAt, restored := g.restored[key]
			g.mu.Unlock()
			if restored {
				activeAt = restoredAt
			}
			var silentSince time.Time
			if a != nil {
				silentSince = a.SilentSince // the source is back, the alert not yet firing
			}
			a = &Alert{Labels: cur.Labels, State: StatePending, ActiveAt: activeAt, SilentSince: silentSince,
				GeneratorURL: g.r.opts.ExternalURL + "/graph?g0.expr=" + urlEscape(rl.Def.Expr)}
			rl.active[key] = a
			if !restored { // pending since before the restart: no transition now
				events = append(events, Event{Tenant: g.tenant(), Alert: a, From: StateInactive, To: StatePending, At: ts})
			}
		}
		a.Value, a.Annotations = cur.Value, cur.Annotations
		a.KeepFiringSince = time.Time{}
		if a.State == StatePending && ts.Sub(a.ActiveAt) >= time.Duration(rl.Def.For) {
			a.State, a.FiredAt, a.SilentSince = StateFiring, ts, time.Time{}
			events = append(events, Event{Tenant: g.tenant(), Alert: a, From: StatePending, To: StateFiring, At: ts})
		}
	}
	for key, a := range rl.active {
		if _, ok := current[key]; ok {
			continue
		}
		switch a.State {
		case StatePending:
			delete(rl.active, key)
			events = append(events, Event{Tenant: g.tenant(), Alert: a, From: StatePending, To: StateInactive, At: ts})
			if !a.SilentSince.IsZero() { // back from silence, and the condition cleared: recovered
				a.SilentSince = time.Time{}
				events = append(events, Event{Tenant: g.tenant(), Alert: a, From: StateInactive, To: StateInactive, At: ts})
			}
		case StateFiring:
			if kf := time.Duration(rl.Def.KeepFiringFor); kf > 0 {
				if a.KeepFiringSince.IsZero() {
					a.KeepFiringSince = ts
				}
				if ts.Sub(a.KeepFiringSince) < kf {
					continue // kept firing
				}
			}
			a.State, a.ResolvedAt = StateInactive, ts
			noData := silent(a)
			if noData {
				a.SilentSince = ts
			}
			events = append(events, Event{Tenant: g.tenant(), Alert: a, From: StateFiring, To: StateInactive, At: ts, NoData: noData})
		case StateInactive:
			if !a.SilentSince.IsZero() {
				if silent(a) {
					continue // kept until its source reports again
				}
				a.SilentSince, a.ResolvedAt = time.Time{}, ts
				events = append(events, Event{Tenant: g.tenant(), Alert: a, From: StateInactive, To: StateInactive, At: ts})
				continue
			}
			if ts.Sub(a.ResolvedAt) > 15*time.Minute {
				delete(rl.active, key)
			}
		}
	}
	return events
}

// sourceSilent reports whether the series a rule reads have no samples
// at ts for an alert's labels: every series selector of the expression,
// narrowed by the alert's own labels (those the rule did not add), selects
// nothing. An expression it cannot take apart, or a query that fails,
// counts as not silent (the alert resolves, as before).
func (g *Group) sourceSilent(ctx context.Context, rl *Rule, a *Alert, ts time.Time) bool {
	sels, err := query.Selectors(rl.Def.Expr)
	if err != nil || len(sels) == 0 {
		return false
	}
	var own []*labels.Matcher
	a.Labels.Range(func(l labels.Label) {
		if _, ok := rl.Def.Labels[l.Name]; ok || l.Name == "alertname" {
			return
		}
		if _, ok := g.Labels[l.Name]; ok {
			return
		}
		own = append(own, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value))
	})
	for _, sel := range sels {
		for _, set := range sel {
			var parts []string
			named := map[string]bool{}
			for _, m := range set {
				parts = append(parts, m.String())
				named[m.Name] = true
			}
			for _, m := range own {
				if !named[m.Name] {
					parts = append(parts, m.String())
				}
			}
			res, err := g.r.eng.Instant(ctx, g.tenant(), "{"+strings.Join(parts, ",")+"}", ts.Add(-g.QueryOffset).UnixMilli())
			if err != nil || len(res.Series) > 0 {
				return false
			}
		}
	}
	return true
}

// record writes ALERTS and ALERTS_FOR_STATE of the rule's active alerts
// into b and returns the alerts due to be sent: firing ones every resend
// delay, resolved ones for 15 minutes. rl.mu is held.
func (g *Group) record(rl *Rule, ts time.Time, b *storage.Batch) []*Alert {
	tms := ts.UnixMilli()
	var send []*Alert
	validFor := 4 * max(g.r.opts.ResendDelay, g.Interval)
	written := map[string]labels.Labels{}
	for _, a := range rl.active {
		if a.State != StateInactive {
			lb := labels.NewBuilder(a.Labels)
			lb.Set(model.MetricNameLabel, "ALERTS")
			lb.Set("alertstate", string(a.State))
			ls := lb.Labels()
			written[ls.String()] = ls
			b.Add(ls, storage.Sample{T: tms, V: 1})
			lb = labels.NewBuilder(a.Labels)
			lb.Set(model.MetricNameLabel, "ALERTS_FOR_STATE")
			ls = lb.Labels()
			written[ls.String()] = ls
			b.Add(ls, storage.Sample{T: tms, V: float64(a.ActiveAt.UnixMilli()) / 1000})
		}
		switch {
		case a.State == StateFiring && ts.Sub(a.LastSentAt) >= g.r.opts.ResendDelay:
			a.ValidUntil = ts.Add(validFor)
			a.LastSentAt = ts
			c := *a
			send = append(send, &c)
		case a.State == StateInactive && !a.FiredAt.IsZero() && ts.Sub(a.ResolvedAt) < 15*time.Minute &&
			(a.LastSentAt.Before(a.ResolvedAt) || ts.Sub(a.LastSentAt) >= g.r.opts.ResendDelay):
			// Resolved alerts are re-sent for 15 minutes, as the
			// alert-generator specification asks.
			a.LastSentAt = ts
			c := *a
			send = append(send, &c)
		}
	}
	rl.markStale(b, written, tms)
	return send
}

// restore reads the active-since times of alerts that were pending or
// firing before a restart, so that `for` does not start over. A group that
// replaced a running one on reload carried its state over (restored is
// nil): there is nothing to restore, as Prometheus restores only at start.
func (g *Group) restore(ctx context.Context, ts time.Time) {
	g.mu.Lock()
	carried := g.restored == nil
	g.mu.Unlock()
	if carried {
		return
	}
	for _, rl := range g.Rules {
		if rl.Kind != "alerting" || rl.Def.For == 0 {
			continue
		}
		q := fmt.Sprintf(`last_over_time(ALERTS_FOR_STATE{alertname=%q}[%dms])`, rl.Def.Alert, g.r.opts.OutageTolerance.Milliseconds())
		res, err := g.r.eng.Instant(ctx, g.tenant(), q, ts.UnixMilli())
		if err != nil {
			g.r.opts.Logger.Warn("restore alert state", "alert", rl.Def.Alert, "err", err)
			continue
		}
		for _, s := range res.Series {
			ls := labels.NewBuilder(s.Metric).Del(model.MetricNameLabel).Set("alertname", rl.Def.Alert).Labels()
			g.mu.Lock()
			g.restored[ls.String()] = time.UnixMilli(int64(s.Points[0].F * 1000))
			g.mu.Unlock()
		}
	}
}

func urlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}
