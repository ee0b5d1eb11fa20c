package web

import (
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/audit"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// auditAPI is the API over a database in dir with ITSM, the rule config
// API, the admin API and the audit log, as tsdb wires them.
type auditAPI struct {
	t   *testing.T
	db  *storage.DB
	m   *itsm.Manager
	api *API
	clk *apptest.Clock
}

func openAuditAPI(t *testing.T, dir string, clk *apptest.Clock, authn *auth.Authenticator) *auditAPI {
	t.Helper()
	db := st.OpenDir(t, dir, nil)
	m, err := itsm.New(itsm.Config{Groups: map[string][]string{"dba": {"kim"}}}, db, nil, clk.Now)
	require.NoError(t, err)
	t.Cleanup(m.Close)
	log, err := audit.Open(db, &audit.Options{Now: clk.Now})
	require.NoError(t, err)
	eng := query.NewEngine(db, nil)
	rl := ruler.New(eng, db, nil, nil)
	t.Cleanup(rl.Stop)
	return &auditAPI{t: t, db: db, m: m, clk: clk, api: New(Deps{Reader: db, Engine: eng, ITSM: m, Ruler: rl, RuleStore: db,
		Admin: db, SnapshotDir: filepath.Join(dir, "snapshots"), Audit: log, Now: clk.Now,
		Reload: func() ([]string, error) { return nil, nil },
		Auth:   func() *auth.Authenticator { return authn }})}
}

// do sends a request from 192.0.2.7 (headers as name, value pairs) and
// returns the status and body.
func (a *auditAPI) do(method, uri, body string, headers ...string) (int, []byte) {
	a.t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000})
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Set(headers[i], headers[i+1])
	}
	if body != "" {
		ctx.Request.Header.SetContentType("application/json")
		if strings.HasPrefix(uri, "/config/") {
			ctx.Request.Header.SetContentType("application/yaml")
		}
		ctx.Request.SetBodyString(body)
	}
	a.clk.Add(time.Second)
	a.api.Handler(&ctx)
	return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...)
}

// entries reads GET uri and returns "user action object: summary" lines.
func (a *auditAPI) entries(uri string, headers ...string) []string {
	a.t.Helper()
	code, b := a.do("GET", uri, "", headers...)
	require.Equal(a.t, 200, code, string(b))
	var out struct{ Data []audit.Entry }
	require.NoError(a.t, json.Unmarshal(b, &out))
	lines := []string{}
	for _, e := range out.Data {
		require.Equal(a.t, "192.0.2.7", e.Addr)
		require.False(a.t, e.At.IsZero())
		lines = append(lines, e.User+" "+e.Action+" "+e.Object+": "+e.Summary)
	}
	return lines
}

func TestAuditLog(t *testing.T) {
	dir := t.TempDir()
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0).UTC())
	a := openAuditAPI(t, dir, clk, nil)
	must := func(want int, method, uri, body string, headers ...string) []byte {
		t.Helper()
		code, b := a.do(method, uri, body, headers...)
		require.Equal(t, want, code, string(b))
		return b
	}
	// X-User names the actor in the incident's timeline, but without
	// authentication the audit log says anonymous: a claim is not a login.
	must(201, "POST", "/api/v1/incidents", `{"title":"Disk failing","priority":"P2","ci":"db-1","owner_group":"dba"}`, "X-User", "kim")
	must(200, "POST", "/api/v1/incidents/INC-000001/ack", "")
	must(200, "POST", "/api/v1/incidents/INC-000001/priority", `{"priority":"P1","reason":"customers affected"}`)
	must(400, "POST", "/api/v1/incidents/INC-000001/ack", "") // refused: not recorded
	must(200, "POST", "/api/v1/incidents/INC-000001/resolve", `{"text":"disk replaced","root_cause":"worn disk"}`)
	must(201, "POST", "/api/v1/problems", `{"title":"Disks wear out","incidents":"INC-000001"}`)
	must(200, "POST", "/api/v1/groups/dba/members", `{"member":"lee"}`)
	must(200, "DELETE", "/api/v1/groups/dba/members/kim", "")
	must(201, "POST", "/api/v1/maintenance", `{"name":"db-patch","ci":"db-1","start":"2030-01-01T02:00:00Z","end":"2030-01-01T04:00:00Z"}`)
	must(200, "PUT", "/api/v1/maintenance/db-patch", `{"ci":"db-1","start":"2030-01-01T02:00:00Z","end":"2030-01-01T05:00:00Z"}`)
	must(200, "DELETE", "/api/v1/maintenance/db-patch", "")
	must(202, "POST", "/config/v1/rules/team", "name: disks\nrules:\n- alert: DiskFull\n  expr: vector(1)\n")
	must(202, "DELETE", "/config/v1/rules/team/disks", "")
	must(204, "POST", "/api/v1/admin/tsdb/delete_series?match[]={job=\"old\"}", "")
	must(200, "POST", "/-/reload", "")
	must(200, "GET", "/api/v1/incidents", "") // reads are not recorded
	// Another tenant's change stays in its own log.
	must(201, "POST", "/api/v1/incidents", `{"title":"Other tenant"}`, "X-Scope-OrgID", "acme")

	want := []string{
		"anonymous config.reload : configuration reloaded",
		`anonymous admin.delete_series {job="old"}: deleted series {job="old"}`,
		"anonymous rules.delete team/disks: rule group disks deleted from namespace team",
		"anonymous rules.set team/disks: rule group disks set in namespace team",
		"anonymous maintenance.delete db-patch: maintenance window db-patch deleted",
		"anonymous maintenance.change db-patch: maintenance window db-patch changed, ci db-1, 2030-01-01 02:00 – 2030-01-01 05:00 UTC",
		"anonymous maintenance.create db-patch: maintenance window db-patch created, ci db-1, 2030-01-01 02:00 – 2030-01-01 04:00 UTC",
		"anonymous group.remove_member dba: removed kim from group dba",
		"anonymous group.add_member dba: added lee to group dba",
		"anonymous problem.create PRB-000001: registered problem PRB-000001: Disks wear out (incidents INC-000001)",
		"anonymous incident.resolve INC-000001: INC-000001 resolved: disk replaced (root cause: worn disk)",
		"anonymous incident.priority INC-000001: INC-000001 priority changed: P2 → P1: customers affected",
		"anonymous incident.ack INC-000001: INC-000001 acknowledged",
		"anonymous incident.create INC-000001: opened manual incident INC-000001 (P2): Disk failing",
	}
	require.Equal(t, want, a.entries("/api/v1/audit"))
	require.Equal(t, want[10:13], a.entries("/api/v1/audit?action=incident&limit=3"))
	require.Equal(t, []string{want[12], want[13]}, a.entries("/api/v1/audit?object=INC-000001&start=1700000000&end=1700000002"))
	require.Equal(t, want[4:7], a.entries("/api/v1/audit?object=db-patch"))
	require.Empty(t, a.entries("/api/v1/audit?user=kim"))
	require.Equal(t, []string{"anonymous incident.create INC-000001: opened manual incident INC-000001 (P3): Other tenant"},
		a.entries("/api/v1/audit", "X-Scope-OrgID", "acme"))
	code, _ := a.do("GET", "/api/v1/audit?limit=x", "")
	require.Equal(t, 400, code)

	// The log is in the database: it survives a restart.
	a.m.Close()
	require.NoError(t, a.db.Close())
	b := openAuditAPI(t, dir, clk, nil)
	require.Equal(t, want, b.entries("/api/v1/audit"))
}

// TestAuditLogAuth: with authentication on, the entry names the signed-in
// user, and only admins read the log.
func TestAuditLogAuth(t *testing.T) {
	authn, err := auth.New(auth.Config{Users: []auth.User{
		{Name: "oncall", TokenSHA256: auth.HashToken("tok-op"), Roles: []auth.Role{auth.Operator}, Tenants: []string{"acme"}},
		{Name: "root", TokenSHA256: auth.HashToken("tok-admin"), Roles: []auth.Role{auth.Admin}, Tenants: []string{"*"}},
	}})
	require.NoError(t, err)
	a := openAuditAPI(t, t.TempDir(), apptest.NewClock(time.Unix(1_700_000_000, 0).UTC()), authn)
	code, b := a.do("POST", "/api/v1/incidents", `{"title":"Link down"}`, "Authorization", "Bearer tok-op", "X-User", "someone-else",
		"X-Forwarded-For", "203.0.113.9")
	require.Equal(t, 201, code, string(b))
	code, _ = a.do("GET", "/api/v1/audit", "", "Authorization", "Bearer tok-op")
	require.Equal(t, 403, code, "operators do not read the audit log")
	code, _ = a.do("GET", "/api/v1/audit", "")
	require.Equal(t, 401, code)
	require.Equal(t, []string{"oncall incident.create INC-000001: opened manual incident INC-000001 (P3): Link down"},
		a.entries("/api/v1/audit", "Authorization", "Bearer tok-admin", "X-Scope-OrgID", "acme"))
	require.Empty(t, a.entries("/api/v1/audit", "Authorization", "Bearer tok-admin"), "the default tenant has none")
	_, b = a.do("GET", "/api/v1/audit", "", "Authorization", "Bearer tok-admin", "X-Scope-OrgID", "acme")
	require.Contains(t, string(b), `"forwarded_for":"203.0.113.9"`)
}

// TestClosureWithCauseAPI: resolve and close take root_cause, resolution
// and prevention; the incident JSON and its report show them.
func TestClosureWithCauseAPI(t *testing.T) {
	a := openAuditAPI(t, t.TempDir(), apptest.NewClock(time.Unix(1_700_000_000, 0).UTC()), nil)
	code, b := a.do("POST", "/api/v1/incidents", `{"title":"Checkout slow","priority":"P2"}`)
	require.Equal(t, 201, code, string(b))
	code, b = a.do("POST", "/api/v1/incidents/INC-000001/comment", `{"text":"x","root_cause":"y"}`)
	require.Equal(t, 400, code, "a cause goes with resolve or close: %s", b)
	code, b = a.do("POST", "/api/v1/incidents/INC-000001/resolve", `{"text":"pool resized","root_cause":"connection pool exhausted","resolution":"pool 50 → 200"}`)
	require.Equal(t, 200, code, string(b))
	// Closing adds to what resolving said (fields in the query string,
	// as any action takes them).
	code, b = a.do("POST", "/api/v1/incidents/INC-000001/close?prevention=alert+on+pool+usage", "")
	require.Equal(t, 200, code, string(b))
	code, b = a.do("GET", "/api/v1/incidents/INC-000001", "")
	require.Equal(t, 200, code)
	var out struct{ Data map[string]any }
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, "closed", out.Data["status"])
	require.Equal(t, "connection pool exhausted", out.Data["root_cause"])
	require.Equal(t, "pool 50 → 200", out.Data["resolution"])
	require.Equal(t, "alert on pool usage", out.Data["prevention"])
	code, b = a.do("GET", "/api/v1/incidents/INC-000001/report", "")
	require.Equal(t, 200, code)
	require.Contains(t, string(b), "<th>Root cause</th><td>connection pool exhausted</td>")
	require.Contains(t, string(b), "<th>Prevention</th><td>alert on pool usage</td>")
}
