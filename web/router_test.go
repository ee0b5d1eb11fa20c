package web

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/query"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestRouteTable: every row is well formed, no two rows claim the same
// method and path, and the public rows are exactly the ones meant to be
// (an endpoint cannot become public by forgetting its role).
func TestRouteTable(t *testing.T) {
	ok := func(*fasthttp.RequestCtx) {}
	rs := routes(Deps{Ingest: Ingest{RemoteWrite: ok, InfluxV1: ok, InfluxV2: ok, InfluxPing: ok, PrometheusImport: ok, JSONImport: ok, OTLP: ok},
		IngestStatus: func(string) any { return nil }, Reload: func() ([]string, error) { return nil, nil }, Gatherer: prometheus.NewRegistry()})
	seen := map[string]bool{}
	var public []string
	for _, r := range rs {
		require.True(t, strings.HasPrefix(r.Path, "/"), r.Path)
		require.NotEmpty(t, r.Method, r.Path)
		require.False(t, r.API != nil && r.Raw != nil, r.Path)
		for _, m := range strings.Fields(r.Method) {
			k := m + " " + r.Path
			require.False(t, seen[k], "two rows for %s", k)
			seen[k] = true
		}
		if r.Role == auth.Public {
			public = append(public, r.Path)
		}
		if r.Shed == ShedWrite {
			require.Equal(t, auth.Write, r.Role, "%s: only ingest is shed as a write", r.Path)
		}
	}
	slices.Sort(public)
	require.Equal(t, []string{"/", "/-/healthy", "/-/ready", "/api/v1/itsm/inbound/{receiver}", "/internal/v1/{op}", "/ping"}, public,
		"public endpoints (the internal read API checks the cluster's secret itself); the console's static files are added when it is wired")
}

func TestRouterDispatch(t *testing.T) {
	db := st.Open(t, nil)
	reg := prometheus.NewRegistry()
	over := false
	a := New(Deps{Reader: db, Engine: query.NewEngine(db, nil), Registerer: reg, Shedding: func() bool { return over }})
	do := func(method, uri string) (int, *fasthttp.Response) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		a.Handler(&ctx)
		var resp fasthttp.Response
		ctx.Response.CopyTo(&resp)
		return ctx.Response.StatusCode(), &resp
	}
	envelope := func(r *fasthttp.Response) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal(r.Body(), &m), string(r.Body()))
		return m
	}

	code, resp := do("GET", "/api/v1/nope")
	require.Equal(t, 404, code)
	require.Equal(t, "not_found", envelope(resp)["errorType"])
	code, _ = do("GET", "/nope")
	require.Equal(t, 404, code)

	code, resp = do("DELETE", "/api/v1/query")
	require.Equal(t, 405, code)
	require.Equal(t, "GET, POST", string(resp.Header.Peek("Allow")))
	require.Contains(t, envelope(resp)["error"], "DELETE is not allowed")

	code, _ = do("HEAD", "/api/v1/status/buildinfo")
	require.Equal(t, 200, code, "GET rows serve HEAD")
	code, resp = do("GET", "/api/v1/label/job/values")
	require.Equal(t, 200, code, string(resp.Body()))

	// Over the memory budget, queries are shed and probes are not.
	over = true
	code, resp = do("GET", "/api/v1/query?query=1")
	require.Equal(t, 503, code)
	require.Equal(t, "5", string(resp.Header.Peek("Retry-After")))
	require.Contains(t, envelope(resp)["error"], "--memory.budget-bytes")
	code, _ = do("GET", "/-/healthy")
	require.Equal(t, 200, code)
	code, _ = do("GET", "/api/v1/labels")
	require.Equal(t, 200, code, "label names are cheap: not shed")
	over = false

	// Request metrics are labelled by the row's name, not the raw path.
	do("GET", "/api/v1/label/instance/values")
	counter := func(handler, code string) float64 {
		var m dto.Metric
		require.NoError(t, a.router.requests.WithLabelValues(handler, code).Write(&m))
		return m.GetCounter().GetValue()
	}
	require.Equal(t, 2.0, counter("/api/v1/label/:name/values", "200"))
	require.Equal(t, 1.0, counter("shed", "503"))
}

// TestRouterAuth: with authentication on, each row's role is enforced
// before its handler runs, and refusals come in the error envelope.
func TestRouterAuth(t *testing.T) {
	db := st.Open(t, nil)
	authn, err := auth.New(auth.Config{Users: []auth.User{
		{Name: "grafana", TokenSHA256: auth.HashToken("tok-read"), Roles: []auth.Role{auth.Read}, Tenants: []string{"acme"}},
	}})
	require.NoError(t, err)
	a := New(Deps{Reader: db, Engine: query.NewEngine(db, nil), Admin: db, Auth: func() *auth.Authenticator { return authn }})
	do := func(method, uri, token string) (int, *fasthttp.Response) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(uri)
		if token != "" {
			ctx.Request.Header.Set("Authorization", "Bearer "+token)
		}
		a.Handler(&ctx)
		var resp fasthttp.Response
		ctx.Response.CopyTo(&resp)
		return ctx.Response.StatusCode(), &resp
	}
	code, resp := do("GET", "/api/v1/query?query=1", "")
	require.Equal(t, 401, code)
	require.NotEmpty(t, resp.Header.Peek("WWW-Authenticate"))
	require.Contains(t, string(resp.Body()), `"errorType":"unauthorized"`)
	code, _ = do("GET", "/api/v1/query?query=1", "tok-read")
	require.Equal(t, 200, code)
	code, resp = do("POST", "/api/v1/admin/tsdb/delete_series?match[]=up", "tok-read")
	require.Equal(t, 403, code)
	require.Contains(t, string(resp.Body()), "lacks the admin role")
	code, _ = do("GET", "/api/v1/whatever", "")
	require.Equal(t, 401, code, "unknown paths are not revealed before authentication")
	code, _ = do("GET", "/-/healthy", "")
	require.Equal(t, 200, code)
}

func TestPatternMatch(t *testing.T) {
	f := func(pattern, path string, want bool, params ...string) {
		t.Helper()
		c := compile(Route{Method: "GET", Path: pattern, Raw: func(*fasthttp.RequestCtx) {}})
		var ps []param
		require.Equal(t, want, c.match(path, &ps), "%s ~ %s", pattern, path)
		if want {
			var got []string
			for _, p := range ps {
				got = append(got, p.name+"="+p.value)
			}
			require.Equal(t, params, got)
		}
	}
	f("/api/v1/label/{name}/values", "/api/v1/label/job/values", true, "name=job")
	f("/api/v1/label/{name}/values", "/api/v1/label//values", false)
	f("/api/v1/label/{name}/values", "/api/v1/label/a/b/values", false)
	f("/api/v1/label/{name}/values", "/api/v1/label/job/values/", false)
	f("/api/v1/incidents/{id}", "/api/v1/incidents", false)
	f("/api/v1/incidents/{id}", "/api/v1/incidents/INC-1", true, "id=INC-1")
	f("/debug/pprof/{p...}", "/debug/pprof/", true, "p=")
	f("/debug/pprof/{p...}", "/debug/pprof/heap/x", true, "p=heap/x")
	f("/debug/pprof/{p...}", "/debug/pprof", false)
	f("/console/{f...}", "/consolex/a", false)
}

// TestRouterThrottlesFailedLogins: through the router, an address that
// keeps guessing basic-auth passwords gets 429 with Retry-After once its
// failures are spent, in the error envelope, and no bcrypt runs for it.
func TestRouterThrottlesFailedLogins(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	authn, err := auth.New(auth.Config{MaxLoginFailures: 5, Users: []auth.User{
		{Name: "kim", Username: "kim", PasswordHash: string(hash), Roles: []auth.Role{auth.Read}, Tenants: []string{"acme"}},
	}})
	require.NoError(t, err)
	a := New(Deps{Version: "test", Auth: func() *auth.Authenticator { return authn }})
	do := func(pass string) *fasthttp.Response {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("GET")
		ctx.Request.SetRequestURI("/api/v1/status/buildinfo")
		ctx.Request.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("kim:"+pass)))
		a.Handler(&ctx)
		var resp fasthttp.Response
		ctx.Response.CopyTo(&resp)
		return &resp
	}
	require.Equal(t, 200, do("s3cret").StatusCode())
	for i := range 5 {
		require.Equal(t, 401, do(fmt.Sprint("guess", i)).StatusCode())
	}
	resp := do("guess")
	require.Equal(t, 429, resp.StatusCode())
	require.Equal(t, "12", string(resp.Header.Peek("Retry-After")), "5 a minute: one back every 12s")
	require.Contains(t, string(resp.Body()), `"errorType":"too_many_requests"`)
	require.Contains(t, string(resp.Body()), "max_login_failures_per_minute")
	require.Equal(t, 200, do("s3cret").StatusCode(), "the header verified before needs no bcrypt")
}
