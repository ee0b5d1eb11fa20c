package web

import (
	"context"
	"encoding/json"
	"math"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/alerting/kpi"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// FuzzKPIAPI sends arbitrary parameters to the KPI endpoints and the ad-hoc
// forecast (query, target, horizon, step, history, …) over two days of
// data: none may panic or run away, and every refusal says why.
func FuzzKPIAPI(f *testing.F) {
	db := st.Open(f, nil)
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var b storage.Batch
	var smp []storage.Sample
	for at := t0.Add(-48 * time.Hour); !at.After(t0); at = at.Add(5 * time.Minute) {
		smp = append(smp, storage.Sample{T: at.UnixMilli(), V: 0.99 - 0.01*math.Sin(float64(at.Unix())/3600)})
	}
	b.Add(labels.FromStrings("__name__", "orders_ok_ratio", "service", "checkout"), smp...)
	if err := db.Write(context.Background(), "default", &b); err != nil {
		f.Fatal(err)
	}
	eng, err := kpi.New([]kpi.Definition{{Name: "checkout_success", Expr: `orders_ok_ratio{service="checkout"}`, Target: 0.95, Direction: "above",
		Interval: 15 * time.Minute, Horizon: 6 * time.Hour, Step: 5 * time.Minute, History: 24 * time.Hour, Seasonality: "none"}},
		query.NewEngine(db, nil), db, nil, &kpi.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := eng.Evaluate(context.Background(), "default", "checkout_success"); err != nil {
		f.Fatal(err)
	}
	a := New(Deps{Reader: db, Engine: query.NewEngine(db, nil), KPIs: eng})
	paths := []string{"/api/v1/forecast", "/api/v1/kpis", "/api/v1/kpis/checkout_success", "/api/v1/kpis/checkout_success/chart.svg", "/api/v1/kpis/x/chart.svg"}
	for _, q := range []string{
		"query=orders_ok_ratio&target=0.95&direction=above&horizon=6h&step=5m&history=1d",
		"query=orders_ok_ratio&target=NaN&direction=below&horizon=1y&step=1s&history=100y",
		"query=sum(&target=1", "query=orders_ok_ratio&target=1e308&seasonality=daily&step=1ms",
		"query=orders_ok_ratio&target=-Inf&horizon=-5m&history=%zz",
	} {
		for i := range paths {
			f.Add(uint8(i), false, q)
		}
		f.Add(uint8(0), true, q)
	}
	f.Fuzz(func(t *testing.T, which uint8, post bool, raw string) {
		path := paths[int(which)%len(paths)]
		var ctx fasthttp.RequestCtx
		if post {
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.Header.SetContentType("application/x-www-form-urlencoded")
			ctx.Request.SetBodyString(raw)
			ctx.Request.SetRequestURI(path)
		} else {
			ctx.Request.SetRequestURI(path + "?" + raw)
		}
		start := time.Now()
		a.Handler(&ctx)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s took %s for %q", path, d, raw)
		}
		code := ctx.Response.StatusCode()
		if code < 200 || code > 599 || (code >= 400 && len(ctx.Response.Body()) == 0) {
			t.Fatalf("status %d (body %q) for %s %q", code, ctx.Response.Body(), path, raw)
		}
	})
}

// TestKPIAsOf asks /api/v1/forecast and /api/v1/kpis/{name} with time=:
// an hourly KPI that is fine until t0 and then falls by 0.005/h is
// forecast as it was before the fall and as it was during it.
func TestKPIAsOf(t *testing.T) {
	db := st.Open(t, nil)
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	now := t0.Add(12 * time.Hour)
	var b storage.Batch
	var smp []storage.Sample
	for at := t0.Add(-14 * 24 * time.Hour); !at.After(now); at = at.Add(time.Hour) {
		v := 0.99 + 0.002*math.Sin(float64(at.Unix())/7200)
		if d := at.Sub(t0); d > 0 {
			v -= 0.005 * d.Hours()
		}
		smp = append(smp, storage.Sample{T: at.UnixMilli(), V: v})
	}
	b.Add(labels.FromStrings("__name__", "orders_completed_ratio", "shop", "kr"), smp...)
	require.NoError(t, db.Write(context.Background(), "default", &b))
	eng, err := kpi.New([]kpi.Definition{{Name: "orders", Expr: `orders_completed_ratio{shop="kr"}`, Target: 0.95, Direction: "above",
		Interval: time.Hour, Horizon: 12 * time.Hour, Step: time.Hour, History: 14 * 24 * time.Hour, Seasonality: "none"}},
		query.NewEngine(db, nil), db, nil, &kpi.Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	a := New(Deps{Reader: db, Engine: query.NewEngine(db, nil), KPIs: eng, Now: func() time.Time { return now }})

	type eval struct {
		At          time.Time `json:"at"`
		Value       float64   `json:"value"`
		State       string    `json:"state"`
		Probability float64   `json:"breach_probability"`
		History     [][2]float64
	}
	forecast := func(at time.Time) eval {
		code, env := call(t, a, "/api/v1/forecast", false, url.Values{"query": {`orders_completed_ratio{shop="kr"}`}, "target": {"0.95"},
			"direction": {"above"}, "step": {"1h"}, "history": {"14d"}, "horizon": {"12h"}, "time": {strconv.FormatInt(at.Unix(), 10)}})
		require.Equal(t, 200, code, env.Error)
		var ev eval
		require.NoError(t, json.Unmarshal(env.Data, &ev))
		return ev
	}
	before, during := forecast(t0.Add(-30*time.Minute)), forecast(t0.Add(5*time.Hour+30*time.Minute))
	require.Equal(t, t0.Add(-30*time.Minute), before.At.UTC())
	require.Less(t, before.Probability, 0.5, "before the fall")
	require.Greater(t, during.Probability, 0.8, "during the fall")
	require.InDelta(t, 0.965, during.Value, 0.003, "the value at 17:00, not the later ones")

	get := func(at string) (int, map[string]json.RawMessage) {
		code, env := call(t, a, "/api/v1/kpis/orders", false, url.Values{"time": {at}})
		var out map[string]json.RawMessage
		if code == 200 {
			require.NoError(t, json.Unmarshal(env.Data, &out))
		}
		return code, out
	}
	code, out := get(t0.Add(6 * time.Hour).Format(time.RFC3339))
	require.Equal(t, 200, code)
	var ev eval
	require.NoError(t, json.Unmarshal(out["as_of"], &ev))
	require.Equal(t, "predicted_breach", ev.State)
	require.NotEmpty(t, ev.History)
	require.LessOrEqual(t, ev.History[len(ev.History)-1][0], float64(t0.Add(6*time.Hour).Unix()))
	code, out = get(t0.Add(-time.Hour).Format(time.RFC3339))
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal(out["as_of"], &ev))
	require.Equal(t, "ok", ev.State)
	code, _ = get("yesterday")
	require.Equal(t, 400, code)
	code, _ = call(t, a, "/api/v1/kpis/nope", false, url.Values{"time": {"1700000000"}})
	require.Equal(t, 404, code)
}
