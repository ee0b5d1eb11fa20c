package web

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/emsdb/tsdb/alerting/kpi"
	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/internal/errkind"
)

// kpis serves the KPI API: /api/v1/kpis, /api/v1/kpis/{name},
// /api/v1/kpis/{name}/chart.svg and ad hoc forecasts at /api/v1/forecast.
type kpis struct {
	e *kpi.Engine // nil: no KPIs configured
}

func (h *kpis) on(f func(r *Request, tenant string) (any, error)) Handler {
	return func(r *Request) (any, error) {
		if h.e == nil {
			return nil, errKPIsOff
		}
		tenant, err := r.Tenant()
		if err != nil {
			return nil, err
		}
		return f(r, tenant)
	}
}

// kpiView is a definition as the API shows it (durations as text).
func kpiView(d kpi.Definition) map[string]any {
	dur := duration.String
	return map[string]any{"name": d.Name, "expr": d.Expr, "target": d.Target, "direction": d.Direction,
		"interval": dur(d.Interval), "horizon": dur(d.Horizon), "step": dur(d.Step), "history": dur(d.History),
		"seasonality": d.Seasonality, "labels": d.Labels, "cis": d.CIs, "impact_expr": d.ImpactExpr,
		"warn_probability": d.WarnProbability, "warn_at_once": d.WarnAtOnce, "confirm": d.Confirm, "urgency": d.Urgency, "cause_window": dur(d.CauseWindow),
		"runbook_url": d.RunbookURL, "actions": d.Actions, "deadline": d.Deadline}
}

// finite replaces NaN and infinities, which JSON cannot carry, by nil.
func finite(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

func evalView(ev *kpi.Evaluation, withPoints bool) map[string]any {
	if ev == nil {
		return nil
	}
	scores := []map[string]any{}
	for _, s := range ev.Scores {
		scores = append(scores, map[string]any{"model": s.Model, "mae": finite(s.MAE), "mape": finite(s.MAPE), "error": s.Err})
	}
	out := map[string]any{"at": ev.At, "value": ev.Value, "state": ev.State, "model": ev.Model, "scores": scores,
		"breach_probability": ev.Probability, "eta": ev.ETA, "eta_early": ev.ETAEarly, "eta_late": ev.ETALate,
		"time_to_breach": ev.TimeToBreach, "impact": ev.Impact, "period_steps": ev.PeriodSteps, "transition": ev.Transition,
		"incident": ev.Incident, "holiday": ev.Holiday, "contributors": ev.Contributors, "deadline": ev.Deadline}
	if withPoints {
		hist := make([][2]float64, len(ev.History))
		for i, p := range ev.History {
			hist[i] = [2]float64{float64(p.T) / 1000, p.F}
		}
		out["history"], out["forecast"] = hist, ev.Forecast
	}
	return out
}

func (h *kpis) list(r *Request, tenant string) (any, error) {
	out := []map[string]any{}
	for _, x := range h.e.Definitions(tenant) {
		m := map[string]any{"definition": kpiView(x["definition"].(kpi.Definition)), "last": evalView(x["last"].(*kpi.Evaluation), false),
			"open_incident": x["incident"]}
		if w, _ := x["warnings"].([]string); len(w) > 0 {
			m["warnings"] = w
		}
		if f, ok := x["failure"].(*kpi.Failure); ok {
			m["failure"] = f
		}
		out = append(out, m)
	}
	return out, nil
}

// get serves /api/v1/kpis/{name}: the definition and the last
// evaluation, or with time= the evaluation as it would have been then
// (history up to then only; nothing is written).
func (h *kpis) get(r *Request, tenant string) (any, error) {
	name := r.Param("name")
	at, err := asOf(r)
	if err != nil {
		return nil, err
	}
	if at.IsZero() {
		ev, d, err := h.e.Last(tenant, name)
		if err != nil {
			return nil, notFound("no KPI %s", name)
		}
		m := map[string]any{"definition": kpiView(*d), "last": evalView(ev, true)}
		if f := h.e.Failing(tenant, name); f != nil {
			m["failure"] = f
		}
		return m, nil
	}
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, d, err := h.e.EvaluateAt(c, tenant, name, at)
	if errors.Is(err, kpi.ErrUnknown) {
		return nil, notFound("no KPI %s", name)
	}
	if err != nil {
		return nil, errkind.Mark(err, kpi.ErrNoForecast)
	}
	return map[string]any{"definition": kpiView(*d), "as_of": evalView(ev, true)}, nil
}

// asOf reads the time= of an as-of evaluation (RFC 3339 or Unix
// seconds); zero when there is none.
func asOf(r *Request) (time.Time, error) {
	s := r.Arg("time")
	if s == "" {
		return time.Time{}, nil
	}
	ms, err := parseTime(s, 0)
	if err != nil {
		return time.Time{}, badData("invalid parameter \"time\": %v", err)
	}
	return time.UnixMilli(ms).UTC(), nil
}

func (h *kpis) chart(r *Request, tenant string) (any, error) {
	name := r.Param("name")
	ev, d, err := h.e.Last(tenant, name)
	if err != nil {
		return nil, notFound("no KPI %s", name)
	}
	if ev == nil {
		return nil, notFound("KPI %s has not been evaluated yet", name)
	}
	return body{contentType: "image/svg+xml", b: kpi.Chart(d, ev)}, nil
}

// forecast serves /api/v1/forecast: an ad hoc forecast of any
// expression (query, target, direction above|below, horizon, step,
// history, seasonality), e.g. "disk full in 3 days"; with time=, as it
// would have been then.
func (h *kpis) forecast(r *Request, tenant string) (any, error) {
	d := kpi.Definition{Name: "adhoc", Tenant: tenant, Expr: r.Arg("query"), Direction: r.Arg("direction"), Seasonality: r.Arg("seasonality"),
		Deadline: r.Arg("deadline")}
	var err error
	if d.Target, err = strconv.ParseFloat(r.Arg("target"), 64); err != nil {
		return nil, badData("target: a number is required")
	}
	for _, f := range []struct {
		name string
		to   *time.Duration
	}{{"horizon", &d.Horizon}, {"step", &d.Step}, {"history", &d.History}} {
		if s := r.Arg(f.name); s != "" {
			v, err := duration.Parse(s)
			if err != nil {
				return nil, badData("%s: %v", f.name, err)
			}
			*f.to = v
		}
	}
	at, err := asOf(r)
	if err != nil {
		return nil, err
	}
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, err := h.e.Forecast(c, d, at)
	if err != nil {
		return nil, err
	}
	out := evalView(ev, false)
	out["forecast"] = ev.Forecast
	if ev.ETA != nil {
		out["time_left_seconds"] = ev.ETA.Sub(ev.At).Seconds()
	}
	return out, nil
}
