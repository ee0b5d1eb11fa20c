package difftest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestDifferentialCluster is TestDifferential against a cluster (issue
// 15): one Kafka broker, three tsdb nodes in two zones (zone-a: n1 and n2
// sharing the partitions, zone-b: n3 holding them all). The data is
// written through n1 and every query is asked of n2, which holds half
// the partitions and fans each selection out to their owners: the
// answers must be Prometheus 3.14's, as a single node's are.
func TestDifferentialCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs Prometheus 3.14, starts Kafka and three tsdb")
	}
	promBin := apptest.ReferencePrometheus(t)
	tsdbBin := apptest.Build(t)
	k := apptest.StartKafka(t, nil)
	start := func(zone, node string) *apptest.Proc {
		cfg := filepath.Join(t.TempDir(), node+".yml")
		require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `cluster:
  brokers: [%s]
  partitions: 4
  replication_factor: 1
  zone: %s
  node: %s
  produce_timeout: 5s
  session_timeout: 6s
  secret: difftest-secret
`, k.Addr, zone, node), 0o644))
		return apptest.StartTSDB(t, tsdbBin, t.TempDir(), "--config.file", cfg, "--self-monitor.interval", "0")
	}
	n1, n2, n3 := start("zone-a", "n1"), start("zone-a", "n2"), start("zone-b", "n3")
	c := &http.Client{Timeout: time.Minute}
	// Ready once every node reads, with read-your-writes (which waits for
	// the owners to consume what was produced before the query), the same
	// number of samples, and some.
	ready := func(end time.Time, _ string) error {
		owned := map[*apptest.Proc]int{n1: 2, n2: 2, n3: 4}
		deadline := time.Now().Add(time.Minute)
		for p, want := range owned {
			for got := partitionsOwned(t, p); got != want; got = partitionsOwned(t, p) {
				if time.Now().After(deadline) {
					return fmt.Errorf("%s owns %d partitions, not %d", p.Addr, got, want)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		want := 0
		for _, p := range []*apptest.Proc{n1, n2, n3} {
			got := sampleCount(t, c, p.URL(), end, true)
			switch {
			case got <= 0:
				return fmt.Errorf("%s counts %v samples\n%s", p.Addr, got, p.Log())
			case want == 0:
				want = got
			case got != want:
				return fmt.Errorf("%s counts %v samples, %s %v\n%s", p.Addr, got, n1.Addr, want, p.Log())
			}
		}
		t.Logf("each node reads the %d samples written", want)
		return nil
	}
	differential(t, promBin, n1.URL(), n2.URL(), ready)
}

// sampleCount is how many samples, floats and histograms, base exports
// for the three hours before end (strong: with read-your-writes); -1
// when it does not answer. (Not a count_over_time query: it drops the
// names, and series differing by name alone then collide.)
func sampleCount(t *testing.T, c *http.Client, base string, end time.Time, strong bool) int {
	t.Helper()
	params := url.Values{"match[]": {`{__name__=~".+"}`}, "start": {fmt.Sprint(end.Add(-3 * time.Hour).Unix())}, "end": {fmt.Sprint(end.Unix())}}
	if strong {
		params.Set("read_consistency", "strong")
	}
	resp, err := c.PostForm(base+"/api/v1/export", params)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return -1
	}
	n := 0
	dec := json.NewDecoder(resp.Body)
	for {
		var line struct {
			Timestamps          []int64 `json:"timestamps"`
			HistogramTimestamps []int64 `json:"histogram_timestamps"`
		}
		if err := dec.Decode(&line); err == io.EOF {
			return n
		} else if err != nil {
			return -1
		}
		n += len(line.Timestamps) + len(line.HistogramTimestamps)
	}
}

// partitionsOwned is how many partitions p consumes (its /metrics).
func partitionsOwned(t *testing.T, p *apptest.Proc) int {
	t.Helper()
	_, body := p.Get(t, "/metrics")
	m := regexp.MustCompile(`(?m)^tsdb_cluster_partitions_owned (\d+)$`).FindStringSubmatch(body)
	require.NotNil(t, m, "tsdb_cluster_partitions_owned in /metrics of %s", p.Addr)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}
