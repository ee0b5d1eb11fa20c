package ruler

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/outbox"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// fakeAM is Alertmanager's POST /api/v2/alerts: it records the alertnames
// of every batch it accepts, in order; while down it answers 503.
type fakeAM struct {
	t        *testing.T
	addr     string
	srv      *httptest.Server
	down     atomic.Bool
	refuse   string // an alertname answered with 400
	failures atomic.Int32
	mu       sync.Mutex
	batches  [][]amAlert
}

func startFakeAM(t *testing.T) *fakeAM {
	am := &fakeAM{t: t}
	am.start("127.0.0.1:0")
	return am
}

// start serves on addr: the same address after stop, as an Alertmanager
// that restarts.
func (am *fakeAM) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	require.NoError(am.t, err)
	am.addr = ln.Addr().String()
	am.srv = httptest.NewUnstartedServer(http.HandlerFunc(am.serve))
	am.srv.Listener = ln
	am.srv.Start()
	am.t.Cleanup(am.srv.Close)
}

// stop closes the listener: connections are refused.
func (am *fakeAM) stop() { am.srv.Close() }

func (am *fakeAM) url() string { return "http://" + am.addr }

func (am *fakeAM) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/api/v2/alerts" || req.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "not Alertmanager's API", http.StatusNotFound)
		return
	}
	if am.down.Load() {
		am.failures.Add(1)
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	b, _ := io.ReadAll(req.Body)
	var batch []amAlert
	if err := json.Unmarshal(b, &batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, a := range batch {
		if a.Labels["alertname"] == am.refuse {
			http.Error(w, "invalid label set", http.StatusBadRequest)
			return
		}
	}
	am.mu.Lock()
	am.batches = append(am.batches, batch)
	am.mu.Unlock()
}

func (am *fakeAM) names() []string {
	am.mu.Lock()
	defer am.mu.Unlock()
	var out []string
	for _, b := range am.batches {
		for _, a := range b {
			out = append(out, a.Labels["alertname"])
		}
	}
	return out
}

func firing(name string, at time.Time) []*Alert {
	return []*Alert{{Labels: labels.FromStrings("alertname", name, "job", "a"), Annotations: labels.FromStrings("summary", name+" is up"),
		State: StateFiring, ActiveAt: at.Add(-time.Minute), FiredAt: at, ValidUntil: at.Add(4 * time.Minute),
		GeneratorURL: "http://tsdb/graph?g0.expr=up"}}
}

// TestAlertmanagerOutage: Alertmanager down (503, then not listening at
// all) → the batches wait in the outbox, also across a restart of tsdb
// (the store is closed and reopened) → Alertmanager up → every batch
// delivered once, in order. Close never waits for a failing Alertmanager.
func TestAlertmanagerOutage(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, nil)
	am := startFakeAM(t)
	am.down.Store(true)
	t0 := time.Unix(1_700_000_000, 0).UTC()
	ext := map[string]string{"dc": "eu-1"}
	a, err := openAlertmanagers([]string{am.url()}, ext, db, nil, 5*time.Millisecond, 50*time.Millisecond)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	a.Register(reg)
	for i, name := range []string{"A1", "A2", "A3"} {
		a.Send(firing(name, t0.Add(time.Duration(i)*time.Minute)))
	}
	require.Eventually(t, func() bool { return am.failures.Load() >= 3 }, 10*time.Second, 5*time.Millisecond, "retried")
	require.Equal(t, map[string]int{am.url(): 3}, a.Pending(), "nothing is dropped while Alertmanager is down")
	require.Equal(t, map[string]float64{`{alertmanager="` + am.url() + `"}`: 3}, gathered(t, reg, "tsdb_notification_queue_length"))
	require.Positive(t, counter(a.sent.WithLabelValues(am.url(), "failed")))
	start := time.Now()
	a.Close(context.Background()) // no deadline: Close must not wait for the retries
	require.Less(t, time.Since(start), 2*time.Second)
	require.Empty(t, am.names())

	// tsdb restarts while Alertmanager is not even listening.
	am.stop()
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, nil)
	a, err = openAlertmanagers([]string{am.url()}, ext, db, nil, 5*time.Millisecond, 50*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, map[string]int{am.url(): 3}, a.Pending(), "the undelivered batches survive the restart")
	a.Send(firing("A4", t0.Add(3*time.Minute)))
	require.Eventually(t, func() bool { return counter(a.sent.WithLabelValues(am.url(), "failed")) >= 2 },
		10*time.Second, 5*time.Millisecond, "connection refused, retried")
	require.Equal(t, map[string]int{am.url(): 4}, a.Pending())

	// Alertmanager comes back on its address.
	am.down.Store(false)
	am.start(am.addr)
	require.Eventually(t, func() bool { return len(am.names()) == 4 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"A1", "A2", "A3", "A4"}, am.names(), "once each, in order")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.Close(ctx)
	require.Equal(t, map[string]int{am.url(): 0}, a.Pending())
	require.Equal(t, 4.0, counter(a.sent.WithLabelValues(am.url(), "sent")))

	// The payload is Alertmanager's API v2 alert.
	am.mu.Lock()
	first := am.batches[0][0]
	am.mu.Unlock()
	require.Equal(t, amAlert{Labels: map[string]string{"alertname": "A1", "job": "a", "dc": "eu-1"},
		Annotations: map[string]string{"summary": "A1 is up"}, StartsAt: t0, EndsAt: t0.Add(4 * time.Minute),
		GeneratorURL: "http://tsdb/graph?g0.expr=up"}, first)
	left, err := db.ListKV(amPrefix)
	require.NoError(t, err)
	require.Equal(t, []string{amPrefix + "seq"}, slices.Collect(maps.Keys(left)), "delivered batches leave the store")
}

// TestAlertmanagerRejectsBadBatch: a batch Alertmanager refuses as
// malformed (400) is dropped and counted; the ones behind it go on.
func TestAlertmanagerRejectsBadBatch(t *testing.T) {
	am := startFakeAM(t)
	am.refuse = "Bad"
	a, err := openAlertmanagers([]string{am.url()}, nil, outbox.NewMemStore(), nil, 5*time.Millisecond, 50*time.Millisecond)
	require.NoError(t, err)
	t0 := time.Unix(1_700_000_000, 0)
	for _, name := range []string{"Good1", "Bad", "Good2"} {
		a.Send(firing(name, t0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.Close(ctx)
	require.Equal(t, []string{"Good1", "Good2"}, am.names())
	require.Equal(t, int64(1), a.Dropped())
	require.Equal(t, 1.0, counter(a.sent.WithLabelValues(am.url(), "rejected")))
}

// TestNewAlertmanagersInMemory: the constructor without a store still
// delivers (in order, retried); Close delivers what is queued first.
func TestNewAlertmanagersInMemory(t *testing.T) {
	am := startFakeAM(t)
	a := NewAlertmanagers([]string{am.url(), am.url()}, nil, nil) // the same one twice: sent once
	a.Send(firing("X", time.Unix(1_700_000_000, 0)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.Close(ctx)
	require.Equal(t, []string{"X"}, am.names())
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// gathered is the value of each series of a gauge, by its labels.
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ls := labels.NewScratchBuilder(0)
			for _, l := range m.GetLabel() {
				ls.Add(l.GetName(), l.GetValue())
			}
			ls.Sort()
			out[ls.Labels().String()] = m.GetGauge().GetValue()
		}
	}
	return out
}
