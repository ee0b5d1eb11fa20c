package ruler

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/rulefmt"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

type recorder struct {
	mu   sync.Mutex
	sent [][]*Alert
}

func (r *recorder) Send(a []*Alert) {
	r.mu.Lock()
	r.sent = append(r.sent, a)
	r.mu.Unlock()
}

const rulesYAML = `
groups:
  - name: g
    interval: 1m
    labels: {team: ops}
    rules:
      - record: job:x:sum
        expr: sum by (job) (x)
      - alert: XHigh
        expr: job:x:sum > 0
        for: 2m
        keep_firing_for: 1m
        labels: {severity: "{{ if gt $value 5.0 }}page{{ else }}ticket{{ end }}"}
        annotations:
          summary: "{{ $labels.job }} is at {{ $value | humanize }}"
`

func groupFrom(t *testing.T, r *Ruler, yamlText string) *Group {
	t.Helper()
	f, errs := rulefmt.Parse([]byte(yamlText))
	require.Empty(t, errs)
	g := r.newGroup("rules.yml", f.Groups[0])
	r.mu.Lock()
	r.groups = append(r.groups, g) // registered, not running: the test drives Eval
	r.mu.Unlock()
	return g
}

func write(t *testing.T, db storage.Writer, name string, ts time.Time, v float64) {
	t.Helper()
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", name, "job", "a"), storage.Sample{T: ts.UnixMilli(), V: v})
	require.NoError(t, db.Write(context.Background(), "default", &b))
}

func TestAlertLifecycle(t *testing.T) {
	db := st.Open(t, nil)
	eng := query.NewEngine(db, nil)
	rec := &recorder{}
	r := New(eng, db, rec, nil)
	var events []Event
	r.OnEvent(func(e Event) { events = append(events, e) })
	g := groupFrom(t, r, rulesYAML)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	alert := g.Rules[1]
	state := func() AlertState {
		alert.mu.Lock()
		defer alert.mu.Unlock()
		for _, a := range alert.active {
			return a.State
		}
		return ""
	}
	for i := 0; i <= 3; i++ {
		ts := t0.Add(time.Duration(i) * time.Minute)
		write(t, db, "x", ts, 7)
		g.Eval(ctx, ts)
		if i < 2 {
			require.Equal(t, StatePending, state(), "minute %d", i)
		} else {
			require.Equal(t, StateFiring, state(), "minute %d", i)
		}
	}
	// The recording rule fed the alert; labels and annotations templated.
	a := r.Alerts()[0]
	require.Equal(t, labels.FromStrings("alertname", "XHigh", "job", "a", "severity", "page", "team", "ops"), a.Labels)
	require.Equal(t, "a is at 7", a.Annotations.Get("summary"))
	require.Equal(t, t0, a.ActiveAt)
	require.Len(t, rec.sent, 2, "sent on firing, resent a minute later")

	// ALERTS and ALERTS_FOR_STATE were written.
	got := st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "ALERTS"))
	require.Len(t, got[`{__name__="ALERTS", alertname="XHigh", alertstate="firing", job="a", severity="page", team="ops"}`], 2)
	pending := got[`{__name__="ALERTS", alertname="XHigh", alertstate="pending", job="a", severity="page", team="ops"}`]
	require.Len(t, pending, 3)
	require.True(t, storage.IsStaleNaN(pending[2].V), "the pending series ends with a stale marker when the alert fires")

	// The condition ends (stale marker); keep_firing_for holds it a minute.
	stale := math.Float64frombits(storage.StaleNaN)
	write(t, db, "x", t0.Add(4*time.Minute), stale)
	g.Eval(ctx, t0.Add(4*time.Minute))
	require.Equal(t, StateFiring, state(), "kept firing")
	g.Eval(ctx, t0.Add(5*time.Minute))
	require.Equal(t, StateInactive, state(), "resolved")
	require.Empty(t, r.Alerts())
	last := rec.sent[len(rec.sent)-1]
	require.Equal(t, t0.Add(5*time.Minute), last[0].ResolvedAt, "the resolution is sent")
	require.Equal(t, t0.Add(2*time.Minute), last[0].FiredAt)
	// Resolved alerts are re-sent every resend delay for 15 minutes.
	n := len(rec.sent)
	for m := 6; m <= 25; m++ {
		g.Eval(ctx, t0.Add(time.Duration(m)*time.Minute))
	}
	require.Equal(t, n+14, len(rec.sent), "re-sent at minutes 6…19, not after 15 minutes")

	var kinds []string
	for _, e := range events {
		kinds = append(kinds, string(e.From)+">"+string(e.To))
	}
	require.Equal(t, []string{"inactive>pending", "pending>firing", "firing>inactive"}, kinds)

	// The same history, read back from storage (as /api/v1/alerts/history does).
	res, err := r.eng.Instant(ctx, "default", `ALERTS_TRANSITIONS{alertname="XHigh"}[61m]`, t0.Add(time.Hour).UnixMilli())
	require.NoError(t, err)
	stored := 0
	for _, s := range res.Series {
		stored += len(s.Points)
	}
	require.Equal(t, 3, stored)
	res, err = r.eng.Instant(ctx, "default", `ALERTS_TRANSITIONS{alertname="XHigh",transition_to="firing"}[1h]`, t0.Add(time.Hour).UnixMilli())
	require.NoError(t, err)
	require.Len(t, res.Series, 1)
	require.Equal(t, t0.Add(2*time.Minute).UnixMilli(), res.Series[0].Points[0].T, "fired at minute 2")
}

// After a restart the active-since time is restored from
// ALERTS_FOR_STATE: no new `for` wait.
func TestForStateRestored(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, nil)
	eng := query.NewEngine(db, nil)
	r := New(eng, db, nil, nil)
	g := groupFrom(t, r, rulesYAML)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	for i := 0; i <= 1; i++ {
		ts := t0.Add(time.Duration(i) * time.Minute)
		write(t, db, "x", ts, 1)
		g.Eval(ctx, ts)
	}
	require.NoError(t, db.Close())

	db = st.OpenDir(t, dir, nil)
	r = New(query.NewEngine(db, nil), db, nil, nil)
	g = groupFrom(t, r, rulesYAML)
	ts := t0.Add(2 * time.Minute)
	write(t, db, "x", ts, 1)
	g.restore(context.Background(), ts)
	g.Eval(ctx, ts)
	a := r.Alerts()
	require.Len(t, a, 1)
	require.Equal(t, StateFiring, a[0].State, "fires at 2m as if never restarted")
	require.Equal(t, t0, a[0].ActiveAt)
}

func TestLoadKeepsOldRulesOnError(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	require.NoError(t, os.WriteFile(good, []byte(rulesYAML), 0o644))
	db := st.Open(t, nil)
	r := New(query.NewEngine(db, nil), db, nil, &Options{Now: func() time.Time { return time.Unix(1_700_000_000, 0) }})
	defer r.Stop()
	require.NoError(t, r.Load([]string{good}))
	require.Len(t, r.Groups(), 1)
	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("groups:\n  - name: b\n    rules:\n      - alert: A\n        expr: sum(\n"), 0o644))
	err := r.Load([]string{good, bad})
	require.ErrorContains(t, err, "could not parse expression")
	require.Len(t, r.Groups(), 1, "the old groups keep running")
}

// A reload keeps the alert state of rules that did not change.
func TestReloadKeepsState(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yml")
	require.NoError(t, os.WriteFile(file, []byte(rulesYAML), 0o644))
	db := st.Open(t, nil)
	r := New(query.NewEngine(db, nil), db, nil, &Options{Now: func() time.Time { return time.Unix(1_700_000_000, 0) }})
	defer r.Stop()
	require.NoError(t, r.Load([]string{file}))
	g := r.Groups()[0]
	t0 := time.Unix(1_700_000_000, 0)
	write(t, db, "x", t0, 1)
	g.Eval(context.Background(), t0)
	require.Len(t, r.Alerts(), 1)
	// Reload with one more group: the alert keeps its active-since time.
	require.NoError(t, os.WriteFile(file, []byte(rulesYAML+"  - name: other\n    rules:\n      - record: y\n        expr: vector(1)\n"), 0o644))
	require.NoError(t, r.Load([]string{file}))
	require.Len(t, r.Groups(), 2)
	a := r.Alerts()
	require.Len(t, a, 1)
	require.Equal(t, t0, a[0].ActiveAt)
}

// TestMetricKeyUTF8: a group whose file (or API namespace) is not UTF-8
// still gets a valid rule_group label value.
func TestMetricKeyUTF8(t *testing.T) {
	g := &Group{File: "\xe9", Name: "g"}
	require.Equal(t, "\uFFFD;g", g.metricKey())
}

// API groups change while file groups keep running (once each).
func TestAPIGroupsBesideFileGroups(t *testing.T) {
	file := filepath.Join(t.TempDir(), "r.yml")
	require.NoError(t, os.WriteFile(file, []byte(rulesYAML), 0o644))
	db := st.Open(t, nil)
	r := New(query.NewEngine(db, nil), db, nil, nil)
	defer r.Stop()
	require.NoError(t, r.Load([]string{file}))
	f, errs := rulefmt.Parse([]byte("groups:\n  - name: api\n    rules:\n      - record: z\n        expr: vector(2)\n"))
	require.Empty(t, errs)
	r.SetAPIGroups(map[string]map[string][]rulefmt.Group{"acme": {"ns": f.Groups}})
	r.SetAPIGroups(map[string]map[string][]rulefmt.Group{"acme": {"ns": f.Groups}})
	require.Len(t, r.Groups(), 2)
	require.Equal(t, "acme", r.Groups()[1].tenant())
	require.NoError(t, r.Load([]string{file}))
	require.Len(t, r.Groups(), 2)
}

// TestReloadAddingForRule: reloading a group that keeps one alert and adds
// another with `for` runs the new group without restoring state (the kept
// alert carried its own). This used to write into a nil map in the group's
// goroutine and crash the process.
func TestReloadAddingForRule(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yml")
	const one = "groups:\n  - name: g\n    interval: 200ms\n    rules:\n      - alert: A\n        expr: vector(1)\n        for: 1m\n"
	require.NoError(t, os.WriteFile(file, []byte(one), 0o644))
	db := st.Open(t, nil)
	r := New(query.NewEngine(db, nil), db, nil, nil) // the real clock: the groups run
	defer r.Stop()
	require.NoError(t, r.Load([]string{file}))
	require.Eventually(t, func() bool { return len(r.Alerts()) == 1 }, 5*time.Second, 50*time.Millisecond)
	require.NoError(t, os.WriteFile(file, []byte(one+"      - alert: B\n        expr: vector(2)\n        for: 1m\n"), 0o644))
	require.NoError(t, r.Load([]string{file}))
	require.Eventually(t, func() bool { return len(r.Alerts()) == 2 }, 5*time.Second, 50*time.Millisecond, "the reloaded group runs")
}

// parseDuration reads Prometheus's syntax, negative durations too, as
// Prometheus's template function does.
func TestTemplateParseDuration(t *testing.T) {
	db := st.Open(t, nil)
	r := New(query.NewEngine(db, nil), db, nil, &Options{})
	defer r.Stop()
	expand := func(in string) (string, error) {
		return r.expand(context.Background(), "default", "t", `{{ parseDuration "`+in+`" }}`, labels.EmptyLabels(), 0, 0)
	}
	for in, want := range map[string]string{"1h30m": "5400", "3d": "259200", "-5m": "-300", "500ms": "0.5"} {
		got, err := expand(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := expand("1.5h")
	require.ErrorContains(t, err, `unknown unit "." in duration "1.5h"`)
}

// blockingEvaluator answers only when its context ends (a rule query that
// runs long).
type blockingEvaluator struct{ started chan struct{} }

func (b blockingEvaluator) Instant(ctx context.Context, _, _ string, _ int64) (*query.Result, error) {
	select {
	case b.started <- struct{}{}:
	default:
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		return nil, errors.New("not cancelled")
	}
}

func (b blockingEvaluator) Range(ctx context.Context, tenant, q string, _, end, _ int64) (*query.Result, error) {
	return b.Instant(ctx, tenant, q, end)
}

// TestStopCancelsRunningQuery: stopping a group cancels the rule query in
// flight instead of waiting for it (a slow rule held shutdown and reloads).
func TestStopCancelsRunningQuery(t *testing.T) {
	db := st.Open(t, nil)
	ev := blockingEvaluator{started: make(chan struct{}, 1)}
	r := New(ev, db, nil, &Options{DefaultInterval: time.Second})
	file := filepath.Join(t.TempDir(), "slow.yml")
	require.NoError(t, os.WriteFile(file, []byte("groups:\n  - name: slow\n    interval: 1s\n    rules:\n      - record: slow\n        expr: vector(1)\n"), 0o644))
	require.NoError(t, r.Load([]string{file}))
	select {
	case <-ev.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the group did not evaluate")
	}
	t0 := time.Now()
	r.Stop()
	require.Less(t, time.Since(t0), time.Second, "Stop waited for the query")
}

// TestNoDataIsNotRecovery: an alert whose source stops reporting goes
// away with NoData set, and its recovery is told when the source reports
// again below the threshold; an alert whose value recovers goes away
// without NoData (the bug: both looked like a recovery).
func TestNoDataIsNotRecovery(t *testing.T) {
	db := st.Open(t, nil)
	eng := query.NewEngine(db, nil)
	r := New(eng, db, &recorder{}, nil)
	var events []string
	r.OnEvent(func(e Event) {
		events = append(events, e.Alert.Labels.Get("sensor")+" "+string(e.From)+">"+string(e.To)+map[bool]string{true: " no data"}[e.NoData])
	})
	g := groupFrom(t, r, `
groups:
  - name: g
    interval: 1m
    labels: {team: ops}
    rules:
      - alert: Hot
        expr: temp > 30
        labels: {severity: page}
`)
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	temp := func(sensor string, m int, v float64) {
		var b storage.Batch
		b.Add(labels.FromStrings("__name__", "temp", "sensor", sensor), storage.Sample{T: t0.Add(time.Duration(m) * time.Minute).UnixMilli(), V: v})
		require.NoError(t, db.Write(ctx, "default", &b))
	}
	stale := math.Float64frombits(storage.StaleNaN)
	eval := func(m int) { g.Eval(ctx, t0.Add(time.Duration(m)*time.Minute)) }
	temp("a", 0, 35)
	temp("b", 0, 35)
	eval(0)
	eval(1)
	temp("a", 2, stale) // a goes silent
	temp("b", 2, 20)    // b recovers
	eval(2)
	slices.Sort(events)
	require.Equal(t, []string{"a firing>inactive no data", "a inactive>pending", "a pending>firing",
		"b firing>inactive", "b inactive>pending", "b pending>firing"}, events)
	events = nil
	for m := 3; m <= 30; m++ {
		eval(m)
	}
	require.Empty(t, events, "silent: nothing more until the source reports")
	temp("a", 31, 25)
	eval(31)
	require.Equal(t, []string{"a inactive>inactive"}, events, "a reports again below the threshold: recovered")
}

// Evaluated learns, per group evaluation, the tenant, the rules evaluated
// and the alerts handed to the notifier: what usage metering counts.
func TestEvaluatedReportsRulesAndAlerts(t *testing.T) {
	db := st.Open(t, nil)
	type call struct {
		tenant      string
		rules, sent int
	}
	var calls []call
	r := New(query.NewEngine(db, nil), db, &recorder{}, &Options{Evaluated: func(tenant string, rules, sent int) {
		calls = append(calls, call{tenant, rules, sent})
	}})
	g := groupFrom(t, r, `
groups:
  - name: g
    rules:
      - record: job:x:sum
        expr: sum by (job) (x)
      - alert: XHigh
        expr: job:x:sum > 0
`)
	t0 := time.Unix(1_700_000_000, 0)
	write(t, db, "x", t0, 1)
	g.Eval(context.Background(), t0.Add(time.Second))
	g.Eval(context.Background(), t0.Add(2*time.Second))
	// The firing alert is not sent again within the resend delay.
	require.Equal(t, []call{{"default", 2, 1}, {"default", 2, 0}}, calls)
}

// A paused Ruler (a cluster node that does not lead) loads groups but
// evaluates none; Resume runs them, Pause stops them again and drops
// their state, and groups loaded while paused wait for Resume too.
func TestPauseResume(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yml")
	require.NoError(t, os.WriteFile(file, []byte("groups:\n  - name: fast\n    interval: 100ms\n    rules:\n      - record: one\n        expr: vector(1)\n"), 0o644))
	db := st.Open(t, nil)
	r := New(query.NewEngine(db, nil), db, nil, &Options{Paused: true})
	defer r.Stop()
	evaluated := func() bool {
		for _, g := range r.Groups() {
			g.mu.Lock()
			last := g.last
			g.mu.Unlock()
			if last.IsZero() {
				return false
			}
		}
		return len(r.Groups()) > 0
	}
	require.NoError(t, r.Load([]string{file}))
	require.Len(t, r.Groups(), 1)
	require.Never(t, evaluated, 300*time.Millisecond, 20*time.Millisecond, "paused: nothing evaluated")

	r.Resume()
	require.Eventually(t, evaluated, 5*time.Second, 20*time.Millisecond, "resumed: evaluated")

	r.Pause()
	require.Len(t, r.Groups(), 1, "still loaded")
	require.False(t, evaluated(), "fresh groups, no state")
	r.SetAPIGroups(map[string]map[string][]rulefmt.Group{"default": {"ns": {{Name: "api", Interval: 0}}}})
	require.Len(t, r.Groups(), 2)
	require.Never(t, evaluated, 300*time.Millisecond, 20*time.Millisecond, "paused: groups loaded meanwhile wait too")
	r.Resume()
	require.Eventually(t, func() bool {
		g := r.Groups()[0]
		g.mu.Lock()
		defer g.mu.Unlock()
		return !g.last.IsZero()
	}, 5*time.Second, 20*time.Millisecond, "the file group runs again after Resume")
}
