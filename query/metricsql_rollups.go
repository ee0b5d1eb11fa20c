package query

// MetricsQL's rollup functions that need no sample before the window, as
// VictoriaMetrics's app/vmselect/promql/rollup.go computes them.
// Those that do are in metricsql_vmrollup.go.

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
