// Command compare runs a remote-write workload against tsdb and its peers —
// VictoriaMetrics (the reference build from the Go module proxy) and
// Debian's Prometheus by default — on this machine, and writes JSON and
// Markdown tables of the results and of tsdb's ratios to each peer.
//
// Each peer gets the same pre-encoded requests, one peer after the other
// (the next starts once the last is quiet): the first samples of every
// series from --clients senders, the last --samples2 from --clients2
// senders. Then its CPU time, its data folder while running (after a forced
// flush for VictoriaMetrics) and its RSS. The dashboard queries are then
// timed on all peers at once, taking turns request by request, so that the
// machine's moods fall on every peer alike. Then, one peer after the
// other: their answers, the dashboard under concurrent load, the queries
// after a restart and its data in final form (Prometheus: a head snapshot;
// VictoriaMetrics: a forced merge; tsdb: after a graceful stop).
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
	"github.com/emsdb/tsdb/internal/apptest/refbin"
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
	vm         string
	clients2   int
	steps2     int
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
	Peer    string    `json:"peer"`
	Kind    peer.Kind `json:"kind"`
	Version string    `json:"version"`
	Series  int       `json:"series"`
	// Load is the first ingest phase (--clients senders, series created);
	// LoadMore the second (--clients2 senders, series known).
	Load     rwload.Result  `json:"load"`
	LoadMore *rwload.Result `json:"load_more,omitempty"`
	Accepted float64        `json:"accepted_samples"` // from the peer's own counter
	// CPUSeconds is the peer's user+system CPU time from the first request
	// to the end of the ingest (VictoriaMetrics: its forced flush included).
	CPUSeconds     float64          `json:"cpu_seconds"`
	CPUPerMillion  float64          `json:"cpu_seconds_per_million_samples"`
	RSSBytes       int64            `json:"rss_bytes"`
	PeakRSSBytes   int64            `json:"peak_rss_bytes"`
	RSSAfterQuery  int64            `json:"rss_after_queries_bytes"`
	RunningBytes   int64            `json:"running_disk_bytes"`
	RunningPerSamp float64          `json:"running_bytes_per_sample"`
	DiskBytes      int64            `json:"disk_bytes"` // in final form
	BytesPerSample float64          `json:"bytes_per_sample"`
	RSSPerSeries   float64          `json:"rss_bytes_per_series"`
	Queries        []queryload.Stat `json:"queries,omitempty"`
	Cold           []queryload.Stat `json:"cold_queries,omitempty"`
	Load2          *queryload.Load  `json:"concurrent_queries,omitempty"`
	// CrossChecked queries were compared with Prometheus's answers;
	// Mismatches lists those that differ. A MetricsQL peer's answers to
	// queries whose functions mean something else in MetricsQL (rate…)
	// are not compared: CrossSkipped names them.
	CrossChecked int      `json:"cross_checked,omitempty"`
	Mismatches   []string `json:"mismatches,omitempty"`
	CrossSkipped []string `json:"cross_check_skipped,omitempty"`
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
	Clients                   int   `json:"query_clients"`
	Samples                   int64 `json:"samples"`
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
	fs.IntVar(&c.clients2, "clients2", 16, "concurrent remote-write clients of the second ingest phase")
	fs.IntVar(&c.steps2, "samples2", -1, "samples per series sent in the second ingest phase, out of --samples (-1: half; 0: no second phase)")
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
	fs.StringVar(&c.vm, "victoriametrics", "auto", "victoria-metrics binary; auto: the reference "+refbin.VictoriaMetricsVersion+" build, built from the Go module proxy on first use into "+refbin.CacheDir()+"; empty to skip")
	custom := fs.String("peer", "", "extra peers: name=binary arg… ({listen}, {data} are replaced); several separated by ';'")
	fs.IntVar(&c.queryRuns, "query-runs", 10, "times each dashboard query runs after ingest (0: no query phase)")
	fs.StringVar(&c.out, "out", "benchmarks/results", "folder for results.json and results.md")
	fs.StringVar(&c.work, "work", "", "folder for the peers' data (default: a fresh temporary folder, removed after unless a cross-check differs)")
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
	if c.steps2 < 0 {
		c.steps2 = c.steps / 2
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
	if c.steps <= 0 || c.clients <= 0 || c.clients2 <= 0 || c.batch <= 0 || c.interval <= 0 {
		return c, errors.New("--samples, --clients, --clients2, --batch and --interval must be positive")
	}
	if c.steps2 >= c.steps {
		return c, errors.New("--samples2 must be below --samples")
	}
	return c, nil
}

func run(ctx context.Context, log *slog.Logger, cfg config) error {
	var specs []peer.Spec
	if cfg.tsdb != "" {
		specs = append(specs, peer.Spec{Name: "tsdb", Kind: peer.TSDB, Bin: cfg.tsdb})
	}
	if cfg.vm != "" {
		bin := cfg.vm
		if bin == "auto" {
			log.Info("victoria-metrics: the reference build (a few minutes the first time)", "cache", refbin.CacheDir())
			var err error
			if bin, err = refbin.VictoriaMetrics(ctx); err != nil {
				return err
			}
		}
		specs = append(specs, peer.Spec{Name: "victoriametrics", Kind: peer.VictoriaMetrics, Bin: bin,
			Version: "victoria-metrics " + refbin.VictoriaMetricsVersion + " (module proxy, CGO_ENABLED=0)"})
	}
	if cfg.prometheus != "" {
		specs = append(specs, peer.Spec{Name: "prometheus", Kind: peer.Prometheus, Bin: cfg.prometheus})
	}
	specs = append(specs, cfg.custom...)
	if len(specs) == 0 {
		return errors.New("no peers")
	}
	work := cfg.work
	// keep is set when a cross-check differs: the peers' data folders are
	// then what tells which answer is wrong, so a temporary work folder
	// stays.
	keep := false
	if work == "" {
		d, err := os.MkdirTemp("", "tsdb-compare-")
		if err != nil {
			return err
		}
		defer func() {
			if !keep {
				os.RemoveAll(d)
			}
		}()
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
		rep.Workload = fmt.Sprintf("%s, %d samples/series at %s (the first %d from %d clients, the last %d from %d), %d samples/request, seed %d",
			desc, cfg.steps, cfg.interval, cfg.steps-cfg.steps2, cfg.clients, cfg.steps2, cfg.clients2, cfg.batch, cfg.seed)
		t0 := time.Now()
		enc := rwload.NewEncoder(w, cfg.clients, cfg.batch)
		streams := [][][]rwload.Body{enc.Steps(cfg.steps - cfg.steps2)}
		if cfg.steps2 > 0 {
			enc.SetClients(cfg.clients2)
			streams = append(streams, enc.Steps(cfg.steps2))
		}
		var rounds [][][]rwload.Body
		for range int(cfg.sustain / cfg.interval) {
			rounds = append(rounds, enc.Steps(1))
		}
		log.Info("workload encoded", "series", w.Len(), "samples", w.Len()*cfg.steps, "took", time.Since(t0).Round(time.Millisecond))
		dataEnd := time.UnixMilli(start + int64(cfg.steps)*cfg.interval.Milliseconds())
		// Each peer ingests alone; then the dashboard queries take turns
		// over the peers still up, so that the machine's moods (a
		// neighbour's load, a collection in this process) fall on all of
		// them alike; then each peer's other measurements, one by one.
		runs := make([]Run, len(specs))
		live := make([]*peer.Peer, len(specs))
		for i, s := range specs {
			runs[i], live[i] = ingest(ctx, log, cfg, s, filepath.Join(work, strconv.Itoa(n)), streams, rounds, w.Len())
			runs[i].SeriesMade = made
			if live[i] != nil && i < len(specs)-1 {
				settle(ctx, log, live[i])
			}
			if ctx.Err() != nil {
				killAll(live)
				return ctx.Err()
			}
		}
		dashboard(ctx, log, cfg, runs, live, dataEnd)
		for i, s := range specs {
			if live[i] != nil {
				finish(ctx, log, cfg, s, live[i], &runs[i], w.Len(), dataEnd)
			}
			if ctx.Err() != nil {
				killAll(live[i+1:])
				return ctx.Err()
			}
		}
		crossCheck(runs, queryload.Dashboard(cfg.workload))
		for _, r := range runs {
			if len(r.Mismatches) > 0 {
				keep = true
				log.Warn("answers differ from Prometheus's; the peers' data folders are kept", "peer", r.Peer, "series", n,
					"differing", len(r.Mismatches), "data", filepath.Join(work, strconv.Itoa(n)))
			}
		}
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

// crossCheck compares every peer's answers to qs with Prometheus's; for
// VictoriaMetrics only the queries MetricsQL answers as PromQL does.
func crossCheck(runs []Run, qs []queryload.Query) {
	exprs := map[string]string{}
	for _, q := range qs {
		exprs[q.Name] = q.Expr
	}
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
			if r.Kind == peer.VictoriaMetrics && queryload.MetricsQLDiffers(exprs[name]) {
				r.CrossSkipped = append(r.CrossSkipped, name)
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
		var res rwload.Result
		if res, err = rwload.Send(ctx, rwload.Config{URL: p.WriteURL()}, round); err != nil {
			break
		}
		st.Samples += res.Samples
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

// ingest starts a peer and sends it the workload: its ingest figures,
// CPU time, disk while running and RSS. It returns the peer still up, or
// nil when it failed (the run says why).
func ingest(ctx context.Context, log *slog.Logger, cfg config, s peer.Spec, work string, streams [][][]rwload.Body, rounds [][][]rwload.Body, series int) (Run, *peer.Peer) {
	r := Run{Peer: s.Name, Kind: s.Kind, Series: series}
	fail := func(p *peer.Peer, err error) (Run, *peer.Peer) {
		if p != nil {
			p.Kill()
		}
		r.Error = err.Error()
		log.Error("peer run failed", "peer", s.Name, "series", series, "err", err)
		return r, nil
	}
	p, err := peer.Start(ctx, s, work)
	if err != nil {
		return fail(nil, err)
	}
	r.Version = p.Version
	log.Info("sending", "peer", s.Name, "series", series, "url", p.WriteURL())
	cpu0, err := p.CPUSeconds()
	if err != nil {
		return fail(p, err)
	}
	for k, st := range streams {
		res, err := rwload.Send(ctx, rwload.Config{URL: p.WriteURL()}, st)
		if err != nil {
			return fail(p, fmt.Errorf("ingest phase %d: %w", k+1, err))
		}
		if k == 0 {
			r.Load = res
		} else {
			r.LoadMore = &res
		}
	}
	// VictoriaMetrics flushes here, inside the CPU window: the others have
	// made their samples durable and searchable before answering.
	if r.RunningBytes, err = p.RunningBytes(ctx); err != nil {
		return fail(p, fmt.Errorf("disk while running: %w", err))
	}
	cpu1, err := p.CPUSeconds()
	if err != nil {
		return fail(p, err)
	}
	r.CPUSeconds = cpu1 - cpu0
	r.RSSBytes, r.PeakRSSBytes, _ = p.RSS()
	switch s.Kind {
	case peer.TSDB:
		r.Accepted, _ = p.Metric(ctx, "tsdb_samples_written_total")
	case peer.Prometheus:
		inOrder, _ := p.Metric(ctx, "prometheus_tsdb_head_samples_appended_total")
		ooo, _ := p.Metric(ctx, "prometheus_tsdb_head_out_of_order_samples_appended_total")
		r.Accepted = inOrder + ooo
	case peer.VictoriaMetrics:
		r.Accepted, _ = p.Metric(ctx, "vm_rows_added_to_storage_total")
	}
	if len(rounds) > 0 {
		if r.Sustain, err = sustain(ctx, p, cfg, rounds); err != nil {
			return fail(p, fmt.Errorf("sustain: %w", err))
		}
		log.Info("sustained", "peer", s.Name, "rounds", r.Sustain.Rounds, "max_round_s", r.Sustain.MaxSendSec, "late", r.Sustain.Late,
			"query_p50_ms", r.Sustain.P50Ms, "query_p99_ms", r.Sustain.P99Ms)
		if err := p.Flush(ctx); err != nil {
			return fail(p, err)
		}
	}
	return r, p
}

// settle waits, up to settleMax, until a peer that has ingested is
// quiet (under 5 % of a core over a quarter of a second), so that what it
// still does in the background (merges) is not counted in the next
// peer's ingest, which runs beside it.
func settle(ctx context.Context, log *slog.Logger, p *peer.Peer) {
	const window = 250 * time.Millisecond
	t0 := time.Now()
	for time.Since(t0) < settleMax && ctx.Err() == nil {
		c0, err := p.CPUSeconds()
		if err != nil {
			return
		}
		time.Sleep(window)
		c1, err := p.CPUSeconds()
		if err != nil || c1-c0 < 0.05*window.Seconds() {
			break
		}
	}
	log.Info("settled", "peer", p.Spec.Name, "waited", time.Since(t0).Round(time.Millisecond))
}

// settleMax bounds how long settle waits.
const settleMax = 30 * time.Second

// dashboard times the dashboard queries and a refresh on the peers still
// up, taking turns (queryload.RunInterleaved). A peer that fails a query
// is killed and its run says why.
func dashboard(ctx context.Context, log *slog.Logger, cfg config, runs []Run, live []*peer.Peer, dataEnd time.Time) {
	if cfg.queryRuns <= 0 {
		return
	}
	var idx []int
	var bases []string
	for i, p := range live {
		if p != nil {
			idx, bases = append(idx, i), append(bases, p.URL())
		}
	}
	if len(idx) == 0 {
		return
	}
	failed := func(k int, what string, err error) {
		i := idx[k]
		runs[i].Error = fmt.Sprintf("%s: %v", what, err)
		log.Error("peer run failed", "peer", runs[i].Peer, "series", runs[i].Series, "err", err)
		live[i].Kill()
		live[i] = nil
	}
	qs := queryload.Dashboard(cfg.workload)
	stats, errs := queryload.RunInterleaved(ctx, bases, dataEnd, qs, cfg.queryRuns)
	for k, i := range idx {
		runs[i].Queries = stats[k]
		if errs[k] != nil {
			failed(k, "queries", errs[k])
		}
	}
	for _, q := range qs {
		if q.Range <= 0 || q.Range > 24*time.Hour {
			continue
		}
		refs, errs := queryload.RefreshInterleaved(ctx, bases, dataEnd, q, cfg.queryRuns)
		for k, i := range idx {
			if live[i] == nil {
				continue
			}
			if errs[k] != nil {
				failed(k, "refresh", errs[k])
				continue
			}
			runs[i].Queries = append(runs[i].Queries, refs[k])
		}
		break
	}
}

// finish takes a peer's measurements after the dashboard's: its answers,
// the dashboard under concurrent load, the queries after a restart and
// its data in final form; then stops it.
func finish(ctx context.Context, log *slog.Logger, cfg config, s peer.Spec, p *peer.Peer, r *Run, series int, dataEnd time.Time) {
	fail := func(err error) {
		r.Error = err.Error()
		log.Error("peer run failed", "peer", s.Name, "series", series, "err", err)
	}
	var err error
	qs := queryload.Dashboard(cfg.workload)
	if cfg.queryRuns > 0 {
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
	r.RSSAfterQuery, _, _ = p.RSS()
	// Prometheus's snapshot is taken before the restart, as before;
	// VictoriaMetrics is merged after the cold queries, so that they read
	// its parts as ingest left them.
	if s.Kind == peer.Prometheus {
		if r.DiskBytes, err = p.CompactedBytes(ctx); err != nil {
			p.Kill()
			fail(err)
			return
		}
	}
	if cfg.queryRuns > 0 {
		// Cold: every query once right after a restart on the same data.
		if err := p.Restart(ctx); err != nil {
			fail(fmt.Errorf("restart: %w", err))
			return
		}
		if r.Cold, err = queryload.Run(ctx, p.URL(), dataEnd, qs, 1); err != nil {
			p.Kill()
			fail(fmt.Errorf("cold queries: %w", err))
			return
		}
	}
	if s.Kind == peer.VictoriaMetrics {
		if r.DiskBytes, err = p.CompactedBytes(ctx); err != nil {
			p.Kill()
			fail(err)
			return
		}
	}
	if err := p.Stop(); err != nil {
		fail(err)
		return
	}
	if !p.FinalWhileRunning() {
		if r.DiskBytes, err = p.CompactedBytes(ctx); err != nil {
			fail(err)
			return
		}
	}
	if n := float64(r.samples()); n > 0 {
		r.BytesPerSample = float64(r.DiskBytes) / n
		ingested := float64(r.Load.Samples)
		if r.LoadMore != nil {
			ingested += float64(r.LoadMore.Samples)
		}
		r.RunningPerSamp = float64(r.RunningBytes) / ingested
		r.CPUPerMillion = r.CPUSeconds / (ingested / 1e6)
	}
	r.RSSPerSeries = float64(r.RSSBytes) / float64(series)
	log.Info("done", "peer", s.Name, "series", series, "samples_per_sec", int(r.Load.SamplesPerSec),
		"bytes_per_sample", fmt.Sprintf("%.3f", r.BytesPerSample), "rss_mib", r.RSSBytes>>20)
}

// killAll kills the peers still up (after an interrupt).
func killAll(ps []*peer.Peer) {
	for _, p := range ps {
		if p != nil {
			p.Kill()
		}
	}
}

// samples is every sample the peer was sent: both ingest phases and the
// sustained rounds.
func (r Run) samples() int64 {
	n := r.Load.Samples
	if r.LoadMore != nil {
		n += r.LoadMore.Samples
	}
	if r.Sustain != nil {
		n += r.Sustain.Samples
	}
	return n
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

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// p50Spread is the best and worst of the per-query p50 ratios of a to b,
// over the queries both ran (refreshes excluded).
func p50Spread(a, b []queryload.Stat) string {
	pb := map[string]float64{}
	for _, q := range b {
		pb[q.Name] = q.P50Ms
	}
	var xs []float64
	for _, q := range a {
		if pb[q.Name] > 0 && q.P50Ms > 0 && !strings.HasSuffix(q.Name, "(refresh)") {
			xs = append(xs, q.P50Ms/pb[q.Name])
		}
	}
	if len(xs) == 0 {
		return "–"
	}
	sort.Float64s(xs)
	return fmt.Sprintf("%.2f–%.2f (median %.2f)", xs[0], xs[len(xs)-1], xs[len(xs)/2])
}

func markdown(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s.\n\nWorkload: %s.\n\n", rep.Date.Format("2006-01-02 15:04 MST"), rep.Machine, rep.Workload)
	bySeries := map[int][]Run{}
	var sizes []int
	for _, r := range rep.Runs {
		if len(bySeries[r.Series]) == 0 {
			sizes = append(sizes, r.Series)
		}
		bySeries[r.Series] = append(bySeries[r.Series], r)
	}
	b.WriteString("| series | peer | samples/s, phase 1 | samples/s, phase 2 | accepted | write p99 ms | CPU s per 1M samples | bytes/sample running | bytes/sample final | RSS MiB | RSS/series | RSS after queries MiB |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Runs {
		if r.Error != "" {
			fmt.Fprintf(&b, "| %d | %s | failed: %s ||||||||||\n", r.Series, r.Peer, strings.TrimSpace(r.Error))
			continue
		}
		more := "–"
		if r.LoadMore != nil {
			more = fmt.Sprintf("%.0f (%d clients)", r.LoadMore.SamplesPerSec, r.LoadMore.Clients)
		}
		acc := "–"
		if n := r.samples(); n > 0 && r.Accepted > 0 {
			acc = fmt.Sprintf("%.1f%%", 100*r.Accepted/float64(n-sustained(r)))
		}
		fmt.Fprintf(&b, "| %d | %s | %.0f (%d clients) | %s | %s | %.1f | %.2f | %.3f | %.3f | %d | %.0f B | %d |\n",
			r.Series, r.Peer, r.Load.SamplesPerSec, r.Load.Clients, more, acc, r.Load.LatencyP99Ms, r.CPUPerMillion,
			r.RunningPerSamp, r.BytesPerSample, r.RSSBytes>>20, r.RSSPerSeries, r.RSSAfterQuery>>20)
	}
	b.WriteString("\nRatios of the first peer to each other one (samples/s: higher is better; the rest: lower is better):\n\n")
	b.WriteString("| series | ratio | samples/s, phase 1 | samples/s, phase 2 | CPU/sample | disk running | disk final | RSS/series | RSS after queries | query p50: best–worst |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range sizes {
		runs := bySeries[n]
		a := runs[0]
		if a.Error != "" {
			continue
		}
		for _, o := range runs[1:] {
			if o.Error != "" {
				continue
			}
			more := "–"
			if a.LoadMore != nil && o.LoadMore != nil {
				more = ratio(a.LoadMore.SamplesPerSec, o.LoadMore.SamplesPerSec)
			}
			fmt.Fprintf(&b, "| %d | %s ÷ %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, a.Peer, o.Peer,
				ratio(a.Load.SamplesPerSec, o.Load.SamplesPerSec), more, ratio(a.CPUPerMillion, o.CPUPerMillion),
				ratio(a.RunningPerSamp, o.RunningPerSamp), ratio(a.BytesPerSample, o.BytesPerSample),
				ratio(a.RSSPerSeries, o.RSSPerSeries), ratio(float64(a.RSSAfterQuery), float64(o.RSSAfterQuery)), p50Spread(a.Queries, o.Queries))
		}
	}
	b.WriteString("\nPhase 1 creates the series; phase 2 sends the rest of the samples to known series. CPU: the peer's user+system time over both phases (VictoriaMetrics: its forced flush included). ")
	b.WriteString("Bytes/sample running: the data folder right after the ingest, write-ahead log included (VictoriaMetrics: after /internal/force_flush). ")
	b.WriteString("Final: tsdb's data folder after a graceful stop; Prometheus's head snapshot into a block (chunks + index); VictoriaMetrics's data folder after /internal/force_merge of every partition. ")
	b.WriteString("RSS after queries: after the dashboard queries and the concurrent load.\n")
	for _, n := range sizes {
		runs := bySeries[n]
		if runs[0].Error != "" || len(runs[0].Queries) == 0 {
			continue
		}
		var ok []Run
		for _, r := range runs {
			if r.Error == "" && len(r.Queries) == len(runs[0].Queries) {
				ok = append(ok, r)
			}
		}
		fmt.Fprintf(&b, "\nDashboard queries at %d series (%d runs each, one request at a time, the peers taking turns), p50 ms:\n\n| query | series |", n, runs[0].Queries[0].Runs)
		for _, r := range ok {
			fmt.Fprintf(&b, " %s |", r.Peer)
		}
		for _, r := range ok[1:] {
			fmt.Fprintf(&b, " %s ÷ %s |", ok[0].Peer, r.Peer)
		}
		b.WriteString("\n|---|---:|" + strings.Repeat("---:|", 2*len(ok)-1) + "\n")
		for i, q := range ok[0].Queries {
			fmt.Fprintf(&b, "| %s | %d |", q.Name, q.Series)
			for _, r := range ok {
				fmt.Fprintf(&b, " %.1f |", r.Queries[i].P50Ms)
			}
			for _, r := range ok[1:] {
				fmt.Fprintf(&b, " %s |", ratio(q.P50Ms, r.Queries[i].P50Ms))
			}
			b.WriteString("\n")
		}
	}
	for _, n := range sizes {
		runs := bySeries[n]
		if runs[0].Load2 != nil {
			fmt.Fprintf(&b, "\nDashboard under load at %d series (%d clients, %.0f s):\n\n| peer | queries/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|\n", n, runs[0].Load2.Clients, runs[0].Load2.Seconds)
			for _, x := range runs {
				if x.Load2 != nil {
					fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %d |\n", x.Peer, x.Load2.QPS, x.Load2.P50Ms, x.Load2.P99Ms, x.Load2.Errors)
				}
			}
		}
		if len(runs[0].Cold) > 0 {
			fmt.Fprintf(&b, "\nCold (first run after a restart) at %d series, ms:\n\n| query |", n)
			var ok []Run
			for _, r := range runs {
				if len(r.Cold) == len(runs[0].Cold) {
					ok = append(ok, r)
					fmt.Fprintf(&b, " %s |", r.Peer)
				}
			}
			b.WriteString("\n|---|" + strings.Repeat("---:|", len(ok)) + "\n")
			for i, q := range runs[0].Cold {
				fmt.Fprintf(&b, "| %s |", q.Name)
				for _, r := range ok {
					fmt.Fprintf(&b, " %.1f |", r.Cold[i].P50Ms)
				}
				b.WriteString("\n")
			}
		}
		if runs[0].Sustain != nil {
			fmt.Fprintf(&b, "\nSustained at %d series: one sample per series every %.0f s for %d rounds, %d dashboard clients querying meanwhile:\n\n| peer | slowest round s | late rounds | queries | p50 ms | p99 ms | errors | RSS MiB first / max / last |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
				n, runs[0].Sustain.IntervalSec, runs[0].Sustain.Rounds, runs[0].Sustain.Clients)
			for _, x := range runs {
				if x.Sustain != nil {
					fmt.Fprintf(&b, "| %s | %.2f | %d | %d | %.1f | %.1f | %d | %d / %d / %d |\n", x.Peer, x.Sustain.MaxSendSec, x.Sustain.Late, x.Sustain.Queries,
						x.Sustain.P50Ms, x.Sustain.P99Ms, x.Sustain.Errors, x.Sustain.RSSFirst>>20, x.Sustain.RSSMax>>20, x.Sustain.RSSLast>>20)
				}
			}
		}
		for _, r := range runs {
			if r.CrossChecked == 0 && len(r.CrossSkipped) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\nCross-check of %s at %d series: %d of %d queries gave Prometheus's answer (values within 1e-6 relative).",
				r.Peer, n, r.CrossChecked-len(r.Mismatches), r.CrossChecked)
			if len(r.CrossSkipped) > 0 {
				fmt.Fprintf(&b, " Not compared, because MetricsQL's rate/increase/delta differ from PromQL's by design (no extrapolation, the window starts at the sample before it): %s.",
					strings.Join(r.CrossSkipped, "; "))
			}
			b.WriteString("\n")
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
		fmt.Fprintf(&b, "\nVersions: %s.\n", strings.Join(vs, "; "))
	}
	return b.String()
}

// sustained is the samples of the sustained phase, which come after the
// accepted-samples counter is read.
func sustained(r Run) int64 {
	if r.Sustain == nil {
		return 0
	}
	return r.Sustain.Samples
}
