// Command summary turns the compare results of several workloads into two
// tables — each peer's figures with tsdb's ratios to VictoriaMetrics and to
// Prometheus, and the query ratios — writes them to SUMMARY.md beside
// them and, with --readme, puts them into the README between the
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

type load struct {
	Clients       int     `json:"clients"`
	SamplesPerSec float64 `json:"samples_per_sec"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
}

type run struct {
	Peer           string  `json:"peer"`
	Version        string  `json:"version"`
	Series         int     `json:"series"`
	Load           load    `json:"load"`
	LoadMore       *load   `json:"load_more"`
	CPUPerMillion  float64 `json:"cpu_seconds_per_million_samples"`
	RunningPerSamp float64 `json:"running_bytes_per_sample"`
	BytesPerSample float64 `json:"bytes_per_sample"`
	RSSPerSeries   float64 `json:"rss_bytes_per_series"`
	RSSAfterQuery  int64   `json:"rss_after_queries_bytes"`
	Queries        []stat  `json:"queries"`
	Cold           []stat  `json:"cold_queries"`
	Load2          *struct {
		QPS float64 `json:"qps"`
	} `json:"concurrent_queries"`
	CrossChecked int      `json:"cross_checked"`
	Mismatches   []string `json:"mismatches"`
	CrossSkipped []string `json:"cross_check_skipped"`
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

// spread is the best and worst of the ratios in all lists (with their
// median when there are more than two).
func spread(lists ...[]float64) string {
	var xs []float64
	for _, l := range lists {
		xs = append(xs, l...)
	}
	if len(xs) == 0 {
		return "–"
	}
	sort.Float64s(xs)
	if len(xs) == 1 || math.Abs(xs[0]-xs[len(xs)-1]) < 0.005 {
		return fmt.Sprintf("%.2f", xs[0])
	}
	if len(xs) > 2 {
		return fmt.Sprintf("%.2f–%.2f (%.2f)", xs[0], xs[len(xs)-1], xs[len(xs)/2])
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

// peerOrder is the order peers are listed in; tsdb's ratios are to the
// others.
var peerOrder = []string{"tsdb", "victoriametrics", "prometheus"}

// targets are issue 18's goals for tsdb ÷ VictoriaMetrics, by column.
const targets = "| | | target: tsdb ÷ victoriametrics | ≥ 1.5 | ≥ 1.5 | ≤ 0.6 | ≤ 1.5 (of VM's flushed size) | ≤ 0.6 | ≤ 0.7 | | ≤ 0.5 | |\n"

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = append([]float64(nil), xs...)
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

// p50s is the p50 of every query but the refresh, in ms.
func p50s(qs []stat) []float64 {
	var out []float64
	for _, q := range qs {
		if !strings.HasSuffix(q.Name, "(refresh)") && q.P50Ms > 0 {
			out = append(out, q.P50Ms)
		}
	}
	return out
}

func mib(b int64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", float64(b)/(1<<20))
}

func moreRate(r run) float64 {
	if r.LoadMore == nil {
		return 0
	}
	return r.LoadMore.SamplesPerSec
}

func same(r run) string {
	if r.CrossChecked == 0 {
		return "–"
	}
	s := fmt.Sprintf("%d/%d", r.CrossChecked-len(r.Mismatches), r.CrossChecked)
	if len(r.CrossSkipped) > 0 {
		s += fmt.Sprintf(" (+%d MetricsQL rate)", len(r.CrossSkipped))
	}
	return s
}

func summarize(dir string) (string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", "results.json"))
	if err != nil || len(paths) == 0 {
		return "", fmt.Errorf("no results.json under %s", dir)
	}
	sort.Strings(paths)
	var b, q strings.Builder
	var date time.Time
	machine, versions := "", map[string]string{}
	senders := [2]int{4, 16}
	q.WriteString("| workload | series | tsdb ÷ | instant p50 × | range p50 × | cached refresh × | cold p50 × | QPS × (4 clients) |\n")
	q.WriteString("|---|---:|---|---:|---:|---:|---:|---:|\n")
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
		bySeries := map[int]map[string]run{}
		var sizes []int
		for _, r := range rep.Runs {
			if r.Version != "" {
				versions[r.Peer] = r.Version
			}
			if bySeries[r.Series] == nil {
				bySeries[r.Series] = map[string]run{}
				sizes = append(sizes, r.Series)
			}
			bySeries[r.Series][r.Peer] = r
		}
		for _, n := range sizes {
			peers := bySeries[n]
			for _, k := range peerOrder {
				r, ok := peers[k]
				if !ok {
					continue
				}
				if r.Error != "" {
					fmt.Fprintf(&b, "| %s | %d | %s | failed: %s |||||||||\n", name, n, k, strings.ReplaceAll(r.Error, "\n", " "))
					continue
				}
				senders[0] = r.Load.Clients
				if r.LoadMore != nil {
					senders[1] = r.LoadMore.Clients
				}
				// A run without the query phase (an ingest of its own) has
				// neither figure.
				afterQ, p50 := "–", "–"
				if len(r.Queries) > 0 {
					afterQ, p50 = mib(r.RSSAfterQuery), fmt.Sprintf("%.1f", median(p50s(r.Queries)))
				}
				fmt.Fprintf(&b, "| %s | %d | %s | %.0f | %.0f | %.2f | %.3f | %.3f | %.0f | %s | %s | %s |\n", name, n, k,
					r.Load.SamplesPerSec, moreRate(r), r.CPUPerMillion, r.RunningPerSamp, r.BytesPerSample, r.RSSPerSeries,
					afterQ, p50, same(r))
			}
			t, ok := peers["tsdb"]
			if !ok || t.Error != "" {
				continue
			}
			for _, k := range peerOrder[1:] {
				o, ok := peers[k]
				if !ok || o.Error != "" {
					continue
				}
				queried := len(t.Queries) > 0 && len(o.Queries) > 0
				afterQ := "–"
				if queried {
					afterQ = ratio(float64(t.RSSAfterQuery), float64(o.RSSAfterQuery))
				}
				fmt.Fprintf(&b, "| | | **tsdb ÷ %s** | %s | %s | %s | %s | %s | %s | %s | %s | |\n", k,
					ratio(t.Load.SamplesPerSec, o.Load.SamplesPerSec), ratio(moreRate(t), moreRate(o)), ratio(t.CPUPerMillion, o.CPUPerMillion),
					ratio(t.RunningPerSamp, o.RunningPerSamp), ratio(t.BytesPerSample, o.BytesPerSample), ratio(t.RSSPerSeries, o.RSSPerSeries),
					afterQ, spread(p50Ratios(t.Queries, o.Queries, false), p50Ratios(t.Queries, o.Queries, true)))
				if !queried {
					continue
				}
				qps := "–"
				if t.Load2 != nil && o.Load2 != nil {
					qps = ratio(t.Load2.QPS, o.Load2.QPS)
				}
				cold := append(p50Ratios(t.Cold, o.Cold, false), p50Ratios(t.Cold, o.Cold, true)...)
				fmt.Fprintf(&q, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", name, n, k,
					spread(p50Ratios(t.Queries, o.Queries, false)), spread(p50Ratios(t.Queries, o.Queries, true)),
					refresh(t.Queries, o.Queries), spread(cold), qps)
			}
		}
	}
	var vs []string
	for _, k := range peerOrder {
		if v, ok := versions[k]; ok {
			vs = append(vs, k+": "+v)
		}
	}
	head := fmt.Sprintf("Measured %s on %s; %s. Ratios are tsdb ÷ the peer in the same run (samples/s and QPS: higher is better; the rest: lower is better); a range gives the best and worst query, with the median. Details per workload in `%s/<workload>/results.md`.\n\n",
		date.Format("2006-01-02"), machine, strings.Join(vs, "; "), dir)
	head += fmt.Sprintf("| workload | series | peer | samples/s, %d senders | samples/s, %d senders | CPU s per 1M samples | bytes/sample running | bytes/sample final | RSS B/series | RSS after queries MiB | query p50 ms (median) | same answers |\n", senders[0], senders[1])
	head += "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + targets
	return head + b.String() + "\nQueries:\n\n" + q.String(), nil
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
