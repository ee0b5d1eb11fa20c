package api

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// FuzzHandlers feeds arbitrary query strings (and the same as a form body)
// to every read endpoint: none may panic, and every answer is a valid
// status with the Prometheus envelope for errors.
func FuzzHandlers(f *testing.F) {
	a := newTestAPI(f, time.Unix(1_700_000_000, 0))
	handlers := []func(*fasthttp.RequestCtx){a.Query, a.QueryRange, a.Series, a.Labels, a.Export, a.Metadata,
		a.QueryExemplars, a.FormatQuery, a.TSDBStatus, a.BuildInfo,
		func(ctx *fasthttp.RequestCtx) { a.LabelValues(ctx, "job") }, func(ctx *fasthttp.RequestCtx) { a.LabelValues(ctx, "\xff") }}
	for _, s := range []string{
		"query=up", "query=rate(http_requests_total[5m])&time=1700000000", "query=up&start=0&end=1700000000&step=15",
		"match[]=up&start=-1e308&end=1e308", "query=up&step=0", "query=up&timeout=-1s", "query=%zz", "limit=-5&match[]={job=~\".*\"}",
		"query=sum by(%20)(up)&time=NaN", "query=up@end()&time=2023-11-14T22:13:20Z", "start=1&end=0&step=1e-300&query=up",
	} {
		f.Add(uint8(0), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		h := handlers[int(which)%len(handlers)]
		for _, post := range []bool{false, true} {
			var ctx fasthttp.RequestCtx
			if post {
				ctx.Request.Header.SetMethod("POST")
				ctx.Request.Header.SetContentType("application/x-www-form-urlencoded")
				ctx.Request.SetBodyString(raw)
				ctx.Request.SetRequestURI("/api/v1/x")
			} else {
				ctx.Request.SetRequestURI("/api/v1/x?" + raw)
			}
			h(&ctx)
			if code := ctx.Response.StatusCode(); code < 200 || code > 599 {
				t.Fatalf("status %d for %q", code, raw)
			}
		}
	})
}
