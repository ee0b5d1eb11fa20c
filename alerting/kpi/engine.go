package kpi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/alerting/forecast"
	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// Incidents is the ITSM layer as the KPI engine uses it (itsm.Manager).
type Incidents interface {
	Raise(tenant string, x itsm.External, at time.Time) (*itsm.Incident, bool)
	Clear(tenant, key, reason string, at time.Time) bool
	ProbableCauses(tenant string, kpiLabels map[string]string, cis []string, turn time.Time, window time.Duration) []itsm.ProbableCause
}

// Options configures an Engine; zero fields take defaults.
type Options struct {
	Logger      *slog.Logger
	Now         func() time.Time
	ExternalURL string // for the forecast chart links in incidents
	// Calendars are the tenants' business calendars (holidays), at most
	// one per tenant.
	Calendars []Calendar
	// Store, when set, keeps each KPI's tracker and open incident under
	// kpis/<tenant>/<name>, written as they change and read when Run
	// starts: a restarted engine, or a new leader in a cluster (where
	// Store is the replicated state), continues where the last one
	// stopped rather than from a fresh tracker.
	Store Store
}

// Store is a durable key-value store (storage.DB, or a cluster's
// replicated state).
type Store interface {
	PutKV(key string, value []byte) error
	ListKV(prefix string) (map[string][]byte, error)
}

// storePrefix is where Options.Store keeps the KPIs' state.
const storePrefix = "kpis/"

// kept is a KPI's state in Options.Store.
type kept struct {
	Tracker  TrackerState `json:"tracker"`
	Incident string       `json:"incident,omitempty"`
}

// Engine evaluates KPIs on their intervals.
type Engine struct {
	q    query.Evaluator
	w    storage.Writer
	inc  Incidents // nil: no incidents, only series
	opts Options
	cals map[string]*Calendar // by tenant

	// NB: kpis is fixed by New and only read afterwards, so it needs
	// no lock; each kpiState has its own.
	kpis []*kpiState
}

type kpiState struct {
	mu      sync.Mutex // one evaluation at a time
	def     Definition
	tracker *Tracker
	last    *Evaluation
	fresh   bool     // no evaluation since start: incidents may be left open
	failure *Failure // the running failure of evaluations, nil when the last one worked
	// incident is the open predicted-breach or breach incident raised
	// since start ("" when none).
	incident string
	// warnings are the definition's loose ends found at load (no CI).
	warnings []string
	// saved is what Options.Store last took for it (nil: nothing yet).
	saved []byte
}

// ciMatcher is what Incidents may also do: name the CI an incident would
// be opened on (itsm.Manager.CIOf).
type ciMatcher interface {
	CIOf(labels map[string]string, ci string) string
}

// Failure is why a KPI's evaluations fail: the error of the last one,
// since when they have failed and how many did.
type Failure struct {
	Error string    `json:"error"`
	Since time.Time `json:"since"`
	Count int       `json:"count"`
}

// ForecastPoint is one step of a forecast.
type ForecastPoint struct {
	T       int64   `json:"t"` // ms
	Mid     float64 `json:"mid"`
	Lower80 float64 `json:"lower80"`
	Upper80 float64 `json:"upper80"`
	Lower95 float64 `json:"lower95"`
	Upper95 float64 `json:"upper95"`
}

// Evaluation is the outcome of one KPI evaluation.
type Evaluation struct {
	KPI         string           `json:"kpi"`
	At          time.Time        `json:"at"`
	Value       float64          `json:"value"`
	Target      float64          `json:"target"`
	Direction   string           `json:"direction"`
	State       State            `json:"state"`
	Model       string           `json:"model"`
	Scores      []forecast.Score `json:"scores"`
	PeriodSteps int              `json:"period_steps"`
	Probability float64          `json:"breach_probability"`
	// ETA is the expected breach time (mean forecast crosses the target);
	// ETAEarly/ETALate bracket it with the 80% interval.
	ETA          *time.Time      `json:"eta,omitempty"`
	ETAEarly     *time.Time      `json:"eta_early,omitempty"`
	ETALate      *time.Time      `json:"eta_late,omitempty"`
	TimeToBreach string          `json:"time_to_breach,omitempty"`
	Impact       *float64        `json:"impact,omitempty"`
	History      []query.Point   `json:"-"`
	Forecast     []ForecastPoint `json:"-"`
	// Holiday is set when the evaluation falls on a holiday of the
	// tenant's calendar: the KPI is not judged against its target.
	Holiday bool `json:"holiday,omitempty"`
	// Deadline is the next deadline a KPI with one is judged at.
	Deadline *time.Time `json:"deadline,omitempty"`
	// breaching is whether the evaluation finds the KPI past its target
	// (on the wrong side outside holidays; with a deadline, at today's
	// deadline once it passed).
	breaching bool
	// Contributors break the KPI's change down by the labels of what it
	// sums, when it is at risk (state other than ok) and its expression
	// is a sum or a ratio of sums.
	Contributors *Contributors `json:"contributors,omitempty"`
	Transition   string        `json:"transition"`
	Incident     string        `json:"incident,omitempty"`
}

// New returns an engine for the definitions (validated by the caller).
func New(defs []Definition, q query.Evaluator, w storage.Writer, inc Incidents, opts *Options) (*Engine, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e := &Engine{q: q, w: w, inc: inc, opts: o, cals: map[string]*Calendar{}}
	for _, c := range o.Calendars {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if e.cals[c.Tenant] != nil {
			return nil, fmt.Errorf("calendar %s: defined twice", c.Tenant)
		}
		e.cals[c.Tenant] = &c
	}
	seen := map[string]bool{}
	for _, d := range defs {
		if err := d.Validate(); err != nil {
			return nil, err
		}
		if seen[d.Tenant+"/"+d.Name] {
			return nil, fmt.Errorf("kpi %s: defined twice", d.Name)
		}
		seen[d.Tenant+"/"+d.Name] = true
		k := &kpiState{def: d, tracker: NewTracker(d.WarnProbability, d.WarnAtOnce, d.Confirm), fresh: true}
		if m, ok := inc.(ciMatcher); ok && inc != nil {
			k.warnings = ciWarnings(&d, m)
			for _, w := range k.warnings {
				o.Logger.Warn("kpi: "+w, "kpi", d.Name)
			}
		}
		e.kpis = append(e.kpis, k)
	}
	return e, nil
}

// ciWarnings says when a KPI's incidents would have no CI (so no owner
// group, impact or propagation): a CI it names that is not configured,
// or labels that no CI's selector matches.
func ciWarnings(d *Definition, m ciMatcher) []string {
	var out []string
	for _, ci := range d.CIs {
		if m.CIOf(nil, ci) == "" {
			out = append(out, fmt.Sprintf("kpi %s names CI %s, which is not configured", d.Name, ci))
		}
	}
	if len(d.CIs) == 0 && m.CIOf(d.Labels, "") == "" {
		out = append(out, fmt.Sprintf("kpi %s: its labels %v match no CI: its incidents get no CI, owner group or impact (add cis: or labels a CI's selector matches)", d.Name, d.Labels))
	}
	return out
}

// Run evaluates every KPI on its interval until ctx ends, after taking
// back the state Options.Store keeps.
func (e *Engine) Run(ctx context.Context) {
	e.restore()
	var wg sync.WaitGroup
	for _, k := range e.kpis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(k.def.Interval)
			defer t.Stop()
			for {
				_, _ = e.Evaluate(ctx, k.def.Tenant, k.def.Name) // failures are logged and kept by Evaluate
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
}

func (e *Engine) find(tenant, name string) *kpiState {
	for _, k := range e.kpis {
		if k.def.Tenant == tenant && k.def.Name == name {
			return k
		}
	}
	return nil
}

// ErrUnknown reports an unknown KPI.
var ErrUnknown = errors.New("kpi: no such KPI")

// Evaluate runs one evaluation of a KPI at the engine's now: forecast,
// output series, incidents.
func (e *Engine) Evaluate(ctx context.Context, tenant, name string) (*Evaluation, error) {
	k := e.find(tenant, name)
	if k == nil {
		return nil, ErrUnknown
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	d := &k.def
	now := e.opts.Now()
	ev, a, err := e.assess(ctx, d, now)
	if err != nil {
		if ctx.Err() == nil {
			e.failed(k, err, now)
		}
		return nil, fmt.Errorf("kpi %s: %w", d.Name, err)
	}
	if k.failure != nil {
		e.opts.Logger.Info("kpi evaluations work again", "kpi", d.Name, "failed", k.failure.Count, "for", now.Sub(k.failure.Since).Round(time.Second))
		k.failure = nil
	}
	var eta time.Time
	if ev.ETA != nil {
		eta = *ev.ETA
	}
	tr := k.tracker.Observe(now, ev.breaching, a.Probability, eta)
	ev.State, ev.Transition = k.tracker.State, tr.String()
	ev.breached()
	if ev.State != StateOK {
		since := now
		if ev.State == StateWarning && !k.tracker.TurnedAt.IsZero() {
			since = k.tracker.TurnedAt
		}
		e.explain(ctx, d, ev, since)
	}
	if id := e.incidents(k, ev, tr, now); id != "" {
		k.incident = id
	}
	if tr == Cancel || tr == Recover {
		k.incident = ""
	}
	ev.Incident = k.incident
	k.fresh = false
	k.last = ev
	e.save(k)
	if err := e.write(ctx, d, ev, now); err != nil {
		return ev, fmt.Errorf("kpi %s: writing outputs: %w", d.Name, err)
	}
	return ev, nil
}

// failed records a failed evaluation of k; the log says so when the error
// changes, not at every evaluation. k.mu is held.
func (e *Engine) failed(k *kpiState, err error, now time.Time) {
	f := k.failure
	if f == nil {
		f = &Failure{Since: now}
		k.failure = f
	}
	if f.Error != err.Error() {
		e.opts.Logger.Warn("kpi evaluation failed", "kpi", k.def.Name, "err", err)
	}
	f.Error = err.Error()
	f.Count++
}

// asOf is the time of an evaluation as of at: at, or now when at is
// zero or later than now (the future has no history yet).
func (e *Engine) asOf(at time.Time) time.Time {
	now := e.opts.Now()
	if at.IsZero() || at.After(now) {
		return now
	}
	return at
}

// EvaluateAt evaluates a KPI as it would have been at at, from its
// history up to at only, without side effects: no outputs are written,
// no incident is touched and the live evaluation's state is kept. The
// state is a fresh tracker's after the confirm evaluations up to at, one
// interval apart, so a warning shows only if it would have been
// confirmed by then. A zero at (or one after now) is now.
func (e *Engine) EvaluateAt(ctx context.Context, tenant, name string, at time.Time) (*Evaluation, *Definition, error) {
	k := e.find(tenant, name)
	if k == nil {
		return nil, nil, ErrUnknown
	}
	k.mu.Lock()
	d := k.def
	k.mu.Unlock()
	at = e.asOf(at)
	tr := NewTracker(d.WarnProbability, d.WarnAtOnce, d.Confirm)
	var ev *Evaluation
	for i := max(d.Confirm, 1) - 1; i >= 0; i-- {
		t := at.Add(-time.Duration(i) * d.Interval)
		x, a, err := e.assess(ctx, &d, t)
		if err != nil {
			if i > 0 {
				continue // too little history before at: judge on what there is
			}
			return nil, &d, fmt.Errorf("kpi %s: %w", d.Name, err)
		}
		var eta time.Time
		if x.ETA != nil {
			eta = *x.ETA
		}
		tr.Observe(t, x.breaching, a.Probability, eta)
		ev = x
	}
	ev.State = tr.State
	ev.breached()
	if ev.State != StateOK {
		since := at
		if ev.State == StateWarning && !tr.TurnedAt.IsZero() {
			since = tr.TurnedAt
		}
		e.explain(ctx, &d, ev, since)
	}
	return ev, &d, nil
}

// breached drops the expected breach of an evaluation whose KPI is past
// its target: it is not expected, it happened.
func (ev *Evaluation) breached() {
	if ev.State == StateBreached {
		ev.ETA, ev.ETAEarly, ev.ETALate, ev.TimeToBreach = nil, nil, nil, ""
	}
}

// explain sets ev's contributors: the KPI's change from a baseline before
// turn (when the forecast turned, or now) to ev.At, broken down. The
// baseline is the cause window or a step before turn, whichever is
// longer. A failure is logged, not returned: the evaluation stands.
func (e *Engine) explain(ctx context.Context, d *Definition, ev *Evaluation, turn time.Time) {
	c, err := contributors(ctx, e.q, d, turn.Add(-max(d.CauseWindow, d.Step)), ev.At)
	if err != nil {
		e.opts.Logger.Warn("kpi contributors failed", "kpi", d.Name, "err", err)
		return
	}
	ev.Contributors = c
}

// assess forecasts d as of at from the history up to at, without side
// effects: no tracker, no incidents, no outputs. It also returns the
// assessment of the chosen forecast.
func (e *Engine) assess(ctx context.Context, d *Definition, at time.Time) (*Evaluation, forecast.Assessment, error) {
	g, err := history(ctx, e.q, d.Tenant, d.Expr, at, d.History, d.Step)
	if err != nil {
		return nil, forecast.Assessment{}, err
	}
	// NB: a holiday's points are replaced by an ordinary season's before
	// fitting; the history shown stays as recorded.
	cal := e.cals[d.Tenant]
	sel, a, period, err := Predict(d, cal.Ordinary(d, g.ts, g.y))
	if err != nil {
		return nil, a, err
	}
	last := g.ts[len(g.ts)-1]
	ev := &Evaluation{KPI: d.Name, At: at, Value: g.pts[len(g.pts)-1].F, Target: d.Target, Direction: d.Direction,
		Model: sel.Model, Scores: sel.Scores, PeriodSteps: period, Probability: a.Probability, History: g.pts, Holiday: cal.Holiday(at)}
	// The value now: the last sample within the step before at, which
	// may be newer than the grid's last point.
	if res, err := e.q.Instant(ctx, d.Tenant, sampled(d.Expr, max(d.Step, minWindow)), at.UnixMilli()); err == nil && len(res.Series) == 1 && len(res.Series[0].Points) > 0 {
		ev.Value = res.Series[0].Points[0].F
	}
	when := func(step int) *time.Time {
		if step == 0 {
			return nil
		}
		t := time.UnixMilli(last + int64(step)*d.Step.Milliseconds())
		return &t
	}
	ev.ETA, ev.ETAEarly, ev.ETALate = when(a.ETA), when(a.ETAEarly), when(a.ETALate)
	if ev.ETA != nil {
		ev.TimeToBreach = itsm.FormatDuration(max(ev.ETA.Sub(at), 0))
	}
	ev.Forecast = points(sel.Forecast, last, d.Step)
	ev.breaching = d.wrongSide(ev.Value) && !ev.Holiday
	if m, ok := d.deadlineMinutes(); ok {
		if err := e.judgeDeadline(ctx, d, m, cal, sel, &a, ev, last); err != nil {
			return nil, a, err
		}
	}
	if d.ImpactExpr != "" {
		if res, err := e.q.Instant(ctx, d.Tenant, d.ImpactExpr, at.UnixMilli()); err == nil {
			if v, ok := scalarOf(res); ok {
				ev.Impact = &v
			}
		} else {
			e.opts.Logger.Warn("kpi impact_expr failed", "kpi", d.Name, "err", err)
		}
	}
	return ev, a, nil
}

// judgeDeadline judges a KPI with a deadline: breaching when today's
// deadline passed on a working day with the value then on the wrong
// side; the probability, and the ETA, are those of the next deadline's
// step (none when it is beyond the horizon).
func (e *Engine) judgeDeadline(ctx context.Context, d *Definition, minutes int, cal *Calendar, sel forecast.Selection, a *forecast.Assessment, ev *Evaluation, last int64) error {
	ev.breaching = false
	if dl, ok := cal.passedDeadline(ev.At, minutes); ok {
		res, err := e.q.Instant(ctx, d.Tenant, sampled(d.Expr, max(d.Step, minWindow)), dl.UnixMilli())
		if err != nil {
			return fmt.Errorf("the value at the deadline: %w", err)
		}
		if len(res.Series) == 1 && len(res.Series[0].Points) > 0 {
			ev.breaching = d.wrongSide(res.Series[0].Points[0].F)
		}
	}
	ev.ETA, ev.ETAEarly, ev.ETALate, ev.TimeToBreach = nil, nil, nil, ""
	a.ETA, a.ETAEarly, a.ETALate, a.Probability = 0, 0, 0, 0
	next, ok := cal.nextDeadline(ev.At, minutes)
	if !ok {
		return nil
	}
	ev.Deadline = &next
	st := d.Step.Milliseconds()
	i := int((next.UnixMilli()-last+st-1)/st) - 1 // the step at or after the deadline
	if i >= len(sel.Forecast.Mean) {
		return nil // beyond the horizon
	}
	i = max(i, 0)
	a.Probability = forecast.ProbabilityAt(sel, i, d.Target, d.direction())
	ev.Probability = a.Probability
	if d.wrongSide(sel.Forecast.Mean[i]) {
		ev.ETA, a.ETA = &next, i+1
		ev.TimeToBreach = itsm.FormatDuration(max(next.Sub(ev.At), 0))
	}
	return nil
}

// Predict fits the definition's models to y (the KPI on its step grid,
// oldest first) and judges the chosen forecast against the target; it
// also returns the seasonal period used, in steps.
func Predict(d *Definition, y []float64) (forecast.Selection, forecast.Assessment, int, error) {
	period := d.period(y)
	sel, err := forecast.Select(y, int(d.Horizon/d.Step), period)
	if err != nil {
		return sel, forecast.Assessment{}, period, err
	}
	return sel, forecast.AssessSelection(sel, d.Target, d.direction()), period, nil
}

// points lays a forecast out on the step grid after last (ms).
func points(f forecast.Forecast, last int64, step time.Duration) []ForecastPoint {
	out := make([]ForecastPoint, len(f.Mean))
	for i, m := range f.Mean {
		s := f.Sigma[i]
		out[i] = ForecastPoint{T: last + int64(i+1)*step.Milliseconds(), Mid: m,
			Lower80: m - forecast.Z80*s, Upper80: m + forecast.Z80*s, Lower95: m - forecast.Z95*s, Upper95: m + forecast.Z95*s}
	}
	return out
}

func scalarOf(r *query.Result) (float64, bool) {
	switch {
	case r.Type == query.ValueScalar:
		return r.Scalar.F, true
	case len(r.Series) > 0 && len(r.Series[0].Points) > 0:
		sum := 0.0
		for _, s := range r.Series {
			sum += s.Points[len(s.Points)-1].F
		}
		return sum, true
	}
	return 0, false
}

// write stores the evaluation as ordinary series at now.
func (e *Engine) write(ctx context.Context, d *Definition, ev *Evaluation, now time.Time) error {
	ts := now.UnixMilli()
	var b storage.Batch
	add := func(name string, v float64, extra ...string) {
		lb := labels.NewBuilder(labels.FromMap(d.Labels))
		lb.Set(model.MetricNameLabel, name)
		lb.Set("kpi", d.Name)
		for i := 0; i+1 < len(extra); i += 2 {
			lb.Set(extra[i], extra[i+1])
		}
		b.Add(lb.Labels(), storage.Sample{T: ts, V: v})
	}
	add("kpi_value", ev.Value)
	add("kpi_target", d.Target)
	add("kpi_state", map[State]float64{StateOK: 0, StateWarning: 1, StateBreached: 2}[ev.State])
	add("kpi_breach_probability", ev.Probability)
	if ev.ETA != nil {
		add("kpi_time_to_breach_seconds", math.Max(ev.ETA.Sub(now).Seconds(), 0))
	}
	if n := len(ev.Forecast); n > 0 {
		f, hz := ev.Forecast[n-1], model.Duration(d.Horizon).String()
		add("kpi_forecast", f.Mid, "bound", "mid", "horizon", hz)
		add("kpi_forecast", f.Lower80, "bound", "lower", "horizon", hz)
		add("kpi_forecast", f.Upper80, "bound", "upper", "horizon", hz)
		add("kpi_forecast", f.Lower95, "bound", "lower95", "horizon", hz)
		add("kpi_forecast", f.Upper95, "bound", "upper95", "horizon", hz)
	}
	for _, s := range ev.Scores {
		if s.Err != "" {
			continue
		}
		add("kpi_model_mae", s.MAE, "model", s.Model)
		if !math.IsNaN(s.MAPE) {
			add("kpi_model_mape", s.MAPE, "model", s.Model)
		}
		sel := 0.0
		if s.Model == ev.Model {
			sel = 1
		}
		add("kpi_model_selected", sel, "model", s.Model)
	}
	if ev.Impact != nil {
		add("kpi_impact", *ev.Impact)
	}
	return e.w.Write(ctx, d.Tenant, &b)
}

// incidents turns a transition into ITSM actions and returns the id of
// the incident it raised or updated.
func (e *Engine) incidents(k *kpiState, ev *Evaluation, tr Transition, now time.Time) string {
	if e.inc == nil {
		return ""
	}
	d := &k.def
	predictedKey, breachKey := "kpi:"+d.Name+"/predicted", "kpi:"+d.Name+"/breach"
	word := map[string]string{"above": "fall below", "below": "rise above"}[d.Direction]
	details := map[string]any{"kpi": d.Name, "expr": d.Expr, "value": ev.Value, "target": d.Target, "direction": d.Direction,
		"breach_probability": round(ev.Probability, 3), "model": ev.Model, "scores": ev.Scores, "horizon": model.Duration(d.Horizon).String()}
	if ev.ETA != nil {
		details["eta"] = ev.ETA.UTC().Format(time.RFC3339)
		details["time_to_breach"] = ev.TimeToBreach
	}
	if ev.Impact != nil {
		details["impact"] = *ev.Impact
	}
	if c := ev.Contributors; c != nil && len(c.Top) > 0 {
		details["contributors"] = c.Top
		details["contributors_since"] = c.Since.UTC().Format(time.RFC3339)
	}
	if len(d.Actions) > 0 {
		details["suggested_actions"] = d.Actions
	}
	links := map[string]string{"forecast_chart": e.opts.ExternalURL + "/api/v1/kpis/" + d.Name + "/chart.svg"}
	if d.RunbookURL != "" {
		links["runbook"] = d.RunbookURL
	}
	lbls := map[string]string{"kpi": d.Name}
	for k, v := range d.Labels {
		lbls[k] = v
	}
	switch tr {
	case Warn, Update:
		when := "within " + model.Duration(d.Horizon).String()
		if ev.ETA != nil {
			when = "around " + ev.ETA.UTC().Format("2006-01-02 15:04 UTC") + " (in " + ev.TimeToBreach + ")"
		}
		x := itsm.External{Key: predictedKey, Kind: "predicted_breach", Urgency: d.Urgency, Labels: lbls, Details: details, Links: links,
			Title: fmt.Sprintf("KPI %s predicted to %s %g %s (p=%.2f, %s)", d.Name, word, d.Target, when, ev.Probability, ev.Model),
			Note:  "forecast moved: breach " + when}
		if tr == Warn {
			x.Causes = e.inc.ProbableCauses(d.Tenant, d.Labels, d.CIs, k.tracker.TurnedAt, d.CauseWindow)
		}
		inc, _ := e.inc.Raise(d.Tenant, x, now)
		return inc.ID
	case Cancel:
		e.inc.Clear(d.Tenant, predictedKey, fmt.Sprintf("forecast recovered: breach probability %.2f", ev.Probability), now)
	case Breach:
		turn := now
		if !k.tracker.TurnedAt.IsZero() && now.Sub(k.tracker.TurnedAt) < d.Horizon {
			turn = k.tracker.TurnedAt
		}
		x := itsm.External{Key: breachKey, Kind: "kpi_breach", Urgency: "high", Labels: lbls, Details: details, Links: links,
			Title:  fmt.Sprintf("KPI %s breached: %g is %s the target %g", d.Name, ev.Value, map[string]string{"above": "below", "below": "above"}[d.Direction], d.Target),
			Causes: e.inc.ProbableCauses(d.Tenant, d.Labels, d.CIs, turn, d.CauseWindow)}
		inc, _ := e.inc.Raise(d.Tenant, x, now)
		e.inc.Clear(d.Tenant, predictedKey, "became a real breach: "+inc.ID, now)
		return inc.ID
	case Recover:
		e.inc.Clear(d.Tenant, breachKey, fmt.Sprintf("KPI back on target: %g", ev.Value), now)
	case None:
		if k.fresh { // after a restart: close what the forecast no longer supports
			if ev.State != StateBreached {
				e.inc.Clear(d.Tenant, breachKey, "KPI on target after restart", now)
			}
			if ev.State == StateOK && ev.Probability < k.tracker.ClearProbability {
				e.inc.Clear(d.Tenant, predictedKey, "forecast recovered (after restart)", now)
			}
		}
	}
	return ""
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// Definitions lists the KPIs of a tenant with their last evaluation.
func (e *Engine) Definitions(tenant string) []map[string]any {
	out := []map[string]any{}
	for _, k := range e.kpis {
		if k.def.Tenant != tenant {
			continue
		}
		k.mu.Lock()
		m := map[string]any{"definition": k.def, "last": k.last, "incident": k.incident, "warnings": k.warnings}
		if k.failure != nil {
			f := *k.failure
			m["failure"] = &f
		}
		out = append(out, m)
		k.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i]["definition"].(Definition).Name < out[j]["definition"].(Definition).Name
	})
	return out
}

// Failing returns why the KPI's evaluations fail, nil when the last one
// worked (or none ran yet).
func (e *Engine) Failing(tenant, name string) *Failure {
	k := e.find(tenant, name)
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failure == nil {
		return nil
	}
	f := *k.failure
	return &f
}

// Last returns a KPI's last evaluation.
func (e *Engine) Last(tenant, name string) (*Evaluation, *Definition, error) {
	k := e.find(tenant, name)
	if k == nil {
		return nil, nil, ErrUnknown
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.def
	return k.last, &d, nil
}

// storeKey is where Options.Store keeps d's state.
func storeKey(d *Definition) string { return storePrefix + d.Tenant + "/" + d.Name }

// restore takes back every KPI's tracker and open incident from
// Options.Store. A KPI found there is no longer fresh: its incident is
// known and follows the tracker's transitions.
func (e *Engine) restore() {
	if e.opts.Store == nil {
		return
	}
	all, err := e.opts.Store.ListKV(storePrefix)
	if err != nil {
		e.opts.Logger.Error("kpi: state not read; trackers start afresh", "err", err)
		return
	}
	for _, k := range e.kpis {
		k.mu.Lock()
		if b, ok := all[storeKey(&k.def)]; ok {
			var s kept
			if err := json.Unmarshal(b, &s); err != nil {
				e.opts.Logger.Warn("kpi: kept state unreadable; tracker starts afresh", "kpi", k.def.Name, "err", err)
			} else {
				k.tracker.Restore(s.Tracker)
				k.incident, k.fresh, k.saved = s.Incident, false, b
			}
		}
		k.mu.Unlock()
	}
}

// save writes k's state to Options.Store when it changed. A failure is
// logged: the evaluation stands, and the next one tries again.
func (e *Engine) save(k *kpiState) {
	if e.opts.Store == nil {
		return
	}
	b, err := json.Marshal(kept{Tracker: k.tracker.Snapshot(), Incident: k.incident})
	if err != nil || bytes.Equal(b, k.saved) {
		return
	}
	if err := e.opts.Store.PutKV(storeKey(&k.def), b); err != nil {
		e.opts.Logger.Warn("kpi: state not kept", "kpi", k.def.Name, "err", err)
		return
	}
	k.saved = b
}
