package web

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/audit"
	"github.com/emsdb/tsdb/internal/auth"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// onCallAPI is the API over an ITSM manager with a config-file rotation
// and policy, the audit log, and authentication (an operator, a reader,
// an admin).
type onCallAPI struct {
	t     *testing.T
	m     *itsm.Manager
	close func()
	api   *API
	clk   *apptest.Clock
}

func openOnCallAPI(t *testing.T, dir string, clk *apptest.Clock) *onCallAPI {
	t.Helper()
	db := st.OpenDir(t, dir, nil)
	cfg := itsm.Config{
		CIs:    []itsm.CI{{Name: "checkout", Selector: `{service="checkout"}`, OwnerGroup: "payments", Impact: "high"}},
		Groups: map[string][]string{"payments": {"kim", "lee"}, "payments-lead": {"park"}},
		Rotations: []itsm.Rotation{{Name: "file-rotation", Group: "ops", Participants: []string{"ops1", "ops2"}, Handover: "daily",
			Start: time.Date(2023, 11, 1, 9, 0, 0, 0, time.UTC)}},
		EscalationPolicies: []itsm.EscalationPolicy{{Name: "file-policy", Groups: []string{"ops"},
			Steps: []itsm.EscalationStep{{OnCall: "ops"}}}},
	}
	m, err := itsm.New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	closed := false
	closeAll := func() {
		if !closed {
			closed = true
			m.Close()
			require.NoError(t, db.Close())
		}
	}
	t.Cleanup(closeAll)
	log, err := audit.Open(db, &audit.Options{Now: clk.Now})
	require.NoError(t, err)
	authn, err := auth.New(auth.Config{Users: []auth.User{
		{Name: "kim", TokenSHA256: auth.HashToken("tok-op"), Roles: []auth.Role{auth.Operator}, Tenants: []string{"*"}},
		{Name: "viewer", TokenSHA256: auth.HashToken("tok-read"), Roles: []auth.Role{auth.Read}, Tenants: []string{"*"}},
		{Name: "root", TokenSHA256: auth.HashToken("tok-admin"), Roles: []auth.Role{auth.Admin}, Tenants: []string{"*"}},
	}})
	require.NoError(t, err)
	return &onCallAPI{t: t, m: m, clk: clk, close: closeAll, api: New(Deps{ITSM: m, Audit: log, Now: clk.Now,
		Auth: func() *auth.Authenticator { return authn }})}
}

// do sends a request with a bearer token in tenant acme and decodes the
// answer: its status, its data, and its error.
func (a *onCallAPI) do(token, method, uri, body string) (int, any, string) {
	a.t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000})
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.Set("Authorization", "Bearer "+token)
	ctx.Request.Header.Set("X-Scope-OrgID", "acme")
	if body != "" {
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBodyString(body)
	}
	a.clk.Add(time.Second)
	a.api.Handler(&ctx)
	var out struct {
		Data  any
		Error string
	}
	require.NoError(a.t, json.Unmarshal(ctx.Response.Body(), &out), string(ctx.Response.Body()))
	return ctx.Response.StatusCode(), out.Data, out.Error
}

// TestOnCallAPI: escalation policies and rotations are created, listed,
// changed and deleted through the API, with clear 400s, the operator
// role, the audit log and storage across a restart; /api/v1/oncall
// answers who is on call now or at a time; an alert's incident goes to
// the on-call person and follows the API's policy.
func TestOnCallAPI(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC) // a Monday
	clk := apptest.NewClock(t0)
	a := openOnCallAPI(t, dir, clk)

	rotation := `{"name":"payments-primary","group":"payments","participants":["kim","lee"],"handover":"weekly","weekday":"mon",
		"at":"09:00","timezone":"Asia/Seoul","start":"2025-06-02T09:00:00+09:00"}`
	code, data, msg := a.do("tok-op", "POST", "/api/v1/rotations", rotation)
	require.Equal(t, 201, code, msg)
	require.Equal(t, "api", data.(map[string]any)["source"])
	code, _, _ = a.do("tok-op", "POST", "/api/v1/rotations", rotation)
	require.Equal(t, 409, code, "the name is taken")
	code, _, _ = a.do("tok-read", "POST", "/api/v1/rotations", rotation)
	require.Equal(t, 403, code, "readers do not change rotations")

	policy := `{"name":"payments","groups":["payments"],"steps":[{"after":"0s","oncall":"payments"},{"after":"10m","group":"payments-lead"}]}`
	code, data, msg = a.do("tok-op", "POST", "/api/v1/escalation_policies", policy)
	require.Equal(t, 201, code, msg)
	steps := data.(map[string]any)["steps"].([]any)
	require.Equal(t, "10m", steps[1].(map[string]any)["after"], "delays in Prometheus's syntax, as in the config file")
	code, _, _ = a.do("tok-read", "DELETE", "/api/v1/escalation_policies/payments", "")
	require.Equal(t, 403, code)

	// Bad input: 400, saying what is wrong, and nothing made.
	for _, c := range []struct{ uri, body, want string }{
		{"/api/v1/rotations", `{"name":"x","group":"g","participants":["a"],"timezone":"Mars/Olympus"}`, `timezone "Mars/Olympus"`},
		{"/api/v1/rotations", `{"name":"x","group":"g","participant":["a"]}`, `unknown field "participant"`},
		{"/api/v1/rotations", `{"name":"x","group":"g","participants":["a"],"handover":"hourly"}`, `handover "hourly" (daily, weekly)`},
		{"/api/v1/rotations", `{"name":"x","group":"g","participants":["a"],"at":"25:00"}`, `at "25:00" is not HH:MM`},
		{"/api/v1/rotations", `{"name":"x","group":"g","participants":["a"],"overrides":[{"person":"b","start":"2025-06-03T00:00:00Z","end":"2025-06-02T00:00:00Z"}]}`, "override 1: a person, and start before end"},
		{"/api/v1/rotations", `{"name":"a/b","group":"g","participants":["a"]}`, "without '/'"},
		{"/api/v1/escalation_policies", `{"name":"x","steps":[]}`, "steps: at least one"},
		{"/api/v1/escalation_policies", `{"name":"x","steps":[{"after":"5 minutes","group":"g"}]}`, `"5 minutes"`},
		{"/api/v1/escalation_policies", `{"name":"x","steps":[{"after":"5m","group":"g","person":"p"}]}`, "step 1: name one of group, person or oncall"},
		{"/api/v1/escalation_policies", `{"name":"x","repeat":2,"steps":[{"group":"g"}]}`, "repeat needs repeat_after"},
		{"/api/v1/escalation_policies", `[1,2]`, "body is not an escalation policy"},
	} {
		code, _, msg := a.do("tok-op", "POST", c.uri, c.body)
		require.Equal(t, 400, code, c.body)
		require.Contains(t, msg, c.want, c.body)
	}
	code, _, msg = a.do("tok-op", "PUT", "/api/v1/rotations/file-rotation", `{"group":"ops","participants":["x"]}`)
	require.Equal(t, 409, code, msg)
	require.Contains(t, msg, "in the config file")
	code, _, _ = a.do("tok-op", "PUT", "/api/v1/rotations/payments-primary", `{"name":"other","group":"g","participants":["a"]}`)
	require.Equal(t, 400, code, "the body and the path name different rotations")
	code, _, _ = a.do("tok-op", "DELETE", "/api/v1/escalation_policies/missing", "")
	require.Equal(t, 404, code)

	// Lists: the tenant's own, then the config file's.
	code, data, _ = a.do("tok-read", "GET", "/api/v1/rotations", "")
	require.Equal(t, 200, code)
	require.Len(t, data, 2)
	require.Equal(t, "payments-primary", data.([]any)[0].(map[string]any)["name"])
	require.Equal(t, "config", data.([]any)[1].(map[string]any)["source"])
	code, data, _ = a.do("tok-read", "GET", "/api/v1/escalation_policies", "")
	require.Equal(t, 200, code)
	require.Len(t, data, 2)

	// Who is on call: now (kim: the first turn began at 09:00 KST
	// today), at a time (lee, the next week), and the next hand-overs.
	code, data, msg = a.do("tok-read", "GET", "/api/v1/oncall?group=payments", "")
	require.Equal(t, 200, code, msg)
	s := data.([]any)[0].(map[string]any)
	require.Equal(t, "kim", s["person"])
	require.Equal(t, "2025-06-09T09:00:00+09:00", s["until"])
	next := s["next"].([]any)
	require.Len(t, next, 3)
	require.Equal(t, map[string]any{"at": "2025-06-09T09:00:00+09:00", "from": "kim", "to": "lee"}, next[0])
	code, data, _ = a.do("tok-read", "GET", "/api/v1/oncall?group=payments&at=2025-06-10T00:00:00Z&next=1", "")
	require.Equal(t, 200, code)
	require.Equal(t, "lee", data.([]any)[0].(map[string]any)["person"])
	require.Len(t, data.([]any)[0].(map[string]any)["next"], 1)
	code, data, _ = a.do("tok-read", "GET", "/api/v1/oncall", "")
	require.Equal(t, 200, code)
	require.Len(t, data, 2, "every group's rotations")
	code, _, msg = a.do("tok-read", "GET", "/api/v1/oncall?group=nobody", "")
	require.Equal(t, 404, code)
	require.Contains(t, msg, `group "nobody" has no on-call rotation`)
	code, _, _ = a.do("tok-read", "GET", "/api/v1/oncall?at=yesterday", "")
	require.Equal(t, 400, code)

	// An override through PUT: lee covers kim this afternoon.
	override := `{"group":"payments","participants":["kim","lee"],"weekday":"mon","at":"09:00","timezone":"Asia/Seoul","start":"2025-06-02T09:00:00+09:00",
		"overrides":[{"person":"lee","start":"2025-06-02T10:00:00Z","end":"2025-06-02T12:00:00Z","comment":"kim at the dentist"}]}`
	code, data, msg = a.do("tok-op", "PUT", "/api/v1/rotations/payments-primary", override)
	require.Equal(t, 200, code, msg)
	require.Len(t, data.(map[string]any)["history"], 2)
	_, data, _ = a.do("tok-read", "GET", "/api/v1/oncall?group=payments", "")
	require.Equal(t, "lee", data.([]any)[0].(map[string]any)["person"])
	require.NotNil(t, data.([]any)[0].(map[string]any)["override"])

	// An alert's incident: assigned to the on-call, on the API's policy.
	a.m.HandleAlert(ruler.Event{Tenant: "acme", Alert: alert("CheckoutErrors"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	code, data, _ = a.do("tok-read", "GET", "/api/v1/incidents", "")
	require.Equal(t, 200, code)
	inc := data.([]any)[0].(map[string]any)
	require.Equal(t, "lee", inc["assignee"])
	require.Equal(t, "payments", inc["escalation_policy"])

	// The changes are in the audit log, and survive a restart.
	code, data, _ = a.do("tok-admin", "GET", "/api/v1/audit?action=rotation", "")
	require.Equal(t, 200, code)
	require.Len(t, data, 2)
	e := data.([]any)[0].(map[string]any)
	require.Equal(t, "rotation.change", e["action"])
	require.Equal(t, "kim", e["user"])
	require.Contains(t, e["summary"], "on-call rotation payments-primary changed: group payments: kim, lee, weekly on mon at 09:00 Asia/Seoul, 1 override(s)")
	code, _, _ = a.do("tok-op", "DELETE", "/api/v1/escalation_policies/payments", "")
	require.Equal(t, 200, code)
	_, data, _ = a.do("tok-admin", "GET", "/api/v1/audit?action=policy", "")
	require.Equal(t, []any{"policy.delete", "policy.create"}, []any{data.([]any)[0].(map[string]any)["action"], data.([]any)[1].(map[string]any)["action"]})

	a.close()
	b := openOnCallAPI(t, dir, clk)
	_, data, _ = b.do("tok-read", "GET", "/api/v1/rotations", "")
	require.Len(t, data, 2, "the API's rotation is stored")
	_, data, _ = b.do("tok-read", "GET", "/api/v1/escalation_policies", "")
	require.Len(t, data, 1, "the deleted policy stays deleted")
}
