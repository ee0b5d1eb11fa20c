package query

import (
	"math"
	"sort"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// MetricsQL's rollup functions whose names PromQL does not know, computed
// as VictoriaMetrics v1.151.0 computes them (app/vmselect/promql/rollup.go
// and eval.go): a query that uses one is MetricsQL-only, so it answers as
// VictoriaMetrics does.
//
// What differs from Prometheus's windows:
//   - the window (tEnd - window, tEnd] may come with the sample before it
//     (prev), when that sample is no older than the series' estimated
//     scrape interval (inflated, as getMaxPrevInterval does) before the
//     window's start; rate-like functions start from it. realPrev is the
//     sample before the window however old, realNext the one after it.
//   - a selector without brackets (`rollup_rate(x)`) gets a window of one
//     step, raised to the scrape interval for the functions that divide by
//     a duration (vmCanAdjustWindow).
//   - some functions first rewrite the whole series (counter resets
//     removed, differences, derivatives, intervals), before the windows.
//   - an argument that is neither a selector nor a range selector is a
//     subquery with the query's step, as `(expr)[window:step]`.

// vmWindow is what one step's rollup sees: VictoriaMetrics's
// rollupFuncArg.
type vmWindow struct {
	prev     float64 // the sample before the window, NaN when too old or none
	prevT    int64   // its time, or the window's start minus the largest gap
	vs       []float64
	ts       []int64
	realPrev float64 // the sample before the window however old, NaN if none
	realNext float64 // the sample after the window, NaN if none
	curr     int64   // the window's end
	idx      int     // the step
	window   int64
}

type vmRollupFn func(a *vmWindow) float64

// vmEmitFn computes the several series one input series gives at a step
// (histogram_over_time, count_values_over_time, quantiles_over_time):
// emit(v, x) sets x at this step in the series whose label is v.
type vmEmitFn func(a *vmWindow, emit func(v string, x float64))

// vmRollupConf is one output of a rollup over an input series:
// VictoriaMetrics's rollupConfig.
type vmRollupConf struct {
	tag   string // the "rollup" label's value, "" for none
	fn    vmRollupFn
	emit  vmEmitFn
	label string // the label emit's series differ by
}

// vmRollups are the functions callVMRollup answers: the MetricsQL-only
// names of VictoriaMetrics's rollupFuncs.
var vmRollups = map[string]bool{
	"aggr_over_time": true, "ascent_over_time": true, "changes_prometheus": true,
	"count_values_over_time": true, "default_rollup": true, "delta_prometheus": true,
	"deriv_fast": true, "descent_over_time": true, "duration_over_time": true,
	"histogram_over_time": true, "hoeffding_bound_lower": true, "hoeffding_bound_upper": true,
	"ideriv": true, "increase_prometheus": true, "increase_pure": true, "integrate": true,
	"lifetime": true, "mode_over_time": true, "outlier_iqr_over_time": true,
	"quantiles_over_time": true, "rate_prometheus": true, "rollup": true,
	"rollup_candlestick": true, "rollup_delta": true, "rollup_deriv": true,
	"rollup_increase": true, "rollup_rate": true, "rollup_scrape_interval": true,
	"scrape_interval": true, "stale_samples_over_time": true, "timestamp_with_name": true,
	"tlast_change_over_time": true,
}

// vmRollupFuncs are VictoriaMetrics's rollupAggrFuncs: the functions
// aggr_over_time may name, and the one-argument rollups of vmRollups.
var vmRollupFuncs = map[string]vmRollupFn{
	"absent_over_time":        vmAbsent,
	"ascent_over_time":        vmAscent,
	"avg_over_time":           vmAvg,
	"changes":                 vmChanges,
	"changes_prometheus":      vmChangesPrometheus,
	"count_over_time":         vmCount,
	"decreases_over_time":     vmResets,
	"default_rollup":          vmLast,
	"delta":                   vmDelta,
	"delta_prometheus":        vmDeltaPrometheus,
	"deriv":                   vmDerivSlow,
	"deriv_fast":              vmDerivFast,
	"descent_over_time":       vmDescent,
	"distinct_over_time":      vmDistinct,
	"first_over_time":         vmFirst,
	"geomean_over_time":       vmGeomean,
	"idelta":                  vmIdelta,
	"ideriv":                  vmIderiv,
	"increase":                vmDelta,
	"increase_prometheus":     vmDeltaPrometheus,
	"increase_pure":           vmIncreasePure,
	"increases_over_time":     vmIncreases,
	"integrate":               vmIntegrate,
	"irate":                   vmIderiv,
	"iqr_over_time":           vmOutlierIQR,
	"lag":                     vmLag,
	"last_over_time":          vmLast,
	"lifetime":                vmLifetime,
	"mad_over_time":           func(a *vmWindow) float64 { return vmMAD(a.vs) },
	"max_over_time":           vmMax,
	"median_over_time":        func(a *vmWindow) float64 { return vmQuantile(0.5, a.vs) },
	"min_over_time":           vmMin,
	"mode_over_time":          func(a *vmWindow) float64 { return vmMode(a.prev, append([]float64(nil), a.vs...)) },
	"outlier_iqr_over_time":   vmOutlierIQR,
	"present_over_time":       vmPresent,
	"range_over_time":         func(a *vmWindow) float64 { return vmMax(a) - vmMin(a) },
	"rate":                    vmDerivFast,
	"rate_prometheus":         vmDerivFastPrometheus,
	"rate_over_sum":           vmRateOverSum,
	"resets":                  vmResets,
	"scrape_interval":         vmScrapeInterval,
	"stale_samples_over_time": vmStaleSamples,
	"stddev_over_time":        func(a *vmWindow) float64 { return math.Sqrt(vmStdvar(a.vs)) },
	"stdvar_over_time":        func(a *vmWindow) float64 { return vmStdvar(a.vs) },
	"sum_over_time":           vmSum,
	"sum2_over_time":          vmSum2,
	"tfirst_over_time":        vmTfirst,
	"timestamp":               vmTlast,
	"timestamp_with_name":     vmTlast,
	"tlast_change_over_time":  vmTlastChange,
	"tlast_over_time":         vmTlast,
	"tmax_over_time":          vmTmax,
	"tmin_over_time":          vmTmin,
	"zscore_over_time":        vmZScore,
}

// vmNeedSilence are the rollups that read the samples up to 5 minutes
// before the first window too (VictoriaMetrics's
// needSilenceIntervalForRollupFunc), so that its prev is found.
var vmNeedSilence = map[string]bool{
	"ascent_over_time": true, "changes": true, "decreases_over_time": true, "default_rollup": true,
	"delta": true, "deriv_fast": true, "descent_over_time": true, "idelta": true, "ideriv": true,
	"increase": true, "increase_pure": true, "increases_over_time": true, "integrate": true,
	"irate": true, "lag": true, "lifetime": true, "rate": true, "resets": true, "rollup": true,
	"rollup_candlestick": true, "rollup_delta": true, "rollup_deriv": true, "rollup_increase": true,
	"rollup_rate": true, "rollup_scrape_interval": true, "scrape_interval": true,
	"tlast_change_over_time": true,
}

// vmCanAdjustWindow are the rollups whose implicit window grows to the
// scrape interval (VictoriaMetrics's rollupFuncsCanAdjustWindow).
var vmCanAdjustWindow = map[string]bool{
	"default_rollup": true, "deriv": true, "deriv_fast": true, "ideriv": true, "irate": true,
	"rate": true, "rate_over_sum": true, "rollup": true, "rollup_candlestick": true,
	"rollup_deriv": true, "rollup_rate": true, "rollup_scrape_interval": true,
	"scrape_interval": true, "timestamp": true,
}

// vmResetsRemoved are the rollups that see the series with its counter
// resets removed (VictoriaMetrics's rollupFuncsRemoveCounterResets).
var vmResetsRemoved = map[string]bool{
	"increase": true, "increase_prometheus": true, "increase_pure": true, "irate": true,
	"rate": true, "rate_prometheus": true, "rollup_increase": true, "rollup_rate": true,
}

// vmKeepName are the rollups that keep __name__ (VictoriaMetrics's
// rollupFuncsKeepMetricName).
var vmKeepName = map[string]bool{
	"avg_over_time": true, "default_rollup": true, "first_over_time": true, "geomean_over_time": true,
	"hoeffding_bound_lower": true, "hoeffding_bound_upper": true, "holt_winters": true,
	"iqr_over_time": true, "last_over_time": true, "max_over_time": true, "median_over_time": true,
	"min_over_time": true, "mode_over_time": true, "predict_linear": true, "quantile_over_time": true,
	"quantiles_over_time": true, "rollup": true, "rollup_candlestick": true, "timestamp_with_name": true,
}

// vmSilence is VictoriaMetrics's maxSilenceInterval: how far before the
// first window the rollups of vmNeedSilence read.
const vmSilence = 5 * 60 * 1000

// vmFilters are the rollups with a scalar second argument that count,
// sum or share the window's samples that pass a test.
var vmFilters = map[string]struct {
	test       func(v, x float64) bool
	sum, share bool
}{
	"count_eq_over_time": {func(v, x float64) bool { return v == x }, false, false},
	"count_gt_over_time": {func(v, x float64) bool { return v > x }, false, false},
	"count_le_over_time": {func(v, x float64) bool { return v <= x }, false, false},
	"count_ne_over_time": {func(v, x float64) bool { return v != x }, false, false},
	"share_eq_over_time": {func(v, x float64) bool { return v == x }, false, true},
	"share_gt_over_time": {func(v, x float64) bool { return v > x }, false, true},
	"share_le_over_time": {func(v, x float64) bool { return v <= x }, false, true},
	"sum_eq_over_time":   {func(v, x float64) bool { return v == x }, true, false},
	"sum_gt_over_time":   {func(v, x float64) bool { return v > x }, true, false},
	"sum_le_over_time":   {func(v, x float64) bool { return v <= x }, true, false},
}

// vmRollupsOfQuery are the rollups that answer as VictoriaMetrics's in a
// MetricsQL-only query (ev.vm), PromQL's names too: `rate(x)` and
// `avg_over_time(x[5i])` are not PromQL, so they need not answer as
// Prometheus would. absent_over_time stays Prometheus's (VictoriaMetrics
// answers it the same way).
func vmRollupOfQuery(name string) bool {
	if _, ok := vmFilters[name]; ok {
		return true
	}
	switch name {
	case "absent_over_time", "iqr_over_time":
		return false
	case "holt_winters", "predict_linear", "quantile_over_time":
		return true
	}
	_, ok := vmRollupFuncs[name]
	return ok || vmRollups[name]
}

// callVMRollup evaluates the functions of vmRollups, and in a
// MetricsQL-only query those of vmRollupOfQuery; ok is false for any
// other.
// isVMRollup reports whether callVMRollup evaluates the function name.
func (ev *evaluator) isVMRollup(name string) bool {
	return vmRollups[name] || (ev.vm && vmRollupOfQuery(name))
}

func (ev *evaluator) callVMRollup(fe *metricsql.FuncExpr) (Matrix, bool) {
	if !ev.isVMRollup(fe.Name) {
		return nil, false
	}
	argIdx := metricsql.GetRollupArgIdx(fe)
	if argIdx < 0 || argIdx >= len(fe.Args) {
		ev.fail(badData("unexpected number of args to %s(); got %d", fe.Name, len(fe.Args)))
	}
	confs, pre := ev.vmRollupConfs(fe, argIdx)
	step := ev.windowStep()
	re, ok := fe.Args[argIdx].(*metricsql.RollupExpr)
	if !ok {
		re = &metricsql.RollupExpr{Expr: fe.Args[argIdx]}
	}
	var window int64
	if re.Window != nil {
		if window = re.Window.Duration(step); window < 0 {
			ev.fail(badData("lookbehind window must be non-negative in %s", fe.AppendString(nil)))
		}
	}
	off, at := ev.offsetOf(re.Offset), ev.atTime(re.At)
	n := ev.numSteps()
	ends := make([]int64, n)
	for k := range ends {
		ends[k] = ev.refTime(k, off, at)
		if fe.Name == "rollup_candlestick" {
			// As VictoriaMetrics: `offset -step`, so that a candle is
			// the step after its time.
			ends[k] += step
		}
	}
	// A single point, as VictoriaMetrics evaluates an instant query and
	// an `@`: the largest gap before a window is then one step.
	single := ev.instant || at != nil
	series := ev.vmRollupInput(fe.Name, re, ends, window, step)
	keep := fe.KeepMetricNames || vmKeepName[fe.Name]
	var out Matrix
	for _, s := range series {
		pre(s.vs, s.ts)
		ls := s.ls
		if !keep {
			ls = ev.dropName(ls)
		}
		for _, c := range confs {
			if c.emit != nil {
				out = append(out, ev.vmEmit(c, ls, s.vs, s.ts, ends, window, step, single)...)
				continue
			}
			o := Series{Metric: ls}
			if c.tag != "" {
				o.Metric = labels.NewBuilder(ls).Set("rollup", c.tag).Labels()
			}
			vmDo(c.fn, fe.Name, s.vs, s.ts, ends, window, step, single, func(k int, x float64) {
				if !math.IsNaN(x) {
					o.Points = append(o.Points, Point{T: ev.stepTime(k), F: x})
				}
			})
			ev.spend(n + len(s.vs))
			ev.addSamples(len(o.Points))
			if len(o.Points) > 0 {
				out = append(out, o)
			}
		}
	}
	return ev.checkDuplicates(out), true
}

// vmSelector evaluates a selector (with its offset and @) in a
// MetricsQL-only query as VictoriaMetrics does, as default_rollup(e): the
// last sample within a step (or the scrape interval, if longer) rather
// than within the 5-minute lookback. NB: native histograms, which
// MetricsQL does not know, are left out.
func (ev *evaluator) vmSelector(e metricsql.Expr) Matrix {
	m, _ := ev.callVMRollup(&metricsql.FuncExpr{Name: "default_rollup", Args: []metricsql.Expr{e}})
	return m
}

// vmSeries is one input series of a rollup: its float samples.
type vmSeries struct {
	ls labels.Labels
	vs []float64
	ts []int64
}

// vmRollupInput reads the rollup's input: the selector's samples from
// where VictoriaMetrics reads them, or the subquery's points.
func (ev *evaluator) vmRollupInput(name string, re *metricsql.RollupExpr, ends []int64, window, step int64) []vmSeries {
	var m Matrix
	if me, ok := re.Expr.(*metricsql.MetricExpr); ok && !re.ForSubquery() {
		mint := ends[0] - max(window, step)
		if vmNeedSilence[name] {
			mint -= vmSilence
		}
		// Stale markers are dropped, except where they are counted.
		keepStale := name == "stale_samples_over_time" || name == "default_rollup"
		m = ev.selectSeries(me, mint, ends[len(ends)-1], !keepStale)
	} else {
		sqStep := step
		if re.Step != nil {
			if sqStep = re.Step.Duration(step); sqStep <= 0 {
				sqStep = step
			}
		}
		start, end := ends[0]-window-sqStep-vmSilence, ends[len(ends)-1]+sqStep
		// Aligned to the step, as VictoriaMetrics aligns subqueries.
		start -= ((start % sqStep) + sqStep) % sqStep
		if r := ((end % sqStep) + sqStep) % sqStep; r > 0 {
			end += sqStep - r
		}
		sub := *ev
		sub.start, sub.end, sub.interval, sub.instant = start, end, sqStep, false
		sub.checkSteps("subquery " + string(re.AppendString(nil)))
		inner := re.Expr
		if me, ok := inner.(*metricsql.MetricExpr); ok {
			// As VictoriaMetrics: x[w:s] is default_rollup(x)[w:s].
			inner = &metricsql.FuncExpr{Name: "default_rollup", Args: []metricsql.Expr{me}}
		}
		m = sub.eval(inner)
		ev.join(&sub)
	}
	out := make([]vmSeries, 0, len(m))
	for _, s := range m {
		ev.spend(1 + len(s.Points))
		vs := make([]float64, 0, len(s.Points))
		ts := make([]int64, 0, len(s.Points))
		for j, p := range s.Points {
			// VictoriaMetrics has no native histograms; a subquery's NaNs
			// are no samples.
			if s.H(j) != nil || (math.IsNaN(p.F) && !storage.IsStaleNaN(p.F)) {
				continue
			}
			vs = append(vs, p.F)
			ts = append(ts, p.T)
		}
		out = append(out, vmSeries{ls: s.Metric, vs: vs, ts: ts})
	}
	ev.release(m)
	return out
}

// vmDo is VictoriaMetrics's rollupConfig.doInternal: it places the window
// of every step over vs and ts and calls f(k, fn(window)).
func vmDo(fn vmRollupFn, name string, vs []float64, ts []int64, ends []int64, window, step int64, single bool, f func(k int, x float64)) {
	maxPrev := step
	if !single {
		maxPrev = vmMaxPrevInterval(vmScrapeIntervalOf(ts, step))
	}
	if window <= 0 {
		window = step
		if vmCanAdjustWindow[name] && window < maxPrev {
			window = maxPrev
		}
	}
	a := &vmWindow{window: window}
	i, j := 0, 0
	for k, end := range ends {
		start := end - window
		for i < len(ts) && ts[i] <= start {
			i++
		}
		j = max(j, i)
		for j < len(ts) && ts[j] <= end {
			j++
		}
		a.prev, a.prevT = math.NaN(), start-maxPrev
		if i < len(ts) && i > 0 && ts[i-1] > a.prevT {
			a.prev, a.prevT = vs[i-1], ts[i-1]
		}
		a.vs, a.ts = vs[i:j], ts[i:j]
		// VictoriaMetrics's lookback delta is 0 by default: the sample
		// before the window is real however old it is.
		a.realPrev, a.realNext = math.NaN(), math.NaN()
		if i > 0 {
			a.realPrev = vs[i-1]
		}
		if j < len(vs) {
			a.realNext = vs[j]
		}
		a.curr, a.idx = end, k
		f(k, fn(a))
	}
}

// vmEmit runs a rollup that gives several series per input series.
func (ev *evaluator) vmEmit(c vmRollupConf, ls labels.Labels, vs []float64, ts []int64, ends []int64, window, step int64, single bool) Matrix {
	byValue := map[string]int{}
	var out Matrix
	k := 0
	emit := func(v string, x float64) {
		i, ok := byValue[v]
		if !ok {
			i = len(out)
			byValue[v] = i
			out = append(out, Series{Metric: labels.NewBuilder(ls).Set(c.label, v).Labels()})
		}
		ev.addSamples(1)
		out[i].Points = append(out[i].Points, Point{T: ev.stepTime(k), F: x})
	}
	vmDo(func(a *vmWindow) float64 {
		k = a.idx
		ev.spend(1 + len(a.vs))
		c.emit(a, emit)
		return math.NaN()
	}, "", vs, ts, ends, window, step, single, func(int, float64) {})
	return out
}

// vmRollupConfs are the outputs of fe and the rewriting of each input
// series before its windows (VictoriaMetrics's getRollupConfigs).
func (ev *evaluator) vmRollupConfs(fe *metricsql.FuncExpr, argIdx int) ([]vmRollupConf, func(vs []float64, ts []int64)) {
	name := fe.Name
	nargs := func(lo, hi int) {
		if len(fe.Args) < lo || len(fe.Args) > hi {
			ev.fail(badData("unexpected number of args to %s(); got %d; want %d...%d", name, len(fe.Args), lo, hi))
		}
	}
	scalar := func(i int) func(k int) float64 {
		m := ev.eval(fe.Args[i])
		return func(k int) float64 { return scalarAt(m, k) }
	}
	pre := func([]float64, []int64) {}
	if vmResetsRemoved[name] {
		pre = func(vs []float64, ts []int64) { vmRemoveCounterResets(vs) }
	}
	tagged := func() []vmRollupConf {
		nargs(1, 2)
		tag := ""
		if len(fe.Args) == 2 {
			tag = stringArg(ev, fe, 1)
		}
		all := []vmRollupConf{{"min", vmMin, nil, ""}, {"max", vmMax, nil, ""}, {"avg", vmAvg, nil, ""}}
		if tag == "" {
			return all
		}
		for _, c := range all {
			if c.tag == tag {
				return []vmRollupConf{{fn: c.fn}}
			}
		}
		ev.fail(badData("unexpected second arg for %s: %q; want `min`, `max` or `avg`", fe.AppendString(nil), tag))
		return nil
	}
	then := func(first, next func(vs []float64, ts []int64)) func(vs []float64, ts []int64) {
		return func(vs []float64, ts []int64) { first(vs, ts); next(vs, ts) }
	}
	switch name {
	case "rollup":
		return tagged(), pre
	case "rollup_rate", "rollup_deriv":
		return tagged(), then(pre, vmDerivValues)
	case "rollup_increase", "rollup_delta":
		return tagged(), then(pre, func(vs []float64, _ []int64) { vmDeltaValues(vs) })
	case "rollup_scrape_interval":
		return tagged(), then(pre, func(vs []float64, ts []int64) {
			prev := math.NaN()
			for i, t := range ts {
				vs[i] = float64(t)/1000 - prev
				prev = float64(t) / 1000
			}
			if len(vs) > 1 {
				vs[0] = vs[1]
			}
		})
	case "rollup_candlestick":
		nargs(1, 2)
		all := []vmRollupConf{{"open", vmOpen, nil, ""}, {"close", vmClose, nil, ""}, {"low", vmLow, nil, ""}, {"high", vmHigh, nil, ""}}
		if len(fe.Args) == 1 {
			return all, pre
		}
		tag := stringArg(ev, fe, 1)
		for _, c := range all {
			if c.tag == tag {
				return []vmRollupConf{c}, pre
			}
		}
		ev.fail(badData("unexpected second arg for %s: %q; want `open`, `close`, `low` or `high`", fe.AppendString(nil), tag))
	case "aggr_over_time":
		nargs(2, 2)
		var names []string
		switch a := fe.Args[0].(type) {
		case *metricsql.StringExpr:
			names = append(names, a.S)
		case *metricsql.FuncExpr:
			if a.Name != "" {
				ev.fail(badData("%s cannot be passed to aggr_over_time(); expecting quoted aggregate function name or a list of quoted aggregate function names", a.AppendString(nil)))
			}
			for _, e := range a.Args {
				s, ok := e.(*metricsql.StringExpr)
				if !ok {
					ev.fail(badData("%s cannot be passed here; expecting quoted aggregate function name", e.AppendString(nil)))
				}
				names = append(names, s.S)
			}
		default:
			ev.fail(badData("%s cannot be passed to aggr_over_time(); expecting quoted aggregate function name or a list of quoted aggregate function names", a.AppendString(nil)))
		}
		if len(names) == 0 {
			ev.fail(badData("aggr_over_time() must contain at least a single aggregate function name"))
		}
		var confs []vmRollupConf
		for _, n := range names {
			fn, ok := vmRollupFuncs[n]
			if !ok || vmNotAggr[n] {
				ev.fail(badData("%q cannot be used in `aggr_over_time` function; expecting quoted aggregate function name", n))
			}
			if vmResetsRemoved[n] {
				pre = func(vs []float64, _ []int64) { vmRemoveCounterResets(vs) }
			}
			confs = append(confs, vmRollupConf{tag: n, fn: fn})
		}
		return confs, pre
	case "duration_over_time":
		nargs(2, 2)
		dmax := scalar(1)
		return []vmRollupConf{{fn: func(a *vmWindow) float64 {
			if len(a.ts) == 0 {
				return math.NaN()
			}
			prev, sum, lim := a.ts[0], int64(0), int64(dmax(a.idx)*1000)
			for _, t := range a.ts {
				if d := t - prev; d <= lim {
					sum += d
				}
				prev = t
			}
			return float64(sum) / 1000
		}}}, pre
	case "hoeffding_bound_lower", "hoeffding_bound_upper":
		nargs(2, 2)
		phi := scalar(0)
		sign := 1.0
		if name == "hoeffding_bound_lower" {
			sign = -1
		}
		return []vmRollupConf{{fn: func(a *vmWindow) float64 {
			bound, avg := vmHoeffding(a, phi(a.idx))
			return avg + sign*bound
		}}}, pre
	case "count_values_over_time":
		nargs(2, 2)
		label := stringArg(ev, fe, 0)
		return []vmRollupConf{{label: label, emit: func(a *vmWindow, emit func(string, float64)) {
			counts := map[string]float64{}
			var order []string
			for _, v := range a.vs {
				s := strconv.FormatFloat(v, 'g', -1, 64)
				if _, ok := counts[s]; !ok {
					order = append(order, s)
				}
				counts[s]++
			}
			for _, s := range order {
				emit(s, counts[s])
			}
		}}}, pre
	case "histogram_over_time":
		nargs(1, 1)
		var h metrics.Histogram
		return []vmRollupConf{{label: "vmrange", emit: func(a *vmWindow, emit func(string, float64)) {
			h.Reset()
			for _, v := range a.vs {
				h.Update(v)
			}
			h.VisitNonZeroBuckets(func(vmrange string, n uint64) { emit(vmrange, float64(n)) })
		}}}, pre
	case "quantiles_over_time":
		if len(fe.Args) < 3 {
			ev.fail(badData("unexpected number of args: %d; want at least 3 args", len(fe.Args)))
		}
		label := stringArg(ev, fe, 0)
		var phis []float64
		var strs []string
		for i := 1; i < len(fe.Args)-1; i++ {
			phi := scalar(i)(0)
			phis, strs = append(phis, phi), append(strs, strconv.FormatFloat(phi, 'g', -1, 64))
		}
		return []vmRollupConf{{label: label, emit: func(a *vmWindow, emit func(string, float64)) {
			if len(a.vs) == 0 {
				return
			}
			s := append([]float64(nil), a.vs...)
			sort.Float64s(s)
			for i, phi := range phis {
				emit(strs[i], vmQuantileSorted(phi, s))
			}
		}}}, pre
	case "holt_winters":
		nargs(3, 3)
		sf, tf := scalar(1), scalar(2)
		return []vmRollupConf{{fn: func(a *vmWindow) float64 {
			return vmHoltWinters(a, sf(a.idx), tf(a.idx))
		}}}, pre
	case "predict_linear":
		nargs(2, 2)
		secs := scalar(1)
		return []vmRollupConf{{fn: func(a *vmWindow) float64 {
			v, k := vmRegression(a)
			return v + k*secs(a.idx)
		}}}, pre
	case "quantile_over_time":
		nargs(2, 2)
		phi := scalar(0)
		return []vmRollupConf{{fn: func(a *vmWindow) float64 { return vmQuantile(phi(a.idx), a.vs) }}}, pre
	}
	if f, ok := vmFilters[name]; ok {
		nargs(2, 2)
		lim := scalar(1)
		return []vmRollupConf{{fn: func(a *vmWindow) float64 {
			if len(a.vs) == 0 {
				return math.NaN()
			}
			x, r := lim(a.idx), 0.0
			for _, v := range a.vs {
				if !f.test(v, x) {
					continue
				}
				if f.sum {
					r += v
				} else {
					r++
				}
			}
			if f.share {
				r /= float64(len(a.vs))
			}
			return r
		}}}, pre
	}
	nargs(1, 1)
	return []vmRollupConf{{fn: vmRollupFuncs[name]}}, pre
}

// vmNotAggr are the functions of vmRollupFuncs aggr_over_time refuses.
var vmNotAggr = map[string]bool{
	"changes_prometheus": true, "delta_prometheus": true, "increase_prometheus": true,
	"outlier_iqr_over_time": true, "rate_prometheus": true,
}

// vmScrapeIntervalOf is VictoriaMetrics's getScrapeInterval: the 0.6
// quantile of the last 20 intervals between samples.
func vmScrapeIntervalOf(ts []int64, def int64) int64 {
	if len(ts) < 2 {
		return def
	}
	prev := ts[len(ts)-1]
	ts = ts[:len(ts)-1]
	if len(ts) > 20 {
		ts = ts[len(ts)-20:]
	}
	d := make([]float64, 0, len(ts))
	for i := len(ts) - 1; i >= 0; i-- {
		d = append(d, float64(prev-ts[i]))
		prev = ts[i]
	}
	si := int64(vmQuantile(0.6, d))
	if si <= 0 {
		return def
	}
	return si
}

// vmMaxPrevInterval is VictoriaMetrics's getMaxPrevInterval: the scrape
// interval with room for jitter, more for short intervals.
func vmMaxPrevInterval(si int64) int64 {
	switch {
	case si <= 2000:
		return si + 4*si
	case si <= 4000:
		return si + 2*si
	case si <= 8000:
		return si + si
	case si <= 16000:
		return si + si/2
	case si <= 32000:
		return si + si/4
	}
	return si + si/8
}

// vmRemoveCounterResets is VictoriaMetrics's removeCounterResets with no
// staleness interval: after a drop the counter continues from where it
// was (a drop of less than an eighth counts as a partial reset).
func vmRemoveCounterResets(vs []float64) {
	if len(vs) == 0 {
		return
	}
	var correction float64
	prev := vs[0]
	for i, v := range vs {
		if d := v - prev; d < 0 {
			if -d*8 < prev {
				correction += prev - v
			} else {
				correction += prev
			}
		}
		prev = v
		vs[i] = v + correction
		if i > 0 && vs[i] < vs[i-1] {
			vs[i] = vs[i-1]
		}
	}
}

// vmDeltaValues replaces each value with the difference to the next (the
// last keeps the one before).
func vmDeltaValues(vs []float64) {
	if len(vs) == 0 {
		return
	}
	var d float64
	prev := vs[0]
	for i, v := range vs[1:] {
		d = v - prev
		vs[i] = d
		prev = v
	}
	vs[len(vs)-1] = d
}

// vmDerivValues replaces each value with the per-second slope to the
// next (the last keeps the one before).
func vmDerivValues(vs []float64, ts []int64) {
	if len(vs) == 0 {
		return
	}
	var d float64
	prev, prevT := vs[0], ts[0]
	for i, v := range vs[1:] {
		t := ts[i+1]
		if t == prevT {
			vs[i] = d
			continue
		}
		d = (v - prev) / (float64(t-prevT) / 1000)
		vs[i] = d
		prev, prevT = v, t
	}
	vs[len(vs)-1] = d
}

func vmAbsent(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return 1
	}
	return math.NaN()
}

func vmPresent(a *vmWindow) float64 {
	if len(a.vs) > 0 {
		return 1
	}
	return math.NaN()
}

func vmCount(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	return float64(len(a.vs))
}

func vmSum(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, v := range a.vs {
		s += v
	}
	return s
}

func vmSum2(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, v := range a.vs {
		s += v * v
	}
	return s
}

func vmAvg(a *vmWindow) float64 {
	return vmSum(a) / float64(len(a.vs))
}

func vmMin(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	m := a.vs[0]
	for _, v := range a.vs {
		if v < m {
			m = v
		}
	}
	return m
}

func vmMax(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	m := a.vs[0]
	for _, v := range a.vs {
		if v > m {
			m = v
		}
	}
	return m
}

func vmGeomean(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	p := 1.0
	for _, v := range a.vs {
		p *= v
	}
	return math.Pow(p, 1/float64(len(a.vs)))
}

func vmDistinct(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	m := map[float64]struct{}{}
	for _, v := range a.vs {
		m[v] = struct{}{}
	}
	return float64(len(m))
}

func vmFirst(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	return a.vs[0]
}

// vmLast is also default_rollup: the last sample, a stale marker too.
func vmLast(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	return a.vs[len(a.vs)-1]
}

func vmTfirst(a *vmWindow) float64 {
	if len(a.ts) == 0 {
		return math.NaN()
	}
	return float64(a.ts[0]) / 1000
}

func vmTlast(a *vmWindow) float64 {
	if len(a.ts) == 0 {
		return math.NaN()
	}
	return float64(a.ts[len(a.ts)-1]) / 1000
}

// vmTmin is the time of the last minimum.
func vmTmin(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	m, t := a.vs[0], a.ts[0]
	for i, v := range a.vs {
		if v <= m {
			m, t = v, a.ts[i]
		}
	}
	return float64(t) / 1000
}

// vmTmax is the time of the last maximum.
func vmTmax(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	m, t := a.vs[0], a.ts[0]
	for i, v := range a.vs {
		if v >= m {
			m, t = v, a.ts[i]
		}
	}
	return float64(t) / 1000
}

func vmTlastChange(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	last := a.vs[len(a.vs)-1]
	for i := len(a.vs) - 2; i >= 0; i-- {
		if a.vs[i] != last {
			return float64(a.ts[i+1]) / 1000
		}
	}
	if math.IsNaN(a.prev) || a.prev != last {
		return float64(a.ts[0]) / 1000
	}
	return math.NaN()
}

func vmRateOverSum(a *vmWindow) float64 {
	if len(a.ts) == 0 {
		return math.NaN()
	}
	return vmSum(a) / (float64(a.window) / 1000)
}

func vmStaleSamples(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	n := 0
	for _, v := range a.vs {
		if storage.IsStaleNaN(v) {
			n++
		}
	}
	return float64(n)
}

func vmIncreasePure(a *vmWindow) float64 {
	prev := a.prev
	if math.IsNaN(prev) {
		if len(a.vs) == 0 {
			return math.NaN()
		}
		// The counter starts from 0, or from before the gap.
		prev = 0
		if !math.IsNaN(a.realPrev) {
			prev = a.realPrev
		}
	}
	if len(a.vs) == 0 {
		return 0
	}
	return a.vs[len(a.vs)-1] - prev
}

// vmDelta is VictoriaMetrics's delta and increase.
func vmDelta(a *vmWindow) float64 {
	vs, prev := a.vs, a.prev
	if math.IsNaN(prev) {
		if len(vs) == 0 {
			return math.NaN()
		}
		if !math.IsNaN(a.realPrev) {
			// The value did not change during the gap.
			return vs[len(vs)-1] - a.realPrev
		}
		// The counter starts from 0 unless its first value is large
		// against the next change.
		var d float64
		if len(vs) > 1 {
			d = vs[1] - vs[0]
		} else if !math.IsNaN(a.realNext) {
			d = a.realNext - vs[0]
		}
		if math.Abs(vs[0]) < 10*(math.Abs(d)+1) {
			prev = 0
		} else {
			prev, vs = vs[0], vs[1:]
		}
	}
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1] - prev
}

func vmDeltaPrometheus(a *vmWindow) float64 {
	if len(a.vs) < 2 {
		return math.NaN()
	}
	return a.vs[len(a.vs)-1] - a.vs[0]
}

func vmIdelta(a *vmWindow) float64 {
	vs := a.vs
	if len(vs) == 0 {
		if math.IsNaN(a.prev) {
			return math.NaN()
		}
		return 0
	}
	last := vs[len(vs)-1]
	vs = vs[:len(vs)-1]
	if len(vs) == 0 {
		if math.IsNaN(a.prev) {
			return last
		}
		return last - a.prev
	}
	return last - vs[len(vs)-1]
}

// vmDerivSlow is deriv: the slope of the least-squares line.
func vmDerivSlow(a *vmWindow) float64 {
	_, k := vmRegression(a)
	return k
}

// vmRegression is the least-squares line through the window, as
// its value at the window's end and its slope per second.
func vmRegression(a *vmWindow) (v, k float64) {
	if len(a.vs) == 0 {
		return math.NaN(), math.NaN()
	}
	if slices64Const(a.vs) {
		return a.vs[0], 0
	}
	var vSum, tSum, tvSum, ttSum float64
	for i, v := range a.vs {
		dt := float64(a.ts[i]-a.curr) / 1000
		vSum += v
		tSum += dt
		tvSum += dt * v
		ttSum += dt * dt
	}
	n := float64(len(a.vs))
	if d := ttSum - tSum*tSum/n; math.Abs(d) >= 1e-6 {
		k = (tvSum - tSum*vSum/n) / d
	}
	return vSum/n - k*tSum/n, k
}

// vmHoltWinters is double exponential smoothing from the sample before
// the window (or the first in it).
func vmHoltWinters(a *vmWindow, sf, tf float64) float64 {
	vs := a.vs
	if len(vs) == 0 || sf < 0 || sf > 1 || tf < 0 || tf > 1 {
		return math.NaN()
	}
	s0 := a.prev
	if math.IsNaN(s0) {
		s0, vs = vs[0], vs[1:]
		if len(vs) == 0 {
			return s0
		}
	}
	b0 := vs[0] - s0
	for _, v := range vs {
		s1 := sf*v + (1-sf)*(s0+b0)
		b0 = tf*(s1-s0) + (1-tf)*b0
		s0 = s1
	}
	return s0
}

func slices64Const(vs []float64) bool {
	for _, v := range vs[1:] {
		if v != vs[0] {
			return false
		}
	}
	return true
}

func vmDerivFastPrometheus(a *vmWindow) float64 {
	d := vmDeltaPrometheus(a)
	if math.IsNaN(d) || a.window == 0 {
		return math.NaN()
	}
	return d / (float64(a.window) / 1000)
}

// vmDerivFast is VictoriaMetrics's rate: from the sample before the
// window (or the first in it) to the last in it.
func vmDerivFast(a *vmWindow) float64 {
	prev, prevT := a.prev, a.prevT
	if math.IsNaN(prev) {
		if len(a.vs) < 2 {
			return math.NaN()
		}
		prev, prevT = a.vs[0], a.ts[0]
	} else if len(a.vs) == 0 {
		return 0
	}
	return (a.vs[len(a.vs)-1] - prev) / (float64(a.ts[len(a.ts)-1]-prevT) / 1000)
}

// vmIderiv is VictoriaMetrics's irate: the slope between the last two
// samples (the one before the window counts).
func vmIderiv(a *vmWindow) float64 {
	vs, ts := a.vs, a.ts
	if len(vs) < 2 {
		if len(vs) == 0 || math.IsNaN(a.prev) {
			return math.NaN()
		}
		return (vs[0] - a.prev) / (float64(ts[0]-a.prevT) / 1000)
	}
	vEnd, tEnd := vs[len(vs)-1], ts[len(ts)-1]
	vs, ts = vs[:len(vs)-1], ts[:len(ts)-1]
	for len(ts) > 0 && ts[len(ts)-1] >= tEnd {
		ts = ts[:len(ts)-1]
	}
	var tStart int64
	var vStart float64
	if len(ts) == 0 {
		if math.IsNaN(a.prev) {
			return 0
		}
		tStart, vStart = a.prevT, a.prev
	} else {
		tStart, vStart = ts[len(ts)-1], vs[len(ts)-1]
	}
	return (vEnd - vStart) / (float64(tEnd-tStart) / 1000)
}

func vmLifetime(a *vmWindow) float64 {
	if math.IsNaN(a.prev) {
		if len(a.ts) < 2 {
			return math.NaN()
		}
		return float64(a.ts[len(a.ts)-1]-a.ts[0]) / 1000
	}
	if len(a.ts) == 0 {
		return math.NaN()
	}
	return float64(a.ts[len(a.ts)-1]-a.prevT) / 1000
}

func vmLag(a *vmWindow) float64 {
	if len(a.ts) == 0 {
		if math.IsNaN(a.prev) {
			return math.NaN()
		}
		return float64(a.curr-a.prevT) / 1000
	}
	return float64(a.curr-a.ts[len(a.ts)-1]) / 1000
}

func vmScrapeInterval(a *vmWindow) float64 {
	if math.IsNaN(a.prev) {
		if len(a.ts) < 2 {
			return math.NaN()
		}
		return float64(a.ts[len(a.ts)-1]-a.ts[0]) / 1000 / float64(len(a.ts)-1)
	}
	if len(a.ts) == 0 {
		return math.NaN()
	}
	return float64(a.ts[len(a.ts)-1]-a.prevT) / 1000 / float64(len(a.ts))
}

// vmChanged tells a change from a rounding error.
func vmChanged(prev, v float64) bool {
	return v != prev && math.Abs(v-prev) >= 1e-12*math.Abs(v)
}

func vmChangesPrometheus(a *vmWindow) float64 {
	if len(a.vs) == 0 {
		return math.NaN()
	}
	prev, n := a.vs[0], 0
	for _, v := range a.vs[1:] {
		if vmChanged(prev, v) {
			n++
			prev = v
		}
	}
	return float64(n)
}

func vmChanges(a *vmWindow) float64 {
	vs, prev, n := a.vs, a.prev, 0
	if math.IsNaN(prev) {
		if len(vs) == 0 {
			return math.NaN()
		}
		if !math.IsNaN(a.realPrev) {
			prev = a.realPrev
		} else {
			n++
			prev, vs = vs[0], vs[1:]
		}
	}
	for _, v := range vs {
		if vmChanged(prev, v) {
			n++
			prev = v
		}
	}
	return float64(n)
}

// vmSteps counts the steps up (up) or down between the samples, the one
// before the window included.
func vmSteps(a *vmWindow, up bool) float64 {
	vs := a.vs
	if len(vs) == 0 {
		if math.IsNaN(a.prev) {
			return math.NaN()
		}
		return 0
	}
	prev := a.prev
	if math.IsNaN(prev) {
		prev, vs = vs[0], vs[1:]
	}
	n := 0
	for _, v := range vs {
		if (up && v > prev || !up && v < prev) && math.Abs(v-prev) >= 1e-12*math.Abs(v) {
			n++
		}
		prev = v
	}
	return float64(n)
}

func vmIncreases(a *vmWindow) float64 { return vmSteps(a, true) }

// vmResets is resets and decreases_over_time.
func vmResets(a *vmWindow) float64 { return vmSteps(a, false) }

// vmClimb sums the rises (up) or falls between the samples, the one before
// the window included.
func vmClimb(a *vmWindow, up bool) float64 {
	vs, prev := a.vs, a.prev
	if math.IsNaN(prev) {
		if len(vs) == 0 {
			return math.NaN()
		}
		prev, vs = vs[0], vs[1:]
	}
	s := 0.0
	for _, v := range vs {
		d := v - prev
		if !up {
			d = -d
		}
		if d > 0 {
			s += d
		}
		prev = v
	}
	return s
}

func vmAscent(a *vmWindow) float64  { return vmClimb(a, true) }
func vmDescent(a *vmWindow) float64 { return vmClimb(a, false) }

func vmZScore(a *vmWindow) float64 {
	si, lag := vmScrapeInterval(a), vmLag(a)
	if math.IsNaN(si) || math.IsNaN(lag) || lag > si {
		return math.NaN()
	}
	d := vmLast(a) - vmAvg(a)
	if d == 0 {
		return 0
	}
	return d / math.Sqrt(vmStdvar(a.vs))
}

// vmIntegrate sums value × time from the window's start (or its first
// sample), carrying the last value to the window's end only when the
// series goes on after it.
func vmIntegrate(a *vmWindow) float64 {
	vs, ts := a.vs, a.ts
	prev, prevT := a.prev, a.curr-a.window
	if math.IsNaN(prev) {
		if len(vs) == 0 {
			return math.NaN()
		}
		prev, prevT = vs[0], ts[0]
		vs, ts = vs[1:], ts[1:]
	}
	var sum float64
	for i, v := range vs {
		sum += prev * float64(ts[i]-prevT) / 1000
		prev, prevT = v, ts[i]
	}
	if !math.IsNaN(a.realNext) {
		sum += prev * float64(a.curr-prevT) / 1000
	}
	return sum
}

func vmOutlierIQR(a *vmWindow) float64 {
	if len(a.vs) < 2 {
		return math.NaN()
	}
	s := append([]float64(nil), a.vs...)
	sort.Float64s(s)
	q25, q75 := vmQuantileSorted(0.25, s), vmQuantileSorted(0.75, s)
	iqr := 1.5 * (q75 - q25)
	if v := a.vs[len(a.vs)-1]; v > q75+iqr || v < q25-iqr {
		return v
	}
	return math.NaN()
}

func vmHoeffding(a *vmWindow, phi float64) (bound, avg float64) {
	switch len(a.vs) {
	case 0:
		return math.NaN(), math.NaN()
	case 1:
		return 0, a.vs[0]
	}
	avg = vmAvg(a)
	rng := vmMax(a) - vmMin(a)
	switch {
	case rng <= 0 || phi <= 0:
		return 0, avg
	case phi >= 1:
		return math.Inf(1), avg
	}
	return rng * math.Sqrt(math.Log(1/(1-phi))/(2*float64(len(a.vs)))), avg
}

// vmCandle is what rollup_candlestick looks at: the window's samples
// before its end, and the sample before the window when it is recent.
func vmCandle(a *vmWindow) (vs []float64, first float64) {
	first = math.NaN()
	if a.prevT+a.window >= a.curr {
		first = a.prev
	}
	ts := a.ts
	for len(ts) > 0 && ts[len(ts)-1] >= a.curr {
		ts = ts[:len(ts)-1]
	}
	return a.vs[:len(ts)], first
}

func vmOpen(a *vmWindow) float64 {
	vs, first := vmCandle(a)
	if !math.IsNaN(first) {
		return first
	}
	if len(vs) == 0 {
		return math.NaN()
	}
	return vs[0]
}

func vmClose(a *vmWindow) float64 {
	vs, first := vmCandle(a)
	if len(vs) == 0 {
		return first
	}
	return vs[len(vs)-1]
}

func vmExtreme(a *vmWindow, better func(v, m float64) bool) float64 {
	vs, m := vmCandle(a)
	if math.IsNaN(m) {
		if len(vs) == 0 {
			return math.NaN()
		}
		m, vs = vs[0], vs[1:]
	}
	for _, v := range vs {
		if better(v, m) {
			m = v
		}
	}
	return m
}

func vmHigh(a *vmWindow) float64 { return vmExtreme(a, func(v, m float64) bool { return v > m }) }
func vmLow(a *vmWindow) float64  { return vmExtreme(a, func(v, m float64) bool { return v < m }) }
