package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// outageWrite is one write of the outage test: when it was sent and
// answered, and how.
type outageWrite struct {
	writer      int
	sent, done  time.Time
	code        int
	retry, body string
	err         error
}

// TestClusterKafkaOutage: one Kafka broker, two tsdb nodes in one zone,
// two writers (one through each node) writing all along. The broker is
// killed (SIGKILL by its PID) and started again 30 s later on the same
// data folder and port, tsdb left running. While it is down, every write
// sent gets 503 with Retry-After and a message naming Kafka, within the
// produce timeout (3 s) plus a margin: never a 2xx, never a hang. /-/ready
// answers 503 with the reason on both nodes during the outage and 200
// after, while /-/healthy stays 200. Writes succeed again once the broker
// is back, and a strong read through each node then holds every sample
// acknowledged before, during (none) and after the outage, exactly once.
func TestClusterKafkaOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker and two tsdb")
	}
	began := time.Now()
	const outage = 30 * time.Second
	const produceTimeout = 3 * time.Second // clusterConfig's
	k := apptest.StartKafka(t, nil)
	bin := apptest.Build(t)
	c := &http.Client{Timeout: 30 * time.Second}
	start := func(node string) *apptest.Proc {
		return apptest.StartTSDB(t, bin, t.TempDir(), "--config.file", clusterConfig(t, k.Addr, node), "--self-monitor.interval", "0")
	}
	n1, n2 := start("n1"), start("n2")
	nodes := []*apptest.Proc{n1, n2}
	require.Eventually(t, func() bool { return owned(t, n1)+owned(t, n2) == 4 }, time.Minute, 200*time.Millisecond,
		"the zone's two nodes share the 4 partitions")
	for _, n := range nodes {
		require.Eventually(t, func() bool { code, _ := n.Get(t, "/-/ready"); return code == http.StatusOK }, 30*time.Second,
			100*time.Millisecond, "node %s ready with Kafka up", n.Addr)
	}

	const writers = 2
	l := &clusterLedger{acked: make([]map[int64]bool, writers), next: make([]int64, writers)}
	for w := range writers {
		l.acked[w] = map[int64]bool{}
		l.next[w] = time.Now().Add(-time.Hour).UnixMilli()
	}
	var (
		mu     sync.Mutex
		writes []outageWrite
	)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range writers {
		url := nodes[w].URL() + "/api/v1/write"
		wg.Go(func() {
			for ctx.Err() == nil {
				l.mu.Lock()
				ts := l.next[w]
				l.next[w] += 1000
				l.mu.Unlock()
				ow := outageWrite{writer: w, sent: time.Now()}
				ow.code, ow.retry, ow.body, ow.err = remoteWriteFull(ctx, c, url, clusterRequest(w, ts))
				ow.done = time.Now()
				if ctx.Err() != nil && ow.err != nil {
					return
				}
				if ow.err == nil && ow.code == http.StatusNoContent {
					l.mu.Lock()
					l.acked[w][ts] = true
					l.mu.Unlock()
				}
				mu.Lock()
				writes = append(writes, ow)
				mu.Unlock()
				if ow.code == http.StatusServiceUnavailable {
					time.Sleep(200 * time.Millisecond) // a sender backs off (less than Retry-After, to probe often)
				}
			}
		})
	}
	time.Sleep(3 * time.Second)
	before := l.count()
	require.Positive(t, before, "writes acknowledged before the outage")

	// The outage.
	k.Kill()
	killed := time.Now()
	notReady := make([]time.Duration, len(nodes))
	var reason string
	for i, n := range nodes {
		require.Eventually(t, func() bool {
			code, body := n.Get(t, "/-/ready")
			if code == http.StatusServiceUnavailable {
				reason = strings.TrimSpace(body)
				return true
			}
			return false
		}, outage-5*time.Second, 200*time.Millisecond, "node %s not ready without Kafka", n.Addr)
		notReady[i] = time.Since(killed)
		require.Contains(t, reason, "Kafka")
		code, _ := n.Get(t, "/-/healthy")
		require.Equal(t, http.StatusOK, code, "/-/healthy stays a liveness check")
	}
	t.Logf("broker killed; /-/ready 503 after %v and %v: %q", notReady[0].Round(time.Millisecond), notReady[1].Round(time.Millisecond), reason)
	time.Sleep(time.Until(killed.Add(outage)))
	restarting := time.Now()
	k.Start(t)
	back := time.Now()
	t.Logf("broker down for %v; restarted in %v", restarting.Sub(killed).Round(time.Millisecond), back.Sub(restarting).Round(time.Millisecond))

	// Writes resume without restarting tsdb, and the nodes are ready.
	resumed := func(w int) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, ow := range writes {
			if ow.writer == w && ow.sent.After(restarting) && ow.code == http.StatusNoContent {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return resumed(0) && resumed(1) }, time.Minute, 100*time.Millisecond,
		"writes through both nodes succeed again once Kafka is back")
	writesBack := time.Since(back)
	for _, n := range nodes {
		require.Eventually(t, func() bool { code, _ := n.Get(t, "/-/ready"); return code == http.StatusOK }, time.Minute,
			100*time.Millisecond, "node %s ready again", n.Addr)
	}
	readyBack := time.Since(back)
	time.Sleep(2 * time.Second)
	stop()
	wg.Wait()

	// Every write answered during the outage was a 503 with Retry-After
	// and a message, within the produce timeout; none was a 2xx.
	var in503, during, other int
	var slowest time.Duration
	var retry, msg string
	for _, ow := range writes {
		require.NoError(t, ow.err, "writer %d at %s", ow.writer, ow.sent.Format(time.RFC3339Nano))
		if ow.sent.After(killed) && ow.done.Before(restarting) {
			during++
			require.Equal(t, http.StatusServiceUnavailable, ow.code, "a write during the outage: %s", ow.body)
		}
		switch ow.code {
		case http.StatusNoContent:
		case http.StatusServiceUnavailable:
			in503++
			require.NotEmpty(t, ow.retry, "Retry-After on a 503")
			require.Contains(t, ow.body, "Kafka", "the 503 says why")
			slowest = max(slowest, ow.done.Sub(ow.sent))
			retry, msg = ow.retry, strings.TrimSpace(ow.body)
		default:
			other++
			t.Errorf("writer %d got %d: %s", ow.writer, ow.code, ow.body)
		}
	}
	require.Positive(t, during, "writes were sent during the outage")
	require.Less(t, slowest, produceTimeout+2*time.Second, "a write waits for Kafka no longer than the produce timeout")
	after := l.count() - before

	// Nothing acknowledged is lost: a strong read through each node.
	took := l.waitCompleteStrong(t, c, n1, n2)
	t.Logf("%d writes: %d during the outage, all 503; %d 503s in all (Retry-After %s, slowest answered in %v), %d other errors; "+
		"writes succeeded again %v after the broker served, both nodes ready %v after it; "+
		"%d samples acknowledged (%d before the outage), all held exactly once by a strong read through each node (%v); test %v",
		len(writes), during, in503, retry, slowest.Round(time.Millisecond), other,
		writesBack.Round(time.Millisecond), readyBack.Round(time.Millisecond),
		before+after, before, took.Round(time.Millisecond), time.Since(began).Round(time.Second))
	t.Logf("the last 503: %s", msg)
}

// waitCompleteStrong is waitComplete with read_consistency=strong: the
// first read answered through each node must already hold every
// acknowledged sample. A strong read may be refused for a while after an
// outage (503 "no healthy owner ... retry shortly" until the node has
// seen the others' heartbeats again); that is retried, for 30 s at most.
func (l *clusterLedger) waitCompleteStrong(t *testing.T, c *http.Client, nodes ...*apptest.Proc) time.Duration {
	t.Helper()
	start := time.Now()
	for _, p := range nodes {
		var err error
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			_, err = apptest.Export(c, p.URL(), `{__name__="cluster_e2e"}`, "X-Read-Consistency", "strong")
			if err == nil || !strings.Contains(err.Error(), "503") || time.Now().After(deadline) {
				break
			}
		}
		require.NoError(t, err, "a strong read through %s", p.Addr)
		missing, dup := l.check(t, c, p, "X-Read-Consistency", "strong")
		require.Zero(t, dup, "samples answered twice through %s", p.Addr)
		require.Zero(t, missing, "acknowledged samples missing through %s with a strong read (of %d)", p.Addr, l.count())
	}
	return time.Since(start)
}

// remoteWriteFull sends req and returns the status, Retry-After and body.
func remoteWriteFull(ctx context.Context, c *http.Client, url string, req *prompb.WriteRequest) (int, string, string, error) {
	raw, err := req.Marshal()
	if err != nil {
		return 0, "", "", err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return 0, "", "", err
	}
	hr.Header.Set("Content-Type", "application/x-protobuf")
	hr.Header.Set("Content-Encoding", "snappy")
	hr.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := c.Do(hr)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b), nil
}
