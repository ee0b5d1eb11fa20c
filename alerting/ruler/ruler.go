// Package ruler evaluates Prometheus rule groups: recording rules write
// their results back to storage, alerting rules keep alert state (pending,
// firing, kept firing, resolved) and notify Alertmanagers.
package ruler

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	// Evaluated, when set, learns after each group evaluation how many
	// rules were evaluated for a tenant and how many alerts were handed
	// to the notifier (for usage metering). It must not block.
	Evaluated func(tenant string, rules, alertsSent int)
	// Paused starts the Ruler paused: groups are loaded but not evaluated
	// until Resume (a cluster node that does not lead).
	Paused bool
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
	paused bool // groups are loaded but not run

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
	return &Ruler{eng: eng, w: w, notifier: n, opts: o, externalURL: u, m: newMetrics(o.Registerer), paused: o.Paused}
}

// Pause stops evaluating: every group stops (its evaluation in flight is
// cancelled) and its alert state is dropped; the groups stay loaded, and
// Load and SetAPIGroups keep replacing them, without running them. In a
// cluster the node that stops leading pauses; the next leader restores
// the alerts' `for` state from ALERTS_FOR_STATE when it resumes.
func (r *Ruler) Pause() {
	r.setMu.Lock()
	defer r.setMu.Unlock()
	r.mu.Lock()
	r.paused = true
	old := r.groups
	fresh := map[*Group]*Group{}
	r.groups = make([]*Group, len(old))
	for i, g := range old {
		r.groups[i] = g.fresh()
		fresh[g] = r.groups[i]
	}
	r.mu.Unlock()
	// Load and SetAPIGroups pass these again: the fresh copies, not the
	// stopped groups.
	for _, gs := range [][]*Group{r.fileGroups, r.apiGroups} {
		for i, g := range gs {
			if f := fresh[g]; f != nil {
				gs[i] = f
			}
		}
	}
	for _, g := range old {
		g.halt()
	}
}

// Resume runs the loaded groups again, each restoring its alerts' `for`
// state from ALERTS_FOR_STATE at its first evaluation, as after a
// restart.
func (r *Ruler) Resume() {
	r.setMu.Lock()
	defer r.setMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.paused {
		return
	}
	r.paused = false
	for _, g := range r.groups {
		g.start()
	}
}

// OnEvent registers f to receive every alert transition.
func (r *Ruler) OnEvent(f func(Event)) {
	r.mu.Lock()
	r.events = append(r.events, f)
	r.mu.Unlock()
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
	paused := r.paused
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
		if !keep[g] || paused {
			continue // already running, or not to run
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
		g.start()
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
