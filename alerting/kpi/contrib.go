package kpi

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/query"
)

// Contributor is one part of a KPI that moved it: a value of one of the
// labels of the series under the KPI's sum (shop="kr"), and how much of
// the KPI's change since a baseline it explains.
type Contributor struct {
	Label string `json:"label"`
	Value string `json:"value"`
	// Before and Now are the part's own figure at the baseline and now:
	// its own ratio for a ratio KPI (its completion rate), its sum for a
	// sum, in the KPI's units.
	// Either is missing for a ratio whose part had no denominator then.
	Before *float64 `json:"before,omitempty"`
	Now    *float64 `json:"now,omitempty"`
	// Effect is the part's contribution to the KPI's change, in the KPI's
	// units; the effects of all values of a label add up to the change.
	Effect float64 `json:"effect"`
	// Share is Effect as a part of the KPI's change (1 = all of it).
	Share float64 `json:"share"`
}

// Contributors is the breakdown of a KPI's change.
type Contributors struct {
	Since  time.Time     `json:"since"`  // the baseline
	Before float64       `json:"before"` // the KPI then
	Now    float64       `json:"now"`    // the KPI now
	Top    []Contributor `json:"top"`    // the parts that moved it the wrong way, largest first
}

// Limits of a breakdown.
const (
	maxContribLabels = 3   // labels broken down
	maxContribValues = 100 // a label with more values is not broken down
	maxContributors  = 5
	minShare         = 0.05 // a part that explains less of the change is noise
)

// shape is a KPI expression that can be broken down: k · sum(num) or
// k · sum(num) / sum(den).
type shape struct {
	k        float64
	num, den *metricsql.AggrFuncExpr // den nil for a sum
}

// shapeOf recognises sum(x), sum(a)/sum(b) and either one times a number.
func shapeOf(expr string) (shape, bool) {
	e, err := query.Parse(expr)
	if err != nil {
		return shape{}, false
	}
	isSum := func(x metricsql.Expr) *metricsql.AggrFuncExpr {
		if a, ok := x.(*metricsql.AggrFuncExpr); ok && a.Name == "sum" && len(a.Args) == 1 && a.Limit == 0 {
			return a
		}
		return nil
	}
	// scaled splits k · x (or x · k) into k and x.
	scaled := func(x metricsql.Expr) (float64, metricsql.Expr) {
		if b, ok := x.(*metricsql.BinaryOpExpr); ok && b.Op == "*" {
			if n, ok := b.Left.(*metricsql.NumberExpr); ok {
				return n.N, b.Right
			}
			if n, ok := b.Right.(*metricsql.NumberExpr); ok {
				return n.N, b.Left
			}
		}
		return 1, x
	}
	var s shape
	k, e := scaled(e)
	switch x := e.(type) {
	case *metricsql.AggrFuncExpr:
		s.k, s.num = k, isSum(x)
	case *metricsql.BinaryOpExpr:
		if x.Op == "/" && !x.Bool && x.JoinModifier.Op == "" {
			kn, left := scaled(x.Left)
			s.k, s.num, s.den = k*kn, isSum(left), isSum(x.Right)
			if s.den == nil {
				s.num = nil
			}
		}
	}
	return s, s.num != nil
}

// by is a copy of the sum a grouped by label.
func by(a *metricsql.AggrFuncExpr, label string) string {
	c := *a
	c.Modifier = metricsql.ModifierExpr{Op: "by", Args: []string{label}}
	return string(c.AppendString(nil))
}

// contributors breaks the change of d's KPI between since and at down by
// the labels of the series it sums: which shop, product or region moved
// the number. For a sum, a part's effect is its own change; for a ratio
// N/D with parts n and d it is (Δn − R₀·Δd)/D₁ (R₀ the ratio at the
// baseline), so that the effects add up exactly to the change of the
// ratio and a part whose volume grows at the old rate moves nothing. Only
// parts that moved the KPI towards its target's wrong side, by at least
// 5% of its change, are kept. It
// returns nil when the expression is not a sum or a ratio of sums, or
// nothing could be broken down.
func contributors(ctx context.Context, q query.Evaluator, d *Definition, since, at time.Time) (*Contributors, error) {
	s, ok := shapeOf(d.Expr)
	if !ok {
		return nil, nil
	}
	window := max(d.Step, minWindow)
	instant := func(expr string, t time.Time) (*query.Result, error) {
		return q.Instant(ctx, d.Tenant, sampled(expr, window), t.UnixMilli())
	}
	// The labels that tell the summed series apart.
	res, err := instant(string(s.num.Args[0].AppendString(nil)), at)
	if err != nil {
		return nil, fmt.Errorf("contributors: %w", err)
	}
	values := map[string]map[string]bool{}
	for _, x := range res.Series {
		x.Metric.Range(func(l labels.Label) {
			if l.Name == model.MetricNameLabel {
				return
			}
			if values[l.Name] == nil {
				values[l.Name] = map[string]bool{}
			}
			values[l.Name][l.Value] = true
		})
	}
	var names []string
	for n, v := range values {
		if len(v) >= 2 && len(v) <= maxContribValues {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if a, b := len(values[names[i]]), len(values[names[j]]); a != b {
			return a < b
		}
		return names[i] < names[j]
	})
	if len(names) > maxContribLabels {
		names = names[:maxContribLabels]
	}
	if len(names) == 0 {
		return nil, nil
	}
	// parts reads sum by (label) of a at t, by value.
	parts := func(a *metricsql.AggrFuncExpr, label string, t time.Time) (map[string]float64, error) {
		r, err := instant(by(a, label), t)
		if err != nil {
			return nil, err
		}
		m := map[string]float64{}
		for _, x := range r.Series {
			if len(x.Points) > 0 {
				m[x.Metric.Get(label)] += x.Points[len(x.Points)-1].F
			}
		}
		return m, nil
	}
	out := &Contributors{Since: since}
	var all []Contributor
	have := false
	for _, label := range names {
		n0, err := parts(s.num, label, since)
		if err != nil {
			return nil, fmt.Errorf("contributors: %w", err)
		}
		n1, err := parts(s.num, label, at)
		if err != nil {
			return nil, fmt.Errorf("contributors: %w", err)
		}
		d0, d1 := map[string]float64{}, map[string]float64{}
		if s.den != nil {
			if d0, err = parts(s.den, label, since); err != nil {
				return nil, fmt.Errorf("contributors: %w", err)
			}
			if d1, err = parts(s.den, label, at); err != nil {
				return nil, fmt.Errorf("contributors: %w", err)
			}
		}
		cs, before, now, ok := breakdown(s, label, n0, n1, d0, d1)
		if !ok {
			continue
		}
		if !have {
			out.Before, out.Now, have = before, now, true
		}
		all = append(all, cs...)
	}
	if !have {
		return nil, nil
	}
	// The wrong way: down for a KPI that must stay above its target.
	sign := -1.0
	if d.Direction == "below" {
		sign = 1
	}
	kept := all[:0]
	for _, c := range all {
		if sign*c.Effect > 0 && (out.Now == out.Before || math.Abs(c.Share) >= minShare) {
			kept = append(kept, c)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool { return sign*kept[i].Effect > sign*kept[j].Effect })
	if len(kept) > maxContributors {
		kept = kept[:maxContributors]
	}
	out.Top = kept
	return out, nil
}

// breakdown computes the effects of the values of one label; it also
// returns the KPI at the baseline and now as the parts add up. ok is
// false when the KPI is undefined at either time (a zero denominator).
func breakdown(s shape, label string, n0, n1, d0, d1 map[string]float64) (cs []Contributor, before, now float64, ok bool) {
	keys := map[string]bool{}
	for _, m := range []map[string]float64{n0, n1, d0, d1} {
		for v := range m {
			keys[v] = true
		}
	}
	sum := func(m map[string]float64) (t float64) {
		for _, v := range m {
			t += v
		}
		return t
	}
	N0, N1 := sum(n0), sum(n1)
	if s.den == nil {
		before, now = s.k*N0, s.k*N1
		for v := range keys {
			cs = append(cs, Contributor{Label: label, Value: v, Before: ptr(s.k * n0[v]), Now: ptr(s.k * n1[v]), Effect: s.k * (n1[v] - n0[v])})
		}
	} else {
		D0, D1 := sum(d0), sum(d1)
		if D0 == 0 || D1 == 0 {
			return nil, 0, 0, false
		}
		r0 := N0 / D0
		before, now = s.k*r0, s.k*N1/D1
		own := func(n, d float64) *float64 {
			if d == 0 {
				return nil
			}
			return ptr(s.k * n / d)
		}
		for v := range keys {
			eff := s.k * ((n1[v] - n0[v]) - r0*(d1[v]-d0[v])) / D1
			cs = append(cs, Contributor{Label: label, Value: v, Before: own(n0[v], d0[v]), Now: own(n1[v], d1[v]), Effect: eff})
		}
	}
	if change := now - before; change != 0 {
		for i := range cs {
			cs[i].Share = cs[i].Effect / change
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Value < cs[j].Value })
	return cs, before, now, true
}

func ptr(v float64) *float64 { return &v }
