// Package ruler evaluates Prometheus rule groups: recording rules write
// their results back to storage, alerting rules keep alert state (pending,
// firing, kept firing, resolved) and notify Alertmanagers.
package ruler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/alerting/alert"
	"github.com/emsdb/tsdb/alerting/rulefmt"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// Options configures a Ruler. A zero field means its default.
type Options struct {
	Tenant          string            // whose data rules read and write; default "default"
	DefaultInterval time.Duration     // default 1m
	ExternalLabels  map[string]string // added to alerts sent out
	ExternalURL     string            // for generatorURL and templates
	ResendDelay     time.Duration     // minimum time between resends of a firing alert; default 1m
	OutageTolerance time.Duration     // how far back `for` state is restored from; default 1h
	Logger          *slog.Logger
	Now             func() time.Time
	Registerer      prometheus.Registerer
	// Limits on the groups stored through the ruler config API, per
	// tenant (as Mimir's ruler_max_rule_groups_per_tenant and
	// ruler_max_rules_per_rule_group): defaults 200 groups, 100 rules per
	// group, and an interval of at least 1s.
	MaxAPIGroups     int
	MaxAPIGroupRules int
	MinAPIInterval   time.Duration
}

type metrics struct {
	evals, failures, missed *prometheus.CounterVec
	duration, last          *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		evals:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tsdb_rule_evaluations_total", Help: "Rule evaluations."}, []string{"rule_group"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tsdb_rule_evaluation_failures_total", Help: "Failed rule evaluations."}, []string{"rule_group"}),
		missed:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tsdb_rule_group_iterations_missed_total", Help: "Group evaluations skipped because the previous one ran too long."}, []string{"rule_group"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tsdb_rule_group_last_duration_seconds", Help: "Duration of the last group evaluation."}, []string{"rule_group"}),
		last:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tsdb_rule_group_last_evaluation_timestamp_seconds", Help: "Time of the last group evaluation."}, []string{"rule_group"}),
	}
	if reg != nil {
		reg.MustRegister(m.evals, m.failures, m.missed, m.duration, m.last)
	}
	return m
}

// Ruler runs rule groups.
type Ruler struct {
	eng         query.Evaluator
	w           storage.Writer
	opts        Options
	notifier    Notifier
	externalURL *url.URL // opts.ExternalURL parsed, for templates

	mu     sync.Mutex
	groups []*Group
	events []func(Event)
	m      *metrics

	setMu      sync.Mutex // serialises Load and SetAPIGroups
	fileGroups []*Group
	apiGroups  []*Group
}

// Notifier sends alerts out (Alertmanager).
type Notifier interface {
	Send(alerts []*Alert)
}

// Event is an alert transition, for the ITSM layer and history.
type Event = alert.Event

// New returns a Ruler reading through eng and writing to w.
func New(eng query.Evaluator, w storage.Writer, n Notifier, opts *Options) *Ruler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Tenant == "" {
		o.Tenant = "default"
	}
	if o.DefaultInterval <= 0 {
		o.DefaultInterval = time.Minute
	}
	if o.ResendDelay <= 0 {
		o.ResendDelay = time.Minute
	}
	if o.OutageTolerance <= 0 {
		o.OutageTolerance = time.Hour
	}
	if o.MaxAPIGroups <= 0 {
		o.MaxAPIGroups = 200
	}
	if o.MaxAPIGroupRules <= 0 {
		o.MaxAPIGroupRules = 100
	}
	if o.MinAPIInterval <= 0 {
		o.MinAPIInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	u, err := url.Parse(o.ExternalURL)
	if err != nil {
		o.Logger.Warn("external URL does not parse; templates see an empty one", "url", o.ExternalURL, "err", err)
		u = &url.URL{}
	}
	return &Ruler{eng: eng, w: w, notifier: n, opts: o, externalURL: u, m: newMetrics(o.Registerer)}
}

// OnEvent registers f to receive every alert transition.
func (r *Ruler) OnEvent(f func(Event)) {
	r.mu.Lock()
	r.events = append(r.events, f)
	r.mu.Unlock()
}

// Group is a running rule group.
type Group struct {
	Name        string
	File        string
	Tenant      string // whose data it reads and writes; "": the Ruler's
	Interval    time.Duration
	QueryOffset time.Duration
	Limit       int
	Labels      map[string]string
	Rules       []*Rule

	r      *Ruler
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	last   time.Time
	dur    time.Duration
	missed int64
	// restored holds ALERTS_FOR_STATE read at start, by alert labels,
	// until the first evaluation has used it.
	restored map[string]time.Time
}

// Rule is a rule with its evaluation state.
type Rule struct {
	Def  rulefmt.Rule
	Kind string // "recording" or "alerting"

	mu       sync.Mutex
	health   string
	lastErr  string
	lastEval time.Time
	evalDur  time.Duration
	active   map[string]*Alert // by labels
	// written are the series the last evaluation wrote; those missing
	// from the next one get a stale marker, as Prometheus writes.
	written map[string]labels.Labels
}

// markStale adds stale markers for the series written last time and not
// now, and remembers now's series.
func (rl *Rule) markStale(b *storage.Batch, now map[string]labels.Labels, ts int64) {
	stale := math.Float64frombits(storage.StaleNaN)
	for k, ls := range rl.written {
		if _, ok := now[k]; !ok {
			b.Add(ls, storage.Sample{T: ts, V: stale})
		}
	}
	rl.written = now
}

// AlertState is where an alert is in its life.
type AlertState = alert.State

// The states.
const (
	StateInactive = alert.StateInactive
	StatePending  = alert.StatePending
	StateFiring   = alert.StateFiring
)

// Alert is one alert instance.
type Alert = alert.Alert

// Load reads the rule files and replaces the running groups. A file with
// errors leaves every running group as it was; unchanged rules keep their
// alert state.
func (r *Ruler) Load(files []string) error {
	fresh, err := r.Parse(files)
	if err != nil {
		return err
	}
	r.setMu.Lock()
	defer r.setMu.Unlock()
	r.fileGroups = fresh
	r.Replace(append(slices.Clone(r.fileGroups), r.apiGroups...))
	return nil
}

// SetAPIGroups replaces the groups written through the ruler config API
// (tenant -> namespace -> groups); file groups keep running.
func (r *Ruler) SetAPIGroups(byTenant map[string]map[string][]rulefmt.Group) {
	var fresh []*Group
	tenants := make([]string, 0, len(byTenant))
	for t := range byTenant {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	for _, t := range tenants {
		nss := make([]string, 0, len(byTenant[t]))
		for ns := range byTenant[t] {
			nss = append(nss, ns)
		}
		sort.Strings(nss)
		for _, ns := range nss {
			for _, g := range byTenant[t][ns] {
				grp := r.newGroup(ns, g)
				grp.Tenant = t
				fresh = append(fresh, grp)
			}
		}
	}
	r.setMu.Lock()
	defer r.setMu.Unlock()
	r.apiGroups = fresh
	r.Replace(append(slices.Clone(r.fileGroups), r.apiGroups...))
}

// Parse reads rule files into groups that are not running: Replace runs
// them, or a caller drives Eval itself (replay).
func (r *Ruler) Parse(files []string) ([]*Group, error) {
	var fresh []*Group
	var all []error
	for _, f := range files {
		rf, errs := rulefmt.ParseFile(f)
		if len(errs) > 0 {
			all = append(all, errs...)
			continue
		}
		for _, g := range rf.Groups {
			fresh = append(fresh, r.newGroup(f, g))
		}
	}
	if len(all) > 0 {
		return nil, errors.Join(all...)
	}
	return fresh, nil
}

// Replace stops the running groups and starts these, carrying over the
// state of rules that did not change.
func (r *Ruler) Replace(groups []*Group) {
	r.mu.Lock()
	old := r.groups
	r.groups = groups
	r.mu.Unlock()
	// Groups present in both (file groups when API groups change) keep
	// running untouched.
	keep := map[*Group]bool{}
	for _, g := range groups {
		keep[g] = true
	}
	byKey := map[string]*Rule{}
	for _, g := range old {
		if keep[g] {
			delete(keep, g)
			keep[g] = false // running: do not start again
			continue
		}
		g.halt()
		for _, rl := range g.Rules {
			byKey[g.Tenant+"\x00"+g.File+"\x00"+g.Name+"\x00"+ruleKey(rl.Def)] = rl
		}
	}
	for _, g := range groups {
		if !keep[g] {
			continue // already running
		}
		for i, rl := range g.Rules {
			if prev := byKey[g.Tenant+"\x00"+g.File+"\x00"+g.Name+"\x00"+ruleKey(rl.Def)]; prev != nil {
				prev.mu.Lock()
				g.Rules[i].active = prev.active
				g.Rules[i].health, g.Rules[i].lastErr, g.Rules[i].lastEval = prev.health, prev.lastErr, prev.lastEval
				prev.mu.Unlock()
				g.restored = nil // state carried over; nothing to restore
			}
		}
		go g.run()
	}
}

func ruleKey(d rulefmt.Rule) string {
	return fmt.Sprintf("%s|%s|%s|%d|%d|%v|%v", d.Record, d.Alert, d.Expr, d.For, d.KeepFiringFor, sortedMap(d.Labels), sortedMap(d.Annotations))
}

func sortedMap(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

func (r *Ruler) newGroup(file string, g rulefmt.Group) *Group {
	iv := time.Duration(g.Interval)
	if iv <= 0 {
		iv = r.opts.DefaultInterval
	}
	out := &Group{Name: g.Name, File: file, Interval: iv, QueryOffset: time.Duration(g.QueryOffset), Limit: g.Limit,
		Labels: g.Labels, r: r, stop: make(chan struct{}), done: make(chan struct{}), restored: map[string]time.Time{}}
	for _, d := range g.Rules {
		kind := "recording"
		if d.Alert != "" {
			kind = "alerting"
		}
		out.Rules = append(out.Rules, &Rule{Def: d, Kind: kind, health: "unknown", active: map[string]*Alert{}})
	}
	return out
}

// Groups returns the running groups.
func (r *Ruler) Groups() []*Group {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.groups)
}

// Stop stops every group.
func (r *Ruler) Stop() {
	r.mu.Lock()
	gs := r.groups
	r.groups = nil
	r.mu.Unlock()
	for _, g := range gs {
		g.halt()
	}
}

func (g *Group) halt() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	<-g.done
}

func (g *Group) tenant() string {
	if g.Tenant != "" {
		return g.Tenant
	}
	return g.r.opts.Tenant
}

// key names the group in metrics: file;name, as Prometheus does.
func (g *Group) key() string { return g.File + ";" + g.Name }

// metricKey is key as a metric label value: valid UTF-8 even when a
// file name is not (a label value that is not would panic the metrics).
func (g *Group) metricKey() string { return strings.ToValidUTF8(g.key(), "\uFFFD") }

// offset spreads groups over their interval, stably by file and name.
func (g *Group) offset() time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(g.File + "\x00" + g.Name))
	// Whole milliseconds: evaluation times are sample timestamps.
	return time.Duration(h.Sum64()%uint64(max(1, g.Interval.Milliseconds()))) * time.Millisecond
}

// nextEval is the first aligned evaluation time at or after t.
func (g *Group) nextEval(t time.Time) time.Time {
	off := g.offset()
	base := t.Add(-off).Truncate(g.Interval).Add(off)
	if base.Before(t) {
		base = base.Add(g.Interval)
	}
	return base
}

func (g *Group) run() {
	defer close(g.done)
	next := g.nextEval(g.r.opts.Now())
	first := true
	for {
		wait := next.Sub(g.r.opts.Now())
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-g.stop:
				t.Stop()
				return
			case <-t.C:
			}
		} else {
			select {
			case <-g.stop:
				return
			default:
			}
		}
		if first {
			g.restore(next)
			first = false
		}
		g.Eval(context.Background(), next)
		next = next.Add(g.Interval)
		if now := g.r.opts.Now(); now.After(next) {
			missed := int64(now.Sub(next)/g.Interval) + 1
			g.mu.Lock()
			g.missed += missed
			g.mu.Unlock()
			g.r.m.missed.WithLabelValues(g.metricKey()).Add(float64(missed))
			g.r.opts.Logger.Warn("rule group missed evaluations", "group", g.Name, "missed", missed)
			next = next.Add(time.Duration(missed) * g.Interval)
		}
	}
}

// restore reads the active-since times of alerts that were pending or
// firing before a restart, so that `for` does not start over. A group that
// replaced a running one on reload carried its state over (restored is
// nil): there is nothing to restore, as Prometheus restores only at start.
func (g *Group) restore(ts time.Time) {
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
		res, err := g.r.eng.Instant(context.Background(), g.tenant(), q, ts.UnixMilli())
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

// Eval evaluates every rule of the group, in order, at ts.
func (g *Group) Eval(ctx context.Context, ts time.Time) {
	start := time.Now()
	var b storage.Batch
	var toSend []*Alert
	for _, rl := range g.Rules {
		t0 := time.Now()
		var err error
		if rl.Kind == "recording" {
			err = g.evalRecording(ctx, rl, ts, &b)
		} else {
			var send []*Alert
			send, err = g.evalAlerting(ctx, rl, ts, &b)
			toSend = append(toSend, send...)
		}
		g.r.m.evals.WithLabelValues(g.metricKey()).Inc()
		rl.mu.Lock()
		rl.lastEval, rl.evalDur = ts, time.Since(t0)
		if err != nil {
			g.r.m.failures.WithLabelValues(g.metricKey()).Inc()
			rl.health, rl.lastErr = "err", err.Error()
			g.r.opts.Logger.Warn("rule evaluation failed", "group", g.Name, "rule", rl.Def.Name(), "err", err)
		} else {
			rl.health, rl.lastErr = "ok", ""
		}
		rl.mu.Unlock()
		// Later rules of the group read what earlier ones recorded.
		if len(b.Series) > 0 {
			if err := g.r.w.Write(ctx, g.tenant(), &b); err != nil {
				g.r.opts.Logger.Error("writing rule results", "group", g.Name, "err", err)
			}
			b = storage.Batch{}
		}
	}
	g.mu.Lock()
	g.last, g.dur = ts, time.Since(start)
	g.restored = nil
	g.mu.Unlock()
	g.r.m.duration.WithLabelValues(g.metricKey()).Set(g.dur.Seconds())
	g.r.m.last.WithLabelValues(g.metricKey()).Set(float64(ts.UnixMilli()) / 1000)
	if len(toSend) > 0 && g.r.notifier != nil {
		g.r.notifier.Send(toSend)
	}
}

func (g *Group) evalRecording(ctx context.Context, rl *Rule, ts time.Time, b *storage.Batch) error {
	res, err := g.r.eng.Instant(ctx, g.tenant(), rl.Def.Expr, ts.Add(-g.QueryOffset).UnixMilli())
	if err != nil {
		return err
	}
	var series []query.Series
	switch res.Type {
	case query.ValueScalar:
		series = []query.Series{{Metric: labels.EmptyLabels(), Points: []query.Point{res.Scalar}}}
	case query.ValueVector:
		series = res.Series
	default:
		return fmt.Errorf("rule result is a %s, not a vector or scalar", res.Type)
	}
	if g.Limit > 0 && len(series) > g.Limit {
		return fmt.Errorf("exceeded limit of %d with %d series", g.Limit, len(series))
	}
	seen := map[string]labels.Labels{}
	for _, s := range series {
		lb := labels.NewBuilder(s.Metric)
		lb.Set(model.MetricNameLabel, rl.Def.Record)
		for k, v := range g.Labels {
			lb.Set(k, v)
		}
		for k, v := range rl.Def.Labels {
			lb.Set(k, v)
		}
		ls := lb.Labels()
		k := ls.String()
		if _, dup := seen[k]; dup {
			return errors.New("vector contains metrics with the same labelset after applying rule labels")
		}
		seen[k] = ls
		b.Add(ls, storage.Sample{T: ts.UnixMilli(), V: s.Points[0].F})
	}
	rl.mu.Lock()
	rl.markStale(b, seen, ts.UnixMilli())
	rl.mu.Unlock()
	return nil
}

func (g *Group) evalAlerting(ctx context.Context, rl *Rule, ts time.Time, b *storage.Batch) ([]*Alert, error) {
	res, err := g.r.eng.Instant(ctx, g.tenant(), rl.Def.Expr, ts.Add(-g.QueryOffset).UnixMilli())
	if err != nil {
		return nil, err
	}
	if res.Type != query.ValueVector {
		return nil, fmt.Errorf("alerting rule result is a %s, not a vector", res.Type)
	}
	tms := ts.UnixMilli()
	current := map[string]*Alert{}
	for _, s := range res.Series {
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
	if g.Limit > 0 && len(current) > g.Limit {
		rl.mu.Lock()
		rl.active = map[string]*Alert{}
		rl.mu.Unlock()
		return nil, fmt.Errorf("exceeded limit of %d with %d alerts", g.Limit, len(current))
	}

	rl.mu.Lock()
	defer rl.mu.Unlock()
	var events []Event
	for key, cur := range current {
		a := rl.active[key]
		if a == nil || a.State == StateInactive {
			activeAt := ts
			g.mu.Lock()
			if t, ok := g.restored[key]; ok {
				activeAt = t
			}
			g.mu.Unlock()
			a = &Alert{Labels: cur.Labels, State: StatePending, ActiveAt: activeAt,
				GeneratorURL: g.r.opts.ExternalURL + "/graph?g0.expr=" + urlEscape(rl.Def.Expr)}
			rl.active[key] = a
			events = append(events, Event{Tenant: g.tenant(), Alert: a, From: StateInactive, To: StatePending, At: ts})
		}
		a.Value, a.Annotations = cur.Value, cur.Annotations
		a.KeepFiringSince = time.Time{}
		if a.State == StatePending && ts.Sub(a.ActiveAt) >= time.Duration(rl.Def.For) {
			a.State, a.FiredAt = StateFiring, ts
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
			events = append(events, Event{Tenant: g.tenant(), Alert: a, From: StateFiring, To: StateInactive, At: ts})
		case StateInactive:
			if ts.Sub(a.ResolvedAt) > 15*time.Minute {
				delete(rl.active, key)
			}
		}
	}
	// ALERTS and ALERTS_FOR_STATE, and what to send.
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
	// The history of transitions, kept as a series.
	for _, e := range events {
		lb := labels.NewBuilder(e.Alert.Labels)
		lb.Set(model.MetricNameLabel, "ALERTS_TRANSITIONS")
		lb.Set("transition_from", string(e.From))
		lb.Set("transition_to", string(e.To))
		b.Add(lb.Labels(), storage.Sample{T: tms, V: 1})
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

// Alerts returns the active alerts of every rule, firing and pending.
func (r *Ruler) Alerts() []*Alert { return r.alerts("") }

// alerts returns the active alerts of one tenant's rules ("": all).
func (r *Ruler) alerts(tenant string) []*Alert {
	var out []*Alert
	for _, g := range r.Groups() {
		if tenant != "" && g.tenant() != tenant {
			continue
		}
		for _, rl := range g.Rules {
			rl.mu.Lock()
			for _, a := range rl.active {
				if a.State != StateInactive {
					c := *a
					out = append(out, &c)
				}
			}
			rl.mu.Unlock()
		}
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i].Labels, out[j].Labels) < 0 })
	return out
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
