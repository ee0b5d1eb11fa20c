package promqltest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/util/convertnhcb"

	"github.com/emsdb/tsdb/storage"
)

// customBucketSeries converts the classic histograms of a load_with_nhcb
// block (the _bucket, _count and _sum series) into native histograms with
// custom buckets under the histogram's base name, as Prometheus's test
// runner does.
func customBucketSeries(series []LoadSeries) ([]LoadSeries, error) {
	type temp struct {
		ls   labels.Labels
		byTs map[int64]convertnhcb.TempHistogram
	}
	hists := map[uint64]*temp{}
	var order []uint64
	add := func(ls labels.Labels, name string, samples []storage.Sample, set func(*convertnhcb.TempHistogram, float64)) {
		base := convertnhcb.GetHistogramMetricBase(ls, name)
		h := base.Hash()
		t := hists[h]
		if t == nil {
			t = &temp{ls: base, byTs: map[int64]convertnhcb.TempHistogram{}}
			hists[h] = t
			order = append(order, h)
		}
		for _, s := range samples {
			th, ok := t.byTs[s.T]
			if !ok {
				th = convertnhcb.NewTempHistogram()
			}
			set(&th, s.V)
			t.byTs[s.T] = th
		}
	}
	for _, s := range series {
		suffix, name := convertnhcb.GetHistogramMetricBaseName(s.Labels.Get(model.MetricNameLabel))
		switch suffix {
		case convertnhcb.SuffixBucket:
			le, err := strconv.ParseFloat(s.Labels.Get(labels.BucketLabel), 64)
			if err != nil || math.IsNaN(le) {
				continue
			}
			add(s.Labels, name, s.Samples, func(h *convertnhcb.TempHistogram, f float64) { _ = h.SetBucketCount(le, f) })
		case convertnhcb.SuffixCount:
			add(s.Labels, name, s.Samples, func(h *convertnhcb.TempHistogram, f float64) { _ = h.SetCount(f) })
		case convertnhcb.SuffixSum:
			add(s.Labels, name, s.Samples, func(h *convertnhcb.TempHistogram, f float64) { _ = h.SetSum(f) })
		}
	}
	var out []LoadSeries
	for _, k := range order {
		t := hists[k]
		ls := LoadSeries{Labels: t.ls, Histogram: true}
		for ts, th := range t.byTs {
			h, fh, err := th.Convert()
			if err != nil {
				return nil, fmt.Errorf("convert %s: %w", t.ls, err)
			}
			if fh == nil {
				if err := h.Validate(); err != nil {
					return nil, fmt.Errorf("convert %s: %w", t.ls, err)
				}
				fh = h.ToFloat(nil)
			}
			if err := fh.Validate(); err != nil {
				return nil, fmt.Errorf("convert %s: %w", t.ls, err)
			}
			ls.Histograms = append(ls.Histograms, storage.HSample{T: ts, H: fh})
		}
		slices.SortFunc(ls.Histograms, func(a, b storage.HSample) int { return cmp.Compare(a.T, b.T) })
		out = append(out, ls)
	}
	return out, nil
}
