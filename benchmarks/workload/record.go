package workload

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
)

// SeriesStats is how one series of a real exporter behaved between
// consecutive scrapes.
type SeriesStats struct {
	Labels  labels.Labels
	Counter bool
	First   float64
	PChange float64 // share of scrapes whose value differed from the last
	Mean    float64 // mean of the nonzero changes
	SD      float64 // their standard deviation
	Quantum float64 // the finest printed step; 0 = full float precision
}

// Record derives per-series statistics from consecutive scrapes (text
// exposition format) of one exporter. Series missing from any scrape are
// left out.
func Record(scrapes [][]byte) ([]SeriesStats, error) {
	if len(scrapes) < 2 {
		return nil, errors.New("workload: need at least two scrapes")
	}
	type acc struct {
		ls      labels.Labels
		counter bool
		vals    []float64
		quant   float64
	}
	byKey := map[string]*acc{}
	var order []string
	for si, body := range scrapes {
		tmpl, err := parseScrape(body)
		if err != nil {
			return nil, fmt.Errorf("scrape %d: %w", si, err)
		}
		for _, t := range tmpl {
			k := t.lset.String()
			a := byKey[k]
			if a == nil {
				if si > 0 {
					continue
				}
				a = &acc{ls: t.lset, counter: isCounter(t), quant: math.Inf(1)}
				byKey[k] = a
				order = append(order, k)
			}
			if len(a.vals) != si {
				continue // missed a scrape
			}
			a.vals = append(a.vals, t.value)
			if q := quantum(t.value); q < a.quant {
				a.quant = q
			}
		}
	}
	var out []SeriesStats
	for _, k := range order {
		a := byKey[k]
		if len(a.vals) != len(scrapes) {
			continue
		}
		s := SeriesStats{Labels: a.ls, Counter: a.counter, First: a.vals[0], Quantum: a.quant}
		if math.IsInf(s.Quantum, 1) {
			s.Quantum = 0
		}
		var changes []float64
		for i := 1; i < len(a.vals); i++ {
			d := a.vals[i] - a.vals[i-1]
			if s.Counter && d < 0 {
				continue // a reset
			}
			if d != 0 && !math.IsNaN(d) {
				changes = append(changes, d)
			}
		}
		s.PChange = float64(len(changes)) / float64(len(a.vals)-1)
		for _, d := range changes {
			s.Mean += d / float64(len(changes))
		}
		for _, d := range changes {
			s.SD += (d - s.Mean) * (d - s.Mean) / float64(len(changes))
		}
		s.SD = math.Sqrt(s.SD)
		out = append(out, s)
	}
	return out, nil
}

func isCounter(t template) bool {
	return t.typ == model.MetricTypeCounter || strings.HasSuffix(t.lset.Get(model.MetricNameLabel), "_total")
}

// WriteStats writes stats as tab-separated lines: series (exposition
// format), kind, first value, p_change, mean, sd, quantum.
func WriteStats(w io.Writer, stats []SeriesStats) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "# series\tkind\tfirst\tp_change\tmean\tsd\tquantum")
	for _, s := range stats {
		kind := "gauge"
		if s.Counter {
			kind = "counter"
		}
		f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
		fmt.Fprintf(bw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", exposition(s.Labels), kind, f(s.First), f(s.PChange), f(s.Mean), f(s.SD), f(s.Quantum))
	}
	return bw.Flush()
}

func exposition(ls labels.Labels) string {
	var b strings.Builder
	b.WriteString(ls.Get(model.MetricNameLabel))
	b.WriteByte('{')
	first := true
	ls.Range(func(l labels.Label) {
		if l.Name == model.MetricNameLabel {
			return
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
		fmt.Fprintf(&b, "%s=\"%s\"", l.Name, r.Replace(l.Value))
	})
	b.WriteByte('}')
	return b.String()
}

// ReadStats reads what WriteStats wrote.
func ReadStats(r io.Reader) ([]SeriesStats, error) {
	var out []SeriesStats
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 7 {
			return nil, fmt.Errorf("stats line %d: want 7 fields, got %d", line, len(f))
		}
		tmpl, err := parseScrape([]byte(f[0] + " 0\n"))
		if err != nil || len(tmpl) != 1 {
			return nil, fmt.Errorf("stats line %d: bad series %q: %v", line, f[0], err)
		}
		s := SeriesStats{Labels: tmpl[0].lset, Counter: f[1] == "counter"}
		for i, dst := range []*float64{&s.First, &s.PChange, &s.Mean, &s.SD, &s.Quantum} {
			if *dst, err = strconv.ParseFloat(f[i+2], 64); err != nil {
				return nil, fmt.Errorf("stats line %d field %d: %w", line, i+3, err)
			}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseScrape parses one text-format scrape into series templates.
func parseScrape(body []byte) ([]template, error) {
	p, err := textparse.New(body, "text/plain", labels.NewSymbolTable(), textparse.ParserOptions{})
	if err != nil {
		return nil, err
	}
	types := map[string]model.MetricType{}
	var out []template
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		switch e {
		case textparse.EntryType:
			name, typ := p.Type()
			types[string(name)] = typ
		case textparse.EntrySeries:
			_, _, v := p.Series()
			var l labels.Labels
			p.Labels(&l)
			name := l.Get(model.MetricNameLabel)
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
}
