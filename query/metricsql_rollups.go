package query

import (
	"fmt"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"
)

// MetricsQL's rollup functions that need no sample before the window, as
// VictoriaMetrics's app/vmselect/promql/rollup.go computes them.
//
// TODO(mql): the rollups that start from the sample before the window
// (integrate, lifetime, ascent_over_time, rollup_rate, mode_over_time,
// whose answer for distinct values is that sample) need the window to
// carry it: callRange selects nothing before the window today.

func init() {
	filter := func(f func(v, x float64) bool, sum, share bool) rangeFn {
		return func(w []Point, _, _, _ int64, s []float64) (float64, bool) {
			if len(w) == 0 {
				return 0, false
			}
			r := 0.0
			for _, p := range w {
				if f(p.F, s[0]) {
					if sum {
						r += p.F
					} else {
						r++
					}
				}
			}
			if share {
				r /= float64(len(w))
			}
			return r, true
		}
	}
	eq := func(v, x float64) bool { return v == x }
	for name, def := range map[string]rangeFuncDef{
		"count_ne_over_time": {0, 2, false, filter(func(v, x float64) bool { return v != x }, false, false)},
		"share_eq_over_time": {0, 2, false, filter(eq, false, true)},
		"sum_eq_over_time":   {0, 2, false, filter(eq, true, false)},
		"sum_gt_over_time":   {0, 2, false, filter(func(v, x float64) bool { return v > x }, true, false)},
		"sum_le_over_time":   {0, 2, false, filter(func(v, x float64) bool { return v <= x }, true, false)},
	} {
		rangeFuncs[name] = def
	}
}

// callMetricsQLRollup evaluates quantiles_over_time; ok is false for any
// other name.
func (ev *evaluator) callMetricsQLRollup(fe *metricsql.FuncExpr) (Matrix, bool) {
	if fe.Name != "quantiles_over_time" {
		return nil, false
	}
	if len(fe.Args) < 3 {
		ev.fail(badData("expected at least 3 arguments in call to %q, got %d", fe.Name, len(fe.Args)))
	}
	label := stringArg(ev, fe, 0)
	var out Matrix
	for _, a := range fe.Args[1 : len(fe.Args)-1] {
		phi := scalarAt(ev.eval(a), 0)
		def := rangeFuncDef{matrixArg: 0, nargs: 1, keepName: true, fn: func(w []Point, _, _, _ int64, _ []float64) (float64, bool) {
			if len(w) == 0 {
				return 0, false
			}
			return vmQuantile(phi, values(w)), true
		}}
		m := ev.callRange(&metricsql.FuncExpr{Name: fe.Name, Args: fe.Args[len(fe.Args)-1:], KeepMetricNames: fe.KeepMetricNames}, def)
		for i := range m {
			m[i].Metric = labels.NewBuilder(m[i].Metric).Set(label, fmt.Sprintf("%g", phi)).Labels()
		}
		out = append(out, m...)
	}
	return ev.checkDuplicates(out), true
}
