package web

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
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
