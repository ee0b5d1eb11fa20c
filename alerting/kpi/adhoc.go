package kpi

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/common/model"

	"github.com/emsdb/tsdb/internal/errkind"
)

// ErrInvalid wraps every reason an ad hoc forecast's definition is
// refused (the caller's fault).
var ErrInvalid = errors.New("kpi: invalid definition")

// ErrNoForecast wraps why an expression could not be forecast: it
// returns no data, or too little history for any model.
var ErrNoForecast = errors.New("kpi: cannot forecast")

// Forecast forecasts any expression once, as an ad hoc KPI of tenant
// (d.Tenant): the model, its scores, the probability of crossing the
// target within the horizon, the time of the crossing (as Zabbix's
// timeleft()) and the forecast points. Errors wrap ErrInvalid or
// ErrNoForecast.
func (e *Engine) Forecast(ctx context.Context, d Definition) (*Evaluation, error) {
	if d.Step != 0 {
		d.Interval = d.Step
	}
	if err := d.Validate(); err != nil {
		return nil, errkind.Mark(err, ErrInvalid)
	}
	now := e.opts.Now()
	y, ts, pts, err := history(ctx, e.q, d.Tenant, d.Expr, now, d.History, d.Step)
	if err != nil {
		return nil, errkind.Mark(err, ErrNoForecast)
	}
	sel, a, period, err := Predict(&d, y)
	if err != nil {
		return nil, errkind.Mark(err, ErrNoForecast)
	}
	last := ts[len(ts)-1]
	ev := &Evaluation{At: now, Value: pts[len(pts)-1].F, Model: sel.Model, Scores: sel.Scores, PeriodSteps: period, Probability: a.Probability}
	if a.ETA > 0 {
		t := time.UnixMilli(last + int64(a.ETA)*d.Step.Milliseconds())
		ev.ETA, ev.TimeToBreach = &t, model.Duration(max(t.Sub(now), 0)).String()
	}
	ev.Forecast = points(sel.Forecast, last, d.Step)
	return ev, nil
}
