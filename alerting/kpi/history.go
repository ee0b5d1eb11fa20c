package kpi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metricsql"

	"github.com/emsdb/tsdb/alerting/forecast"
	"github.com/emsdb/tsdb/query"
)

// minWindow is the shortest window a KPI's samples are looked for in: the
// engine's default lookback, so a fine step reads a series as a range
// query always has.
const minWindow = 5 * time.Minute

// sampled rewrites expr so that every series it reads directly (a bare
// selector, outside any range or rollup function) is read as the last
// sample within window before each evaluation time:
// `last_over_time(sel[window])`. A KPI recorded once an hour or once a
// day is then seen at every step, not only within the engine's 5-minute
// lookback after each sample. Range selectors, subqueries and rollup
// functions keep their own windows. An expression it cannot rewrite is
// returned unchanged.
func sampled(expr string, window time.Duration) string {
	e, err := query.Parse(expr)
	if err != nil {
		return expr
	}
	w, err := metricsql.Parse(fmt.Sprintf("x[%ds]", int64(window/time.Second)))
	if err != nil {
		return expr
	}
	win := w.(*metricsql.RollupExpr).Window
	changed := false
	var rw func(x metricsql.Expr) metricsql.Expr
	rw = func(x metricsql.Expr) metricsql.Expr {
		switch x := x.(type) {
		case *metricsql.MetricExpr:
			changed = true
			return &metricsql.FuncExpr{Name: "last_over_time", Args: []metricsql.Expr{&metricsql.RollupExpr{Expr: x, Window: win}}}
		case *metricsql.RollupExpr:
			if _, ok := x.Expr.(*metricsql.MetricExpr); ok && x.Window == nil && !x.ForSubquery() {
				// sel offset 1h, sel @ t: an instant selector too.
				changed = true
				y := *x
				y.Window = win
				return &metricsql.FuncExpr{Name: "last_over_time", Args: []metricsql.Expr{&y}}
			}
			return x // a range or a subquery: its own window
		case *metricsql.BinaryOpExpr:
			x.Left, x.Right = rw(x.Left), rw(x.Right)
		case *metricsql.AggrFuncExpr:
			for i := range x.Args {
				x.Args[i] = rw(x.Args[i])
			}
		case *metricsql.FuncExpr:
			if metricsql.IsRollupFunc(x.Name) {
				return x // rate(x) in MetricsQL: an implicit window
			}
			for i := range x.Args {
				x.Args[i] = rw(x.Args[i])
			}
		}
		return x
	}
	e = rw(e)
	if !changed {
		return expr
	}
	return string(e.AppendString(nil))
}

// grid is a KPI's history on its step grid.
type grid struct {
	y   []float64     // values, gaps filled linearly, oldest first
	ts  []int64       // their times (ms), on multiples of the step
	pts []query.Point // the points as queried (no filling)
}

// history reads the KPI over (at−hist, at] as the samples are: at every
// multiple of step (Unix time, so an hourly grid falls on the hour and a
// daily one on midnight UTC) up to at, the last value within the step
// (at least minWindow) before it. Gaps are filled linearly. Nothing after
// at is read, so an evaluation as of a past time sees what it would have
// seen then.
func history(ctx context.Context, q query.Evaluator, tenant, expr string, at time.Time, hist, step time.Duration) (grid, error) {
	st := step.Milliseconds()
	end := at.UnixMilli()
	end -= mod(end, st)
	start := end - (hist.Milliseconds()/st-1)*st
	res, err := q.Range(ctx, tenant, sampled(expr, max(step, minWindow)), start, end, st)
	if err != nil {
		return grid{}, err
	}
	if len(res.Series) == 0 {
		return grid{}, errors.New("the expression returns no data")
	}
	if len(res.Series) > 1 {
		return grid{}, fmt.Errorf("the expression returns %d series; a KPI is one series (aggregate it, e.g. sum(…))", len(res.Series))
	}
	pts := res.Series[0].Points
	if len(pts) < 2 {
		return grid{}, fmt.Errorf("%w: %d points", forecast.ErrShort, len(pts))
	}
	first := pts[0].T
	n := int((end-first)/st) + 1
	g := grid{y: make([]float64, n), ts: make([]int64, n), pts: pts}
	j := 0
	for i := range n {
		t := first + int64(i)*st
		g.ts[i] = t
		for j+1 < len(pts) && pts[j+1].T <= t {
			j++
		}
		switch {
		case pts[j].T == t || j+1 >= len(pts):
			g.y[i] = pts[j].F
		default: // interpolate between pts[j] and pts[j+1]
			a, b := pts[j], pts[j+1]
			g.y[i] = a.F + (b.F-a.F)*float64(t-a.T)/float64(b.T-a.T)
		}
	}
	return g, nil
}

// mod is a modulo that is never negative (times before 1970).
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
