// Package workload generates deterministic benchmark data: series and their
// samples, as a monitoring system would receive them from real exporters.
package workload

import (
	"bytes"
	_ "embed"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// nodeExporterScrape is one real scrape of Debian's prometheus-node-exporter
// 1.5.0: 507 series with their types and first values.
//
//go:embed testdata/node_exporter.prom
var nodeExporterScrape []byte

// NodeExporter is the node-exporter-like workload: hosts that each expose
// the series of a real node-exporter scrape, labelled instance and job, and
// scraped every Interval. Counters grow at per-series rates, some idle; some
// gauges stay constant and the others wander, each keeping the precision its
// real value had (integers stay integers, 4 KiB page counts stay multiples of
// 4096). All of it is a function of the seed.
type NodeExporter struct {
	Interval int64 // ms between samples of a series
	Start    int64 // ms timestamp of the first sample

	series  []genSeries
	perHost int
}

type genSeries struct {
	lset   labels.Labels
	offset int64 // scrape offset of its host within the interval, ms
	value  float64
	kind   kind
	quant  float64 // value quantum; 0 = full float precision
	rate   float64 // counter increment or gauge step scale per interval
	rng    *rand.Rand

	pChange, mean, sd float64 // Recorded: chance and size of a change
}

type kind uint8

const (
	kindConstant kind = iota
	kindCounter
	kindIdleCounter
	kindGauge
	kindRecordedCounter
	kindRecordedGauge
)

type template struct {
	lset  labels.Labels
	value float64
	typ   model.MetricType
}

// PerHost is the number of series one host exposes.
func (w *NodeExporter) PerHost() int { return w.perHost }

func templates() ([]template, error) {
	t, err := parseScrape(nodeExporterScrape)
	if err != nil {
		return nil, fmt.Errorf("parse embedded scrape: %w", err)
	}
	return t, nil
}

// Model is how the workload's values move.
type Model string

const (
	// Recorded replays, per series, the change statistics of 17 real scrapes
	// 15 s apart of node-exporter 1.5.0 on a 2-core machine that was
	// running builds and benchmarks (testdata/node_exporter_stats.tsv,
	// made by cmd/nerecord): how often it changes, the mean and spread of
	// its changes, and its printed precision. About a quarter of the series
	// change at a given scrape, as on that host.
	Recorded Model = "recorded"
	// Noisy is a harsher synthetic model: 65% of counters grow every scrape
	// by a random ±50% of a per-series rate, half of the gauges wander
	// every scrape. It gives compression less to work with than real
	// hosts do.
	Noisy Model = "noisy"
)

//go:embed testdata/node_exporter_stats.tsv
var nodeExporterStats []byte

// NewNodeExporter returns the Recorded workload with n series (hosts are
// filled in turn; the last may be partial) whose first samples are at start.
func NewNodeExporter(n int, start, interval int64, seed uint64) (*NodeExporter, error) {
	return NewNodeExporterModel(Recorded, n, start, interval, seed)
}

// NewNodeExporterModel is NewNodeExporter with the given value model.
func NewNodeExporterModel(m Model, n int, start, interval int64, seed uint64) (*NodeExporter, error) {
	if n <= 0 || interval <= 0 {
		return nil, fmt.Errorf("workload: need n > 0 and interval > 0, got %d and %d", n, interval)
	}
	var tmpl []template
	var stats []SeriesStats
	switch m {
	case Noisy:
		var err error
		if tmpl, err = templates(); err != nil {
			return nil, err
		}
	case Recorded:
		var err error
		if stats, err = ReadStats(bytes.NewReader(nodeExporterStats)); err != nil {
			return nil, fmt.Errorf("embedded stats: %w", err)
		}
		for _, s := range stats {
			tmpl = append(tmpl, template{lset: s.Labels, value: s.First})
		}
	default:
		return nil, fmt.Errorf("workload: unknown model %q", m)
	}
	w := &NodeExporter{Interval: interval, Start: start, series: make([]genSeries, 0, n), perHost: len(tmpl)}
	b := labels.NewScratchBuilder(16)
	for host := 0; len(w.series) < n; host++ {
		hostRng := rand.New(rand.NewPCG(seed, uint64(host)))
		offset := hostRng.Int64N(interval)
		instance := fmt.Sprintf("host-%05d:9100", host)
		for i, t := range tmpl {
			if len(w.series) == n {
				break
			}
			b.Reset()
			t.lset.Range(func(l labels.Label) { b.Add(l.Name, l.Value) })
			b.Add("instance", instance)
			b.Add("job", "node")
			b.Sort()
			rng := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(host)<<20|uint64(i)))
			if stats != nil {
				w.series = append(w.series, recordedSeries(b.Labels(), offset, stats[i], rng))
			} else {
				w.series = append(w.series, newGenSeries(b.Labels(), offset, t, rng))
			}
		}
	}
	return w, nil
}

func newGenSeries(lset labels.Labels, offset int64, t template, rng *rand.Rand) genSeries {
	g := genSeries{lset: lset, offset: offset, value: t.value, quant: quantum(t.value), rng: rng}
	if math.IsNaN(t.value) || math.IsInf(t.value, 0) {
		g.kind = kindConstant
		return g
	}
	name := lset.Get(model.MetricNameLabel)
	switch {
	case t.typ == model.MetricTypeCounter || strings.HasSuffix(name, "_total"):
		if rng.Float64() < 0.35 {
			g.kind = kindIdleCounter
		} else {
			g.kind = kindCounter
		}
		q := g.quant
		if q == 0 {
			q = 1e-3
		}
		g.rate = q * math.Floor(1+rng.ExpFloat64()*200)
	default:
		if rng.Float64() < 0.5 {
			g.kind = kindConstant
			return g
		}
		g.kind = kindGauge
		scale := math.Abs(t.value) * 0.002
		if g.quant > 0 {
			scale = math.Max(scale, g.quant)
		} else if scale == 0 {
			scale = 1e-3
		}
		g.rate = scale
	}
	return g
}

func recordedSeries(lset labels.Labels, offset int64, st SeriesStats, rng *rand.Rand) genSeries {
	g := genSeries{lset: lset, offset: offset, value: st.First, quant: st.Quantum, rng: rng,
		pChange: st.PChange, mean: st.Mean, sd: st.SD}
	switch {
	case st.PChange == 0 || math.IsNaN(st.First) || math.IsInf(st.First, 0):
		g.kind = kindConstant
	case st.Counter:
		g.kind = kindRecordedCounter
	default:
		g.kind = kindRecordedGauge
		g.sd = math.Sqrt(st.Mean*st.Mean + st.SD*st.SD) // no drift: wander by the changes' RMS
	}
	return g
}

// quantum is the step a value is printed in: 1 for integers (4096 for
// page-sized byte counts), else the unit of its last significant digit when
// it has at most 12 (74.83: 0.01; a duration in nanoseconds, 0.000175341:
// 1e-9), else 0, full float precision (0.20700000000000002).
func quantum(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	if v == math.Trunc(v) {
		if v != 0 && math.Mod(v, 4096) == 0 {
			return 4096
		}
		return 1
	}
	mant, exp, _ := strings.Cut(strconv.FormatFloat(v, 'e', -1, 64), "e")
	digits := len(strings.TrimLeft(strings.Replace(mant, ".", "", 1), "-"))
	e, err := strconv.Atoi(exp)
	if err != nil || digits > 12 {
		return 0
	}
	q := e - (digits - 1)
	if q >= 0 {
		return 1
	}
	return math.Pow10(q)
}

// Len is the number of series.
func (w *NodeExporter) Len() int { return len(w.series) }

// Labels returns the label set of series i.
func (w *NodeExporter) Labels(i int) labels.Labels { return w.series[i].lset }

// Timestamp is the timestamp of the step-th sample of series i.
func (w *NodeExporter) Timestamp(i, step int) int64 {
	return w.Start + w.series[i].offset + int64(step)*w.Interval
}

// Next returns the next value of series i. Call it once per step, in step
// order, for each series.
func (w *NodeExporter) Next(i int) float64 {
	g := &w.series[i]
	v := g.value
	switch g.kind {
	case kindCounter:
		inc := g.rate * (0.5 + g.rng.Float64())
		g.value = g.round(g.value + inc)
	case kindIdleCounter:
		if g.rng.IntN(100) == 0 {
			q := g.quant
			if q == 0 {
				q = 1
			}
			g.value = g.round(g.value + q)
		}
	case kindRecordedCounter:
		if g.rng.Float64() < g.pChange {
			g.value = g.round(g.value + max(0, g.mean+g.sd*g.rng.NormFloat64()))
		}
	case kindRecordedGauge:
		if g.rng.Float64() < g.pChange {
			g.value = g.round(g.value + g.sd*g.rng.NormFloat64())
		}
	case kindGauge:
		nv := g.round(g.value + g.rng.NormFloat64()*g.rate)
		if g.value >= 0 && nv < 0 {
			nv = -nv
		}
		g.value = nv
	}
	return v
}

func (g *genSeries) round(v float64) float64 {
	if g.quant == 0 {
		return v
	}
	r := math.Round(v/g.quant) * g.quant
	if g.quant < 1 {
		// Print-exact decimals, as an exporter formats them.
		d := int(math.Round(-math.Log10(g.quant)))
		r, _ = strconv.ParseFloat(strconv.FormatFloat(r, 'f', d, 64), 64)
	}
	return r
}
