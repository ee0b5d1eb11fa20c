// Command rwbench remote-writes the node-exporter-like workload to any
// Prometheus remote-write receiver and prints what it measured as JSON:
// samples/s and write latency, plus the server's RSS (--pid) and its bytes
// on disk per sample (--data) when given.
//
//	rwbench --url http://127.0.0.1:9090/api/v1/write --series 50000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/emsdb/tsdb/benchmarks/peer"
	"github.com/emsdb/tsdb/benchmarks/rwload"
	"github.com/emsdb/tsdb/benchmarks/workload"
)

type output struct {
	Series         int           `json:"series"`
	Load           rwload.Result `json:"load"`
	RSSBytes       int64         `json:"rss_bytes,omitempty"`
	DiskBytes      int64         `json:"disk_bytes,omitempty"`
	BytesPerSample float64       `json:"bytes_per_sample,omitempty"`
}

func main() {
	url := flag.String("url", "http://127.0.0.1:9090/api/v1/write", "remote-write URL")
	series := flag.Int("series", 50000, "active series")
	steps := flag.Int("samples", 240, "samples per series")
	interval := flag.Duration("interval", 15*time.Second, "spacing of samples")
	clients := flag.Int("clients", 4, "concurrent clients")
	batch := flag.Int("batch", 2000, "samples per request")
	seed := flag.Uint64("seed", 1, "workload seed")
	model := flag.String("model", string(workload.Recorded), "value model: recorded or noisy")
	pid := flag.Int("pid", 0, "server process to read RSS from")
	data := flag.String("data", "", "server data folder to measure")
	headers := flag.String("header", "", "extra headers, Name: value, separated by ';'")
	kind := flag.String("workload", "node", "node (node-exporter-like) or highcard (one metric, a unique id per series)")
	flag.Parse()

	hs := map[string]string{}
	for h := range strings.SplitSeq(*headers, ";") {
		if k, v, ok := strings.Cut(h, ":"); ok {
			hs[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	start := time.Now().Add(-time.Duration(*steps) * *interval).UnixMilli()
	var w rwload.Source
	switch *kind {
	case "node":
		nw, err := workload.NewNodeExporterModel(workload.Model(*model), *series, start, interval.Milliseconds(), *seed)
		if err != nil {
			fail(err)
		}
		w = nw
	case "highcard":
		w = workload.NewHighCard(*series, start, interval.Milliseconds(), *seed)
	default:
		fail(fmt.Errorf("unknown workload %q: node or highcard", *kind))
	}
	streams := rwload.Encode(w, *steps, *clients, *batch)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := rwload.Send(ctx, rwload.Config{URL: *url, Headers: hs}, streams)
	if err != nil {
		fail(err)
	}
	out := output{Series: *series, Load: res}
	if *pid > 0 {
		out.RSSBytes, _, _ = peer.ProcRSS(*pid)
	}
	if *data != "" {
		if out.DiskBytes, err = peer.DirSize(*data); err != nil {
			fail(err)
		}
		out.BytesPerSample = float64(out.DiskBytes) / float64(res.Samples)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "rwbench:", err)
	os.Exit(1)
}
