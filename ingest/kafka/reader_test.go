package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func TestPlan(t *testing.T) {
	a1 := member{NodeInfo: NodeInfo{Zone: "a", Node: "a1", Held: []int32{0, 1}}, Local: true, Healthy: true}
	a2 := member{NodeInfo: NodeInfo{Zone: "a", Node: "a2", Held: []int32{1, 2, 3}}, Healthy: true}
	b1 := member{NodeInfo: NodeInfo{Zone: "b", Node: "b1", Held: []int32{0, 1, 2, 3}}, Healthy: true}
	owners := map[string]map[int32]string{
		"a": {0: "a1", 1: "a2", 2: "a2", 3: "a2"},
		"b": {0: "b1", 1: "b1", 2: "b1", 3: "b1"},
	}
	type got struct {
		targets map[string][]int32 // node -> partitions
		owns    map[string][]int32
		missing []int32
	}
	run := func(nodes ...member) got {
		ts, missing := plan(4, "a", nodes, owners)
		g := got{targets: map[string][]int32{}, owns: map[string][]int32{}, missing: missing}
		for _, t := range ts {
			g.targets[t.Node], g.owns[t.Node] = t.Partitions, t.Owns
		}
		return g
	}

	// All healthy: the local zone answers; partition 1 moved from a1 to
	// a2, so both are asked for it, and only a2 waits for its offsets.
	g := run(a1, a2, b1)
	require.Equal(t, map[string][]int32{"a1": {0, 1}, "a2": {1, 2, 3}}, g.targets)
	require.Equal(t, map[string][]int32{"a1": {0}, "a2": {1, 2, 3}}, g.owns)
	require.Empty(t, g.missing)

	// a2 down: partitions it owns or holds come from zone b whole.
	a2down := a2
	a2down.Healthy = false
	g = run(a1, a2down, b1)
	require.Equal(t, map[string][]int32{"a1": {0}, "b1": {1, 2, 3}}, g.targets)
	require.Empty(t, g.missing)

	// a2 down and zone b too: its partitions have no healthy owner.
	b1down := b1
	b1down.Healthy = false
	g = run(a1, a2down, b1down)
	require.Equal(t, map[string][]int32{"a1": {0}}, g.targets)
	require.Equal(t, []int32{1, 2, 3}, g.missing)

	// An owner nobody announced (no address) cannot answer.
	g = run(a1, b1)
	require.Equal(t, map[string][]int32{"a1": {0}, "b1": {1, 2, 3}}, g.targets)
}

func TestMergePoints(t *testing.T) {
	f := func(a, b []int64, want string) {
		t.Helper()
		pa, pb := make([]point, len(a)), make([]point, len(b))
		for i, ts := range a {
			pa[i] = point{t: ts, f: 1}
		}
		for i, ts := range b {
			pb[i] = point{t: ts, f: 2}
		}
		var parts []string
		for _, p := range mergePoints(pa, pb) {
			parts = append(parts, strconv.FormatInt(p.t, 10)+"="+strconv.FormatFloat(p.f, 'g', -1, 64))
		}
		require.Equal(t, want, strings.Join(parts, " "))
	}
	f(nil, nil, "")
	f([]int64{1, 3}, nil, "1=1 3=1")
	f([]int64{1, 3}, []int64{2, 4}, "1=1 2=2 3=1 4=2")
	f([]int64{1, 2, 3}, []int64{2, 3, 4}, "1=1 2=1 3=1 4=2") // the same records consumed twice: one kept
}

func TestPointIteratorSeek(t *testing.T) {
	it := (&memSeries{pts: []point{{t: 10}, {t: 20}, {t: 30}}}).Iterator(nil)
	require.True(t, it.SeekTo(15))
	ts, _ := it.At()
	require.EqualValues(t, 20, ts)
	require.True(t, it.SeekTo(5)) // never backwards
	ts, _ = it.At()
	require.EqualValues(t, 20, ts)
	require.True(t, it.Next())
	require.False(t, it.SeekTo(31))
	require.False(t, it.Next())
}

// testNode is one node of an in-process cluster without Kafka: its own
// storage, a Reader whose membership the test sets, and its internal
// read API on an httptest server.
type testNode struct {
	db  *storage.DB
	r   *Reader
	srv *httptest.Server
}

func newTestNode(t *testing.T, zone, node string, owned []int32) *testNode {
	cfg := Config{Brokers: []string{"unused:9092"}, Partitions: 4, Zone: zone, Node: node, Secret: "s3cret"}
	require.NoError(t, cfg.Validate())
	n := &testNode{db: st.Open(t, nil)}
	reg := &Registry{cfg: cfg, owned: func() []int32 { return owned }, wrote: func() []int32 { return nil }, metrics: NewMetrics(nil), log: slog.New(slog.DiscardHandler), now: time.Now}
	reg.mu.nodes, reg.mu.held, reg.mu.zones, reg.mu.failed = map[string]NodeInfo{}, map[int32]bool{}, map[string]*ZoneState{}, map[string]time.Time{}
	n.r = NewReader(cfg, n.db, reg, nil, nil)
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body := make([]byte, req.ContentLength)
		_, _ = req.Body.Read(body)
		ct, b, err := n.r.ServePeer(req.Context(), strings.TrimPrefix(req.URL.Path, "/internal/v1/"), req.Header.Get(SecretHeader), body)
		if err != nil {
			code := http.StatusInternalServerError
			if strings.Contains(err.Error(), "data unavailable") {
				code = http.StatusServiceUnavailable
			}
			http.Error(w, `{"error":"`+err.Error()+`"}`, code)
			return
		}
		w.Header().Set("Content-Type", ct)
		_, _ = w.Write(b)
	}))
	t.Cleanup(n.srv.Close)
	reg.self = NodeInfo{Zone: zone, Node: node, URL: n.srv.URL}
	return n
}

// announce tells every node of the others' announcements and the zones'
// owners.
func announce(nodes []*testNode, held map[*testNode][]int32, owners map[string]map[int32]string, seen map[*testNode]time.Time) {
	for _, n := range nodes {
		reg := n.r.reg
		reg.mu.Lock()
		for _, o := range nodes {
			info := o.r.reg.self
			info.Held, info.Seen = held[o], seen[o].UnixMilli()
			reg.mu.nodes[info.key()] = info
			if o == n {
				for _, p := range held[o] {
					reg.mu.held[p] = true
				}
			}
		}
		for z, ow := range owners {
			reg.mu.zones[z] = &ZoneState{Zone: z, Owner: ow}
		}
		reg.mu.Unlock()
	}
}

// The fan-out reader answers exactly what one node holding all the data
// answers: floats and native histograms bit for bit, a series whose
// partition moved (its samples on two nodes, some on both) merged into
// one, label names and values; it falls back to the other zone for the
// partitions of a node that is down, and without any healthy owner it
// fails with ErrUnavailable or, when asked, answers partially with a
// warning.
func TestReaderFanOut(t *testing.T) {
	const tenant = "acme"
	single := st.Open(t, nil)
	a1, a2 := newTestNode(t, "a", "a1", []int32{0}), newTestNode(t, "a", "a2", []int32{1, 2, 3})
	b1 := newTestNode(t, "b", "b1", []int32{0, 1, 2, 3})
	nodes := []*testNode{a1, a2, b1}
	stale := math.Float64frombits(storage.StaleNaN)
	for i := range 40 {
		lset := labels.FromStrings("__name__", "m", "i", strconv.Itoa(i), "job", "j"+strconv.Itoa(i%3))
		p := Partition(tenant, lset, 4)
		var ss []storage.Sample
		for k := range int64(10) {
			v := float64(i)*1.1 + float64(k)/3
			if k == 9 && i%5 == 0 {
				v = stale
			}
			ss = append(ss, storage.Sample{T: k * 1000, V: v})
		}
		all := storage.SeriesSamples{Labels: lset, Samples: ss}
		if i%7 == 0 {
			h := &histogram.FloatHistogram{Schema: 1, Count: 5, Sum: 1.5 + float64(i), ZeroThreshold: 1e-128, ZeroCount: 1,
				PositiveSpans: []histogram.Span{{Offset: 0, Length: 2}}, PositiveBuckets: []float64{2, 2}}
			all.Samples = all.Samples[:5]
			all.Histograms = []storage.HSample{{T: 7000, H: h}, {T: 8000, H: h.Copy()}}
		}
		st.Write(t, single, tenant, all)
		st.Write(t, b1.db, tenant, all)
		switch p {
		case 0:
			st.Write(t, a1.db, tenant, all)
		case 1: // moved from a1 to a2 at t=5s, the record at 5s consumed by both
			early, late := all, all
			early.Samples, early.Histograms = all.Samples[:min(6, len(all.Samples))], nil
			late.Samples = all.Samples[min(5, len(all.Samples)):]
			st.Write(t, a1.db, tenant, early)
			st.Write(t, a2.db, tenant, late)
		default:
			st.Write(t, a2.db, tenant, all)
		}
	}
	held := map[*testNode][]int32{a1: {0, 1}, a2: {1, 2, 3}, b1: {0, 1, 2, 3}}
	owners := map[string]map[int32]string{"a": {0: "a1", 1: "a2", 2: "a2", 3: "a2"}, "b": {0: "b1", 1: "b1", 2: "b1", 3: "b1"}}
	now := time.Now()
	seen := map[*testNode]time.Time{a1: now, a2: now, b1: now}
	announce(nodes, held, owners, seen)

	all := labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")
	read := func(r storage.Reader) string {
		return dumpMixed(st.ReadMixed(t, r, tenant, math.MinInt64, math.MaxInt64, all))
	}
	want := read(single)
	require.Equal(t, 40, strings.Count(want, "\n"))
	for _, n := range nodes {
		require.Equal(t, want, read(n.r), "through %s", n.r.cfg.Node)
	}
	ctx := context.Background()
	q, err := a1.r.Querier(ctx, tenant, 0, 9000)
	require.NoError(t, err)
	names, err := q.LabelNames(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"__name__", "i", "job"}, names)
	vals, err := q.LabelValues(ctx, "job", labels.MustNewMatcher(labels.MatchEqual, "__name__", "m"))
	require.NoError(t, err)
	require.Equal(t, []string{"j0", "j1", "j2"}, vals)
	ss := q.Select(ctx, &storage.SelectHints{Start: 0, End: 9000, Limit: 7}, all)
	n := 0
	for ss.Next() {
		n++
	}
	require.NoError(t, ss.Err())
	require.Equal(t, 7, n)
	require.True(t, ss.(interface{ Truncated() bool }).Truncated())

	// a2's server stops answering though it still looks healthy: the read
	// is planned again without it and answered from zone b.
	a2.srv.Close()
	require.Equal(t, want, read(a1.r), "a2 down")

	// Zone b gone too (announcements stale): no healthy owner for a2's
	// partitions.
	seen[b1], seen[a2] = now.Add(-time.Hour), now.Add(-time.Hour)
	announce(nodes, held, owners, seen)
	q, err = a1.r.Querier(ctx, tenant, math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	ss = q.Select(ctx, nil, all)
	require.False(t, ss.Next())
	require.ErrorIs(t, ss.Err(), storage.ErrUnavailable)
	require.ErrorContains(t, ss.Err(), "partitions 1, 2, 3 have no healthy owner in any zone")

	ro := &storage.ReadOptions{Partial: true}
	pctx := storage.WithReadOptions(ctx, ro)
	ss = q.Select(pctx, nil, all)
	partial := 0
	for ss.Next() {
		require.Equal(t, int32(0), Partition(tenant, ss.At().Labels(), 4))
		partial++
	}
	require.NoError(t, ss.Err())
	require.NotZero(t, partial)
	require.Equal(t, []string{"partitions 1, 2, 3 have no healthy owner in any zone: the answer is partial, without the series of these partitions"}, ro.Warnings())
}

// A peer's internal API refuses a request without the cluster's secret.
func TestServePeerSecret(t *testing.T) {
	n := newTestNode(t, "a", "a1", nil)
	_, _, err := n.r.ServePeer(context.Background(), opLabelNames, "wrong", []byte(`{"tenant":"x"}`))
	require.ErrorContains(t, err, "cluster's secret")
}

// dumpMixed prints series bit for bit (NaN payloads, histograms whole),
// one line each, sorted.
func dumpMixed(m map[string][]st.Mixed) string {
	var lines []string
	for k, pts := range m {
		var b strings.Builder
		b.WriteString(k)
		for _, p := range pts {
			if p.H != nil {
				fmt.Fprintf(&b, " %d:%s/%d", p.T, p.H.String(), p.H.CounterResetHint)
			} else {
				fmt.Fprintf(&b, " %d:%x", p.T, math.Float64bits(p.V))
			}
		}
		lines = append(lines, b.String()+"\n")
	}
	slices.Sort(lines)
	return strings.Join(lines, "")
}
