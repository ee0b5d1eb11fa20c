package web

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/metering"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// usageAPI is the API with usage metering over a database whose clock
// is 2026-03-14, with authentication as given.
func usageAPI(t *testing.T, authn *auth.Authenticator) (*API, *storage.DB) {
	t.Helper()
	now := func() time.Time { return time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC) }
	db := st.Open(t, &storage.Options{Now: now})
	m := metering.New(metering.Options{Store: db, Now: now})
	for _, tenant := range []string{"acme", "globex"} {
		var b storage.Batch
		b.Add(labels.FromStrings("__name__", "up", "job", tenant), storage.Sample{T: now().UnixMilli(), V: 1})
		require.NoError(t, metering.Tag("remote_write", db).Write(context.Background(), tenant, &b))
	}
	eng := query.NewEngine(m.Reader(db), nil)
	return New(Deps{Reader: db, Engine: eng, Usage: m, Now: now, Auth: func() *auth.Authenticator { return authn }}), db
}

func getUsage(t *testing.T, api *API, uri string, headers ...string) (int, string, *fasthttp.Response) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000})
	ctx.Request.SetRequestURI(uri)
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Set(headers[i], headers[i+1])
	}
	api.Handler(&ctx)
	var resp fasthttp.Response
	ctx.Response.CopyTo(&resp)
	return ctx.Response.StatusCode(), string(ctx.Response.Body()), &resp
}

func tenantsOf(t *testing.T, body string) []string {
	t.Helper()
	var out struct{ Data metering.Report }
	require.NoError(t, json.Unmarshal([]byte(body), &out), body)
	var ts []string
	for _, tr := range out.Data.Tenants {
		ts = append(ts, tr.Tenant)
	}
	return ts
}

func TestUsageEndpoint(t *testing.T) {
	api, _ := usageAPI(t, nil)
	// Queries count for the tenant that ran them.
	code, body, _ := getUsage(t, api, "/api/v1/query?query=up&time=1773489600", "X-Scope-OrgID", "acme")
	require.Equal(t, 200, code, body)
	// Without authentication everyone is an admin: every tenant, the month so far.
	code, body, _ = getUsage(t, api, "/api/v1/usage")
	require.Equal(t, 200, code, body)
	require.Equal(t, []string{"acme", "globex"}, tenantsOf(t, body))
	var out struct{ Data metering.Report }
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	require.Equal(t, "2026-03-01", out.Data.From)
	require.Equal(t, "2026-03-14", out.Data.To)
	acme := out.Data.Tenants[0]
	require.Len(t, acme.Days, 14)
	require.Equal(t, uint64(1), acme.Total.SamplesIngested)
	require.Equal(t, map[string]uint64{"remote_write": 1}, acme.Total.SamplesIngestedByProtocol)
	require.Equal(t, uint64(1), acme.Total.Queries)
	require.Equal(t, uint64(1), acme.Total.SamplesScanned)
	require.Zero(t, out.Data.Tenants[1].Total.Queries)

	code, body, resp := getUsage(t, api, "/api/v1/usage?from=2026-03-14&to=2026-03-14&tenant=globex&format=csv")
	require.Equal(t, 200, code, body)
	require.Equal(t, "text/csv; charset=utf-8", string(resp.Header.ContentType()))
	require.Equal(t, `attachment; filename="usage-2026-03-14-2026-03-14.csv"`, string(resp.Header.Peek("Content-Disposition")))
	lines := strings.Split(strings.TrimSpace(body), "\n")
	require.Len(t, lines, 3)
	require.True(t, strings.HasPrefix(lines[1], "2026-03-14,globex,1,1,"), lines[1])
	code, body, _ = getUsage(t, api, "/api/v1/usage?from=2026-03-14", "Accept", "text/csv")
	require.Equal(t, 200, code)
	require.True(t, strings.HasPrefix(body, "date,tenant,"), body)

	for _, c := range []struct{ uri, msg string }{
		{"/api/v1/usage?from=2026-13-01", `invalid parameter \"from\": \"2026-13-01\" is not a date as YYYY-MM-DD`},
		{"/api/v1/usage?to=14.03.2026", `invalid parameter \"to\"`},
		{"/api/v1/usage?from=2026-03-14&to=2026-03-01", "is before from"},
		{"/api/v1/usage?from=2024-01-01&to=2026-01-01", "ask for at most 366"},
		{"/api/v1/usage?format=xml", `use json or csv`},
		{"/api/v1/usage?tenant=a%7Cb", `invalid parameter \"tenant\"`},
	} {
		code, body, _ := getUsage(t, api, c.uri)
		require.Equal(t, 400, code, c.uri)
		require.Contains(t, body, c.msg, c.uri)
	}
}

// With authentication, an admin sees every tenant; anyone else its own
// tenant only, and 403 for another.
func TestUsageEndpointRoles(t *testing.T) {
	authn, err := auth.New(auth.Config{Users: []auth.User{
		{Name: "acme-reader", TokenSHA256: auth.HashToken("tok-acme"), Roles: []auth.Role{auth.Read}, Tenants: []string{"acme"}},
		{Name: "root", TokenSHA256: auth.HashToken("tok-admin"), Roles: []auth.Role{auth.Admin}, Tenants: []string{"*"}},
	}})
	require.NoError(t, err)
	api, _ := usageAPI(t, authn)
	admin, acme := []string{"Authorization", "Bearer tok-admin"}, []string{"Authorization", "Bearer tok-acme"}

	code, body, _ := getUsage(t, api, "/api/v1/usage", admin...)
	require.Equal(t, 200, code, body)
	require.Equal(t, []string{"acme", "globex"}, tenantsOf(t, body))
	code, body, _ = getUsage(t, api, "/api/v1/usage?tenant=globex", admin...)
	require.Equal(t, 200, code, body)
	require.Equal(t, []string{"globex"}, tenantsOf(t, body))

	code, body, _ = getUsage(t, api, "/api/v1/usage", acme...)
	require.Equal(t, 200, code, body)
	require.Equal(t, []string{"acme"}, tenantsOf(t, body))
	code, body, _ = getUsage(t, api, "/api/v1/usage?tenant=acme&format=csv", acme...)
	require.Equal(t, 200, code, body)
	code, body, _ = getUsage(t, api, "/api/v1/usage?tenant=globex", acme...)
	require.Equal(t, 403, code, body)
	require.Contains(t, body, "only admins see other tenants' usage")
	code, _, _ = getUsage(t, api, "/api/v1/usage", "X-Scope-OrgID", "globex")
	require.Equal(t, 401, code)
}
