package query

import (
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// info() (experimental, promql-experimental-functions) adds the data
// labels of info series (target_info by default) to the series of its
// first argument, joined on instance and job, as Prometheus 3.14's
// promql/info.go does.

// infoTargetName is the info metric info() joins with when its second
// argument names none.
const infoTargetName = "target_info"

// infoIdentifying are the labels an info series is joined on.
var infoIdentifying = []string{"instance", "job"}

func (ev *evaluator) infoFunc(fe *metricsql.FuncExpr) Matrix {
	if len(fe.Args) < 1 || len(fe.Args) > 2 {
		ev.failf("expected 1 or 2 arguments in call to info, got %d", len(fe.Args))
	}
	base := ev.eval(fe.Args[0])
	data := map[string][]*labels.Matcher{} // by label name
	var nameMatchers []*labels.Matcher
	if len(fe.Args) > 1 {
		me, ok := fe.Args[1].(*metricsql.MetricExpr)
		if !ok || len(me.LabelFilterss) > 1 {
			ev.fail(badData("expected label selector as the second argument of info"))
		}
		for _, lfs := range me.LabelFilterss {
			for _, lf := range lfs {
				m := infoMatcher(ev, lf)
				data[m.Name] = append(data[m.Name], m)
				if m.Name == model.MetricNameLabel {
					nameMatchers = append(nameMatchers, m)
				}
			}
		}
	} else {
		nameMatchers = []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, infoTargetName)}
	}

	// A base series that is itself an info series passes unchanged.
	ignore := map[uint64]bool{}
	effective := effectiveInfoNameMatchers(nameMatchers)
	idValues := map[string]map[string]bool{}
	for _, s := range base {
		if matchInfoName(effective, s.Metric.Get(model.MetricNameLabel)) {
			ignore[s.Metric.Hash()] = true
			continue
		}
		for _, l := range infoIdentifying {
			if v := s.Metric.Get(l); v != "" {
				if idValues[l] == nil {
					idValues[l] = map[string]bool{}
				}
				idValues[l][v] = true
			}
		}
	}
	var infoSel []*labels.Matcher
	for name, vals := range idValues {
		alts := make([]string, 0, len(vals))
		for v := range vals {
			alts = append(alts, regexp.QuoteMeta(v))
		}
		slices.Sort(alts)
		infoSel = append(infoSel, labels.MustNewMatcher(labels.MatchRegexp, name, strings.Join(alts, "|")))
	}
	var infoNames []*labels.Matcher
	for name, ms := range data {
		if name == model.MetricNameLabel {
			infoNames = append(infoNames, ms...)
			delete(data, name)
			continue
		}
		infoSel = append(infoSel, ms...)
	}
	var infos Matrix
	if len(idValues) > 0 {
		infos = ev.infoSeries(append(infoSel, effectiveInfoNameMatchers(infoNames)...))
	}

	// The signature of a series against an info metric: its name and
	// the identifying labels.
	sig := func(name string, ls labels.Labels) string {
		var b strings.Builder
		b.WriteString(name)
		for _, l := range infoIdentifying {
			b.WriteByte(0xff)
			b.WriteString(ls.Get(l))
		}
		return b.String()
	}
	infoMetrics := map[string]bool{}
	for _, s := range infos {
		infoMetrics[s.Metric.Get(model.MetricNameLabel)] = true
	}
	metricNames := make([]string, 0, len(infoMetrics))
	for n := range infoMetrics {
		metricNames = append(metricNames, n)
	}
	slices.Sort(metricNames)
	allMatchEmpty := true
	for _, ms := range data {
		for _, m := range ms {
			allMatchEmpty = allMatchEmpty && m.Matches("")
		}
	}

	type infoSample struct {
		s    Sample
		orig int64 // the time of the info sample read
	}
	byKey := map[string]infoSample{}
	return ev.rangeEval(func(_ int, ts int64, a []Vector) Vector {
		if len(a[0]) == 0 {
			return nil
		}
		clear(byKey)
		for _, s := range a[1] {
			if s.H != nil {
				ev.failf("this should be an info metric, with float samples: %s", s.Metric)
			}
			orig := int64(s.F)
			k := sig(s.Metric.Get(model.MetricNameLabel), s.Metric)
			if ex, ok := byKey[k]; ok {
				if ex.orig == orig {
					ev.failf("found duplicate series for info metric: existing %s @ %d, new %s @ %d", ex.s.Metric, ex.orig, s.Metric, orig)
				}
				if ex.orig > orig {
					continue
				}
			}
			byKey[k] = infoSample{s, orig}
		}
		out := make(Vector, 0, len(a[0]))
		for _, bs := range a[0] {
			if ignore[bs.Metric.Hash()] {
				out = append(out, bs)
				continue
			}
			add := labels.NewBuilder(labels.EmptyLabels())
			seen := 0
			for _, name := range metricNames {
				is, ok := byKey[sig(name, bs.Metric)]
				if !ok {
					continue
				}
				var err error
				is.s.Metric.Range(func(l labels.Label) {
					if err != nil || l.Name == model.MetricNameLabel {
						return
					}
					if _, ok := data[l.Name]; len(data) > 0 && !ok {
						return
					}
					if v := add.Get(l.Name); v != "" && v != l.Value {
						err = execErr("conflicting label: %s", l.Name)
						return
					}
					if bs.Metric.Has(l.Name) {
						return
					}
					add.Set(l.Name, l.Value)
				})
				if err != nil {
					ev.fail(err)
				}
				seen++
			}
			if seen == 0 && !allMatchEmpty {
				continue
			}
			lb := labels.NewBuilder(bs.Metric)
			add.Labels().Range(func(l labels.Label) { lb.Set(l.Name, l.Value) })
			out = append(out, Sample{Metric: lb.Labels(), T: ts, F: bs.F, H: bs.H})
		}
		return out
	}, base, infos)
}

// infoMatcher is the matcher of one label filter of info's second
// argument.
func infoMatcher(ev *evaluator, lf metricsql.LabelFilter) *labels.Matcher {
	t := labels.MatchEqual
	switch {
	case lf.IsRegexp && lf.IsNegative:
		t = labels.MatchNotRegexp
	case lf.IsRegexp:
		t = labels.MatchRegexp
	case lf.IsNegative:
		t = labels.MatchNotEqual
	}
	m, err := labels.NewMatcher(t, lf.Label, lf.Value)
	if err != nil {
		ev.fail(badData("invalid matcher %s: %v", lf.AppendString(nil), err))
	}
	return m
}

// effectiveInfoNameMatchers are the __name__ matchers info series are
// selected with: target_info without any, and only names ending in _info
// when all of them are negative.
func effectiveInfoNameMatchers(ms []*labels.Matcher) []*labels.Matcher {
	for _, m := range ms {
		if m.Type == labels.MatchEqual || m.Type == labels.MatchRegexp {
			return ms
		}
	}
	if len(ms) > 0 {
		return append([]*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, model.MetricNameLabel, ".+_info")}, ms...)
	}
	return []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, infoTargetName)}
}

func matchInfoName(ms []*labels.Matcher, v string) bool {
	for _, m := range ms {
		if !m.Matches(v) {
			return false
		}
	}
	return true
}

// infoSeries evaluates the info series ms selects at every step, with
// the lookback, each point's value the time (ms) of the sample read.
func (ev *evaluator) infoSeries(ms []*labels.Matcher) Matrix {
	me := &metricsql.MetricExpr{LabelFilterss: [][]metricsql.LabelFilter{make([]metricsql.LabelFilter, 0, len(ms))}}
	for _, m := range ms {
		me.LabelFilterss[0] = append(me.LabelFilterss[0], metricsql.LabelFilter{
			Label: m.Name, Value: m.Value,
			IsRegexp:   m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp,
			IsNegative: m.Type == labels.MatchNotEqual || m.Type == labels.MatchNotRegexp,
		})
	}
	for _, s := range ev.vectorSelector(me, 0, nil, false) {
		if s.Histograms != nil && slices.ContainsFunc(s.Histograms, func(h *histogram.FloatHistogram) bool { return h != nil }) {
			ev.failf("this should be an info metric, with float samples: %s", s.Metric)
		}
	}
	m := ev.vectorSelector(me, 0, nil, true)
	for _, s := range m {
		for i := range s.Points {
			s.Points[i].F = math.Round(s.Points[i].F * 1000) // vectorSelector gives seconds
		}
	}
	return m
}
