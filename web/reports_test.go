package web

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/audit"
	"github.com/emsdb/tsdb/internal/auth"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestReportSchedulesAPI: report schedules are created, listed, changed
// and deleted per tenant, with clear 400s (bad period, unknown receiver,
// e-mail without SMTP), the operator role and the audit log; one is sent
// by hand to a webhook receiver.
func TestReportSchedulesAPI(t *testing.T) {
	hook := apptest.NewReceiver(t, 0)
	clk := apptest.NewClock(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	db := st.Open(t, nil)
	m, err := itsm.New(itsm.Config{Receivers: []itsm.Receiver{{Name: "hook", Type: "webhook", URL: hook.URL()}}}, db, nil, clk.Now)
	require.NoError(t, err)
	t.Cleanup(m.Close)
	log, err := audit.Open(db, &audit.Options{Now: clk.Now})
	require.NoError(t, err)
	authn, err := auth.New(auth.Config{Users: []auth.User{
		{Name: "kim", TokenSHA256: auth.HashToken("tok-op"), Roles: []auth.Role{auth.Operator}, Tenants: []string{"*"}},
		{Name: "viewer", TokenSHA256: auth.HashToken("tok-read"), Roles: []auth.Role{auth.Read}, Tenants: []string{"*"}},
		{Name: "root", TokenSHA256: auth.HashToken("tok-admin"), Roles: []auth.Role{auth.Admin}, Tenants: []string{"*"}},
	}})
	require.NoError(t, err)
	a := &onCallAPI{t: t, m: m, clk: clk, close: m.Close, api: New(Deps{ITSM: m, Audit: log, Now: clk.Now,
		Auth: func() *auth.Authenticator { return authn }})}

	for body, want := range map[string]string{
		`{"name":"w","period":"year","receivers":["hook"]}`:                  `period "year"`,
		`{"name":"w","period":"week","receivers":["nope"]}`:                  "receiver nope is not configured",
		`{"name":"w","period":"week","email_to":["ops@example.com"]}`:        "email_to needs itsm smtp",
		`{"name":"w","period":"week","timezone":"Mars/Base","receivers":[]}`: "timezone",
		`{"name":"w","period":"week","receivers":["hook"],"colour":"red"}`:   "colour",
	} {
		code, _, msg := a.do("tok-op", "POST", "/api/v1/reports/schedules", body)
		require.Equal(t, 400, code, body)
		require.Contains(t, msg, want, body)
	}
	code, _, _ := a.do("tok-read", "POST", "/api/v1/reports/schedules", `{"name":"w","period":"week","receivers":["hook"]}`)
	require.Equal(t, 403, code, "readers do not schedule reports")
	code, data, msg := a.do("tok-op", "POST", "/api/v1/reports/schedules", `{"name":"weekly","period":"week","at":"09:00","timezone":"Asia/Seoul","receivers":["hook"]}`)
	require.Equal(t, 201, code, msg)
	require.Equal(t, "api", data.(map[string]any)["source"])
	code, _, _ = a.do("tok-op", "PUT", "/api/v1/reports/schedules/weekly", `{"period":"month","receivers":["hook"]}`)
	require.Equal(t, 200, code)
	code, data, _ = a.do("tok-read", "GET", "/api/v1/reports/schedules", "")
	require.Equal(t, 200, code)
	list := data.([]any)
	require.Len(t, list, 1)
	require.Equal(t, "month", list[0].(map[string]any)["schedule"].(map[string]any)["period"])

	code, data, msg = a.do("tok-op", "POST", "/api/v1/reports/schedules/weekly/send", "")
	require.Equal(t, 200, code, msg)
	require.Equal(t, "2026-11-01T00:00:00Z", data.(map[string]any)["from"])
	require.Len(t, hook.Got(), 1)
	code, _, _ = a.do("tok-op", "POST", "/api/v1/reports/schedules/nope/send", "")
	require.Equal(t, 404, code)

	code, _, _ = a.do("tok-op", "DELETE", "/api/v1/reports/schedules/weekly", "")
	require.Equal(t, 200, code)
	code, data, _ = a.do("tok-admin", "GET", "/api/v1/audit?action=report", "")
	require.Equal(t, 200, code)
	var actions []string
	for _, e := range data.([]any) {
		actions = append(actions, e.(map[string]any)["action"].(string))
	}
	require.Subset(t, actions, []string{"report.create", "report.change", "report.send", "report.delete"})
}
