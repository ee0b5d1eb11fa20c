// Command compare runs the node-exporter-like remote-write workload against
// tsdb and its peers, side by side on this machine, and writes JSON and a
// Markdown table of the results and their ratios to Prometheus.
//
//	go run ./benchmarks/cmd/compare --series 50000,100000 --out benchmarks/results
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emsdb/tsdb/benchmarks/peer"
	"github.com/emsdb/tsdb/benchmarks/queryload"
	"github.com/emsdb/tsdb/benchmarks/rwload"
	"github.com/emsdb/tsdb/benchmarks/workload"
)

type config struct {
	workload   string
	series     []int
	steps      int
	interval   time.Duration
	clients    int
	batch      int
	seed       uint64
	model      workload.Model
	tsdb       string
	prometheus string
	custom     []peer.Spec
	out        string
	work       string
	queryRuns  int
	qClients   int
	qDuration  time.Duration
	churnEvery int
	sustain    time.Duration
}

// Run is one peer's figures for one workload size.
type Run struct {
	Peer           string           `json:"peer"`
	Version        string           `json:"version"`
	Series         int              `json:"series"`
	Load           rwload.Result    `json:"load"`
	Accepted       float64          `json:"accepted_samples"` // from the peer's own counter
	RSSBytes       int64            `json:"rss_bytes"`
	PeakRSSBytes   int64            `json:"peak_rss_bytes"`
	DiskBytes      int64            `json:"disk_bytes"`
	BytesPerSample float64          `json:"bytes_per_sample"`
	RSSPerSeries   float64          `json:"rss_bytes_per_series"`
	Queries        []queryload.Stat `json:"queries,omitempty"`
	Cold           []queryload.Stat `json:"cold_queries,omitempty"`
	Load2          *queryload.Load  `json:"concurrent_queries,omitempty"`
	// CrossChecked queries were compared with Prometheus's answers;
	// Mismatches lists those that differ.
	CrossChecked int      `json:"cross_checked,omitempty"`
	Mismatches   []string `json:"mismatches,omitempty"`
	SeriesMade   int      `json:"series_created,omitempty"`
	Sustain      *Sustain `json:"sustain,omitempty"`
	Error        string   `json:"error,omitempty"`

	answers map[string]queryload.Result
}

// Sustain is the real-time phase: one sample per series every interval,
// while a dashboard client keeps querying.
type Sustain struct {
	Rounds      int     `json:"rounds"`
	IntervalSec float64 `json:"interval_seconds"`
	MaxSendSec  float64 `json:"max_round_seconds"` // the slowest round's send time
	Late        int     `json:"late_rounds"`       // rounds not sent within the interval
	Queries     int     `json:"queries"`
	P50Ms       float64 `json:"query_p50_ms"`
	P99Ms       float64 `json:"query_p99_ms"`
	Errors      int     `json:"query_errors"`
	RSSBytes    int64   `json:"rss_bytes"`
	// RSS after the first round, its highest after any round, and after
	// the last: flat memory means first ≈ last.
	RSSFirst, RSSMax, RSSLast int64
	Clients                   int `json:"query_clients"`
}

// Report is the whole result.
type Report struct {
	Date     time.Time `json:"date"`
	Machine  string    `json:"machine"`
	Workload string    `json:"workload"`
	Runs     []Run     `json:"runs"`
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, cfg); err != nil {
		log.Error("compare failed", "err", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.StringVar(&c.workload, "workload", "node", "node (node-exporter-like), devops (TSBS-like), iot (irregular), churn (pods replaced), highcard (one metric, unique ids), backfill (30 days at once)")
	series := fs.String("series", "50000,100000", "comma-separated active-series counts, one run each")
	fs.IntVar(&c.qClients, "query-clients", 4, "concurrent dashboard clients in the load phase (0: none)")
	fs.DurationVar(&c.qDuration, "query-duration", 10*time.Second, "length of the concurrent query phase")
	fs.IntVar(&c.churnEvery, "churn-steps", 20, "churn: steps a pod lives (20 × 15 s = 5 min)")
	fs.DurationVar(&c.sustain, "sustain", 0, "after the ingest, send one sample per series every interval for this long while a dashboard client queries (0: skip)")
	fs.IntVar(&c.steps, "samples", 240, "samples per series (backfill: 0 means 30 days' worth)")
	fs.DurationVar(&c.interval, "interval", 15*time.Second, "scrape interval the samples are spaced by")
	fs.IntVar(&c.clients, "clients", 4, "concurrent remote-write clients")
	fs.IntVar(&c.batch, "batch", 2000, "samples per request (Prometheus's max_samples_per_send)")
	fs.Uint64Var(&c.seed, "seed", 1, "workload seed")
	model := fs.String("model", string(workload.Recorded), "value model: recorded (statistics of real scrapes) or noisy (harsher synthetic)")
	fs.StringVar(&c.tsdb, "tsdb", "bin/tsdb", "tsdb binary; empty to skip")
	fs.StringVar(&c.prometheus, "prometheus", "/usr/bin/prometheus", "prometheus binary; empty to skip")
	custom := fs.String("peer", "", "extra peers: name=binary arg… ({listen}, {data} are replaced); several separated by ';'")
	fs.IntVar(&c.queryRuns, "query-runs", 10, "times each dashboard query runs after ingest (0: no query phase)")
	fs.StringVar(&c.out, "out", "benchmarks/results", "folder for results.json and results.md")
	fs.StringVar(&c.work, "work", "", "folder for the peers' data (default: a fresh temporary folder, removed after)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.model = workload.Model(*model)
	switch c.workload {
	case "node", "devops", "iot", "churn", "highcard", "backfill":
	default:
		return c, fmt.Errorf("--workload %q: node, devops, iot, churn, highcard or backfill", c.workload)
	}
	if c.workload == "backfill" && c.steps == 0 {
		c.steps = int(30 * 24 * time.Hour / c.interval)
	}
	for f := range strings.SplitSeq(*series, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return c, fmt.Errorf("--series: bad count %q", f)
		}
		c.series = append(c.series, n)
	}
	for p := range strings.SplitSeq(*custom, ";") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		name, rest, ok := strings.Cut(p, "=")
		f := strings.Fields(rest)
		if !ok || len(f) == 0 {
			return c, fmt.Errorf("--peer: want name=binary args…, got %q", p)
		}
		c.custom = append(c.custom, peer.Spec{Name: name, Kind: peer.Custom, Bin: f[0], Args: f[1:]})
	}
	if c.steps <= 0 || c.clients <= 0 || c.batch <= 0 || c.interval <= 0 {
		return c, errors.New("--samples, --clients, --batch and --interval must be positive")
	}
	return c, nil
}

func run(ctx context.Context, log *slog.Logger, cfg config) error {
	var specs []peer.Spec
	if cfg.tsdb != "" {
		specs = append(specs, peer.Spec{Name: "tsdb", Kind: peer.TSDB, Bin: cfg.tsdb})
	}
	if cfg.prometheus != "" {
		specs = append(specs, peer.Spec{Name: "prometheus", Kind: peer.Prometheus, Bin: cfg.prometheus})
	}
	specs = append(specs, cfg.custom...)
	if len(specs) == 0 {
		return errors.New("no peers")
	}
	work := cfg.work
	if work == "" {
		d, err := os.MkdirTemp("", "tsdb-compare-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	rep := Report{Date: time.Now().UTC(), Machine: machine()}
	for _, n := range cfg.series {
		// Data ends now, so no peer sees it as too old.
		start := time.Now().Add(-time.Duration(cfg.steps) * cfg.interval).UnixMilli()
		w, desc, made, err := makeWorkload(cfg, n, start)
		if err != nil {
			return err
		}
		rep.Workload = fmt.Sprintf("%s, %d samples/series at %s, %d clients, %d samples/request, seed %d",
			desc, cfg.steps, cfg.interval, cfg.clients, cfg.batch, cfg.seed)
		t0 := time.Now()
		enc := rwload.NewEncoder(w, cfg.clients, cfg.batch)
		streams := enc.Steps(cfg.steps)
		var rounds [][][]rwload.Body
		for range int(cfg.sustain / cfg.interval) {
			rounds = append(rounds, enc.Steps(1))
		}
		log.Info("workload encoded", "series", w.Len(), "samples", w.Len()*cfg.steps, "took", time.Since(t0).Round(time.Millisecond))
		dataEnd := time.UnixMilli(start + int64(cfg.steps)*cfg.interval.Milliseconds())
		var runs []Run
		for _, s := range specs {
			r := measure(ctx, log, cfg, s, filepath.Join(work, strconv.Itoa(n)), streams, rounds, w.Len(), dataEnd)
			r.SeriesMade = made
			runs = append(runs, r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		crossCheck(runs)
		rep.Runs = append(rep.Runs, runs...)
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.out, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	md := markdown(rep)
	if err := os.WriteFile(filepath.Join(cfg.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}

// makeWorkload builds the configured workload with about n active series.
func makeWorkload(cfg config, n int, start int64) (rwload.Source, string, int, error) {
	iv := cfg.interval.Milliseconds()
	switch cfg.workload {
	case "devops":
		w := workload.NewDevops(max(n/64, 1), start, iv, cfg.seed)
		return w, fmt.Sprintf("TSBS-devops-like, %d hosts × 64 series", max(n/64, 1)), w.Len(), nil
	case "iot":
		w := workload.NewIoT(max(n/3, 1), start, iv, cfg.seed)
		return w, fmt.Sprintf("IoT, %d devices × 3 metrics, samples ±40%% of the interval off", max(n/3, 1)), w.Len(), nil
	case "churn":
		w := workload.NewChurn(max(n/10, 1), cfg.churnEvery, start, iv, cfg.seed)
		made := w.SeriesCreated(cfg.steps)
		return w, fmt.Sprintf("high churn, %d pod slots × 10 series, each pod replaced every %d samples (%d series created)", max(n/10, 1), cfg.churnEvery, made), made, nil
	case "highcard":
		w := workload.NewHighCard(n, start, iv, cfg.seed)
		return w, fmt.Sprintf("high cardinality, one metric over %d unique ids", n), w.Len(), nil
	}
	w, err := workload.NewNodeExporterModel(cfg.model, n, start, iv, cfg.seed)
	if err != nil {
		return nil, "", 0, err
	}
	name := "node-exporter-like"
	if cfg.workload == "backfill" {
		name = "backfill of node-exporter-like data"
	}
	return w, fmt.Sprintf("%s, %s model (%d series/host)", name, cfg.model, w.PerHost()), w.Len(), nil
}

// crossCheck compares every peer's answers with Prometheus's.
func crossCheck(runs []Run) {
	var ref *Run
	for i := range runs {
		if runs[i].Peer == "prometheus" && runs[i].Error == "" {
			ref = &runs[i]
		}
	}
	if ref == nil {
		return
	}
	for i := range runs {
		r := &runs[i]
		if r == ref || r.Error != "" || r.answers == nil {
			continue
		}
		names := make([]string, 0, len(r.answers))
		for name := range r.answers {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			want, ok := ref.answers[name]
			if !ok {
				continue
			}
			r.CrossChecked++
			if d := queryload.Diff(want, r.answers[name]); d != "" {
				r.Mismatches = append(r.Mismatches, name+": "+d)
			}
		}
	}
}

// sustain sends one round per interval while one client runs the
// dashboard against the latest data.
func sustain(ctx context.Context, p *peer.Peer, cfg config, rounds [][][]rwload.Body) (*Sustain, error) {
	st := &Sustain{Rounds: len(rounds), IntervalSec: cfg.interval.Seconds()}
	qs := queryload.Dashboard(cfg.workload)
	done := make(chan struct{})
	var lat []float64
	var mu sync.Mutex
	var wg sync.WaitGroup
	st.Clients = max(cfg.qClients, 1)
	for k := range st.Clients {
		wg.Go(func() {
			for i := k; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				t0 := time.Now()
				_, err := queryload.Fetch(ctx, p.URL(), time.Now(), qs[i%len(qs)])
				mu.Lock()
				if err != nil {
					st.Errors++
				} else {
					lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	var err error
	for k, round := range rounds {
		if d := time.Until(start.Add(time.Duration(k) * cfg.interval)); d > 0 {
			time.Sleep(d)
		}
		t0 := time.Now()
		if _, err = rwload.Send(ctx, rwload.Config{URL: p.WriteURL()}, round); err != nil {
			break
		}
		sec := time.Since(t0).Seconds()
		st.MaxSendSec = max(st.MaxSendSec, sec)
		if rss, _, err := p.RSS(); err == nil {
			if k == 0 {
				st.RSSFirst = rss
			}
			st.RSSMax, st.RSSLast = max(st.RSSMax, rss), rss
		}
		if sec > cfg.interval.Seconds() {
			st.Late++
		}
	}
	close(done)
	wg.Wait()
	sort.Float64s(lat)
	st.Queries = len(lat)
	if len(lat) > 0 {
		st.P50Ms, st.P99Ms = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	st.RSSBytes, _, _ = p.RSS()
	return st, err
}

func measure(ctx context.Context, log *slog.Logger, cfg config, s peer.Spec, work string, streams [][]rwload.Body, rounds [][][]rwload.Body, series int, dataEnd time.Time) Run {
	queryRuns := cfg.queryRuns
	r := Run{Peer: s.Name, Series: series}
	fail := func(err error) Run {
		r.Error = err.Error()
		log.Error("peer run failed", "peer", s.Name, "series", series, "err", err)
		return r
	}
	p, err := peer.Start(ctx, s, work)
	if err != nil {
		return fail(err)
	}
	r.Version = p.Version
	log.Info("sending", "peer", s.Name, "series", series, "url", p.WriteURL())
	r.Load, err = rwload.Send(ctx, rwload.Config{URL: p.WriteURL()}, streams)
	if err != nil {
		p.Kill()
		return fail(err)
	}
	r.RSSBytes, r.PeakRSSBytes, _ = p.RSS()
	switch s.Kind {
	case peer.TSDB:
		r.Accepted, _ = p.Metric(ctx, "tsdb_samples_written_total")
	case peer.Prometheus:
		inOrder, _ := p.Metric(ctx, "prometheus_tsdb_head_samples_appended_total")
		ooo, _ := p.Metric(ctx, "prometheus_tsdb_head_out_of_order_samples_appended_total")
		r.Accepted = inOrder + ooo
	}
	if len(rounds) > 0 {
		if r.Sustain, err = sustain(ctx, p, cfg, rounds); err != nil {
			p.Kill()
			return fail(fmt.Errorf("sustain: %w", err))
		}
		log.Info("sustained", "peer", s.Name, "rounds", r.Sustain.Rounds, "max_round_s", r.Sustain.MaxSendSec, "late", r.Sustain.Late,
			"query_p50_ms", r.Sustain.P50Ms, "query_p99_ms", r.Sustain.P99Ms)
	}
	qs := queryload.Dashboard(cfg.workload)
	if queryRuns > 0 {
		stats, err := queryload.Run(ctx, p.URL(), dataEnd, qs, queryRuns)
		if err != nil {
			p.Kill()
			return fail(fmt.Errorf("queries: %w", err))
		}
		r.Queries = stats
		for _, q := range qs {
			if q.Range > 0 && q.Range <= 24*time.Hour {
				ref, err := queryload.Refresh(ctx, p.URL(), dataEnd, q, queryRuns)
				if err != nil {
					p.Kill()
					return fail(fmt.Errorf("refresh: %w", err))
				}
				r.Queries = append(r.Queries, ref)
				break
			}
		}
		r.answers = map[string]queryload.Result{}
		for _, q := range qs {
			if a, err := queryload.Fetch(ctx, p.URL(), dataEnd, q); err == nil {
				r.answers[q.Name] = a
			}
		}
	}
	if cfg.qClients > 0 && cfg.qDuration > 0 {
		l := queryload.Concurrent(ctx, p.URL(), dataEnd, qs, cfg.qClients, cfg.qDuration)
		r.Load2 = &l
	}
	if s.Kind == peer.Prometheus {
		r.DiskBytes, err = p.CompactedBytes(ctx)
		if err != nil {
			p.Kill()
			return fail(err)
		}
	}
	if queryRuns > 0 {
		// Cold: every query once right after a restart on the same data.
		if err := p.Restart(ctx); err != nil {
			return fail(fmt.Errorf("restart: %w", err))
		}
		if r.Cold, err = queryload.Run(ctx, p.URL(), dataEnd, qs, 1); err != nil {
			p.Kill()
			return fail(fmt.Errorf("cold queries: %w", err))
		}
	}
	if err := p.Stop(); err != nil {
		return fail(err)
	}
	if s.Kind != peer.Prometheus {
		if r.DiskBytes, err = p.CompactedBytes(ctx); err != nil {
			return fail(err)
		}
	}
	if r.Load.Samples > 0 {
		r.BytesPerSample = float64(r.DiskBytes) / float64(r.Load.Samples)
	}
	r.RSSPerSeries = float64(r.RSSBytes) / float64(series)
	log.Info("done", "peer", s.Name, "series", series, "samples_per_sec", int(r.Load.SamplesPerSec),
		"bytes_per_sample", fmt.Sprintf("%.3f", r.BytesPerSample), "rss_mib", r.RSSBytes>>20)
	return r
}

func machine() string {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s", runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func markdown(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s.\n\nWorkload: %s.\n\n", rep.Date.Format("2006-01-02 15:04 MST"), rep.Machine, rep.Workload)
	b.WriteString("| series | peer | samples/s | accepted | p50 ms | p99 ms | bytes/sample | RSS MiB | RSS/series | ingest × | disk × | RSS/series × |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	base := map[int]Run{}
	for _, r := range rep.Runs {
		if r.Peer == "prometheus" && r.Error == "" {
			base[r.Series] = r
		}
	}
	for _, r := range rep.Runs {
		if r.Error != "" {
			fmt.Fprintf(&b, "| %d | %s | failed: %s ||||||||||\n", r.Series, r.Peer, strings.TrimSpace(r.Error))
			continue
		}
		ratio := func(a, b float64) string {
			if b == 0 {
				return "–"
			}
			return fmt.Sprintf("%.2f", a/b)
		}
		p, ok := base[r.Series]
		ing, disk, rss := "–", "–", "–"
		if ok {
			ing = ratio(r.Load.SamplesPerSec, p.Load.SamplesPerSec)
			disk = ratio(r.BytesPerSample, p.BytesPerSample)
			rss = ratio(r.RSSPerSeries, p.RSSPerSeries)
		}
		acc := "–"
		if r.Load.Samples > 0 && r.Accepted > 0 {
			acc = fmt.Sprintf("%.1f%%", 100*r.Accepted/float64(r.Load.Samples))
		}
		fmt.Fprintf(&b, "| %d | %s | %.0f | %s | %.1f | %.1f | %.3f | %d | %.0f B | %s | %s | %s |\n",
			r.Series, r.Peer, r.Load.SamplesPerSec, acc, r.Load.LatencyP50Ms, r.Load.LatencyP99Ms,
			r.BytesPerSample, r.RSSBytes>>20, r.RSSPerSeries, ing, disk, rss)
	}
	b.WriteString("\nRatios are to Prometheus in the same run (ingest: higher is better; disk and RSS: lower is better).\n")
	b.WriteString("Bytes/sample: tsdb's data folder after a graceful stop; Prometheus's head snapshot into a block (chunks + index).\n")
	for _, r := range rep.Runs {
		p, ok := base[r.Series]
		if r.Peer == "prometheus" || !ok || len(r.Queries) == 0 || len(p.Queries) != len(r.Queries) {
			continue
		}
		fmt.Fprintf(&b, "\nDashboard queries at %d series (%s vs prometheus, %d runs each, one at a time):\n\n", r.Series, r.Peer, r.Queries[0].Runs)
		b.WriteString("| query | series | p50 ms | p99 ms | prometheus p50 | prometheus p99 | p50 × |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for i, q := range r.Queries {
			pq := p.Queries[i]
			ratio := "–"
			if pq.P50Ms > 0 {
				ratio = fmt.Sprintf("%.2f", q.P50Ms/pq.P50Ms)
			}
			fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %s |\n", q.Name, q.Series, q.P50Ms, q.P99Ms, pq.P50Ms, pq.P99Ms, ratio)
		}
	}
	for _, r := range rep.Runs {
		p, ok := base[r.Series]
		if r.Peer == "prometheus" || !ok {
			continue
		}
		if r.Load2 != nil && p.Load2 != nil {
			fmt.Fprintf(&b, "\nDashboard under load at %d series (%d clients, %.0f s):\n\n| peer | queries/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|\n", r.Series, r.Load2.Clients, r.Load2.Seconds)
			for _, x := range []Run{r, p} {
				fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %d |\n", x.Peer, x.Load2.QPS, x.Load2.P50Ms, x.Load2.P99Ms, x.Load2.Errors)
			}
			if p.Load2.QPS > 0 {
				fmt.Fprintf(&b, "\nQPS × %.2f, p50 × %.2f.\n", r.Load2.QPS/p.Load2.QPS, r.Load2.P50Ms/math.Max(p.Load2.P50Ms, 1e-9))
			}
		}
		if len(r.Cold) > 0 && len(r.Cold) == len(p.Cold) {
			fmt.Fprintf(&b, "\nCold (first run after a restart) at %d series:\n\n| query | %s ms | prometheus ms | × |\n|---|---:|---:|---:|\n", r.Series, r.Peer)
			for i, q := range r.Cold {
				fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.2f |\n", q.Name, q.P50Ms, p.Cold[i].P50Ms, q.P50Ms/math.Max(p.Cold[i].P50Ms, 1e-9))
			}
		}
		if r.Sustain != nil && p.Sustain != nil {
			fmt.Fprintf(&b, "\nSustained at %d series: one sample per series every %.0f s for %d rounds, %d dashboard clients querying meanwhile:\n\n| peer | slowest round s | late rounds | queries | p50 ms | p99 ms | errors | RSS MiB first / max / last |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
				r.Series, r.Sustain.IntervalSec, r.Sustain.Rounds, r.Sustain.Clients)
			for _, x := range []Run{r, p} {
				fmt.Fprintf(&b, "| %s | %.2f | %d | %d | %.1f | %.1f | %d | %d / %d / %d |\n", x.Peer, x.Sustain.MaxSendSec, x.Sustain.Late, x.Sustain.Queries,
					x.Sustain.P50Ms, x.Sustain.P99Ms, x.Sustain.Errors, x.Sustain.RSSFirst>>20, x.Sustain.RSSMax>>20, x.Sustain.RSSLast>>20)
			}
		}
		if r.CrossChecked > 0 {
			fmt.Fprintf(&b, "\nCross-check at %d series: %d of %d queries gave Prometheus's answer (values within 1e-6 relative).\n",
				r.Series, r.CrossChecked-len(r.Mismatches), r.CrossChecked)
			for _, m := range r.Mismatches {
				fmt.Fprintf(&b, "- differs: %s\n", m)
			}
		}
	}
	var vs []string
	seen := map[string]bool{}
	for _, r := range rep.Runs {
		if r.Version != "" && !seen[r.Peer] {
			seen[r.Peer] = true
			vs = append(vs, fmt.Sprintf("%s: %s", r.Peer, r.Version))
		}
	}
	if len(vs) > 0 {
		fmt.Fprintf(&b, "Versions: %s.\n", strings.Join(vs, "; "))
	}
	return b.String()
}
