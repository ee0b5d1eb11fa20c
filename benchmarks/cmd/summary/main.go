// Command summary turns the compare results of several workloads into
// one table of ratios to Prometheus, writes it to SUMMARY.md beside them
// and, with --readme, puts it into the README between the
// <!-- bench:start --> and <!-- bench:end --> markers.
//
//	go run ./benchmarks/cmd/summary --dir benchmarks/results/short --readme README.md
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// The parts of compare's results.json the summary reads.
type stat struct {
	Name  string  `json:"name"`
	Range bool    `json:"range"`
	P50Ms float64 `json:"p50_ms"`
}

type run struct {
	Peer    string `json:"peer"`
	Version string `json:"version"`
	Series  int    `json:"series"`
	Load    struct {
		SamplesPerSec float64 `json:"samples_per_sec"`
		LatencyP99Ms  float64 `json:"latency_p99_ms"`
	} `json:"load"`
	BytesPerSample float64 `json:"bytes_per_sample"`
	RSSPerSeries   float64 `json:"rss_bytes_per_series"`
	Queries        []stat  `json:"queries"`
	Cold           []stat  `json:"cold_queries"`
	Load2          *struct {
		QPS float64 `json:"qps"`
	} `json:"concurrent_queries"`
	CrossChecked int      `json:"cross_checked"`
	Mismatches   []string `json:"mismatches"`
	Error        string   `json:"error"`
}

type report struct {
	Date     time.Time `json:"date"`
	Machine  string    `json:"machine"`
	Workload string    `json:"workload"`
	Runs     []run     `json:"runs"`
}

func main() {
	dir := flag.String("dir", "benchmarks/results/short", "folder with one sub-folder of results.json per workload")
	readme := flag.String("readme", "", "README to update between the bench markers")
	flag.Parse()
	md, err := summarize(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
	fmt.Print(md)
	if err := os.WriteFile(filepath.Join(*dir, "SUMMARY.md"), []byte(md), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "summary:", err)
		os.Exit(1)
	}
	if *readme != "" {
		if err := updateReadme(*readme, md); err != nil {
			fmt.Fprintln(os.Stderr, "summary:", err)
			os.Exit(1)
		}
	}
}

func ratio(a, b float64) string {
	if b == 0 || a == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// p50Ratios returns the p50 ratios of the queries both ran, instant or
// range (refreshes excluded).
func p50Ratios(a, b []stat, rangeQ bool) []float64 {
	pb := map[string]float64{}
	for _, q := range b {
		pb[q.Name] = q.P50Ms
	}
	var out []float64
	for _, q := range a {
		if q.Range != rangeQ || strings.HasSuffix(q.Name, "(refresh)") || pb[q.Name] == 0 {
			continue
		}
		out = append(out, q.P50Ms/pb[q.Name])
	}
	return out
}

func spread(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	sort.Float64s(xs)
	if len(xs) == 1 || math.Abs(xs[0]-xs[len(xs)-1]) < 0.005 {
		return fmt.Sprintf("%.2f", xs[0])
	}
	return fmt.Sprintf("%.2f–%.2f", xs[0], xs[len(xs)-1])
}

func refresh(a, b []stat) string {
	var x, y float64
	for _, q := range a {
		if strings.HasSuffix(q.Name, "(refresh)") {
			x = q.P50Ms
		}
	}
	for _, q := range b {
		if strings.HasSuffix(q.Name, "(refresh)") {
			y = q.P50Ms
		}
	}
	return ratio(x, y)
}

func summarize(dir string) (string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", "results.json"))
	if err != nil || len(paths) == 0 {
		return "", fmt.Errorf("no results.json under %s", dir)
	}
	sort.Strings(paths)
	var b strings.Builder
	var date time.Time
	machine, versions := "", map[string]string{}
	b.WriteString("| workload | series | tsdb samples/s | ingest × | disk × | RSS/series × | instant p50 × | range p50 × | cached refresh × | cold p50 × | QPS × (4 clients) | same answers |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		var rep report
		if err := json.Unmarshal(raw, &rep); err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		if rep.Date.After(date) {
			date, machine = rep.Date, rep.Machine
		}
		name := filepath.Base(filepath.Dir(p))
		base := map[int]run{}
		for _, r := range rep.Runs {
			if r.Version != "" {
				versions[r.Peer] = r.Version
			}
			if r.Peer == "prometheus" && r.Error == "" {
				base[r.Series] = r
			}
		}
		for _, r := range rep.Runs {
			if r.Peer != "tsdb" {
				continue
			}
			if r.Error != "" {
				fmt.Fprintf(&b, "| %s | %d | failed: %s |||||||||\n", name, r.Series, strings.ReplaceAll(r.Error, "\n", " "))
				continue
			}
			pr, ok := base[r.Series]
			if !ok {
				continue
			}
			qps := "–"
			if r.Load2 != nil && pr.Load2 != nil {
				qps = ratio(r.Load2.QPS, pr.Load2.QPS)
			}
			same := "–"
			if r.CrossChecked > 0 {
				same = fmt.Sprintf("%d/%d", r.CrossChecked-len(r.Mismatches), r.CrossChecked)
			}
			cold := append(p50Ratios(r.Cold, pr.Cold, false), p50Ratios(r.Cold, pr.Cold, true)...)
			fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, r.Series, r.Load.SamplesPerSec,
				ratio(r.Load.SamplesPerSec, pr.Load.SamplesPerSec), ratio(r.BytesPerSample, pr.BytesPerSample), ratio(r.RSSPerSeries, pr.RSSPerSeries),
				spread(p50Ratios(r.Queries, pr.Queries, false)), spread(p50Ratios(r.Queries, pr.Queries, true)), refresh(r.Queries, pr.Queries),
				spread(cold), qps, same)
		}
	}
	var vs []string
	for _, k := range []string{"tsdb", "prometheus"} {
		if v, ok := versions[k]; ok {
			vs = append(vs, k+" "+v)
		}
	}
	head := fmt.Sprintf("Measured %s on %s; %s. Ratios are tsdb ÷ Prometheus in the same run (ingest and QPS: higher is better; the rest: lower is better); ranges give the best and worst query. Details per workload in `%s/<workload>/results.md`.\n\n",
		date.Format("2006-01-02"), machine, strings.Join(vs, "; "), dir)
	return head + b.String(), nil
}

func updateReadme(path, table string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	start, end := []byte("<!-- bench:start -->"), []byte("<!-- bench:end -->")
	i, j := bytes.Index(raw, start), bytes.Index(raw, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s markers", path, start, end)
	}
	var out bytes.Buffer
	out.Write(raw[:i+len(start)])
	out.WriteString("\n" + table)
	out.Write(raw[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
