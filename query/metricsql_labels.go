package query

import (
	"math"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// callVMLabels evaluates MetricsQL's transforms that filter or rewrite
// series by their labels, and timezone_offset, as VictoriaMetrics's
// app/vmselect/promql/transform.go does; ok is false for any other name.
// They keep __name__.
func (ev *evaluator) callVMLabels(fe *metricsql.FuncExpr) (Matrix, bool) {
	switch fe.Name {
	case "label_match", "label_mismatch":
		// label_match(q, "label", "regexp"): the series whose label
		// matches (or not) the whole regexp; a missing label is "".
		ev.wantArgs(fe, 3)
		name, expr := stringArg(ev, fe, 1), stringArg(ev, fe, 2)
		re, err := metricsql.CompileRegexpAnchored(expr)
		if err != nil {
			ev.fail(badData("cannot compile regexp %q: %v", expr, err))
		}
		want := fe.Name == "label_match"
		return ev.filterSeries(ev.eval(fe.Args[0]), func(ls labels.Labels) bool {
			return re.MatchString(ls.Get(name)) == want
		}), true
	case "labels_equal":
		// labels_equal(q, "a", "b", …): the series whose labels all have
		// the same value (a missing label is "").
		if len(fe.Args) < 3 {
			ev.fail(badData("unexpected number of args; got %d; want at least 3", len(fe.Args)))
		}
		var names []string
		for i := 1; i < len(fe.Args); i++ {
			names = append(names, stringArg(ev, fe, i))
		}
		return ev.filterSeries(ev.eval(fe.Args[0]), func(ls labels.Labels) bool {
			for _, n := range names[1:] {
				if ls.Get(n) != ls.Get(names[0]) {
					return false
				}
			}
			return true
		}), true
	case "label_map":
		// label_map(q, "label", "from1", "to1", …): the label's value
		// replaced where it is one of the froms; an empty result removes
		// it.
		if len(fe.Args) < 2 {
			ev.fail(badData("not enough args; got %d; want at least 2", len(fe.Args)))
		}
		if (len(fe.Args)-2)%2 != 0 {
			ev.fail(badData("the number of string args must be even; got %d", len(fe.Args)-2))
		}
		name := stringArg(ev, fe, 1)
		to := map[string]string{}
		for i := 2; i < len(fe.Args); i += 2 {
			to[stringArg(ev, fe, i)] = stringArg(ev, fe, i+1)
		}
		return ev.relabelSeries(ev.eval(fe.Args[0]), func(b *labels.Builder, ls labels.Labels) {
			if v, ok := to[ls.Get(name)]; ok {
				b.Set(name, v)
			}
		}), true
	case "label_transform":
		// label_transform(q, "label", "regexp", "replacement"): every
		// match of the regexp in the label's value replaced.
		ev.wantArgs(fe, 4)
		name, expr, repl := stringArg(ev, fe, 1), stringArg(ev, fe, 2), stringArg(ev, fe, 3)
		re, err := metricsql.CompileRegexp(expr)
		if err != nil {
			ev.fail(badData("cannot compile regex %q: %v", expr, err))
		}
		return ev.relabelSeries(ev.eval(fe.Args[0]), func(b *labels.Builder, ls labels.Labels) {
			if v := ls.Get(name); re.MatchString(v) {
				b.Set(name, re.ReplaceAllString(v, repl))
			}
		}), true
	case "sort_by_label_numeric", "sort_by_label_numeric_desc":
		// The order is made for an instant query (orderInstant).
		if len(fe.Args) < 2 {
			ev.fail(badData("expecting at least 2 args; got %d args", len(fe.Args)))
		}
		for i := 1; i < len(fe.Args); i++ {
			stringArg(ev, fe, i)
		}
		return ev.eval(fe.Args[0]), true
	case "label_graphite_group":
		// label_graphite_group(q, n1, n2, …): __name__ becomes its
		// dot-separated parts n1, n2, … joined by dots (a part out of
		// range is empty).
		if len(fe.Args) < 2 {
			ev.fail(badData("unexpected number of args: %d; want at least 2 args", len(fe.Args)))
		}
		var ids []int
		for i := 1; i < len(fe.Args); i++ {
			ids = append(ids, int(scalarAt(ev.eval(fe.Args[i]), 0)))
		}
		return ev.relabelSeries(ev.eval(fe.Args[0]), func(b *labels.Builder, ls labels.Labels) {
			parts := strings.Split(ls.Get(model.MetricNameLabel), ".")
			var sb strings.Builder
			for j, id := range ids {
				if id >= 0 && id < len(parts) {
					sb.WriteString(parts[id])
				}
				if j < len(ids)-1 {
					sb.WriteByte('.')
				}
			}
			b.Set(model.MetricNameLabel, sb.String())
		}), true
	case "timezone_offset":
		// The offset from UTC, in seconds, of the named time zone at
		// every step.
		ev.wantArgs(fe, 1)
		tz := stringArg(ev, fe, 0)
		loc, err := time.LoadLocation(tz)
		if err != nil {
			ev.fail(badData("cannot load timezone %q: %v", tz, err))
		}
		m := ev.constant(math.NaN())
		for k := range m[0].Points {
			_, off := time.UnixMilli(m[0].Points[k].T).In(loc).Zone()
			m[0].Points[k].F = float64(off)
		}
		return m, true
	}
	return nil, false
}

// filterSeries keeps the series of m whose labels pass keep.
func (ev *evaluator) filterSeries(m Matrix, keep func(labels.Labels) bool) Matrix {
	out := m[:0]
	for _, s := range m {
		ev.spend(1)
		if keep(s.Metric) {
			out = append(out, s)
		} else {
			ev.release(Matrix{s})
		}
	}
	return out
}

// relabelSeries rewrites the labels of every series of m; a label set to
// "" is removed. Series left with equal labels are merged.
func (ev *evaluator) relabelSeries(m Matrix, f func(b *labels.Builder, ls labels.Labels)) Matrix {
	for i := range m {
		ev.spend(1)
		b := labels.NewBuilder(m[i].Metric)
		f(b, m[i].Metric)
		m[i].Metric = b.Labels()
	}
	return ev.checkDuplicates(m)
}
