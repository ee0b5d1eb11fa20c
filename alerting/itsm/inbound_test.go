package itsm

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/alerting/ruler"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func sign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

// post calls the ITSM handler and decodes the JSON answer.
func post(t *testing.T, m *Manager, uri, body string, headers map[string]string) (int, map[string]any) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetContentType("application/json")
	for k, v := range headers {
		ctx.Request.Header.Set(k, v)
	}
	ctx.Request.SetBodyString(body)
	m.Handler(&ctx, string(ctx.Path()))
	var out map[string]any
	require.NoError(t, json.Unmarshal(ctx.Response.Body(), &out), string(ctx.Response.Body()))
	return ctx.Response.StatusCode(), out
}

func TestPropagationGroupsAndRouting(t *testing.T) {
	prod, all := newReceiver(t, 0), newReceiver(t, 0)
	cfg := testConfig(newReceiver(t, 0).srv.URL, newReceiver(t, 0).srv.URL)
	cfg.CIs[0].Propagation = []string{"payments-lead", "head-of-payments"}
	cfg.Groups = map[string][]string{"payments-oncall": {"kim", "lee"}, "payments-lead": {"park"}, "head-of-ops": {"choi"}}
	cfg.Receivers = []Receiver{
		{Name: "prod", Type: "webhook", URL: prod.srv.URL, Match: `{env="prod",priority=~"P1|P2"}`},
		{Name: "all", Type: "webhook", URL: all.srv.URL},
	}
	db := st.Open(t, nil)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m, err := New(cfg, db, nil, clk.now)
	require.NoError(t, err)

	// Membership changes through the API, per tenant, before the incident.
	code, out := post(t, m, "/api/v1/groups/head-of-payments/members", `{"member":"jung"}`, map[string]string{"X-Scope-OrgID": "acme"})
	require.Equal(t, 200, code, out)
	code, _ = post(t, m, "/api/v1/groups/payments-oncall/members", `{"member":"han"}`, map[string]string{"X-Scope-OrgID": "acme"})
	require.Equal(t, 200, code)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("DELETE")
	ctx.Request.SetRequestURI("/api/v1/groups/payments-oncall/members/lee")
	ctx.Request.Header.Set("X-Scope-OrgID", "acme")
	m.Handler(&ctx, string(ctx.Path()))
	require.Equal(t, 200, ctx.Response.StatusCode(), string(ctx.Response.Body()))
	require.Equal(t, []string{"kim", "han"}, m.Groups("acme")["payments-oncall"])
	require.Equal(t, []string{"kim", "lee"}, m.Groups("other")["payments-oncall"], "other tenants keep the configured members")

	a := alert("CheckoutErrors")
	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: a, From: ruler.StatePending, To: ruler.StateFiring, At: clk.now()})
	inc := m.Incidents("acme", "", "", "", time.Time{})[0]
	require.Equal(t, []string{"payments-oncall", "payments-lead", "head-of-payments"}, inc.PropagatedTo)
	require.Equal(t, map[string][]string{"payments-oncall": {"kim", "han"}, "payments-lead": {"park"}, "head-of-payments": {"jung"}}, inc.Recipients)

	// Escalation reaches a new group, which is recorded with its members.
	clk.add(31 * time.Minute)
	m.Tick()
	inc, _ = m.Incident("acme", inc.ID)
	require.Equal(t, []string{"payments-oncall", "payments-lead", "head-of-payments", "head-of-ops"}, inc.PropagatedTo,
		"payments-lead already had it; head-of-ops is new")
	require.Equal(t, []string{"choi"}, inc.Recipients["head-of-ops"])

	// The label route: this alert has no env=prod, so only "all" gets it.
	require.Eventually(t, func() bool { return len(all.got()) == 4 }, 10*time.Second, 20*time.Millisecond, "opened, two escalations, SLA breach")
	require.Empty(t, prod.got())
	b := labelsWith(a, "env", "prod")
	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: b, From: ruler.StatePending, To: ruler.StateFiring, At: clk.now()})
	require.Eventually(t, func() bool { return len(prod.got()) == 1 }, 10*time.Second, 20*time.Millisecond)

	// Memberships survive a restart.
	m.Close()
	m2, err := New(cfg, db, nil, clk.now)
	require.NoError(t, err)
	defer m2.Close()
	require.Equal(t, []string{"kim", "han"}, m2.Groups("acme")["payments-oncall"])

	code, out = post(t, m2, "/api/v1/groups/a/members", `{}`, nil)
	require.Equal(t, 400, code, out)
	cfg.Receivers[0].Match = `{env=~"(}`
	require.ErrorContains(t, cfg.Validate(), "match")
}

func labelsWith(a *ruler.Alert, k, v string) *ruler.Alert {
	m := a.Labels.Map()
	m[k] = v
	return &ruler.Alert{Labels: labels.FromMap(m)}
}

func TestInboundWebhooks(t *testing.T) {
	pd, j := newReceiver(t, 0), newJira(t)
	cfg := testConfig(pd.srv.URL, newReceiver(t, 0).srv.URL)
	cfg.Receivers = []Receiver{
		{Name: "pd", Type: "pagerduty", URL: pd.srv.URL, RoutingKey: "rk", InboundSecret: "pd-in"},
		{Name: "jira", Type: "jira", URL: j.srv.URL, Project: "OPS", InboundSecret: "jira-in"},
		{Name: "snow", Type: "servicenow", URL: newReceiver(t, 0).srv.URL, InboundSecret: "snow-in"},
		{Name: "plain", Type: "webhook", URL: newReceiver(t, 0).srv.URL},
	}
	db := st.Open(t, nil)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m, err := New(cfg, db, nil, clk.now)
	require.NoError(t, err)
	defer m.Close()
	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: alert("CheckoutErrors"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.now()})
	inc := m.Incidents("acme", "", "", "", time.Time{})[0]
	require.Eventually(t, func() bool { return len(j.got()) == 1 && len(pd.got()) == 1 }, 10*time.Second, 20*time.Millisecond)

	// PagerDuty V3: acknowledged by Kim, signed.
	body := `{"event":{"id":"01","event_type":"incident.acknowledged","resource_type":"incident","agent":{"summary":"Kim Minji","type":"user_reference"},` +
		`"data":{"id":"Q1","type":"incident","incident_key":"acme/` + inc.ID + `","status":"acknowledged"}}}`
	code, out := post(t, m, "/api/v1/itsm/inbound/pd", body, map[string]string{"X-PagerDuty-Signature": "v1=deadbeef"})
	require.Equal(t, 401, code, "a wrong signature is refused: %s", out)
	got, _ := m.Incident("acme", inc.ID)
	require.Equal(t, StatusOpen, got.Status, "and changes nothing")
	code, out = post(t, m, "/api/v1/itsm/inbound/pd", body, map[string]string{"X-PagerDuty-Signature": "v1=0000, v1=" + sign("pd-in", body)})
	require.Equal(t, 200, code, out)
	got, _ = m.Incident("acme", inc.ID)
	require.Equal(t, StatusAcknowledged, got.Status)
	last := got.Timeline[len(got.Timeline)-1]
	require.Equal(t, "Kim Minji", last.Who)
	require.Equal(t, "(via pd)", last.Detail)
	// Resent: skipped, not an error.
	code, out = post(t, m, "/api/v1/itsm/inbound/pd", body, map[string]string{"X-PagerDuty-Signature": "v1=" + sign("pd-in", body)})
	require.Equal(t, 200, code)
	require.Len(t, out["data"].(map[string]any)["skipped"], 1)

	// Jira: the ack went to Jira as a comment but not back to PagerDuty.
	require.Eventually(t, func() bool { return len(j.got()) == 2 }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	require.Len(t, pd.got(), 1, "the origin does not get its own change back")

	// Jira: assigned and moved to Done, with a comment, signed like Jira Cloud.
	jb := `{"webhookEvent":"jira:issue_updated","user":{"displayName":"Lee"},"issue":{"key":"OPS-1","fields":{}},` +
		`"changelog":{"items":[{"field":"assignee","toString":"Park"},{"field":"status","fromString":"In Progress","toString":"Done"}]},` +
		`"comment":{"body":"rolled back the deploy","author":{"displayName":"Lee"}}}`
	code, out = post(t, m, "/api/v1/itsm/inbound/jira", jb, map[string]string{"X-Hub-Signature": "sha256=" + sign("jira-in", jb)})
	require.Equal(t, 200, code, out)
	require.Len(t, out["data"].(map[string]any)["applied"], 3, out)
	got, _ = m.Incident("acme", inc.ID)
	require.Equal(t, StatusResolved, got.Status)
	require.Equal(t, "Park", got.Assignee)

	// ServiceNow with a bearer token: closed.
	sb := `{"correlation_id":"acme/` + inc.ID + `","state":"7","sys_updated_by":"admin"}`
	code, _ = post(t, m, "/api/v1/itsm/inbound/snow", sb, map[string]string{"Authorization": "Bearer wrong"})
	require.Equal(t, 401, code)
	code, out = post(t, m, "/api/v1/itsm/inbound/snow", sb, map[string]string{"Authorization": "Bearer snow-in"})
	require.Equal(t, 200, code, out)
	got, _ = m.Incident("acme", inc.ID)
	require.Equal(t, StatusClosed, got.Status)

	// Receivers without an inbound secret have no inbound webhook; bad
	// bodies are 400.
	code, _ = post(t, m, "/api/v1/itsm/inbound/plain", `{}`, nil)
	require.Equal(t, 404, code)
	code, _ = post(t, m, "/api/v1/itsm/inbound/snow", `{"state":`, map[string]string{"Authorization": "Bearer snow-in"})
	require.Equal(t, 400, code)
}
