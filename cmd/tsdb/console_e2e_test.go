package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/auth"
)

// artifactDir is where the console tests leave their screenshots:
// $ARTIFACTS_DIR/console, or artifacts/console at the repository root.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	dir = filepath.Join(dir, "console")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// consoleServer starts tsdb with auth, ITSM, a KPI drifting towards its
// target, a rule that fires and an hour of node data.
func consoleServer(t *testing.T) (*apptest.Proc, map[string]string) {
	dir := t.TempDir()
	pw, err := auth.HashPassword("kim-pass")
	require.NoError(t, err)
	creds := map[string]string{"operator": "kim:kim-pass", "reader": "reader-token", "beta": "beta-token", "admin": "root-token"}
	cfg := filepath.Join(dir, "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
auth:
  users:
    - {name: kim, username: kim, password_hash: '%s', roles: [operator], tenants: [default]}
    - {name: reader, token_sha256: %s, roles: [read], tenants: [default]}
    - {name: beta-reader, token_sha256: %s, roles: [read], tenants: [beta]}
    - {name: admin, token_sha256: %s, roles: [admin], tenants: ["*"]}
itsm:
  cis:
    - {name: web, kind: service, selector: '{service="web"}', owner_group: web-oncall, impact: high}
  sla:
    P1: {acknowledge: 15m, resolve: 4h}
  groups:
    web-oncall: [kim]
  rotations:
    - {name: web-primary, group: web-oncall, participants: [kim], handover: daily, at: "09:00", timezone: Asia/Seoul}
  escalation_policies:
    - {name: web, groups: [web-oncall], steps: [{after: 1h, oncall: web-oncall}]}
  receivers: []
snmp:
  interval: 2s
  timeout: 300ms
  targets:
    - {name: dead-switch, address: '%s', community: public, modules: [system]}
kpis:
  - name: web_success
    expr: web_success_ratio
    target: 0.95
    direction: above
    interval: 2s
    step: 1m
    horizon: 2h
    history: 2h
    seasonality: none
    labels: {service: web}
  - name: orders_shipped
    expr: orders_shipped_ratio
    target: 0.9
    direction: above
    interval: 2s
    step: 1m
    horizon: 1h
    history: 1h
    seasonality: none
`, pw, auth.HashToken("reader-token"), auth.HashToken("beta-token"), auth.HashToken("root-token"), apptest.FreeUDPPort(t))), 0o644))
	rules := filepath.Join(dir, "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`groups:
  - name: web
    interval: 1s
    rules:
      - alert: WebHighLoad
        expr: node_load1{service="web"} > 1
        labels: {severity: critical}
        annotations: {summary: "load {{ $value }} on {{ $labels.instance }}"}
`), 0o644))
	db := apptest.StartTSDB(t, apptest.Build(t), filepath.Join(dir, "data"), "--config.file", cfg, "--rules", rules)

	// An hour of data, a minute apart, ending now.
	var b strings.Builder
	now := time.Now()
	for i := 60; i >= 0; i-- {
		ts := now.Add(-time.Duration(i) * time.Minute).UnixMilli()
		for h, host := range []string{"web-1", "web-2", "web-3"} {
			fmt.Fprintf(&b, "node_load1{service=\"web\",instance=%q} %g %d\n", host, 0.5+float64(h)+0.4*math.Sin(float64(i)/7), ts)
		}
		fmt.Fprintf(&b, "web_success_ratio{service=\"web\"} %g %d\n", 0.995-0.0006*float64(60-i), ts) // drifting to 0.95
	}
	req, _ := http.NewRequest("POST", db.URL()+"/api/v1/import/prometheus", strings.NewReader(b.String()))
	req.Header.Set("Authorization", "Bearer root-token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode, string(body))
	// A remote-write sender, for the sources table.
	code, msg, err := apptest.RemoteWrite(context.Background(), http.DefaultClient, db.URL()+"/api/v1/write", &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "edge"}},
			Samples: []prompb.Sample{{Timestamp: now.UnixMilli(), Value: 1}}}}}, "Authorization", "Bearer root-token")
	require.NoError(t, err)
	require.Equal(t, 204, code, msg)
	// The alert fires (web-2 and web-3 are over 1) and becomes an incident;
	// the KPI is evaluated.
	require.Eventually(t, func() bool {
		return len(incidents(t, db, "root-token")) > 0
	}, 30*time.Second, 200*time.Millisecond, "an incident opens")
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest("GET", db.URL()+"/api/v1/kpis/web_success", nil)
		req.Header.Set("Authorization", "Bearer root-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), `"forecast"`)
	}, 30*time.Second, 200*time.Millisecond, "the KPI is evaluated")
	return db, creds
}

func incidents(t *testing.T, db *apptest.Proc, token string) []map[string]any {
	req, _ := http.NewRequest("GET", db.URL()+"/api/v1/incidents", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Data []map[string]any `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Data
}

// browser starts headless Debian Chromium at the given window size.
func browser(t *testing.T, width, height int) context.Context {
	exe := apptest.NeedBinary(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(width, height), chromedp.Flag("disable-gpu", true), chromedp.Flag("lang", "en-US"))
	tctx, cancel0 := context.WithTimeout(context.Background(), 3*time.Minute) // the whole browser
	t.Cleanup(cancel0)
	actx, cancel := chromedp.NewExecAllocator(tctx, opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	require.NoError(t, chromedp.Do(ctx), "start chromium") // the browser lives as long as this first call's context
	return ctx
}

// page is a browser tab on the console; its methods fail the test.
type page struct {
	t   *testing.T
	ctx context.Context
}

// do runs the steps in order, each within 30 s.
func (p page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	for i, s := range steps {
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		err := chromedp.Do(ctx, s)
		cancel()
		if err != nil {
			if png, serr := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)); serr == nil {
				_ = os.WriteFile(filepath.Join(artifactDir(p.t), "failed.png"), png, 0o644)
			}
			p.t.Fatalf("step %d of %d: %v (screenshot in failed.png)", i+1, len(steps), err)
		}
	}
}

func (p page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(p.t, err, sel)
	return s
}

func (p page) count(sel string) int {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	require.NoError(p.t, err, sel)
	return n
}

func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }
func keys(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), v)
}

// waitText waits until the element's text contains s.
func waitText(sel, s string) chromedp.Action[chromedp.Void] {
	return waitJS(fmt.Sprintf("(document.querySelector(%q)?.innerText ?? '').includes(%q)", sel, s))
}

// waitJS waits until the JavaScript expression js is true.
func waitJS(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			ok, err := chromedp.Evaluate[bool](js)(ctx, t)
			if err != nil || ok {
				return err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("never true: %s: %w", js, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// loaded waits until the page named has rendered its data.
func loaded(name string) chromedp.Action[chromedp.Void] {
	return visible(fmt.Sprintf(`body[data-page=%q][data-loaded="1"]`, name))
}

func (p page) screenshot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	require.NoError(p.t, err)
	require.NoError(p.t, os.WriteFile(filepath.Join(artifactDir(p.t), name), png, 0o644))
}

// login signs in through the console's form: a bearer token, or user:password.
func (p page) login(base, token, userPass string) {
	p.t.Helper()
	p.do(chromedp.Navigate(base+"/console/"), visible(`[data-testid="login-submit"]`))
	if token != "" {
		p.do(keys(`[data-testid="login-token"]`, token))
	} else {
		u, pw, _ := strings.Cut(userPass, ":")
		p.do(keys(`[data-testid="login-user"]`, u), keys(`[data-testid="login-password"]`, pw))
	}
	p.do(click(`[data-testid="login-submit"]`), loaded("overview"))
}

// TestConsole drives the console in headless Chromium on a live server:
// the overview with data, acknowledging and resolving an incident through
// the UI, a query with its chart, the other pages, Korean labels, a phone
// screen; and a read-only user and another tenant's user are refused or
// see nothing. Screenshots go to artifacts/console.
func TestConsole(t *testing.T) {
	db, creds := consoleServer(t)
	base := db.URL()
	p := page{t, browser(t, 1400, 900)}
	p.login(base, "", creds["operator"])

	// Overview: incidents by priority, firing alerts, KPIs, ingest, sources.
	p.do(visible(`[data-testid="overview-incidents"]`), visible(`[data-testid="overview-sources"]`))
	n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(p.text(`[data-testid="active-series"]`)), ",", ""))
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 4, "three load series, the KPI's, and what rules and KPIs write")
	require.Contains(t, p.text(`[data-testid="overview-incidents"]`), "P1")
	require.Contains(t, p.text(`[data-testid="overview-alerts"]`), "WebHighLoad")
	require.Contains(t, p.text(`[data-testid="overview-kpis"]`), "web_success")
	sources := p.text(`[data-testid="overview-sources"]`)
	require.Contains(t, sources, "dead-switch", "the SNMP target, down")
	require.Contains(t, sources, "127.0.0.1", "the remote-write sender")
	p.screenshot("01-overview.png")

	// The incident: acknowledge, comment, resolve, through the UI.
	id := incidents(t, db, "root-token")[0]["id"].(string)
	row := fmt.Sprintf(`[data-incident-id=%q]`, id)
	status := func(s string) chromedp.Action[chromedp.Void] {
		return visible(fmt.Sprintf(`[data-testid="incident-status"][data-status=%q]`, s))
	}
	p.do(click(`a[data-nav="incidents"]`), loaded("incidents"), visible(row))
	p.screenshot("02-incidents.png")
	p.do(click(row), status("open"), waitText(`[data-testid="incident-oncall"]`, "kim"))
	p.do(click(`button[data-action="ack"]`), status("acknowledged"),
		click(`button[data-action="comment"]`), visible(`[data-testid="action-input"]`),
		keys(`[data-testid="action-input"]`, "load balancer drained"), click(`[data-testid="action-submit"]`),
		waitText("body", "load balancer drained"))
	p.screenshot("03-incident-acknowledged.png")
	// Resolve offers the cause: root cause, resolution, prevention.
	p.do(click(`button[data-action="resolve"]`), visible(`[data-testid="closure-root_cause"]`),
		keys(`[data-testid="closure-root_cause"]`, "worn disk"), keys(`[data-testid="closure-resolution"]`, "disk replaced"),
		click(`[data-testid="closure-submit"]`), status("resolved"), waitText("body", "worn disk"))
	p.screenshot("04-incident-resolved.png")
	var after map[string]any
	for _, x := range incidents(t, db, "root-token") {
		if x["id"] == id {
			after = x
		}
	}
	require.Equal(t, "resolved", after["status"], "the UI's actions reached the API")
	require.Equal(t, "worn disk", after["root_cause"])
	require.Equal(t, "disk replaced", after["resolution"])
	acted := map[string]string{} // what → who
	for _, e := range after["timeline"].([]any) {
		ev := e.(map[string]any)
		acted[ev["what"].(string)] = ev["who"].(string)
	}
	require.Equal(t, "kim", acted["acknowledged"], "the timeline names the signed-in user: %v", acted)
	require.Equal(t, "kim", acted["comment"], "%v", acted)
	raw, _ := json.Marshal(after)
	require.Contains(t, string(raw), "load balancer drained")

	// A manual incident from the board, then a priority override with a reason.
	p.do(click(`a[data-nav="incidents"]`), loaded("incidents"), click(`[data-testid="new-incident"]`),
		keys(`[data-testid="new-title"]`, "Disk array degraded"), chromedp.SetValue(chromedp.CSS(`[data-testid="new-priority"]`), "P3"),
		keys(`[data-testid="new-ci"]`, "web"), click(`[data-testid="new-submit"]`), loaded("incident"), status("open"),
		waitText("body", "Disk array degraded"),
		click(`button[data-action="priority"]`), chromedp.SetValue(chromedp.CSS(`[data-testid="priority-select"]`), "P1"),
		keys(`[data-testid="action-input"]`, "customer-facing"), click(`[data-testid="action-submit"]`),
		waitText("body", "customer-facing"))
	p.screenshot("04b-manual-incident.png")
	var manual map[string]any
	for _, x := range incidents(t, db, "root-token") {
		if x["title"] == "Disk array degraded" {
			manual = x
		}
	}
	require.NotNil(t, manual, "the board's form opened an incident")
	require.Equal(t, "P1", manual["priority"], "the override reached the API")
	require.Equal(t, "web", manual["ci"])
	require.Equal(t, "web-oncall", manual["owner_group"], "the CI's owner group")

	// Explore: a query, its chart and table.
	p.do(click(`a[data-nav="explore"]`), visible(`[data-testid="query-input"]`),
		keys(`[data-testid="query-input"]`, `node_load1{service="web"}`), click(`[data-testid="query-run"]`),
		loaded("explore"), visible(`[data-testid="query-chart"] canvas`))
	require.Equal(t, 3, p.count(`[data-testid="query-table"] tbody tr`), "one table row per series")
	p.screenshot("05-explore.png")

	// Every other page renders without an error.
	for _, name := range []string{"problems", "cis", "oncall", "sla", "kpis", "rules"} {
		p.do(click(fmt.Sprintf(`a[data-nav=%q]`, name)), loaded(name))
		require.Zero(t, p.count(`[data-testid="error"]:not(:empty)`), "%s shows an error", name)
		p.screenshot("06-" + name + ".png")
	}
	// The CI tree lists the configured CI.
	p.do(click(`a[data-nav="cis"]`), loaded("cis"), waitText(`[data-testid="ci-tree"]`, "web"))
	// On call: who, for the owner group, and the policy that pages them.
	p.do(click(`a[data-nav="oncall"]`), loaded("oncall"), waitText(`[data-testid="oncall-now"]`, "kim"),
		waitText(`[data-testid="oncall-policies"]`, "web-oncall"))
	// A KPI whose evaluations fail says why, not "not evaluated yet".
	p.do(click(`a[data-nav="kpis"]`), loaded("kpis"), visible(`[data-kpi-failure="orders_shipped"]`))
	require.Contains(t, p.text(`[data-kpi-failure="orders_shipped"]`), "no data")
	// A KPI: history, forecast band, target and ETA drawn.
	p.do(click(`a[data-nav="kpis"]`), loaded("kpis"), click(`a[href="#/kpis/web_success"]`), loaded("kpi"),
		visible(`canvas`))
	require.Contains(t, p.text("body"), "web_success")
	p.screenshot("06-kpi-web_success.png")

	// Korean labels, then the light theme.
	p.do(click(`a[data-nav="overview"]`), loaded("overview"), click(`[data-testid="lang-toggle"]`),
		waitJS(`document.documentElement.lang === "ko"`), loaded("overview"))
	require.Contains(t, p.text(`a[data-nav="incidents"]`), "인시던트")
	p.screenshot("07-overview-ko.png")
	p.do(click(`[data-testid="theme-toggle"]`))
	p.screenshot("08-overview-light.png")

	wallScreen(t, db, base, creds, id)

	// A read-only user sees incidents, with the actions disabled and saying
	// why; had the buttons been enabled, the server refuses (as the 403 of
	// the same request from the page shows).
	r := page{t, browser(t, 1400, 900)}
	r.login(base, creds["reader"], "")
	r.do(chromedp.Navigate(base+"/console/#/incidents/"+id), loaded("incident"))
	require.Equal(t, 6, r.count(`button[data-action]:disabled`), "ack, assign, comment, resolve, close, priority")
	r.do(click(`a[data-nav="incidents"]`), loaded("incidents"))
	require.Zero(t, r.count(`[data-testid="new-incident"]`), "no new-incident button without the operator role")
	refusal, err := chromedp.Run(r.ctx, chromedp.Evaluate[string](`import("./api.js").then((api) => api.post("/api/v1/incidents/`+id+`/close").then(() => "accepted", (e) => e.status + " " + e.message))`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Contains(t, refusal, "403 user reader lacks the operator role")
	require.Zero(t, r.count(`a[data-nav="audit"]`), "the audit log is for admins")

	// An admin reads who did what: the operator's acknowledgement and
	// resolution of the incident, filtered by user.
	ad := page{t, browser(t, 1400, 900)}
	ad.login(base, creds["admin"], "")
	ad.do(click(`a[data-nav="audit"]`), loaded("audit"), visible(`[data-testid="audit-table"]`))
	require.Contains(t, ad.text(`[data-testid="audit-table"]`), "incident.ack")
	require.Contains(t, ad.text(`[data-testid="audit-table"]`), "kim")
	ad.screenshot("17-audit.png")
	ad.hash("#/audit?user=nobody")
	require.Eventually(t, func() bool {
		return ad.count(`[data-testid="audit-table"]`) == 0 && strings.Contains(ad.text("body"), "No recorded change matches the filter.")
	}, 10*time.Second, 100*time.Millisecond, "filtered by user")

	// Usage: the admin sees every tenant's month so far, with the daily
	// trend; a tenant's reader sees its own tenant only.
	ad.do(click(`a[data-nav="usage"]`), loaded("usage"), visible(`[data-testid="usage-table"]`),
		visible(`[data-testid="usage-chart"] canvas`))
	require.Equal(t, 1, ad.count(`[data-usage-tenant="default"]`), "the load's tenant")
	require.GreaterOrEqual(t, ad.count(`[data-usage-tenant]`), 2, "every tenant: default and the self-monitoring one")
	require.Zero(t, ad.count(`[data-testid="error"]:not(:empty)`))
	ad.screenshot("18-usage.png")
	r.do(click(`a[data-nav="usage"]`), loaded("usage"), visible(`[data-testid="usage-table"]`))
	require.Equal(t, []string{"default"}, r.strings(`[data-usage-tenant]`, "el.dataset.usageTenant"))

	// Another tenant's reader sees none of it.
	b := page{t, browser(t, 1400, 900)}
	b.login(base, creds["beta"], "")
	require.NotContains(t, b.text("body"), "WebHighLoad")
	b.do(click(`a[data-nav="incidents"]`), loaded("incidents"))
	require.Zero(t, b.count(`[data-incident-id]`), "tenant beta sees no incident of the default tenant")

	// A phone: nothing wider than the screen but the tables, which scroll
	// inside their frames; wall mode, the board, the cardinality explorer
	// and the SLA dates on it.
	ph := page{t, browser(t, 400, 850)}
	ph.do(chromedp.EmulateViewport(400, 850, chromedp.EmulateMobile)) // headless windows are 500 px at least
	ph.login(base, "", creds["operator"])
	require.Equal(t, []string{"400"}, ph.strings("html", "innerWidth"))
	require.Empty(t, ph.overflow(false), "the phone's overview is wider than the screen")
	ph.screenshot("09-overview-phone.png")
	ph.hash("#/wall?every=60")
	ph.do(loaded("wall"), visible(`[data-testid="wall-clock"]`))
	require.Empty(t, ph.overflow(false), "wall mode on a phone")
	ph.screenshot("09b-wall-phone.png")
	ph.hash("#/incidents")
	ph.do(loaded("incidents"))
	require.Empty(t, ph.overflow(false), "the board on a phone")
	ph.screenshot("09c-incidents-phone.png")
	ph.hash("#/explore")
	ph.do(loaded("explore"), visible(`[data-testid="card-pair"] table`))
	require.Empty(t, ph.cardinalityHidden(), "the cardinality counts on a phone")
	require.Empty(t, ph.overflow(false), "explore on a phone")
	ph.screenshot("09d-explore-phone.png")
	ph.hash("#/sla")
	ph.do(loaded("sla"))
	require.Empty(t, ph.overflow(false), "the SLA page on a phone")
	ph.screenshot("09e-sla-phone.png")
}

// wallScreen checks the console on a 1920×1080 wall screen: the overview
// uses the width (no table scrolls sideways, nothing below the fold), wall
// mode hides the navigation and rotates, the incident board puts the most
// pressing open incident first and leaves the incident resolved earlier
// (resolved) out until asked, the cardinality explorer's counts are in view and named for
// what they count, and the SLA report takes and shows ISO dates.
func wallScreen(t *testing.T, db *apptest.Proc, base string, creds map[string]string, resolved string) {
	// A P4 incident besides the P1 (manual, raised) and the P2 (KPI
	// forecast): the board's order must be by priority before age.
	apiPost(t, db, "root-token", "/api/v1/incidents", url.Values{"title": {"Printer out of toner"}, "priority": {"P4"}})

	w := page{t, browser(t, 1920, 1080)}
	w.do(chromedp.EmulateViewport(1920, 1080)) // the window's size less a headless browser's bars
	w.login(base, "", creds["operator"])
	require.Equal(t, []string{"1920×1080"}, w.strings("html", "innerWidth + '×' + innerHeight"), "the window is a wall screen's")
	w.do(visible(`[data-testid="overview-kpis"] table`), visible(`[data-testid="overview-sources"] table`))
	require.Empty(t, w.overflow(true), "the overview at 1920×1080 scrolls")
	w.screenshot("10-overview-1920.png")

	// The board: open and acknowledged incidents by priority, then age; the
	// resolved one only with the box ticked.
	var want []string
	var open []map[string]any
	for _, x := range incidents(t, db, "root-token") {
		if st := x["status"]; st != "resolved" && st != "closed" {
			open = append(open, x)
		}
	}
	openedAt := func(x map[string]any) time.Time {
		at, err := time.Parse(time.RFC3339Nano, x["opened_at"].(string))
		require.NoError(t, err)
		return at
	}
	sort.SliceStable(open, func(i, j int) bool {
		pi, pj := open[i]["priority"].(string), open[j]["priority"].(string)
		if pi != pj {
			return pi < pj // "P1" < "P2" < …
		}
		return openedAt(open[i]).Before(openedAt(open[j]))
	})
	for _, x := range open {
		want = append(want, x["id"].(string))
	}
	require.GreaterOrEqual(t, len(want), 2)
	w.do(click(`a[data-nav="incidents"]`), loaded("incidents"))
	require.Equal(t, want, w.strings(`[data-incident-id]`, "el.dataset.incidentId"), "the board's order: priority, then age")
	require.Zero(t, w.count(fmt.Sprintf(`[data-incident-id=%q]`, resolved)), "the resolved incident is not shown by default")
	require.Contains(t, w.text(`[data-testid="incident-count"]`), "1 resolved or closed not shown")
	require.Empty(t, w.overflow(true), "the board at 1920×1080")
	w.screenshot("11-incidents-1920.png")
	w.do(click(`[data-testid="show-closed"]`), waitJS(`location.hash.includes("closed=1")`), loaded("incidents"),
		visible(fmt.Sprintf(`[data-incident-id=%q]`, resolved)))
	rows := w.strings(`[data-incident-id]`, "el.dataset.status")
	require.Equal(t, "resolved", rows[len(rows)-1], "resolved after the open ones: %v", rows)
	w.screenshot("11b-incidents-with-closed-1920.png")

	// The cardinality explorer: every count column in view and named.
	w.do(click(`a[data-nav="explore"]`), loaded("explore"), visible(`[data-testid="card-pair"] table`))
	for block, head := range map[string]string{"card-metric": "Series", "card-label": "Values", "card-pair": "Series", "card-memory": "Bytes"} {
		require.Equal(t, head, strings.TrimSpace(w.text(fmt.Sprintf(`[data-testid=%q] th:nth-child(2)`, block))), block)
	}
	require.Empty(t, w.cardinalityHidden(), "cardinality counts out of view")
	require.Empty(t, w.overflow(false), "explore at 1920×1080")
	w.screenshot("12-explore-cardinality-1920.png")

	// SLA dates: typed and shown as ISO, a wrong one refused with the reason.
	w.do(click(`a[data-nav="sla"]`), loaded("sla"))
	from := w.strings(`[data-testid="sla-from"]`, "el.type + ' ' + el.value")[0]
	require.Regexp(t, `^text \d{4}-\d{2}-\d{2} \d{2}:\d{2}$`, from, "a text input holding an ISO date, not a locale's date picker")
	w.do(chromedp.SetValue(chromedp.CSS(`[data-testid="sla-from"]`), "03/01/2025"), click(`[data-testid="sla-apply"]`),
		visible(`[data-testid="sla-from"][aria-invalid="true"]`))
	require.Contains(t, w.text(`[role="alert"]:not([hidden])`), "YYYY-MM-DD HH:MM")
	w.do(chromedp.SetValue(chromedp.CSS(`[data-testid="sla-from"]`), "2025-03-01 08:00"),
		chromedp.SetValue(chromedp.CSS(`[data-testid="sla-to"]`), "2025-03-31 17:30"), click(`[data-testid="sla-apply"]`),
		waitText(".page-sla", "2025-03-01 08:00:00"), loaded("sla"))
	require.Contains(t, w.text(`.page-sla`), "2025-03-31 17:30:00", "the report's period, as typed")
	require.Equal(t, []string{"2025-03-01 08:00", "2025-03-31 17:30"}, w.strings(`[data-testid^="sla-"][type="text"]`, "el.value"))
	w.screenshot("13-sla-iso-1920.png")

	// Wall mode: from the header's link; no navigation, a clock and the
	// tenant; the next page comes by itself; Esc leaves.
	w.do(click(`a[data-nav="overview"]`), loaded("overview"), click(`[data-testid="wall-link"]`), loaded("wall"))
	w.hash("#/wall?every=5") // quicker than the default 20 s
	w.do(loaded("wall"), waitJS(`document.body.dataset.wallPage === "overview"`), visible(`[data-testid="overview-sources"] table`))
	hidden := w.strings("#top", "getComputedStyle(el).display + ' ' + [...el.querySelectorAll('a[data-nav]')].filter((a) => a.offsetParent).length")
	require.Equal(t, []string{"none 0"}, hidden, "wall mode shows no navigation")
	require.Regexp(t, `^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`, w.text(`[data-testid="wall-clock"]`))
	require.Contains(t, w.text(`[data-testid="wall-tenant"]`), "default")
	require.Empty(t, w.overflow(true), "wall mode's overview at 1920×1080")
	w.screenshot("14-wall-overview.png")
	w.do(waitJS(`document.body.dataset.wallPage === "incidents" && document.body.dataset.loaded === "1"`))
	require.Equal(t, want[0], w.strings(`[data-incident-id]`, "el.dataset.incidentId")[0], "the wall's board starts with the most pressing")
	require.Contains(t, w.text(`[data-testid="wall-title"]`), "Incidents")
	w.screenshot("15-wall-incidents.png")
	w.do(waitJS(`document.body.dataset.wallPage === "kpis" && document.body.dataset.loaded === "1"`), visible(`[data-kpi="web_success"]`))
	require.Empty(t, w.overflow(true), "wall mode's KPIs at 1920×1080")
	w.screenshot("16-wall-kpis.png")
	w.do(chromedp.KeyEvent(kb.Escape), loaded("overview"), visible(`a[data-nav="incidents"]`))
}

// hash moves the console to another route.
func (p page) hash(h string) {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf("location.hash = %q", h)))
}

// strings evaluates js (with el bound) for each element sel matches.
func (p page) strings(sel, js string) []string {
	p.t.Helper()
	out, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
		"[...document.querySelectorAll(%q)].map((el) => String(%s))", sel, js)))
	require.NoError(p.t, err, sel)
	return out
}

// overflow lists what is wider than its frame: the page wider than the
// window, a table wider than its scrolling frame; with tall, also the
// page taller than the window.
func (p page) overflow(tall bool) []string {
	p.t.Helper()
	out, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`(() => {
		const bad = [], doc = document.documentElement;
		if (doc.scrollWidth > innerWidth) bad.push("page width " + doc.scrollWidth + " > " + innerWidth);
		if (%t && doc.scrollHeight > innerHeight) bad.push("page height " + doc.scrollHeight + " > " + innerHeight);
		if (innerWidth > 760) for (const w of document.querySelectorAll(".table-wrap")) {
			const where = w.closest("[data-testid]")?.dataset.testid || w.closest(".page")?.className;
			if (w.scrollWidth > w.clientWidth) bad.push(where + ": table " + w.scrollWidth + " > " + w.clientWidth);
		}
		return bad;
	})()`, tall)))
	require.NoError(p.t, err)
	return out
}

// cardinalityHidden lists the cardinality counts that are not in view:
// cut off by their table's frame or empty.
func (p page) cardinalityHidden() []string {
	p.t.Helper()
	out, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](`(() => {
		const bad = [];
		for (const td of document.querySelectorAll(".card-table td.card-count")) {
			const frame = td.closest(".table-wrap").getBoundingClientRect(), r = td.getBoundingClientRect();
			const where = td.closest("[data-testid]").dataset.testid + " " + td.previousElementSibling.innerText;
			if (r.width === 0 || r.right > frame.right + 0.5 || !td.innerText.trim()) bad.push(where);
		}
		if (!document.querySelector(".card-table td.card-count")) bad.push("no counts at all");
		return bad;
	})()`))
	require.NoError(p.t, err)
	return out
}

// apiPost sends form values to the API as the token's user.
func apiPost(t *testing.T, db *apptest.Proc, token, path string, form url.Values) {
	req, _ := http.NewRequest("POST", db.URL()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Less(t, resp.StatusCode, 300, string(body))
}
