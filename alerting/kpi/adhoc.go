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
// timeleft()) and the forecast points. It forecasts as of at, from the
// history up to at only, as it would have then; at risk (on the wrong
// side, or likely to breach), with its contributors; a zero at (or one after
// the engine's now) is now. Errors wrap ErrInvalid or ErrNoForecast.
func (e *Engine) Forecast(ctx context.Context, d Definition, at time.Time) (*Evaluation, error) {
	if d.Step != 0 {
		d.Interval = d.Step
	}
	if err := d.Validate(); err != nil {
		return nil, errkind.Mark(err, ErrInvalid)
	}
	now := e.asOf(at)
	ev, _, err := e.assess(ctx, &d, now)
	if err != nil {
		return nil, errkind.Mark(err, ErrNoForecast)
	}
	ev.KPI = ""
	if ev.breaching || ev.Probability >= d.WarnProbability {
		e.explain(ctx, &d, ev, now)
	}
	if ev.ETA != nil {
		ev.TimeToBreach = model.Duration(max(ev.ETA.Sub(now), 0)).String()
	}
	return ev, nil
}
