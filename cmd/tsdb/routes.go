package main

import (
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/alerting/kpi"
	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/ingest/influx"
	"github.com/emsdb/tsdb/internal/apijson"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/console"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/query/api"
)

// routes are the handlers the router dispatches to.
type routes struct {
	remoteWrite  fasthttp.RequestHandler
	export       fasthttp.RequestHandler
	deleteSeries fasthttp.RequestHandler
	snapshot     fasthttp.RequestHandler
	metrics      fasthttp.RequestHandler
	ready        func() bool
	api          *api.API
	influx       *influx.Handler
	ruler        *ruler.Ruler
	store        ruler.Store
	itsm         *itsm.Manager
	kpis         *kpi.Engine
	auth         *atomic.Pointer[auth.Authenticator] // holds nil: no authentication
	mem          *memoryGuard                        // nil: no memory budget
	reload       func() (restartNeeded []string, err error)
	promImport   fasthttp.RequestHandler
	console      *console.Console
	status       fasthttp.RequestHandler // /api/v1/status/ingest
}

func metricsHandler(reg *prometheus.Registry) fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

// sheddable reports whether a request may be refused under memory
// pressure: writes and queries, not probes, metrics or admin.
func sheddable(path string) bool {
	switch endpointRole("GET", path) {
	case auth.Write:
		return true
	case auth.Read:
		return strings.HasPrefix(path, "/api/v1/query") || path == "/api/v1/series" || path == "/api/v1/export" || kpi.IsPath(path)
	}
	return false
}

// endpointRole is the role each endpoint needs when authentication is on.
func endpointRole(method, path string) auth.Role {
	switch path {
	case "/", "/-/healthy", "/-/ready", "/ping":
		return auth.Public
	case "/api/v1/write", "/api/v1/push", "/receive", "/write", "/api/v2/write", "/api/v1/import/prometheus":
		return auth.Write
	case "/-/reload", "/api/v1/admin/tsdb/delete_series", "/api/v1/admin/tsdb/snapshot":
		return auth.Admin
	}
	read := method == fasthttp.MethodGet || method == fasthttp.MethodHead
	switch {
	case console.IsPath(path):
		return auth.Public // static assets only; the console's API calls carry credentials
	case strings.HasPrefix(path, "/debug/pprof"), strings.HasPrefix(path, "/api/v1/admin/"):
		return auth.Admin
	case strings.HasPrefix(path, "/api/v1/itsm/inbound/"):
		return auth.Public // each receiver checks its own inbound secret
	case strings.HasPrefix(path, "/config/v1/rules") || strings.HasPrefix(path, "/prometheus/config/v1/rules"):
		if read {
			return auth.Read
		}
		return auth.Admin
	case itsm.IsPath(path) && !read:
		return auth.Operator
	}
	return auth.Read
}

// rulerConfigPath matches the ruler config API (also under /prometheus,
// where Mimir serves it) and returns the part after /config/v1/rules.
func rulerConfigPath(path string) (string, bool) {
	path = strings.TrimPrefix(path, "/prometheus")
	rest, ok := strings.CutPrefix(path, "/config/v1/rules")
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false
	}
	return rest, true
}

// labelValuesPath extracts <name> from /api/v1/label/<name>/values.
func labelValuesPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/api/v1/label/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "/values")
	if !ok || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// pprofHandler serves Go's profiles under /debug/pprof/, as Prometheus
// does.
func pprofHandler() fasthttp.RequestHandler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return fasthttpadaptor.NewFastHTTPHandler(mux)
}

// newRouter dispatches by path. Every request is counted by path and code.
func newRouter(r routes, reg prometheus.Registerer) fasthttp.RequestHandler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tsdb_http_requests_total",
		Help: "HTTP requests by handler and status code.",
	}, []string{"handler", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tsdb_http_request_duration_seconds",
		Help:    "HTTP request latency by handler (queries, writes, …).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"handler"})
	reg.MustRegister(requests, duration)
	profiles := pprofHandler()
	return func(ctx *fasthttp.RequestCtx) {
		t0 := time.Now()
		path := string(ctx.Path())
		if a := r.auth.Load(); a != nil && !a.Check(ctx, endpointRole(string(ctx.Method()), path)) {
			requests.WithLabelValues("auth", strconv.Itoa(ctx.Response.StatusCode())).Inc()
			return
		}
		if r.mem.shed() && sheddable(path) {
			ctx.Response.Header.Set("Retry-After", "5")
			ctx.SetContentType("application/json")
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString(`{"status":"error","errorType":"unavailable","error":"tsdb is over its memory budget (--memory.budget-bytes); retry shortly"}` + "\n")
			requests.WithLabelValues("shed", "503").Inc()
			return
		}
		handler := path
		switch path {
		case "/api/v1/write", "/api/v1/push", "/receive":
			handler = "/api/v1/write"
			r.remoteWrite(ctx)
		case "/api/v1/export":
			r.export(ctx)
		case "/write":
			r.influx.ServeV1(ctx)
		case "/api/v2/write":
			r.influx.ServeV2(ctx)
		case "/ping":
			r.influx.Ping(ctx)
		case "/api/v1/import/prometheus":
			r.promImport(ctx)
		case "/api/v1/query":
			r.api.Query(ctx)
		case "/api/v1/query_range":
			r.api.QueryRange(ctx)
		case "/api/v1/series":
			r.api.Series(ctx)
		case "/api/v1/labels":
			r.api.Labels(ctx)
		case "/api/v1/metadata":
			r.api.Metadata(ctx)
		case "/api/v1/query_exemplars":
			r.api.QueryExemplars(ctx)
		case "/api/v1/status/buildinfo":
			r.api.BuildInfo(ctx)
		case "/api/v1/status/tsdb":
			r.api.TSDBStatus(ctx)
		case "/api/v1/status/ingest":
			r.status(ctx)
		case "/api/v1/status/whoami":
			whoami(ctx, r.auth.Load() != nil)
		case "/api/v1/format_query":
			r.api.FormatQuery(ctx)
		case "/api/v1/rules":
			r.ruler.RulesHandler(ctx)
		case "/api/v1/alerts":
			r.ruler.AlertsHandler(ctx)
		case "/api/v1/alerts/history":
			r.ruler.HistoryHandler(ctx)
		case "/-/reload":
			if !ctx.IsPost() && !ctx.IsPut() {
				ctx.Error("reload needs POST\n", fasthttp.StatusMethodNotAllowed)
			} else if restart, err := r.reload(); err != nil {
				ctx.Error("failed to reload config: "+err.Error()+"\n", fasthttp.StatusInternalServerError)
			} else if len(restart) > 0 {
				ctx.SetContentType("text/plain; charset=utf-8")
				ctx.SetBodyString("reloaded rules, auth and limits; changed sections that need a restart: " + strings.Join(restart, ", ") + "\n")
			}
		case "/api/v1/admin/tsdb/delete_series":
			r.deleteSeries(ctx)
		case "/api/v1/admin/tsdb/snapshot":
			r.snapshot(ctx)
		case "/metrics":
			r.metrics(ctx)
		case "/-/healthy":
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString("Healthy.\n")
		case "/-/ready":
			ctx.SetContentType("text/plain; charset=utf-8")
			if r.ready() {
				ctx.SetBodyString("Ready.\n")
			} else {
				ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
				ctx.SetBodyString("Shutting down.\n")
			}
		case "/":
			if strings.Contains(string(ctx.Request.Header.Peek("Accept")), "text/html") {
				ctx.Redirect(console.Prefix, fasthttp.StatusFound)
				break
			}
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString("tsdb: a Prometheus-compatible time-series database.\nEndpoints: /api/v1/write /write /api/v2/write /api/v1/import/prometheus /api/v1/query /api/v1/query_range /api/v1/series /api/v1/labels /api/v1/export /metrics /-/healthy /-/ready; the web console is at /console/\n")
		default:
			handler = "other"
			if itsm.IsPath(path) {
				handler = "/api/v1/itsm"
				if r.itsm == nil {
					ctx.SetStatusCode(fasthttp.StatusNotFound)
					ctx.SetContentType("application/json")
					ctx.SetBodyString(`{"status":"error","errorType":"not_found","error":"ITSM is not configured (itsm: in --config.file)"}` + "\n")
				} else {
					r.itsm.Handler(ctx, path)
				}
			} else if rest, ok := strings.CutPrefix(path, "/api/v1/admin/tsdb/snapshots/"); ok {
				handler = "/api/v1/admin/tsdb/snapshots"
				r.api.Snapshots(ctx, rest)
			} else if kpi.IsPath(path) {
				handler = "/api/v1/kpis"
				if r.kpis == nil {
					ctx.SetStatusCode(fasthttp.StatusNotFound)
					ctx.SetContentType("application/json")
					ctx.SetBodyString(`{"status":"error","errorType":"not_found","error":"no KPIs are configured (kpis: in --config.file)"}` + "\n")
				} else {
					r.kpis.Handler(ctx, path)
				}
			} else if rest, ok := rulerConfigPath(path); ok {
				handler = "/config/v1/rules"
				r.ruler.ConfigHandler(ctx, r.store, rest)
			} else if name, ok := labelValuesPath(path); ok {
				handler = "/api/v1/label/:name/values"
				r.api.LabelValues(ctx, name)
			} else if console.IsPath(path) {
				handler = "/console"
				r.console.Serve(ctx)
			} else if strings.HasPrefix(path, "/debug/pprof/") {
				handler = "/debug/pprof"
				profiles(ctx)
			} else if strings.HasPrefix(path, "/api/") {
				ctx.SetContentType("application/json")
				ctx.SetStatusCode(fasthttp.StatusNotFound)
				ctx.SetBodyString(`{"status":"error","errorType":"not_found","error":"unknown API endpoint ` + strings.ReplaceAll(path, `"`, `'`) + `"}` + "\n")
			} else {
				ctx.NotFound()
			}
		}
		requests.WithLabelValues(handler, strconv.Itoa(ctx.Response.StatusCode())).Inc()
		if handler != "other" {
			duration.WithLabelValues(handler).Observe(time.Since(t0).Seconds())
		}
	}
}

// whoami tells a client (the console) who it is signed in as: the user's
// roles and tenants, and the tenant this request acts for; without
// authentication, that anyone may do anything.
func whoami(ctx *fasthttp.RequestCtx, authOn bool) {
	out := map[string]any{"auth": authOn, "tenant": string(ctx.Request.Header.Peek(tenancy.Header))}
	if t, err := tenancy.FromRequest(ctx); err == nil {
		out["tenant"] = t
	}
	if u := auth.Current(ctx); u != nil {
		out["user"], out["roles"], out["tenants"] = u.Name, u.Roles, u.Tenants
	} else {
		out["user"], out["roles"], out["tenants"] = "", []auth.Role{auth.Admin}, []string{"*"}
	}
	apijson.Reply(ctx, fasthttp.StatusOK, out)
}
