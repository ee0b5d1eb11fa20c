package query

import (
	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/histogram"
)

// histogramStatsSelectors finds the selectors Prometheus reads through
// its HistogramStatsIterator: those under histogram_count, histogram_sum,
// histogram_avg, timestamp or absent, with no subquery and nothing that
// needs the buckets (histogram_quantile, histogram_fraction,
// histogram_stddev, histogram_stdvar, changes, count_values, ==, !=, the
// trim operators) on the way up. That iterator decides the counter reset
// hint of each histogram as it reads it (deriveResetHint), which changes
// no value but can raise the warning about conflicting counter resets,
// so we do the same.
func histogramStatsSelectors(e metricsql.Expr) map[*metricsql.MetricExpr]bool {
	var out map[*metricsql.MetricExpr]bool
	var visit func(e metricsql.Expr, stats, stop bool)
	visit = func(e metricsql.Expr, stats, stop bool) {
		switch e := e.(type) {
		case *metricsql.MetricExpr:
			if stats && !stop {
				if out == nil {
					out = map[*metricsql.MetricExpr]bool{}
				}
				out[e] = true
			}
		case *metricsql.RollupExpr:
			if e.ForSubquery() {
				stop = true
			}
			visit(e.Expr, stats, stop)
		case *metricsql.FuncExpr:
			switch e.Name {
			case "histogram_count", "histogram_sum", "histogram_avg", "timestamp", "absent":
				stats = true
			case "histogram_quantile", "histogram_quantiles", "histogram_fraction", "histogram_stddev", "histogram_stdvar", "changes":
				stop = true
			}
			for _, a := range e.Args {
				visit(a, stats, stop)
			}
		case *metricsql.AggrFuncExpr:
			if e.Name == "count_values" {
				stop = true
			}
			for _, a := range e.Args {
				visit(a, stats, stop)
			}
		case *metricsql.BinaryOpExpr:
			switch e.Op {
			case "==", "!=", "</", ">/":
				stop = true
			}
			visit(e.Left, stats, stop)
			visit(e.Right, stats, stop)
		}
	}
	visit(e, false, false)
	return out
}

// deriveResetHint sets an unknown counter reset hint of h by comparing it
// with prev, the histogram read before it, as Prometheus's
// HistogramStatsIterator does; it returns h as the next prev.
func deriveResetHint(h, prev *histogram.FloatHistogram) *histogram.FloatHistogram {
	if h.CounterResetHint != histogram.UnknownCounterReset || prev == nil {
		return h
	}
	if h.DetectReset(prev) {
		h.CounterResetHint = histogram.CounterReset
	} else {
		h.CounterResetHint = histogram.NotCounterReset
	}
	return h
}
