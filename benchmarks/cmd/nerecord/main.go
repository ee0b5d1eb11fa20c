// Command nerecord derives the statistics the node-exporter workload
// replays from consecutive real scrapes of a node exporter: per series, its
// first value, how often it changes between scrapes, the mean and standard
// deviation of its changes, and the precision its values are printed with.
//
//	nerecord --url http://127.0.0.1:9100/metrics --scrapes 17 --interval 15s > stats.tsv
//	nerecord scrape-*.prom > stats.tsv
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/emsdb/tsdb/benchmarks/workload"
)

func main() {
	url := flag.String("url", "", "node exporter to scrape (else: scrape files as arguments)")
	scrapes := flag.Int("scrapes", 17, "scrapes to take from --url")
	interval := flag.Duration("interval", 15*time.Second, "time between scrapes")
	flag.Parse()
	var bodies [][]byte
	if *url != "" {
		for i := range *scrapes {
			if i > 0 {
				time.Sleep(*interval)
			}
			b, err := get(*url)
			if err != nil {
				fail(err)
			}
			bodies = append(bodies, b)
		}
	} else {
		for _, f := range flag.Args() {
			b, err := os.ReadFile(f)
			if err != nil {
				fail(err)
			}
			bodies = append(bodies, b)
		}
	}
	stats, err := workload.Record(bodies)
	if err != nil {
		fail(err)
	}
	if err := workload.WriteStats(os.Stdout, stats); err != nil {
		fail(err)
	}
}

func get(url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "nerecord:", err)
	os.Exit(1)
}
