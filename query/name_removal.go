package query

import (
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/schema"
)

// Delayed name removal (Prometheus's promql-delayed-name-removal): where
// a function or operation would drop the metric name, it marks the series
// instead, and the names of the marked series (with __type__ and
// __unit__) are dropped once, at the end of the evaluation. Until then
// the name still tells series apart (`sum by (__name__) (rate(x[5m]))`
// groups by it) and label_replace or label_join can keep it by writing
// __name__, which clears the mark.
//
// Prometheus keeps the mark in a field of each series; ours is a label,
// dropNameLabel, so that it travels wherever the evaluator copies labels
// (through subqueries, topk, and, or) with no change there. The places
// that must not see it as a label do not: matching (matching.sig),
// grouping (groupLabels, markGroups) and the answer (removeMarkedNames).
// With the feature off no series carries it.

// dropNameLabel marks a series whose name is to be dropped.
const dropNameLabel = "__drop_name__"

// dropName drops the metric name, and the type and unit labels with it
// (__type__, __unit__: Prometheus's type-and-unit-labels), which describe
// the metric a function or operation no longer returns, as Prometheus 3.14
// does whether or not its type-and-unit-labels feature is on. With
// delayed name removal it marks ls instead.
func (ev *evaluator) dropName(ls labels.Labels) labels.Labels {
	if ev.delayNameRemoval {
		return markDropName(ls)
	}
	// NB: DropReserved, not labels.NewBuilder: a builder per series was
	// a tenth of a rate query's allocations over 16,000 series (issue 18).
	return ls.DropReserved(schema.IsMetadataLabel)
}

// dropOnlyName drops the metric name only, as Prometheus's histogram_count
// and its kin do; with delayed name removal it marks ls, as there.
func (ev *evaluator) dropOnlyName(ls labels.Labels) labels.Labels {
	if ev.delayNameRemoval {
		return markDropName(ls)
	}
	return ls.DropReserved(isMetricName)
}

func isMetricName(name string) bool { return name == model.MetricNameLabel }

func (ev *evaluator) dropNames(m Matrix) Matrix {
	for i := range m {
		m[i].Metric = ev.dropName(m[i].Metric)
	}
	return m
}

// markDropName marks ls for its name to be dropped at the end.
func markDropName(ls labels.Labels) labels.Labels {
	if ls.Has(dropNameLabel) {
		return ls
	}
	return labels.NewBuilder(ls).Set(dropNameLabel, "1").Labels()
}

// unmarked is ls without the mark.
func unmarked(ls labels.Labels) labels.Labels {
	if !ls.Has(dropNameLabel) {
		return ls
	}
	return labels.NewBuilder(ls).Del(dropNameLabel).Labels()
}

// markGroups marks the labels of each group with a marked member, as
// Prometheus's aggregations pass DropName on.
func markGroups(groups []*aggGroup) {
	for _, g := range groups {
		if slices.ContainsFunc(g.samples, func(s Sample) bool { return s.Metric.Has(dropNameLabel) }) {
			g.ls = markDropName(g.ls)
		}
	}
}

// removeMarkedNames drops the names of the marked series of an answer,
// as Prometheus's cleanupMetricLabels: an instant vector may not then
// hold two series with the same labels; in a range answer they are
// merged, unless both have a point at the same step.
func (ev *evaluator) removeMarkedNames(m Matrix) Matrix {
	marked := false
	for i := range m {
		if m[i].Metric.Has(dropNameLabel) {
			m[i].Metric = m[i].Metric.DropReserved(func(n string) bool {
				return n == dropNameLabel || schema.IsMetadataLabel(n)
			})
			marked = true
		}
	}
	if !marked {
		return m
	}
	index := make(map[uint64][]int, len(m))
	out := m[:0:0]
	for _, s := range m {
		if len(s.Points) == 0 {
			continue
		}
		h := s.Metric.Hash()
		j := slices.IndexFunc(index[h], func(j int) bool { return labels.Equal(out[j].Metric, s.Metric) })
		if j < 0 {
			index[h] = append(index[h], len(out))
			out = append(out, s)
			continue
		}
		out[index[h][j]] = ev.mergeSeries(out[index[h][j]], s)
	}
	return out
}

// mergeSeries joins two series with the same labels, failing where they
// have a point at the same time.
func (ev *evaluator) mergeSeries(a, b Series) Series {
	if ev.instant {
		ev.failf("vector cannot contain metrics with the same labelset")
	}
	var out Series
	out.Metric = a.Metric
	i, j := 0, 0
	for i < len(a.Points) || j < len(b.Points) {
		switch {
		case j == len(b.Points) || (i < len(a.Points) && a.Points[i].T < b.Points[j].T):
			out.add(a.Points[i], a.H(i))
			i++
		case i == len(a.Points) || b.Points[j].T < a.Points[i].T:
			out.add(b.Points[j], b.H(j))
			j++
		default:
			ev.failf("vector cannot contain metrics with the same labelset")
		}
	}
	return out
}
