package kpi

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func TestTrackerHysteresis(t *testing.T) {
	tr := NewTracker(0.8, -1, 2)
	t0 := time.Unix(0, 0)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	eta := at(600)
	require.Equal(t, None, tr.Observe(at(0), false, 0.9, eta), "one evaluation is not enough")
	require.Equal(t, None, tr.Observe(at(5), false, 0.5, eta), "the streak broke")
	require.Equal(t, None, tr.Observe(at(10), false, 0.85, eta))
	require.Equal(t, Warn, tr.Observe(at(15), false, 0.9, eta))
	require.Equal(t, at(10), tr.TurnedAt, "the streak's start")
	require.Equal(t, None, tr.Observe(at(20), false, 0.95, eta), "not re-raised")
	require.Equal(t, None, tr.Observe(at(25), false, 0.9, eta.Add(10*time.Minute)), "a small ETA move is no update")
	require.Equal(t, Update, tr.Observe(at(30), false, 0.9, at(300)), "ETA moved by hours")
	require.Equal(t, None, tr.Observe(at(35), false, 0.6, at(300)), "between clear and warn: stays")
	require.Equal(t, None, tr.Observe(at(40), false, 0.3, time.Time{}))
	require.Equal(t, Cancel, tr.Observe(at(45), false, 0.2, time.Time{}), "recovered twice in a row")
	require.Equal(t, StateOK, tr.State)
	require.Equal(t, Breach, tr.Observe(at(50), true, 1, at(50)))
	require.Equal(t, None, tr.Observe(at(55), true, 1, at(55)))
	require.Equal(t, Recover, tr.Observe(at(60), false, 0.1, time.Time{}))
}

// A forecast all but certain of the breach warns at once; one merely
// above warn_probability waits for the next; cancelling still waits.
func TestTrackerWarnsAtOnce(t *testing.T) {
	tr := NewTracker(0.8, 0.99, 2)
	t0 := time.Unix(0, 0)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	require.Equal(t, None, tr.Observe(at(0), false, 0.98, at(600)))
	require.Equal(t, Warn, tr.Observe(at(5), false, 0.99, at(600)), "at warn_at_once")
	require.Equal(t, at(0), tr.TurnedAt, "the streak's start")
	require.Equal(t, None, tr.Observe(at(10), false, 0.1, time.Time{}), "one evaluation does not cancel")
	require.Equal(t, Cancel, tr.Observe(at(15), false, 0.1, time.Time{}))
	require.Equal(t, Warn, tr.Observe(at(20), false, 1, at(600)), "first evaluation of a streak")
	never := NewTracker(0.8, -1, 2)
	require.Equal(t, None, never.Observe(at(0), false, 1, at(600)), "-1: always confirmed")
}

func TestYAML(t *testing.T) {
	var ds []Definition
	require.NoError(t, yaml.Unmarshal([]byte("- {name: disk, expr: x, target: 0.9, direction: below, horizon: 3d, step: 1h, history: 2w, warn_at_once: 1}"), &ds))
	require.Equal(t, 72*time.Hour, ds[0].Horizon)
	require.Equal(t, 1.0, ds[0].WarnAtOnce)
	require.Equal(t, 14*24*time.Hour, ds[0].History)
	require.NoError(t, ds[0].Validate())
	require.ErrorContains(t, yaml.Unmarshal([]byte("- {name: disk, expr: x, horizn: 3d}"), &ds), "horizn")
	require.Error(t, yaml.Unmarshal([]byte("- {name: disk, horizon: soon}"), &ds))
}

func TestValidate(t *testing.T) {
	d := Definition{Name: "orders", Expr: "sum(x)", Direction: "above", Target: 1}
	require.NoError(t, d.Validate())
	require.Equal(t, 5*time.Minute, d.Interval)
	require.Equal(t, 24*time.Hour, d.Horizon)
	require.Equal(t, 0.8, d.WarnProbability)
	require.Equal(t, 0.99, d.WarnAtOnce)
	d = Definition{Name: "orders", Expr: "sum(x)", Direction: "above", Target: 1, WarnProbability: 0.995}
	require.NoError(t, d.Validate())
	require.Equal(t, 0.995, d.WarnAtOnce, "never below warn_probability")
	d = Definition{Name: "orders", Expr: "sum(x)", Direction: "above", Target: 1, WarnAtOnce: -1}
	require.NoError(t, d.Validate())
	for _, bad := range []Definition{
		{Name: "x y", Expr: "x", Direction: "above"},
		{Name: "x", Expr: "sum(", Direction: "above"},
		{Name: "x", Expr: "x", Direction: "up"},
		{Name: "x", Expr: "x", Direction: "above", WarnProbability: 1.5},
		{Name: "x", Expr: "x", Direction: "above", WarnAtOnce: 0.5},
		{Name: "x", Expr: "x", Direction: "above", WarnAtOnce: 1.01},
		{Name: "x", Expr: "x", Direction: "above", WarnAtOnce: -0.5},
		{Name: "x", Expr: "x", Direction: "above", Seasonality: "hourly"},
		{Name: "x", Expr: "x", Direction: "above", Step: time.Second, History: 30 * 24 * time.Hour},
		{Name: "x", Expr: "x", Direction: "above", RunbookURL: "wiki/orders"},
		{Name: "x", Expr: "x", Direction: "above", RunbookURL: "ftp://wiki/orders"},
		{Name: "x", Expr: "x", Direction: "above", Actions: []string{"call", " "}},
		{Name: "x", Expr: "x", Direction: "above", Deadline: "6pm"},
	} {
		require.Error(t, bad.Validate(), "%+v", bad)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// orders is 0.99 with a little noise, then from t0 falls by 0.01/h, so it
// crosses 0.95 four hours after t0.
func orders(t0 time.Time, at time.Time) float64 {
	v := 0.99 + 0.001*math.Sin(float64(at.Unix())/977)
	if d := at.Sub(t0); d > 0 {
		v -= 0.01 * d.Hours()
	}
	return v
}

// checkoutOrders is a database holding orders_ok_ratio{service="checkout"}
// (orders(t0, …)) every minute from two days before t0 to six hours after.
func checkoutOrders(t *testing.T, t0 time.Time) *storage.DB {
	t.Helper()
	db := st.Open(t, nil)
	var b storage.Batch
	var smp []storage.Sample
	for at := t0.Add(-48 * time.Hour); !at.After(t0.Add(6 * time.Hour)); at = at.Add(time.Minute) {
		smp = append(smp, storage.Sample{T: at.UnixMilli(), V: orders(t0, at)})
	}
	b.Add(labels.FromStrings("__name__", "orders_ok_ratio", "service", "checkout"), smp...)
	require.NoError(t, db.Write(context.Background(), "default", &b))
	return db
}

func TestPredictedBreachThenRealBreach(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	db := checkoutOrders(t, t0)

	clk := &clock{t: t0.Add(-time.Hour)}
	mgr, err := itsm.New(itsm.Config{
		CIs: []itsm.CI{{Name: "checkout", Kind: "service", Selector: `{service="checkout"}`, OwnerGroup: "payments", Impact: "high"}},
	}, db, nil, clk.now)
	require.NoError(t, err)
	defer mgr.Close()
	// An IT alert on the KPI's service fires half an hour before the drift.
	mgr.HandleAlert(ruler.Event{Tenant: "default", From: ruler.StatePending, To: ruler.StateFiring, At: t0.Add(-30 * time.Minute),
		Alert: &ruler.Alert{Labels: labels.FromStrings("alertname", "PaymentGatewaySlow", "service", "checkout")}})
	mgr.HandleAlert(ruler.Event{Tenant: "default", From: ruler.StatePending, To: ruler.StateFiring, At: t0.Add(-30 * time.Minute),
		Alert: &ruler.Alert{Labels: labels.FromStrings("alertname", "Unrelated", "service", "search")}})

	eng, err := New([]Definition{{Name: "checkout_success", Expr: `orders_ok_ratio{service="checkout"}`, Target: 0.95, Direction: "above",
		Interval: 15 * time.Minute, Horizon: 6 * time.Hour, Step: 5 * time.Minute, History: 48 * time.Hour, Seasonality: "none",
		Labels: map[string]string{"service": "checkout"}, ImpactExpr: `(1 - orders_ok_ratio) * 1000`}},
		query.NewEngine(db, nil), db, mgr, &Options{Now: clk.now, ExternalURL: "http://tsdb.example"})
	require.NoError(t, err)

	var warnedAt, breachedAt time.Time
	var predicted, breach string
	for at := t0.Add(-time.Hour); at.Before(t0.Add(6 * time.Hour)); at = at.Add(15 * time.Minute) {
		clk.set(at)
		ev, err := eng.Evaluate(ctx, "default", "checkout_success")
		require.NoError(t, err)
		t.Logf("%s v=%.4f p=%.3f model=%s eta=%v tr=%s", at.Format("15:04"), ev.Value, ev.Probability, ev.Model, ev.ETA, ev.Transition)
		switch ev.Transition {
		case "warn":
			warnedAt, predicted = at, ev.Incident
			require.NotNil(t, ev.ETA)
		case "breach":
			breachedAt, breach = at, ev.Incident
		case "cancel":
			t.Fatalf("cancelled at %s: %+v", at, ev)
		}
	}
	require.False(t, warnedAt.IsZero(), "a predicted breach was raised")
	require.False(t, breachedAt.IsZero(), "the real breach was seen")
	lead := breachedAt.Sub(warnedAt)
	require.GreaterOrEqual(t, lead, time.Hour, "warned %s ahead", lead)

	inc, ok := mgr.Incident("default", predicted)
	require.True(t, ok)
	require.Equal(t, "predicted_breach", inc.Kind)
	require.Equal(t, itsm.StatusResolved, inc.Status, "superseded by the real breach")
	require.Equal(t, "checkout", inc.CI)
	require.Equal(t, "P2", inc.Priority, "medium urgency × high impact")
	require.Contains(t, inc.Title, "predicted to fall below 0.95 around")
	for _, k := range []string{"eta", "breach_probability", "model", "impact", "time_to_breach"} {
		require.Contains(t, inc.Details, k)
	}
	require.Equal(t, "http://tsdb.example/api/v1/kpis/checkout_success/chart.svg", inc.Links["forecast_chart"])
	require.Len(t, inc.ProbableCauses, 1, "only alerts on the KPI's CIs")
	require.Equal(t, "PaymentGatewaySlow", inc.ProbableCauses[0].Alertname)
	require.Contains(t, inc.Timeline[len(inc.Timeline)-1].Detail, "became a real breach: "+breach)

	// Past the target, the KPI names its open breach incident and no
	// longer expects a breach.
	last, _, err := eng.Last("default", "checkout_success")
	require.NoError(t, err)
	require.Equal(t, StateBreached, last.State)
	require.Nil(t, last.ETA, "a breach that happened is not expected")
	require.Empty(t, last.TimeToBreach)
	require.Equal(t, breach, last.Incident)
	defs := eng.Definitions("default")
	require.Equal(t, breach, defs[0]["incident"])
	require.Empty(t, defs[0]["warnings"], "the KPI's labels match CI checkout")

	real, ok := mgr.Incident("default", breach)
	require.True(t, ok)
	require.Equal(t, "kpi_breach", real.Kind)
	require.Equal(t, "P1", real.Priority)
	require.Equal(t, itsm.StatusOpen, real.Status)

	// The outputs are ordinary series.
	q := query.NewEngine(db, nil)
	for _, expr := range []string{`kpi_breach_probability{kpi="checkout_success"}`, `kpi_forecast{kpi="checkout_success",bound="lower",horizon="6h"}`,
		`kpi_model_mae{kpi="checkout_success",model="holt"}`, `kpi_state{kpi="checkout_success",service="checkout"} == 2`, `kpi_impact`} {
		res, err := q.Instant(ctx, "default", expr, clk.now().UnixMilli())
		require.NoError(t, err)
		require.Len(t, res.Series, 1, expr)
	}

	// The chart has history, bands, the target and the ETA.
	ev, d, err := eng.Last("default", "checkout_success")
	require.NoError(t, err)
	svg := string(Chart(d, ev))
	require.True(t, strings.HasPrefix(svg, "<svg"))
	require.Contains(t, svg, "target 0.95")
	require.Equal(t, 2, strings.Count(svg, "<path"), "80% and 95% bands")

	// Back on target: the breach incident resolves.
	var b2 storage.Batch
	b2.Add(labels.FromStrings("__name__", "orders_ok_ratio", "service", "checkout"), storage.Sample{T: t0.Add(6*time.Hour + time.Minute).UnixMilli(), V: 0.99})
	require.NoError(t, db.Write(ctx, "default", &b2))
	clk.set(t0.Add(6*time.Hour + 2*time.Minute))
	ev, err = eng.Evaluate(ctx, "default", "checkout_success")
	require.NoError(t, err)
	require.Equal(t, "recover", ev.Transition)
	require.Empty(t, ev.Incident, "none open")
	real, _ = mgr.Incident("default", breach)
	require.Equal(t, itsm.StatusResolved, real.Status)
}

// TestAsOf evaluates a KPI and forecasts it as of past times: each sees
// only the history up to its time (the same answer as a database that
// holds nothing later), and nothing is written or raised.
func TestAsOf(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	write := func(db storage.Writer, until time.Time) {
		var b storage.Batch
		var smp []storage.Sample
		for at := t0.Add(-48 * time.Hour); !at.After(until); at = at.Add(time.Minute) {
			smp = append(smp, storage.Sample{T: at.UnixMilli(), V: orders(t0, at)})
		}
		b.Add(labels.FromStrings("__name__", "orders_ok_ratio", "service", "checkout"), smp...)
		require.NoError(t, db.Write(ctx, "default", &b))
	}
	all, past := st.Open(t, nil), st.Open(t, nil)
	write(all, t0.Add(6*time.Hour))
	write(past, t0.Add(2*time.Hour))

	def := Definition{Name: "checkout_success", Expr: `orders_ok_ratio{service="checkout"}`, Target: 0.95, Direction: "above",
		Interval: 15 * time.Minute, Horizon: 6 * time.Hour, Step: 5 * time.Minute, History: 24 * time.Hour, Seasonality: "none"}
	now := func() time.Time { return t0.Add(6 * time.Hour) }
	eng, err := New([]Definition{def}, query.NewEngine(all, nil), all, nil, &Options{Now: now})
	require.NoError(t, err)
	// As of t0+2h, with four more hours recorded, the forecast is the
	// one a database holding nothing later would have given then.
	at := t0.Add(2 * time.Hour)
	engPast, err := New([]Definition{def}, query.NewEngine(past, nil), past, nil, &Options{Now: func() time.Time { return at }})
	require.NoError(t, err)
	adhoc := def
	adhoc.Interval = 0
	got, err := eng.Forecast(ctx, adhoc, at)
	require.NoError(t, err)
	want, err := engPast.Forecast(ctx, adhoc, time.Time{})
	require.NoError(t, err)
	require.Equal(t, at, got.At)
	require.Equal(t, want.Value, got.Value)
	require.Equal(t, want.Model, got.Model)
	require.Equal(t, want.Probability, got.Probability)
	require.Equal(t, want.Forecast, got.Forecast)
	require.Equal(t, want.History, got.History)

	for _, c := range []struct {
		at    time.Duration
		state State
	}{{-2 * time.Hour, StateOK}, {2 * time.Hour, StateWarning}, {5 * time.Hour, StateBreached}} {
		ev, d, err := eng.EvaluateAt(ctx, "default", "checkout_success", t0.Add(c.at))
		require.NoError(t, err)
		require.Equal(t, "checkout_success", d.Name)
		require.Equal(t, c.state, ev.State, "as of t0%+v: p=%.3f v=%.4f", c.at, ev.Probability, ev.Value)
		require.Equal(t, t0.Add(c.at), ev.At)
		require.LessOrEqual(t, ev.History[len(ev.History)-1].T, t0.Add(c.at).UnixMilli())
	}
	last, _, err := eng.Last("default", "checkout_success")
	require.NoError(t, err)
	require.Nil(t, last, "an as-of evaluation is not the live one")
	res, err := query.NewEngine(all, nil).Instant(ctx, "default", `kpi_value`, now().UnixMilli())
	require.NoError(t, err)
	require.Empty(t, res.Series, "nothing written")
	_, _, err = eng.EvaluateAt(ctx, "default", "nope", at)
	require.ErrorIs(t, err, ErrUnknown)
}

// TestBacktest replays the checkout KPI over a day that drifts to a
// breach: one warning, hours ahead, no false one, nothing missed, and
// nothing written.
func TestBacktest(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	db := checkoutOrders(t, t0)
	eng, err := New([]Definition{{Name: "checkout_success", Expr: `orders_ok_ratio{service="checkout"}`, Target: 0.95, Direction: "above",
		Interval: 15 * time.Minute, Horizon: 6 * time.Hour, Step: 5 * time.Minute, History: 24 * time.Hour, Seasonality: "none"}},
		query.NewEngine(db, nil), db, nil, &Options{Now: func() time.Time { return t0.Add(6 * time.Hour) }})
	require.NoError(t, err)
	r, err := eng.Backtest(ctx, "default", "checkout_success", t0.Add(-12*time.Hour), t0.Add(6*time.Hour))
	require.NoError(t, err)
	t.Logf("%+v", r.Warnings)
	require.Equal(t, 73, r.Evaluations)
	require.Zero(t, r.Failed)
	require.Len(t, r.Breaches, 1)
	require.Empty(t, r.Missed)
	require.Len(t, r.Warnings, 1)
	require.False(t, r.Warnings[0].False)
	require.GreaterOrEqual(t, r.Warnings[0].Lead, time.Hour)
	require.Equal(t, r.Warnings[0].Lead, r.MedianLead)
	res, err := query.NewEngine(db, nil).Instant(ctx, "default", `kpi_value`, t0.Add(6*time.Hour).UnixMilli())
	require.NoError(t, err)
	require.Empty(t, res.Series, "nothing written")
}
