package main

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/ingest/health"
	"github.com/emsdb/tsdb/storage"
)

// selfMonitor writes tsdb's own metrics (what /metrics shows) into its
// storage at an interval, as a scrape of job="tsdb" would, with up and
// scrape_duration_seconds: dashboards, rules and KPIs about tsdb work
// without any scraper.
type selfMonitor struct {
	gather   prometheus.Gatherer
	w        storage.Writer
	tenant   string
	instance string
	log      *slog.Logger
	now      func() time.Time
	health   *health.Source // says once that storing fails, and once that it works again
}

// run collects every interval until ctx ends.
func (m *selfMonitor) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	m.health = health.New(m.log, "")
	for {
		if err := m.collect(ctx); err != nil && ctx.Err() == nil {
			m.health.Down("self-monitoring metrics not stored: " + err.Error())
		} else if err == nil {
			m.health.Up()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// collect gathers the registry once and writes it as samples at now.
func (m *selfMonitor) collect(ctx context.Context) error {
	start := m.now()
	mfs, gerr := m.gather.Gather()
	ts := start.UnixMilli()
	var b storage.Batch
	for _, mf := range mfs {
		appendFamily(&b, mf, ts, m.base)
	}
	up := 1.0
	if gerr != nil { // partial: some collectors failed, as a scrape would see
		m.log.Warn("self-monitoring: gathering metrics", "err", gerr)
		up = 0
	}
	b.Add(m.base("up", nil), storage.Sample{T: ts, V: up})
	b.Add(m.base("scrape_duration_seconds", nil), storage.Sample{T: ts, V: m.now().Sub(start).Seconds()})
	b.Add(m.base("scrape_samples_scraped", nil), storage.Sample{T: ts, V: float64(b.Len())})
	return m.w.Write(ctx, m.tenant, &b)
}

// base returns the labels of a sample of metric name: the metric's own
// labels, extra, then job and instance (which win, as with honor_labels
// off).
func (m *selfMonitor) base(name string, lps []*dto.LabelPair, extra ...string) labels.Labels {
	sb := labels.NewScratchBuilder(len(lps) + 3 + len(extra)/2)
	sb.Add(model.MetricNameLabel, name)
	for _, lp := range lps {
		if n := lp.GetName(); n != "job" && n != "instance" {
			sb.Add(n, lp.GetValue())
		}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		sb.Add(extra[i], extra[i+1])
	}
	sb.Add("job", "tsdb")
	sb.Add("instance", m.instance)
	sb.Sort()
	return sb.Labels()
}

// appendFamily adds the samples of one metric family to b, named as the
// Prometheus text format names them (_bucket, _sum, _count; quantile).
func appendFamily(b *storage.Batch, mf *dto.MetricFamily, ts int64, lbl func(string, []*dto.LabelPair, ...string) labels.Labels) {
	name := mf.GetName()
	for _, mt := range mf.GetMetric() {
		t := ts
		if mt.TimestampMs != nil {
			t = mt.GetTimestampMs()
		}
		lps := mt.GetLabel()
		one := func(n string, v float64, extra ...string) {
			b.Add(lbl(n, lps, extra...), storage.Sample{T: t, V: v})
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			one(name, mt.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			one(name, mt.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			one(name, mt.GetUntyped().GetValue())
		case dto.MetricType_SUMMARY:
			s := mt.GetSummary()
			for _, q := range s.GetQuantile() {
				one(name, q.GetValue(), "quantile", formatFloat(q.GetQuantile()))
			}
			one(name+"_sum", s.GetSampleSum())
			one(name+"_count", float64(s.GetSampleCount()))
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := mt.GetHistogram()
			inf := false
			for _, bk := range h.GetBucket() {
				inf = inf || math.IsInf(bk.GetUpperBound(), 1)
				one(name+"_bucket", float64(bk.GetCumulativeCount()), "le", formatFloat(bk.GetUpperBound()))
			}
			if !inf {
				one(name+"_bucket", float64(h.GetSampleCount()), "le", "+Inf")
			}
			one(name+"_sum", h.GetSampleSum())
			one(name+"_count", float64(h.GetSampleCount()))
		}
	}
}

// formatFloat writes le and quantile values as the text format does.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
