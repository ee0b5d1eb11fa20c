package web

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/audit"
	"github.com/emsdb/tsdb/internal/auth"
)

// Shed says whether an endpoint may be refused while tsdb is over its
// memory budget.
type Shed int

// Shedding classes.
const (
	// Keep is never shed: probes, metrics, admin, the console, ITSM actions.
	Keep Shed = iota
	// ShedWrite is ingest.
	ShedWrite
	// ShedQuery is queries and listings that read many series.
	ShedQuery
)

// Handler serves one JSON endpoint: it returns the data of the success
// envelope (see respond.go for the special values) or an error, which
// the one mapper in errors.go turns into a status and an error envelope.
type Handler func(r *Request) (any, error)

// Route is one row of the route table.
type Route struct {
	// Method is the HTTP method ("GET" also serves HEAD); several are
	// separated by spaces; "*" is any.
	Method string
	// Path is the pattern: literal segments, {name} for one segment and
	// a final {name...} for the rest of the path (possibly empty).
	Path string
	// Role is what the caller needs when authentication is on.
	Role auth.Role
	// Shed is the route's shedding class.
	Shed Shed
	// Name labels the route's request metrics; default Path.
	Name string
	// Exactly one of API and Raw is set: API for JSON endpoints, Raw for
	// handlers that write their own answer (ingest, metrics, console).
	API Handler
	Raw fasthttp.RequestHandler
	// TextErrors answers errors as plain text rather than the JSON
	// envelope (the Mimir-style ruler config API).
	TextErrors bool
	// Audit, set on the routes that change something, describes a
	// successful call for the audit log (see audit.go).
	Audit Auditor
}

type compiled struct {
	Route
	segs    []string // pattern segments; "{x}" params, "{x...}" rest
	methods []string
}

func compile(r Route) *compiled {
	if r.API != nil && r.Raw != nil {
		panic("BUG: web route " + r.Path + " has both an API and a Raw handler")
	}
	if r.Name == "" {
		r.Name = r.Path
	}
	return &compiled{Route: r, segs: strings.Split(strings.TrimPrefix(r.Path, "/"), "/"), methods: strings.Fields(r.Method)}
}

// match reports whether path matches the pattern, filling params.
func (c *compiled) match(path string, params *[]param) bool {
	*params = (*params)[:0]
	rest := strings.TrimPrefix(path, "/")
	for i, s := range c.segs {
		if strings.HasSuffix(s, "...}") && s[0] == '{' && i == len(c.segs)-1 {
			*params = append(*params, param{s[1 : len(s)-4], rest})
			return true
		}
		seg, tail, more := strings.Cut(rest, "/")
		if len(s) > 1 && s[0] == '{' && s[len(s)-1] == '}' {
			if seg == "" {
				return false
			}
			*params = append(*params, param{s[1 : len(s)-1], seg})
		} else if seg != s {
			return false
		}
		rest = tail
		if !more {
			return i == len(c.segs)-1
		}
	}
	return false
}

func (c *compiled) allows(method string) bool {
	for _, m := range c.methods {
		if m == "*" || m == method || (m == "GET" && method == "HEAD") {
			return true
		}
	}
	return false
}

// Router dispatches requests by the route table.
type Router struct {
	routes   []*compiled
	exact    map[string][]*compiled // patterns without parameters, by path
	auth     func() *auth.Authenticator
	shedding func() bool
	audit    *audit.Log // nil: no audit log
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newRouter builds a router over routes; auth returns the authenticator
// (nil: authentication off) and shedding whether tsdb is over its memory
// budget.
func newRouter(routes []Route, authn func() *auth.Authenticator, shedding func() bool, reg prometheus.Registerer, log *audit.Log) *Router {
	rt := &Router{exact: map[string][]*compiled{}, auth: authn, shedding: shedding, audit: log}
	for _, r := range routes {
		if r.API == nil && r.Raw == nil {
			continue // a component not wired (tests): its paths are 404s
		}
		c := compile(r)
		if !strings.Contains(r.Path, "{") {
			rt.exact[r.Path] = append(rt.exact[r.Path], c)
		} else {
			rt.routes = append(rt.routes, c)
		}
	}
	rt.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tsdb_http_requests_total",
		Help: "HTTP requests by handler and status code.",
	}, []string{"handler", "code"})
	rt.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tsdb_http_request_duration_seconds",
		Help:    "HTTP request latency by handler (queries, writes, …).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"handler"})
	if reg != nil {
		reg.MustRegister(rt.requests, rt.duration)
	}
	return rt
}

// lookup finds the route for method and path. When the path is known but
// not for this method it returns the allowed methods instead.
func (rt *Router) lookup(method, path string, params *[]param) (*compiled, []string) {
	var allow []string
	try := func(c *compiled) bool {
		if c.allows(method) {
			return true
		}
		allow = append(allow, c.methods...)
		return false
	}
	for _, c := range rt.exact[path] {
		if try(c) {
			*params = (*params)[:0]
			return c, nil
		}
	}
	for _, c := range rt.routes {
		if c.match(path, params) && try(c) {
			return c, nil
		}
	}
	return nil, allow
}

// Handler is the fasthttp handler of the whole API.
func (rt *Router) Handler(ctx *fasthttp.RequestCtx) {
	t0 := time.Now()
	path := string(ctx.Path())
	method := string(ctx.Method())
	var params []param
	c, allow := rt.lookup(method, path, &params)
	role := auth.Read // unknown paths: authenticate before saying 404
	if c != nil {
		role = c.Role
	}
	a := rt.auth()
	if a != nil {
		if err := a.Authorize(ctx, role); err != nil {
			if lc := limited(ctx.Conn()); lc != nil && !lc.admitRequest(false) {
				ctx.SetConnectionClose() // a reserved slot is not kept for a failed login
			}
			respondError(ctx, err, false)
			rt.requests.WithLabelValues("auth", strconv.Itoa(ctx.Response.StatusCode())).Inc()
			return
		}
	}
	if lc := limited(ctx.Conn()); lc != nil {
		// A reserved connection serves probes and authenticated requests
		// only (see conns.go); under pressure no connection is kept alive.
		probe := c != nil && c.Role == auth.Public && strings.HasPrefix(c.Path, "/-/")
		if !lc.admitRequest(probe || (a != nil && role != auth.Public)) {
			lc.l.refused.WithLabelValues("reserve").Inc()
			ctx.SetConnectionClose()
			ctx.Response.Header.Set("Retry-After", "1")
			respondError(ctx, errReserved, false)
			rt.requests.WithLabelValues("reserve", "503").Inc()
			return
		}
		if lc.l.underPressure() {
			ctx.SetConnectionClose()
		}
	}
	if c == nil {
		name := "other"
		switch {
		case len(allow) > 0:
			ctx.Response.Header.Set("Allow", strings.Join(allow, ", "))
			respondError(ctx, methodNotAllowed("%s is not allowed on %s; use %s", method, path, strings.Join(allow, " or ")), false)
		case strings.HasPrefix(path, "/api/"):
			respondError(ctx, notFound("unknown API endpoint %s", strings.ReplaceAll(path, `"`, `'`)), false)
		default:
			ctx.NotFound()
		}
		rt.requests.WithLabelValues(name, strconv.Itoa(ctx.Response.StatusCode())).Inc()
		return
	}
	if c.Shed != Keep && rt.shedding != nil && rt.shedding() {
		ctx.Response.Header.Set("Retry-After", "5")
		respondError(ctx, errOverBudget, false)
		rt.requests.WithLabelValues("shed", "503").Inc()
		return
	}
	r := &Request{Ctx: ctx, params: params}
	if c.Raw != nil {
		c.Raw(ctx)
		rt.record(c, r, nil)
	} else {
		data, err := c.API(r)
		if err != nil {
			respondError(ctx, err, c.TextErrors)
		} else {
			respond(ctx, data)
			rt.record(c, r, data)
		}
	}
	rt.requests.WithLabelValues(c.Name, strconv.Itoa(ctx.Response.StatusCode())).Inc()
	rt.duration.WithLabelValues(c.Name).Observe(time.Since(t0).Seconds())
}
