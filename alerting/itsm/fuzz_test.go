package itsm

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/alerting/ruler"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// FuzzAPI sends arbitrary query strings and bodies (form and JSON) with
// every method to every ITSM endpoint, including actions on an incident
// and a problem that exist: none may panic, every answer has a valid
// status, and every refusal says why.
func FuzzAPI(f *testing.F) {
	db := st.Open(f, nil)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	cfg := testConfig("http://127.0.0.1:1/pd", "http://127.0.0.1:1/sn")
	cfg.Problems.Count = 1
	cfg.Receivers[0].InboundSecret = "in-secret"
	m, err := New(cfg, db, nil, clk.now)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(m.Close)
	m.HandleAlert(ruler.Event{Tenant: "default", Alert: alert("CheckoutErrors"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.now()})
	incs := m.Incidents("default", "", "", "", time.Time{})
	if len(incs) != 1 {
		f.Fatalf("want one incident, have %d", len(incs))
	}
	id, pid := incs[0].ID, incs[0].ProblemID
	paths := []string{"/api/v1/incidents", "/api/v1/incidents/" + id, "/api/v1/incidents/" + id + "/report",
		"/api/v1/problems", "/api/v1/groups", "/api/v1/maintenance", "/api/v1/reports/sla", "/api/v1/itsm/inbound/pd",
		"/api/v1/itsm/inbound/snow", "/api/v1/groups/payments-oncall/members", "/api/v1/groups/payments-oncall/members/kim",
		"/api/v1/problems/" + pid + "/root_cause", "/api/v1/problems/" + pid + "/close", "/api/v1/incidents/nope/ack"}
	for _, a := range []string{"ack", "resolve", "close", "assign", "comment", "priority", "change", "change_close", "events"} {
		paths = append(paths, "/api/v1/incidents/"+id+"/"+a)
	}
	methods := []string{"GET", "POST", "DELETE", "PUT"}
	for _, s := range []struct{ q, body string }{
		{"status=open&priority=P1&ci=checkout&since=2023-11-14T00:00:00Z", ""},
		{"from=1&to=0&format=html", ""},
		{"", "user=kim&assignee=lee&text=hi&priority=P9&reason=x"},
		{"", `{"user":"kim","assignee":"lee","text":"x","priority":"P2","action":"acknowledged","title":"t","ci":"checkout"}`},
		{"", `{"start":"2023-11-14T00:00:00Z","end":"2023-11-13T00:00:00Z","selector":"{a=~\"(\"}","recurrence":"weekly"}`},
		{"since=-1e308&status=%zz", `{"event":{"event_type":"incident.acknowledged","data":{"id":"x"}}}`},
		{"member=", `[1,2,3`},
	} {
		for i := range paths {
			f.Add(uint8(i), uint8(1), s.q, s.body, strings.HasPrefix(s.body, "{"))
		}
	}
	f.Fuzz(func(t *testing.T, which, method uint8, query, body string, asJSON bool) {
		path := paths[int(which)%len(paths)]
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(methods[int(method)%len(methods)])
		ctx.Request.SetRequestURI(path + "?" + query)
		if body != "" {
			if asJSON {
				ctx.Request.Header.SetContentType("application/json")
			} else {
				ctx.Request.Header.SetContentType("application/x-www-form-urlencoded")
			}
			ctx.Request.SetBodyString(body)
		}
		t0 := time.Now()
		m.Handler(&ctx, path)
		if d := time.Since(t0); d > 2*time.Second {
			t.Fatalf("%s took %s for %s %q %q", path, d, ctx.Request.Header.Method(), query, body)
		}
		code := ctx.Response.StatusCode()
		if code < 200 || code > 599 {
			t.Fatalf("status %d for %s %q %q", code, path, query, body)
		}
		if code >= 400 && len(ctx.Response.Body()) == 0 {
			t.Fatalf("%d without a message for %s %q %q", code, path, query, body)
		}
	})
}
