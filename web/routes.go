package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/alerting/kpi"
	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/internal/audit"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/console"
	"github.com/emsdb/tsdb/internal/metering"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// Ingest are the ingest protocols' own handlers (they decode their
// bodies and answer as their protocol expects).
type Ingest struct {
	RemoteWrite fasthttp.RequestHandler // /api/v1/write, /api/v1/push, /receive
	// SenderDone, when set, learns of each remote-write and OTLP request
	// once it has been answered: who sent it and how it went.
	SenderDone       func(SenderSeen)
	InfluxV1         fasthttp.RequestHandler // /write
	InfluxV2         fasthttp.RequestHandler // /api/v2/write
	InfluxPing       fasthttp.RequestHandler // /ping
	PrometheusImport fasthttp.RequestHandler // /api/v1/import/prometheus
	JSONImport       fasthttp.RequestHandler // /api/v1/import (JSON lines, what /api/v1/export writes)
	OTLP             fasthttp.RequestHandler // /api/v1/otlp/v1/metrics
}

// Deps is everything the API serves. Reader, Engine, Ruler, Ingest,
// Gatherer and Ready are required; a nil component turns its endpoints
// into 404s (ITSM, KPIs) or 503s (admin).
type Deps struct {
	Reader storage.Reader
	Engine query.Evaluator
	// Cache keeps range-query results between dashboard refreshes; nil
	// turns it off. nocache=1 bypasses it per request.
	Cache *query.ResultCache
	// Admin is storage for the admin endpoints; nil while the admin API
	// is off (--web.enable-admin-api).
	Admin       Admin
	SnapshotDir string
	Ruler       *ruler.Ruler
	RuleStore   ruler.Store
	ITSM        *itsm.Manager // nil: not configured
	// Leader, in a cluster, says where the leader-only APIs are served
	// (ITSM, KPIs, the rules' and alerts' state): "" on the leader, which
	// serves them itself, elsewhere the leader's base URL, to which the
	// request is forwarded (method, path, query, body and headers), or
	// an error wrapping storage.ErrUnavailable while no leader is known
	// (503 with Retry-After). Nil: always here (a single node).
	Leader func(ctx context.Context) (url string, err error)
	// Node names this node in the ForwardedByHeader of the requests it
	// forwards to the leader.
	Node   string
	KPIs   *kpi.Engine // nil: not configured
	Ingest Ingest
	// IngestStatus is the request tenant's ingest status (rates, sources).
	IngestStatus func(tenant string) any
	// Usage meters each tenant's usage: the API counts its queries into
	// it and reports it (/api/v1/usage); nil counts nothing and turns the
	// report into a 404.
	Usage   *metering.Meter
	Console *console.Console
	// Auth returns the authenticator, nil while authentication is off.
	Auth func() *auth.Authenticator
	// Shedding reports whether tsdb is over its memory budget; nil never.
	Shedding func() bool
	// Ready returns why tsdb cannot serve now (shutting down, storage
	// refusing writes on a full disk…), or nil when it can: /-/ready
	// answers 503 with the reason, so that a load balancer or orchestrator
	// stops sending writes. Nil: always ready.
	Ready func() error
	// Reload re-reads the configuration; it returns the changed sections
	// that need a restart.
	Reload func() (restartNeeded []string, err error)
	// Audit is the audit log the change routes record into; nil keeps
	// none (GET /api/v1/audit answers 404).
	Audit      *audit.Log
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
	// QueryTimeout caps one query; a request's timeout parameter may only
	// shorten it. Default 2m.
	QueryTimeout time.Duration
	// MaxConcurrentQueries bounds queries running at once; others wait
	// for a slot until their timeout. 0 means no bound.
	MaxConcurrentQueries int
	// TenantQueryLimit, when set, bounds each tenant's concurrent queries
	// (0: no bound); a query over it is refused with 429.
	TenantQueryLimit func(tenant string) int
	Version          string
	// Status feeds /api/v1/status/flags, config and runtimeinfo.
	Status Status
	// Cluster, in cluster mode, serves /api/v1/status/cluster and the
	// internal read API of the nodes (/internal/v1/...); nil: 404s.
	Cluster Cluster
}

// Cluster is what a node of a cluster serves besides the API
// (docs/cluster.md). Its methods are safe for concurrent use.
type Cluster interface {
	// Status describes the cluster: nodes, zones, partitions, their
	// owners and lag.
	Status(ctx context.Context) (any, error)
	// ServePeer answers a peer's internal request op with body, the
	// caller's credential being secret (the X-Tsdb-Cluster-Secret
	// header). It returns the answer's content type and bytes; errors
	// wrap auth.ErrBadCredentials, storage.ErrUnavailable or
	// storage.ErrInvalidSeries (a request that does not decode).
	ServePeer(ctx context.Context, op, secret string, body []byte) (contentType string, b []byte, err error)
}

// ClusterSecretHeader carries the cluster's shared secret on the nodes'
// internal requests.
const ClusterSecretHeader = "X-Tsdb-Cluster-Secret"

// API is the whole HTTP API of tsdb.
type API struct {
	router *Router
}

// New builds the API over deps.
func New(d Deps) *API {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.QueryTimeout <= 0 {
		d.QueryTimeout = 2 * time.Minute
	}
	if d.Auth == nil {
		d.Auth = func() *auth.Authenticator { return nil }
	}
	return &API{router: newRouter(routes(d), d.Auth, d.Shedding, d.Registerer, d.Audit)}
}

// Handler serves one request.
func (a *API) Handler(ctx *fasthttp.RequestCtx) { a.router.Handler(ctx) }

// routes is the route table: every endpoint tsdb serves.
func routes(d Deps) []Route {
	q := &queries{r: d.Reader, engine: d.Engine, cached: d.Engine, now: d.Now, timeout: d.QueryTimeout,
		version: d.Version, tenantLimit: d.TenantQueryLimit, running: map[string]int{}, meter: d.Usage}
	if d.Cache != nil {
		q.cached = query.NewCached(d.Engine, d.Cache)
	}
	if d.MaxConcurrentQueries > 0 {
		q.slots = make(chan struct{}, d.MaxConcurrentQueries)
	}
	adm := &admin{store: d.Admin, snapshotDir: d.SnapshotDir, cache: d.Cache, now: d.Now, log: d.Logger}
	rl := &rules{ruler: d.Ruler, store: d.RuleStore, engine: d.Engine, now: d.Now}
	inc := &incidents{m: d.ITSM}
	fw := newForwarder(d.Leader, d.Node)
	kp := &kpis{e: d.KPIs}
	in := d.Ingest
	rw := sender(in.RemoteWrite, "remote_write", in.SenderDone)

	rs := []Route{
		// Ingest.
		{Method: "*", Path: "/api/v1/write", Role: auth.Write, Shed: ShedWrite, Raw: rw},
		{Method: "*", Path: "/api/v1/push", Role: auth.Write, Shed: ShedWrite, Name: "/api/v1/write", Raw: rw},
		{Method: "*", Path: "/receive", Role: auth.Write, Shed: ShedWrite, Name: "/api/v1/write", Raw: rw},
		{Method: "*", Path: "/write", Role: auth.Write, Shed: ShedWrite, Raw: in.InfluxV1},
		{Method: "*", Path: "/api/v2/write", Role: auth.Write, Shed: ShedWrite, Raw: in.InfluxV2},
		{Method: "*", Path: "/api/v1/import/prometheus", Role: auth.Write, Shed: ShedWrite, Raw: in.PrometheusImport},
		{Method: "*", Path: "/api/v1/import", Role: auth.Write, Shed: ShedWrite, Raw: in.JSONImport},
		{Method: "*", Path: "/api/v1/otlp/v1/metrics", Role: auth.Write, Shed: ShedWrite, Raw: sender(in.OTLP, "otlp", in.SenderDone)},
		{Method: "*", Path: "/ping", Role: auth.Public, Raw: in.InfluxPing},

		// The Prometheus query API, and VictoriaMetrics's export.
		{Method: "GET POST", Path: "/api/v1/query", Role: auth.Read, Shed: ShedQuery, API: q.query},
		{Method: "GET POST", Path: "/api/v1/query_range", Role: auth.Read, Shed: ShedQuery, API: q.queryRange},
		{Method: "GET POST", Path: "/api/v1/series", Role: auth.Read, Shed: ShedQuery, API: q.series},
		{Method: "GET POST", Path: "/api/v1/labels", Role: auth.Read, API: q.labelNames},
		{Method: "GET POST", Path: "/api/v1/label/{name}/values", Role: auth.Read, Name: "/api/v1/label/:name/values", API: q.labelValues},
		{Method: "GET POST", Path: "/api/v1/export", Role: auth.Read, Shed: ShedQuery, API: q.export(d.Logger)},
		{Method: "GET POST", Path: "/api/v1/metadata", Role: auth.Read, API: q.metadata},
		{Method: "GET POST", Path: "/api/v1/query_exemplars", Role: auth.Read, API: q.exemplars},
		{Method: "GET POST", Path: "/api/v1/format_query", Role: auth.Read, API: q.formatQuery},
		{Method: "GET", Path: "/api/v1/status/buildinfo", Role: auth.Read, API: q.buildInfo},
		{Method: "GET", Path: "/api/v1/status/tsdb", Role: auth.Read, API: q.tsdbStatus},
		{Method: "GET", Path: "/api/v1/status/ingest", Role: auth.Read, API: ingestStatus(d.IngestStatus)},
		// Usage: admins see every tenant's, others their own (see usage.go).
		{Method: "GET", Path: "/api/v1/usage", Role: auth.Read, API: usageReport(d.Usage, d.Now)},
		{Method: "GET", Path: "/api/v1/status/whoami", Role: auth.Read, API: whoami(d.Auth, d.Reader)},
		{Method: "GET", Path: "/api/v1/status/flags", Role: auth.Read, API: statusFlags(d.Status)},
		{Method: "GET", Path: "/api/v1/status/config", Role: auth.Admin, API: statusConfig(d.Status)},
		{Method: "GET", Path: "/api/v1/status/runtimeinfo", Role: auth.Read, API: statusRuntime(d.Status)},

		// Rules and alerts.
		{Method: "GET POST", Path: "/api/v1/rules", Role: auth.Read, API: fw.wrap(rl.on(rl.rulesList))},
		{Method: "GET POST", Path: "/api/v1/alerts", Role: auth.Read, API: fw.wrap(rl.on(rl.alerts))},
		{Method: "GET", Path: "/api/v1/alerts/history", Role: auth.Read, API: rl.on(rl.alertHistory)},

		// Admin.
		{Method: "POST PUT", Path: "/api/v1/admin/tsdb/delete_series", Role: auth.Admin, API: adm.deleteSeries, Audit: auditDeleteSeries},
		{Method: "POST PUT", Path: "/api/v1/admin/tsdb/snapshot", Role: auth.Admin, API: adm.snapshot, Audit: auditSnapshot},
		{Method: "GET", Path: "/api/v1/admin/tsdb/snapshots", Role: auth.Admin, API: adm.snapshots},
		{Method: "GET", Path: "/api/v1/admin/tsdb/snapshots/{name}", Role: auth.Admin, Name: "/api/v1/admin/tsdb/snapshots", API: adm.snapshotFiles},
		{Method: "DELETE", Path: "/api/v1/admin/tsdb/snapshots/{name}", Role: auth.Admin, Name: "/api/v1/admin/tsdb/snapshots", API: adm.deleteSnapshot, Audit: auditDeleteSnapshot},
		{Method: "GET", Path: "/api/v1/admin/tsdb/snapshots/{name}/{path...}", Role: auth.Admin, Name: "/api/v1/admin/tsdb/snapshots", API: adm.snapshotFile},
		{Method: "POST PUT", Path: "/-/reload", Role: auth.Admin, Raw: reload(d.Reload), Audit: auditReload},
		{Method: "*", Path: "/debug/pprof/{profile...}", Role: auth.Admin, Name: "/debug/pprof", Raw: pprofHandler()},

		// ITSM: reading needs read, acting needs operator; inbound
		// webhooks check their receiver's own secret.
		{Method: "GET", Path: "/api/v1/incidents", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.list))},
		{Method: "POST", Path: "/api/v1/incidents", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.create)), Audit: auditIncidentCreate},
		{Method: "GET", Path: "/api/v1/incidents/{id}", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.get))},
		{Method: "GET", Path: "/api/v1/incidents/{id}/report", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.report))},
		{Method: "POST", Path: "/api/v1/incidents/{id}/{action}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.action)), Audit: auditIncidentAction},
		{Method: "GET", Path: "/api/v1/problems", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.problems))},
		{Method: "POST", Path: "/api/v1/problems", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.registerProblem)), Audit: auditProblem},
		{Method: "POST", Path: "/api/v1/problems/{id}/{action}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.problemAction)), Audit: auditProblem},
		{Method: "GET", Path: "/api/v1/groups", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.groups))},
		{Method: "POST", Path: "/api/v1/groups/{name}/members", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.addMember)), Audit: auditMember(true)},
		{Method: "DELETE", Path: "/api/v1/groups/{name}/members/{member}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.removeMember)), Audit: auditMember(false)},
		{Method: "GET", Path: "/api/v1/maintenance", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.maintenance))},
		{Method: "POST", Path: "/api/v1/maintenance", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.createWindow)), Audit: auditWindow("created")},
		{Method: "PUT", Path: "/api/v1/maintenance/{name}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.changeWindow)), Audit: auditWindow("changed")},
		{Method: "DELETE", Path: "/api/v1/maintenance/{name}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.deleteWindow)), Audit: auditWindow("deleted")},
		{Method: "GET", Path: "/api/v1/reports/sla", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.slaReport))},
		{Method: "GET", Path: "/api/v1/escalation_policies", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.policies))},
		{Method: "POST", Path: "/api/v1/escalation_policies", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.putPolicy)), Audit: auditSetting("policy", "create")},
		{Method: "PUT", Path: "/api/v1/escalation_policies/{name}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.putPolicy)), Audit: auditSetting("policy", "change")},
		{Method: "DELETE", Path: "/api/v1/escalation_policies/{name}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.deletePolicy)), Audit: auditSetting("policy", "delete")},
		{Method: "GET", Path: "/api/v1/reports/schedules", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.reportSchedules))},
		{Method: "POST", Path: "/api/v1/reports/schedules", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.putReportSchedule)), Audit: auditSetting("report", "create")},
		{Method: "PUT", Path: "/api/v1/reports/schedules/{name}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.putReportSchedule)), Audit: auditSetting("report", "change")},
		{Method: "DELETE", Path: "/api/v1/reports/schedules/{name}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.deleteReportSchedule)), Audit: auditSetting("report", "delete")},
		{Method: "POST", Path: "/api/v1/reports/schedules/{name}/send", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.sendReport)), Audit: auditSetting("report", "send")},
		{Method: "GET", Path: "/api/v1/rotations", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.rotations))},
		{Method: "POST", Path: "/api/v1/rotations", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.putRotation)), Audit: auditSetting("rotation", "create")},
		{Method: "PUT", Path: "/api/v1/rotations/{name}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.putRotation)), Audit: auditSetting("rotation", "change")},
		{Method: "DELETE", Path: "/api/v1/rotations/{name}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.deleteRotation)), Audit: auditSetting("rotation", "delete")},
		{Method: "GET", Path: "/api/v1/oncall", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.onCall))},
		{Method: "GET", Path: "/api/v1/cis", Role: auth.Read, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.cis))},
		{Method: "POST", Path: "/api/v1/cis", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.putCI)), Audit: auditSetting("ci", "create")},
		{Method: "PUT", Path: "/api/v1/cis/{name}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.putCI)), Audit: auditSetting("ci", "change")},
		{Method: "DELETE", Path: "/api/v1/cis/{name}", Role: auth.Operator, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.deleteCI)), Audit: auditSetting("ci", "delete")},
		{Method: "POST", Path: "/api/v1/itsm/inbound/{receiver}", Role: auth.Public, Name: "/api/v1/itsm", API: fw.wrap(inc.on(inc.inbound))},

		// The audit log of the change routes above: admin only, as it
		// names who did what (the incident timelines show operators
		// their own incidents' history).
		{Method: "GET", Path: "/api/v1/audit", Role: auth.Admin, API: auditList(d.Audit)},

		// KPIs and forecasts.
		{Method: "GET", Path: "/api/v1/kpis", Role: auth.Read, Shed: ShedQuery, Name: "/api/v1/kpis", API: fw.wrap(kp.on(kp.list))},
		{Method: "GET", Path: "/api/v1/kpis/{name}", Role: auth.Read, Shed: ShedQuery, Name: "/api/v1/kpis", API: fw.wrap(kp.on(kp.get))},
		{Method: "GET", Path: "/api/v1/kpis/{name}/chart.svg", Role: auth.Read, Shed: ShedQuery, Name: "/api/v1/kpis", API: fw.wrap(kp.on(kp.chart))},
		{Method: "GET POST", Path: "/api/v1/forecast", Role: auth.Read, Shed: ShedQuery, Name: "/api/v1/kpis", API: kp.on(kp.forecast)},

		// The cluster: its status, and the internal read API between
		// nodes, authenticated by the cluster's secret (not a user).
		{Method: "GET", Path: "/api/v1/status/cluster", Role: auth.Metrics, API: clusterStatus(d.Cluster)},
		{Method: "POST", Path: "/internal/v1/{op}", Role: auth.Public, Shed: ShedQuery, Name: "/internal/v1", API: clusterPeer(d.Cluster)},

		// Probes, metrics, the console.
		{Method: "GET", Path: "/-/healthy", Role: auth.Public, Raw: text("Healthy.\n")},
		{Method: "GET", Path: "/-/ready", Role: auth.Public, Raw: ready(d.Ready)},
		// With auth on, /metrics is the operators' (admin or the metrics
		// role), as Mimir's: its series name every tenant's rule groups.
		{Method: "GET", Path: "/metrics", Role: auth.Metrics, Raw: metrics(d.Gatherer)},
		{Method: "GET", Path: "/", Role: auth.Public, Raw: root},
	}
	if d.Console != nil {
		rs = append(rs,
			Route{Method: "GET", Path: "/console", Role: auth.Public, Raw: d.Console.Serve},
			// Static assets only; the console's API calls carry credentials.
			Route{Method: "GET", Path: "/console/{file...}", Role: auth.Public, Name: "/console", Raw: d.Console.Serve})
	}
	// The Mimir-style ruler config API, also under /prometheus as Mimir
	// serves it: reading needs read, changing needs admin.
	for _, prefix := range []string{"", "/prometheus"} {
		p := prefix + "/config/v1/rules"
		rs = append(rs,
			Route{Method: "GET", Path: p, Role: auth.Read, Name: "/config/v1/rules", TextErrors: true, API: rl.on(rl.configGet)},
			Route{Method: "GET", Path: p + "/{namespace}", Role: auth.Read, Name: "/config/v1/rules", TextErrors: true, API: rl.on(rl.configGet)},
			Route{Method: "GET", Path: p + "/{namespace}/{group}", Role: auth.Read, Name: "/config/v1/rules", TextErrors: true, API: rl.on(rl.configGet)},
			Route{Method: "POST", Path: p + "/{namespace}", Role: auth.Admin, Name: "/config/v1/rules", TextErrors: true, API: rl.on(rl.configPost), Audit: auditRulesSet},
			Route{Method: "DELETE", Path: p + "/{namespace}", Role: auth.Admin, Name: "/config/v1/rules", TextErrors: true, API: rl.on(rl.configDelete), Audit: auditRulesDelete},
			Route{Method: "DELETE", Path: p + "/{namespace}/{group}", Role: auth.Admin, Name: "/config/v1/rules", TextErrors: true, API: rl.on(rl.configDelete), Audit: auditRulesDelete},
		)
	}
	return rs
}

// SenderSeen is one answered push request (remote write, OTLP).
type SenderSeen struct {
	Protocol  string // remote_write or otlp
	Tenant    string
	Addr      string // the client's IP address
	UserAgent string
	// Source is the name the sender gave itself in the X-Source-Name
	// header (Prometheus: remote_write's headers), if any.
	Source string
	Code   int
	// Error is the first line of the answer when Code is not 2xx and the
	// answer is text or JSON (an OTLP protobuf status is not shown).
	Error string
}

// SourceNameHeader is the request header a sender names itself with.
const SourceNameHeader = "X-Source-Name"

// sender is a push protocol's handler followed by the hook that learns
// of its senders.
func sender(h fasthttp.RequestHandler, protocol string, done func(SenderSeen)) fasthttp.RequestHandler {
	if h == nil || done == nil {
		return h
	}
	return func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		tenant, err := tenancy.FromRequest(ctx)
		if err != nil {
			return
		}
		seen := SenderSeen{Protocol: protocol, Tenant: tenant, Addr: ctx.RemoteIP().String(), UserAgent: string(ctx.UserAgent()),
			Source: string(ctx.Request.Header.Peek(SourceNameHeader)), Code: ctx.Response.StatusCode()}
		if ct := string(ctx.Response.Header.ContentType()); seen.Code >= 300 && (strings.HasPrefix(ct, "text/") || strings.HasPrefix(ct, "application/json")) {
			seen.Error, _, _ = strings.Cut(string(ctx.Response.Body()), "\n")
		}
		done(seen)
	}
}

func metrics(g prometheus.Gatherer) fasthttp.RequestHandler {
	if g == nil {
		return nil
	}
	return fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}

func text(s string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(s)
	}
}

func ready(notReady func() error) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain; charset=utf-8")
		if notReady != nil {
			if err := notReady(); err != nil {
				ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
				ctx.SetBodyString("Not ready: " + err.Error() + "\n")
				return
			}
		}
		ctx.SetBodyString("Ready.\n")
	}
}

// root sends a browser to the console and tells anything else where the
// endpoints are.
func root(ctx *fasthttp.RequestCtx) {
	if strings.Contains(string(ctx.Request.Header.Peek("Accept")), "text/html") {
		ctx.Redirect(console.Prefix, fasthttp.StatusFound)
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("tsdb: a Prometheus-compatible time-series database.\nEndpoints: /api/v1/write /write /api/v2/write /api/v1/import/prometheus /api/v1/otlp/v1/metrics /api/v1/query /api/v1/query_range /api/v1/series /api/v1/labels /api/v1/export /metrics /-/healthy /-/ready; the web console is at /console/\n")
}

// reload serves POST /-/reload, as Prometheus does (plain text).
func reload(f func() ([]string, error)) fasthttp.RequestHandler {
	if f == nil {
		return nil
	}
	return func(ctx *fasthttp.RequestCtx) {
		restart, err := f()
		if err != nil {
			ctx.Error("failed to reload config: "+err.Error()+"\n", fasthttp.StatusInternalServerError)
			return
		}
		if len(restart) > 0 {
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString("reloaded rules, auth and limits; changed sections that need a restart: " + strings.Join(restart, ", ") + "\n")
		}
	}
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

func ingestStatus(f func(tenant string) any) Handler {
	if f == nil {
		return nil
	}
	return func(r *Request) (any, error) {
		tenant, err := r.Tenant()
		if err != nil {
			return nil, err
		}
		return f(tenant), nil
	}
}

// whoami tells a client (the console) who it is signed in as: the user's
// roles and tenants, and the tenant this request acts for; without
// authentication, that anyone may do anything.
func whoami(authn func() *auth.Authenticator, rd storage.Reader) Handler {
	lister, _ := rd.(interface{ Tenants() []string })
	return func(r *Request) (any, error) {
		out := map[string]any{"auth": authn() != nil, "tenant": r.Header(tenancy.Header)}
		if t, err := tenancy.FromRequest(r.Ctx); err == nil {
			out["tenant"] = t
		}
		if u := auth.Current(r.Ctx); u != nil {
			out["user"], out["roles"], out["tenants"] = u.Name, u.Roles, u.Tenants
		} else {
			out["user"], out["roles"], out["tenants"] = "", []auth.Role{auth.Admin}, []string{"*"}
		}
		// Who may pick any tenant is told the ones that hold data (the
		// console offers them).
		if ts, _ := out["tenants"].([]string); lister != nil && slices.Contains(ts, "*") {
			out["known_tenants"] = lister.Tenants()
		}
		return out, nil
	}
}

func clusterStatus(c Cluster) Handler {
	return func(r *Request) (any, error) {
		if c == nil {
			return nil, notFound("not a cluster: no cluster: section in --config.file")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Status(ctx)
	}
}

func clusterPeer(c Cluster) Handler {
	return func(r *Request) (any, error) {
		if c == nil {
			return nil, notFound("not a cluster: no cluster: section in --config.file")
		}
		// The caller bounds the request with its own timeout; this one
		// only keeps a lost caller from holding the node for ever.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		ct, b, err := c.ServePeer(ctx, r.Param("op"), r.Header(ClusterSecretHeader), r.Ctx.Request.Body())
		if err != nil {
			return nil, err
		}
		return body{contentType: ct, b: b}, nil
	}
}
