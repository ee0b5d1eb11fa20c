package kpi

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestBreakdownAddsUp checks on random parts that the effects of a
// ratio's and a sum's parts add up exactly to the KPI's change.
func TestBreakdownAddsUp(t *testing.T) {
	n0 := map[string]float64{"kr": 990, "us": 1980, "jp": 495}
	n1 := map[string]float64{"kr": 900, "us": 2100, "de": 100}
	d0 := map[string]float64{"kr": 1000, "us": 2000, "jp": 500}
	d1 := map[string]float64{"kr": 1000, "us": 2120, "de": 101}
	for _, s := range []shape{{k: 100, den: &metricsql.AggrFuncExpr{}}, {k: 1}} {
		ratio := s.den != nil
		cs, before, now, ok := breakdown(s, "shop", n0, n1, d0, d1)
		require.True(t, ok)
		sum := 0.0
		for _, c := range cs {
			sum += c.Effect
		}
		require.InDelta(t, now-before, sum, 1e-9, "the effects add up to the change")
		if !ratio {
			require.InDelta(t, 3465, before, 1e-9)
			require.InDelta(t, 3100, now, 1e-9)
			continue
		}
		require.InDelta(t, 100*3465.0/3500, before, 1e-9)
		require.InDelta(t, 100*3100.0/3221, now, 1e-9)
		for _, c := range cs {
			switch c.Value {
			case "jp": // gone: it had 99%, the old rate, so losing it moves nothing
				require.Nil(t, c.Now)
				require.InDelta(t, 0, c.Effect, 1e-9)
			case "de": // new: no baseline of its own
				require.Nil(t, c.Before)
			case "kr":
				require.InDelta(t, 90, *c.Now, 1e-9)
				require.Less(t, c.Effect, -2.0, "kr's drop is most of it")
			}
		}
	}
	_, _, _, ok := breakdown(shape{k: 1, den: &metricsql.AggrFuncExpr{}}, "shop", n0, n1, d0, map[string]float64{})
	require.False(t, ok, "no denominator now: no ratio")
}

// TestContributors runs a ratio KPI recorded once an hour over three
// shops, of which one (kr) starts failing orders: the warning's incident
// names shop kr as what moves the number, with most of the change, and
// carries the runbook and the suggested actions; the other shops are not
// named. A plain sum is broken down too, and an expression that is
// neither is not.
func TestContributors(t *testing.T) {
	db := st.Open(t, nil)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	shops := []struct {
		shop, region string
		volume, rate float64
	}{{"kr", "asia", 1000, 0.995}, {"us", "america", 2000, 0.994}, {"jp", "asia", 500, 0.993}}
	var b storage.Batch
	for _, s := range shops {
		var done, total []storage.Sample
		for at := t0.Add(-72 * time.Hour); !at.After(t0.Add(12 * time.Hour)); at = at.Add(time.Hour) {
			h := at.Sub(t0).Hours()
			vol := s.volume * (1 + 0.05*math.Sin(h))
			rate := s.rate + 0.0005*math.Sin(1.7*h)
			if s.shop == "kr" && h > 0 {
				rate -= 0.01 * h // one point less per hour
			}
			done = append(done, storage.Sample{T: at.UnixMilli(), V: math.Round(vol * rate)})
			total = append(total, storage.Sample{T: at.UnixMilli(), V: math.Round(vol)})
		}
		b.Add(labels.FromStrings("__name__", "orders_completed", "shop", s.shop, "region", s.region), done...)
		b.Add(labels.FromStrings("__name__", "orders_total", "shop", s.shop, "region", s.region), total...)
	}
	require.NoError(t, db.Write(ctx, "default", &b))

	clk := &clock{t: t0}
	mgr, err := itsm.New(itsm.Config{}, db, nil, clk.now)
	require.NoError(t, err)
	defer mgr.Close()
	def := Definition{Name: "orders_completed_ratio", Expr: `sum(orders_completed) / sum(orders_total)`, Target: 0.98, Direction: "above",
		Interval: time.Hour, Step: time.Hour, Horizon: 12 * time.Hour, History: 72 * time.Hour, Seasonality: "none",
		RunbookURL: "https://wiki.example/runbooks/orders", Actions: []string{"check the payment gateway of the failing shop", "page the shop's owner"}}
	eng, err := New([]Definition{def}, query.NewEngine(db, nil), db, mgr, &Options{Now: clk.now})
	require.NoError(t, err)

	w, _ := eng.Definitions("default")[0]["warnings"].([]string)
	require.Len(t, w, 1)
	require.Contains(t, w[0], "match no CI")

	var warned *Evaluation
	for at := t0.Add(30 * time.Minute); at.Before(t0.Add(8 * time.Hour)); at = at.Add(time.Hour) {
		clk.set(at)
		ev, err := eng.Evaluate(ctx, "default", def.Name)
		require.NoError(t, err)
		t.Logf("%s v=%.4f p=%.3f state=%s tr=%s", at.Format("15:04"), ev.Value, ev.Probability, ev.State, ev.Transition)
		if ev.State == StateOK {
			require.Nil(t, ev.Contributors, "no breakdown while the KPI is not at risk")
		}
		if ev.Transition == "warn" {
			warned = ev
			break
		}
	}
	require.NotNil(t, warned, "the drop was foreseen")
	c := warned.Contributors
	require.NotNil(t, c)
	require.NotEmpty(t, c.Top)
	require.Less(t, c.Now, c.Before)
	var kr *Contributor
	for i, x := range c.Top {
		require.NotContains(t, []string{"us", "jp", "america"}, x.Value, "only what moved the KPI down: %+v", x)
		if x.Label == "shop" && x.Value == "kr" {
			kr = &c.Top[i]
		}
	}
	require.NotNil(t, kr, "shop kr named: %+v", c.Top)
	require.Greater(t, kr.Share, 0.8, "kr explains most of the change")
	require.Less(t, *kr.Now, *kr.Before)

	inc, ok := mgr.Incident("default", warned.Incident)
	require.True(t, ok)
	require.Equal(t, "https://wiki.example/runbooks/orders", inc.Links["runbook"])
	require.Equal(t, def.Actions, inc.Details["suggested_actions"])
	top, ok := inc.Details["contributors"].([]Contributor)
	require.True(t, ok, "%T", inc.Details["contributors"])
	require.Equal(t, c.Top, top)

	// A sum: the errors of one shop rise.
	adhoc := Definition{Name: "adhoc", Expr: `sum(orders_total) - sum(orders_completed)`, Target: 100, Direction: "below", Step: time.Hour, History: 72 * time.Hour, Horizon: 12 * time.Hour}
	ev, err := eng.Forecast(ctx, adhoc, t0.Add(6*time.Hour+30*time.Minute))
	require.NoError(t, err)
	require.Nil(t, ev.Contributors, "a difference of sums is neither a sum nor a ratio")
	adhoc.Expr = `sum(orders_total)`
	adhoc.Target = 3000
	ev, err = eng.Forecast(ctx, adhoc, t0.Add(6*time.Hour+30*time.Minute))
	require.NoError(t, err)
	require.True(t, ev.Value > 3000)
	require.NotNil(t, ev.Contributors, "on the wrong side: broken down")
	for _, c := range ev.Contributors.Top {
		require.Greater(t, c.Effect, 0.0, "a KPI that must stay below: only what raised it")
	}
}

func TestShapeOf(t *testing.T) {
	for expr, want := range map[string]bool{
		`sum(a)`:                              true,
		`sum by (x) (a)`:                      true,
		`sum(rate(a[5m])) / sum(rate(b[5m]))`: true,
		`100 * sum(a) / sum(b)`:               true,
		`sum(a) / sum(b) * 100`:               true,
		`a`:                                   false,
		`avg(a)`:                              false,
		`sum(a) - sum(b)`:                     false,
		`sum(a) / b`:                          false,
		`sum(a) limit 3`:                      false,
	} {
		_, ok := shapeOf(expr)
		require.Equal(t, want, ok, expr)
	}
}
