package ruler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// evalRecording evaluates a recording rule at ts into b: one series per
// sample of its vector, named by the rule, with the group's and the rule's
// labels; series it wrote last time and not now get a stale marker.
func (g *Group) evalRecording(ctx context.Context, rl *Rule, ts time.Time, b *storage.Batch) error {
	res, err := g.r.eng.Instant(ctx, g.tenant(), rl.Def.Expr, ts.Add(-g.QueryOffset).UnixMilli())
	if err != nil {
		return err
	}
	var series []query.Series
	switch res.Type {
	case query.ValueScalar:
		series = []query.Series{{Metric: labels.EmptyLabels(), Points: []query.Point{res.Scalar}}}
	case query.ValueVector:
		series = res.Series
	default:
		return fmt.Errorf("rule result is a %s, not a vector or scalar", res.Type)
	}
	if g.Limit > 0 && len(series) > g.Limit {
		return fmt.Errorf("exceeded limit of %d with %d series", g.Limit, len(series))
	}
	seen := map[string]labels.Labels{}
	for _, s := range series {
		lb := labels.NewBuilder(s.Metric)
		lb.Set(model.MetricNameLabel, rl.Def.Record)
		for k, v := range g.Labels {
			lb.Set(k, v)
		}
		for k, v := range rl.Def.Labels {
			lb.Set(k, v)
		}
		ls := lb.Labels()
		k := ls.String()
		if _, dup := seen[k]; dup {
			return errors.New("vector contains metrics with the same labelset after applying rule labels")
		}
		seen[k] = ls
		if h := s.H(0); h != nil {
			// A rule over native histograms records histograms, as
			// Prometheus's does.
			b.AddHistograms(ls, storage.HSample{T: ts.UnixMilli(), H: h.Copy()})
		} else {
			b.Add(ls, storage.Sample{T: ts.UnixMilli(), V: s.Points[0].F})
		}
	}
	rl.mu.Lock()
	rl.markStale(b, seen, ts.UnixMilli())
	rl.mu.Unlock()
	return nil
}
