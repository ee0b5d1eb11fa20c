package query

import (
	"time"

	"github.com/VictoriaMetrics/metricsql"
)

// instantStep is the step of an instant query, as VictoriaMetrics takes
// it (its `step` parameter's default): what `[1i]` and an implicit window
// are in an instant query. A range query's step is its own.
const instantStep = int64(5 * time.Minute / time.Millisecond)

// windowStep is the step that `i` durations (`[5i]`, `offset 2i`) and
// implicit windows count in.
func (ev *evaluator) windowStep() int64 {
	if ev.instant {
		return instantStep
	}
	return ev.interval
}

// oneStep is the window `[1i]`.
var oneStep = func() *metricsql.DurationExpr {
	e, err := metricsql.Parse("x[1i]")
	if err != nil {
		panic(err)
	}
	return e.(*metricsql.RollupExpr).Window
}()

// noArgs are the functions that take no argument.
var noArgs = map[string]bool{"time": true, "pi": true, "start": true, "end": true, "step": true, "now": true}

// implicitWindows gives a window to the range-vector argument of a range
// function that has none, as MetricsQL does: `absent_over_time(x)` is
// `absent_over_time(x[1i])`, one step. PromQL refuses such a
// query, so no PromQL answer changes. It also refuses arguments to the
// functions that take none (`time(x)`), as both Prometheus and
// VictoriaMetrics do.
//
// In a MetricsQL-only query (vm) the rollups VictoriaMetrics's way
// (vmRollupOfQuery) keep their bare selector: they find their window
// themselves, as VictoriaMetrics does.
func implicitWindows(e metricsql.Expr, vm bool) error {
	var err error
	walk(e, func(x metricsql.Expr) {
		fe, ok := x.(*metricsql.FuncExpr)
		if !ok {
			return
		}
		if noArgs[fe.Name] && len(fe.Args) > 0 && err == nil {
			err = badData("expected 0 argument(s) in call to %q, got %d", fe.Name, len(fe.Args))
		}
		i := -1
		if vm && vmRollupOfQuery(fe.Name) {
			return
		}
		if def, ok := rangeFuncs[fe.Name]; ok {
			i = def.matrixArg
		} else if fe.Name == "absent_over_time" {
			i = 0
		}
		if i < 0 || i >= len(fe.Args) {
			return
		}
		switch a := fe.Args[i].(type) {
		case *metricsql.MetricExpr:
			fe.Args[i] = &metricsql.RollupExpr{Expr: a, Window: oneStep}
		case *metricsql.RollupExpr:
			if _, isSel := a.Expr.(*metricsql.MetricExpr); isSel && a.Window == nil && !a.ForSubquery() {
				c := *a
				c.Window = oneStep
				fe.Args[i] = &c
			}
		}
	})
	return err
}
