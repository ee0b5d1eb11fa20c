// Package workload generates deterministic benchmark data: series and their
// samples, as a monitoring system would receive them from real exporters.
package workload

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
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

	series []genSeries
}

type genSeries struct {
	lset   labels.Labels
	offset int64 // scrape offset of its host within the interval, ms
	value  float64
	kind   kind
	quant  float64 // value quantum; 0 = full float precision
	rate   float64 // counter increment or gauge step scale per interval
	rng    *rand.Rand
}

type kind uint8

const (
	kindConstant kind = iota
	kindCounter
	kindIdleCounter
	kindGauge
)

type template struct {
	lset  labels.Labels
	value float64
	typ   model.MetricType
}

// PerHost is the number of series one node-exporter host exposes.
func PerHost() int {
	t, err := templates()
	if err != nil {
		panic(err) // the embedded scrape is fixed; tested
	}
	return len(t)
}

func templates() ([]template, error) {
	p, err := textparse.New(nodeExporterScrape, "text/plain", labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		return nil, err
	}
	types := map[string]model.MetricType{}
	var out []template
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse embedded scrape: %w", err)
		}
		switch e {
		case textparse.EntryType:
			name, typ := p.Type()
			types[string(name)] = typ
		case textparse.EntrySeries:
			_, _, v := p.Series()
			var l labels.Labels
			p.Labels(&l)
			name := l.Get(labels.MetricName)
			typ, ok := types[name]
			if !ok {
				// A histogram's or summary's _bucket, _sum and _count.
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if base, cut := strings.CutSuffix(name, suf); cut {
						if _, known := types[base]; known {
							typ, ok = model.MetricTypeCounter, true
							break
						}
					}
				}
			}
			if !ok {
				typ = model.MetricTypeUnknown
			}
			out = append(out, template{lset: l, value: v, typ: typ})
		}
	}
	return out, nil
}

// NewNodeExporter returns the workload with n series (hosts are filled in
// turn; the last may be partial) whose first samples are at start.
func NewNodeExporter(n int, start, interval int64, seed uint64) (*NodeExporter, error) {
	if n <= 0 || interval <= 0 {
		return nil, fmt.Errorf("workload: need n > 0 and interval > 0, got %d and %d", n, interval)
	}
	tmpl, err := templates()
	if err != nil {
		return nil, err
	}
	w := &NodeExporter{Interval: interval, Start: start, series: make([]genSeries, 0, n)}
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
			w.series = append(w.series, newGenSeries(b.Labels(), offset, t, rng))
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
	name := lset.Get(labels.MetricName)
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

// quantum is the step a value moves in: 1 for integers (4096 for page-sized
// byte counts), 10^-d for values printed with d ≤ 3 decimals, else 0 (full
// float precision).
func quantum(v float64) float64 {
	if v == math.Trunc(v) {
		if v != 0 && math.Mod(v, 4096) == 0 {
			return 4096
		}
		return 1
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i-1 <= 3 {
		return math.Pow10(-(len(s) - i - 1))
	}
	return 0
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
