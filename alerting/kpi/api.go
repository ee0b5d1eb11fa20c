package kpi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/apijson"
	"github.com/emsdb/tsdb/internal/tenancy"
)

// IsPath reports whether Handler serves path.
func IsPath(path string) bool {
	return path == "/api/v1/kpis" || strings.HasPrefix(path, "/api/v1/kpis/") || path == "/api/v1/forecast"
}

func reply(ctx *fasthttp.RequestCtx, data any) { apijson.Reply(ctx, fasthttp.StatusOK, data) }

var fail = apijson.Fail

// view is a definition as the API shows it (durations as text).
func view(d Definition) map[string]any {
	dur := func(x time.Duration) string { return model.Duration(x).String() }
	return map[string]any{"name": d.Name, "expr": d.Expr, "target": d.Target, "direction": d.Direction,
		"interval": dur(d.Interval), "horizon": dur(d.Horizon), "step": dur(d.Step), "history": dur(d.History),
		"seasonality": d.Seasonality, "labels": d.Labels, "cis": d.CIs, "impact_expr": d.ImpactExpr,
		"warn_probability": d.WarnProbability, "confirm": d.Confirm, "urgency": d.Urgency, "cause_window": dur(d.CauseWindow)}
}

// finite replaces NaN and infinities, which JSON cannot carry, by nil.
func finite(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

func evalView(ev *Evaluation, withPoints bool) map[string]any {
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
		"incident": ev.Incident}
	if withPoints {
		hist := make([][2]float64, len(ev.History))
		for i, p := range ev.History {
			hist[i] = [2]float64{float64(p.T) / 1000, p.F}
		}
		out["history"], out["forecast"] = hist, ev.Forecast
	}
	return out
}

// Handler serves GET /api/v1/kpis, /api/v1/kpis/{name},
// /api/v1/kpis/{name}/chart.svg and /api/v1/forecast (ad hoc forecasts of
// any expression, e.g. "disk full in 3 days").
func (e *Engine) Handler(ctx *fasthttp.RequestCtx, path string) {
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		fail(ctx, 400, "bad_data", err.Error())
		return
	}
	if !ctx.IsGet() && !(path == "/api/v1/forecast" && ctx.IsPost()) {
		fail(ctx, 405, "bad_data", "use GET")
		return
	}
	switch {
	case path == "/api/v1/forecast":
		e.adHoc(ctx, tenant)
	case path == "/api/v1/kpis":
		var out []map[string]any
		for _, x := range e.Definitions(tenant) {
			out = append(out, map[string]any{"definition": view(x["definition"].(Definition)), "last": evalView(x["last"].(*Evaluation), false)})
		}
		if out == nil {
			out = []map[string]any{}
		}
		reply(ctx, out)
	default:
		rest := strings.TrimPrefix(path, "/api/v1/kpis/")
		name, chart := strings.CutSuffix(rest, "/chart.svg")
		ev, d, err := e.Last(tenant, name)
		if errors.Is(err, ErrUnknown) {
			fail(ctx, 404, "not_found", "no KPI "+name)
			return
		}
		if chart {
			if ev == nil {
				fail(ctx, 404, "not_found", "KPI "+name+" has not been evaluated yet")
				return
			}
			ctx.SetContentType("image/svg+xml")
			ctx.SetBody(Chart(d, ev))
			return
		}
		reply(ctx, map[string]any{"definition": view(*d), "last": evalView(ev, true)})
	}
}

// adHoc forecasts any expression: query, target, direction (above|below),
// horizon, step, history, seasonality; the answer has the model, its
// scores, the probability of crossing within the horizon and the time
// left (as Zabbix's timeleft()).
func (e *Engine) adHoc(ctx *fasthttp.RequestCtx, tenant string) {
	arg := func(name string) string {
		if v := ctx.QueryArgs().Peek(name); len(v) > 0 {
			return string(v)
		}
		return string(ctx.PostArgs().Peek(name))
	}
	d := Definition{Name: "adhoc", Tenant: tenant, Expr: arg("query"), Direction: arg("direction"), Seasonality: arg("seasonality")}
	var err error
	if d.Target, err = strconv.ParseFloat(arg("target"), 64); err != nil {
		fail(ctx, 400, "bad_data", "target: a number is required")
		return
	}
	for _, f := range []struct {
		name string
		to   *time.Duration
	}{{"horizon", &d.Horizon}, {"step", &d.Step}, {"history", &d.History}} {
		if s := arg(f.name); s != "" {
			v, err := model.ParseDuration(s)
			if err != nil {
				fail(ctx, 400, "bad_data", fmt.Sprintf("%s: %v", f.name, err))
				return
			}
			*f.to = time.Duration(v)
		}
	}
	if d.Step != 0 {
		d.Interval = d.Step
	}
	if err := d.Validate(); err != nil {
		fail(ctx, 400, "bad_data", err.Error())
		return
	}
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := e.opts.Now()
	y, ts, pts, err := history(c, e.q, tenant, d.Expr, now, d.History, d.Step)
	if err != nil {
		fail(ctx, 422, "execution", err.Error())
		return
	}
	sel, a, period, err := Predict(&d, y)
	if err != nil {
		fail(ctx, 422, "execution", err.Error())
		return
	}
	last := ts[len(ts)-1]
	ev := &Evaluation{At: now, Value: pts[len(pts)-1].F, Model: sel.Model, Scores: sel.Scores, PeriodSteps: period, Probability: a.Probability}
	if a.ETA > 0 {
		t := time.UnixMilli(last + int64(a.ETA)*d.Step.Milliseconds())
		ev.ETA, ev.TimeToBreach = &t, model.Duration(max(t.Sub(now), 0)).String()
	}
	ev.Forecast = points(sel.Forecast, last, d.Step)
	out := evalView(ev, false)
	out["forecast"] = ev.Forecast
	if ev.ETA != nil {
		out["time_left_seconds"] = ev.ETA.Sub(now).Seconds()
	}
	reply(ctx, out)
}
