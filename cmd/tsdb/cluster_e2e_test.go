package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// clusterLedger is what the writers of the cluster test were told: the
// acknowledged timestamps of each writer; every one of them holds a
// sample for each of the writer's series, of value clusterValue.
type clusterLedger struct {
	mu    sync.Mutex
	acked []map[int64]bool
	next  []int64
	lat   []time.Duration
}

const clusterSeries = 20 // per writer

func clusterValue(w, s int, ts int64) float64 {
	return float64(w*1_000_000+s*1000) + float64(ts%997)
}

func clusterRequest(w int, ts int64) *prompb.WriteRequest {
	req := &prompb.WriteRequest{}
	for s := range clusterSeries {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
			Labels: []prompb.Label{
				{Name: "__name__", Value: "cluster_e2e"},
				{Name: "s", Value: strconv.Itoa(s)},
				{Name: "w", Value: strconv.Itoa(w)},
			},
			Samples: []prompb.Sample{{Timestamp: ts, Value: clusterValue(w, s, ts)}},
		})
	}
	return req
}

// write keeps writer w writing through url until ctx is done.
func (l *clusterLedger) write(ctx context.Context, c *http.Client, w int, url string) {
	for ctx.Err() == nil {
		l.mu.Lock()
		ts := l.next[w]
		l.next[w] += 1000
		l.mu.Unlock()
		start := time.Now()
		code, _, err := apptest.RemoteWrite(ctx, c, url, clusterRequest(w, ts))
		if err == nil && code == http.StatusNoContent {
			l.mu.Lock()
			l.acked[w][ts] = true
			l.lat = append(l.lat, time.Since(start))
			l.mu.Unlock()
		}
	}
}

func (l *clusterLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.acked {
		n += len(a)
	}
	return n * clusterSeries
}

// check compares what node p answers for the whole cluster (the read
// path fans out to the owners) with the ledger: it returns how many
// acknowledged samples are missing and how many samples come twice; a
// wrong value fails the test. headers go with the read. A read the cluster cannot answer now (503
// while a node restarts) counts every sample missing.
func (l *clusterLedger) check(t *testing.T, c *http.Client, p *apptest.Proc, headers ...string) (missing, dup int) {
	t.Helper()
	held := map[string]map[int64]int{}
	{
		got, err := apptest.Export(c, p.URL(), `{__name__="cluster_e2e"}`, headers...)
		if err != nil {
			return l.count(), 0
		}
		for _, s := range got {
			key := s.Metric["w"] + "/" + s.Metric["s"]
			if held[key] == nil {
				held[key] = map[int64]int{}
			}
			w, _ := strconv.Atoi(s.Metric["w"])
			sn, _ := strconv.Atoi(s.Metric["s"])
			for i, ts := range s.Timestamps {
				require.Equal(t, clusterValue(w, sn, ts), s.Value(i), "series %s at %d", key, ts)
				held[key][ts]++
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for w, a := range l.acked {
		for ts := range a {
			for s := range clusterSeries {
				if held[fmt.Sprintf("%d/%d", w, s)][ts] == 0 {
					missing++
				}
			}
		}
	}
	for _, m := range held {
		for _, n := range m {
			if n > 1 {
				dup += n - 1
			}
		}
	}
	return missing, dup
}

// waitComplete waits until every node answers every acknowledged sample
// (each answers for the whole cluster), and fails on a sample answered
// twice. It returns how long it took.
func (l *clusterLedger) waitComplete(t *testing.T, c *http.Client, nodes ...*apptest.Proc) time.Duration {
	t.Helper()
	start := time.Now()
	for _, p := range nodes {
		for {
			missing, dup := l.check(t, c, p)
			require.Zero(t, dup, "samples answered twice")
			if missing == 0 {
				break
			}
			if time.Since(start) > 2*time.Minute {
				t.Fatalf("%d acknowledged samples of %d missing through %s after 2m\n%s", missing, l.count(), p.Addr, p.Log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return time.Since(start)
}

func clusterConfig(t *testing.T, broker, node string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), node+".yml")
	doc := fmt.Sprintf(`cluster:
  brokers: [%s]
  partitions: 4
  replication_factor: 1
  zone: zone-a
  node: %s
  produce_timeout: 3s
  session_timeout: 15s
`, broker, node)
	require.NoError(t, os.WriteFile(p, []byte(doc), 0o644))
	return p
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// TestClusterWritePath: one Kafka broker, two tsdb nodes in one zone.
// Writes through node 1 are acknowledged once Kafka has them and end up in
// the storage of the node that owns their partition: each node answers
// every acknowledged sample exactly once (reads fan out to the owners,
// TestClusterReadPath), also after node 2 is killed with SIGKILL while
// writes go on and is started again. With the broker down a write gets 503 with
// Retry-After; once it is back, writes succeed again.
func TestClusterWritePath(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker and three tsdb")
	}
	k := apptest.StartKafka(t, &apptest.KafkaOptions{Partitions: 1})
	bin := apptest.Build(t)
	c := &http.Client{Timeout: 30 * time.Second}
	dir1, dir2 := t.TempDir(), t.TempDir()
	start := func(dir, node string) *apptest.Proc {
		return apptest.StartTSDB(t, bin, dir, "--config.file", clusterConfig(t, k.Addr, node), "--self-monitor.interval", "0")
	}
	n1, n2 := start(dir1, "n1"), start(dir2, "n2")
	require.Eventually(t, func() bool { return owned(t, n1) == 2 && owned(t, n2) == 2 }, time.Minute, 200*time.Millisecond,
		"the zone's two nodes share the 4 partitions")
	const writers = 2
	l := &clusterLedger{acked: make([]map[int64]bool, writers), next: make([]int64, writers)}
	for w := range writers {
		l.acked[w] = map[int64]bool{}
		l.next[w] = time.Now().Add(-time.Hour).UnixMilli()
	}
	run := func(d time.Duration, during func()) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() { l.write(ctx, c, w, n1.URL()+"/api/v1/write") })
		}
		if during != nil {
			during()
		}
		time.Sleep(d)
		cancel()
		wg.Wait()
	}

	// Writes reach the cluster; both nodes own partitions.
	t0, n0 := time.Now(), l.count()
	run(3*time.Second, nil)
	rate := float64(l.count()-n0) / time.Since(t0).Seconds()
	took := l.waitComplete(t, c, n1, n2)
	t.Logf("phase 1: %d samples acknowledged (%.0f samples/s through node 1, %d writers); all consumed %v later; write latency p50 %v p99 %v",
		l.count(), rate, writers, took.Round(time.Millisecond), percentile(l.lat, 0.5), percentile(l.lat, 0.99))
	require.Equal(t, 4, owned(t, n1)+owned(t, n2))

	// kill -9 of node 2 while writes go on; it comes back and catches up.
	run(2*time.Second, func() {
		time.Sleep(500 * time.Millisecond)
		n2.Kill()
	})
	restart := time.Now()
	n2 = start(dir2, "n2")
	took = l.waitComplete(t, c, n1, n2)
	t.Logf("node 2 killed with SIGKILL under writes and restarted: %v from the restart to every acknowledged sample held (%v after it served)",
		time.Since(restart).Round(time.Millisecond), took.Round(time.Millisecond))

	// Kafka down: 503 with Retry-After, never a 2xx.
	k.Kill()
	code, retry := remoteWriteStatus(t, c, n1.URL()+"/api/v1/write", clusterRequest(0, l.next[0]))
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.NotEmpty(t, retry, "Retry-After")
	k.Start(t)
	require.Eventually(t, func() bool {
		code, _ := remoteWriteStatus(t, c, n1.URL()+"/api/v1/write", clusterRequest(0, l.next[0]))
		return code == http.StatusNoContent
	}, 2*time.Minute, time.Second, "writes succeed once Kafka is back")
	l.acked[0][l.next[0]] = true
	l.next[0] += 1000
	run(time.Second, nil)
	l.waitComplete(t, c, n1, n2)
	n1.Stop(t)
	n2.Stop(t)

	// The same writers against a single node, for the report.
	single := apptest.StartTSDB(t, bin, t.TempDir(), "--self-monitor.interval", "0")
	l.lat = nil
	t0, n0 = time.Now(), l.count()
	n1 = single
	run(3*time.Second, nil)
	t.Logf("single node, same writers: %.0f samples/s, write latency p50 %v p99 %v",
		float64(l.count()-n0)/time.Since(t0).Seconds(), percentile(l.lat, 0.5), percentile(l.lat, 0.99))
	single.Stop(t)
}

// owned is how many partitions node p consumes, as its /metrics say.
func owned(t *testing.T, p *apptest.Proc) int {
	t.Helper()
	_, body := p.Get(t, "/metrics")
	m := regexp.MustCompile(`(?m)^tsdb_cluster_partitions_owned (\d+)$`).FindStringSubmatch(body)
	require.NotNil(t, m, "tsdb_cluster_partitions_owned in /metrics")
	n, _ := strconv.Atoi(m[1])
	return n
}

// remoteWriteStatus sends req and returns the status and Retry-After.
func remoteWriteStatus(t *testing.T, c *http.Client, url string, req *prompb.WriteRequest) (int, string) {
	t.Helper()
	raw, err := req.Marshal()
	require.NoError(t, err)
	hr, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	require.NoError(t, err)
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := c.Do(hr)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}
