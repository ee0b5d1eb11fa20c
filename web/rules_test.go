package web

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/alerting/rulefmt"
	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

const rulesYAML = `
groups:
  - name: g
    interval: 1h
    rules:
      - record: job:x:sum
        expr: sum by (job) (x)
      - alert: XHigh
        expr: job:x:sum > 0
        for: 2m
`

// rulesAPI serves a ruler over db with the rules of rulesYAML loaded.
func rulesAPI(t testing.TB, db *storage.DB, opts *ruler.Options) (*API, *ruler.Ruler) {
	eng := query.NewEngine(db, nil)
	r := ruler.New(eng, db, nil, opts)
	t.Cleanup(r.Stop)
	file := filepath.Join(t.TempDir(), "rules.yml")
	require.NoError(t, os.WriteFile(file, []byte(rulesYAML), 0o644))
	require.NoError(t, r.Load([]string{file}))
	return New(Deps{Reader: db, Engine: eng, Ruler: r, RuleStore: db}), r
}

// do sends one request through the API.
func do(a *API, method, uri, tenant, body string) (int, string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	if tenant != "" {
		ctx.Request.Header.Set("X-Scope-OrgID", tenant)
	}
	if body != "" {
		ctx.Request.SetBodyString(body)
	}
	a.Handler(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

func TestRulesAPIFilters(t *testing.T) {
	a, _ := rulesAPI(t, st.Open(t, nil), nil)
	get := func(q string) []string {
		code, body := do(a, "GET", "/api/v1/rules?"+q, "", "")
		require.Equal(t, 200, code, body)
		var res struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name, Type string
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &res), body)
		var out []string
		for _, g := range res.Data.Groups {
			for _, rl := range g.Rules {
				out = append(out, rl.Type+":"+rl.Name)
			}
		}
		return out
	}
	require.Equal(t, []string{"recording:job:x:sum", "alerting:XHigh"}, get(""))
	require.Equal(t, []string{"alerting:XHigh"}, get("type=alert"))
	require.Equal(t, []string{"recording:job:x:sum"}, get("type=record"))
	require.Equal(t, []string{"alerting:XHigh"}, get("rule_name[]=XHigh"))
	require.Empty(t, get("rule_group[]=nope"))
	require.Empty(t, get("file[]=nope.yml"))
	code, body := do(a, "GET", "/api/v1/rules?type=both", "", "")
	require.Equal(t, 400, code)
	require.Contains(t, body, `"errorType":"bad_data"`)
}

// TestAlertHistory: the transitions stored as ALERTS_TRANSITIONS come
// back oldest first, without the transition labels, filtered by name and
// time.
func TestAlertHistory(t *testing.T) {
	db := st.Open(t, nil)
	a, _ := rulesAPI(t, db, nil)
	t0 := time.Unix(1_700_000_000, 0)
	var b storage.Batch
	for i, tr := range [][2]string{{"inactive", "pending"}, {"pending", "firing"}, {"firing", "inactive"}} {
		b.Add(labels.FromStrings("__name__", "ALERTS_TRANSITIONS", "alertname", "XHigh", "transition_from", tr[0], "transition_to", tr[1]),
			storage.Sample{T: t0.Add(time.Duration(2-i) * time.Minute).UnixMilli(), V: 1})
	}
	b.Add(labels.FromStrings("__name__", "ALERTS_TRANSITIONS", "alertname", "Other", "transition_from", "inactive", "transition_to", "pending"),
		storage.Sample{T: t0.UnixMilli(), V: 1})
	require.NoError(t, db.Write(context.Background(), "default", &b))
	code, body := do(a, "GET", fmt.Sprintf("/api/v1/alerts/history?start=%d&end=%d&alertname=XHigh", t0.Unix(), t0.Add(time.Hour).Unix()), "", "")
	require.Equal(t, 200, code, body)
	var hist struct {
		Data struct {
			Transitions []struct {
				Time     time.Time         `json:"time"`
				From, To string            //
				Labels   map[string]string `json:"labels"`
			} `json:"transitions"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &hist), body)
	require.Len(t, hist.Data.Transitions, 3)
	require.Equal(t, "firing", hist.Data.Transitions[0].From, "oldest first")
	require.Equal(t, map[string]string{"alertname": "XHigh"}, hist.Data.Transitions[0].Labels)
	code, body = do(a, "GET", "/api/v1/alerts/history?start=10&end=5", "", "")
	require.Equal(t, 400, code, body)
}

// TestConfigAPILimits: groups stored through the API are bounded per
// tenant in number, rules and interval, with messages naming the limit;
// replacing a group does not count as a new one.
func TestConfigAPILimits(t *testing.T) {
	a, _ := rulesAPI(t, st.Open(t, nil), &ruler.Options{MaxAPIGroups: 2, MaxAPIGroupRules: 2, MinAPIInterval: 10 * time.Second,
		Now: func() time.Time { return time.Unix(1_700_000_000, 0) }})
	post := func(tenant, ns, body string) (int, string) {
		return do(a, "POST", "/config/v1/rules/"+ns, tenant, body)
	}
	group := func(name string, rules int, interval string) string {
		b := "name: " + name + "\n"
		if interval != "" {
			b += "interval: " + interval + "\n"
		}
		b += "rules:\n"
		for i := range rules {
			b += "  - record: r" + strings.Repeat("x", i) + "\n    expr: vector(1)\n"
		}
		return b
	}
	code, body := post("acme", "ns", group("a", 3, ""))
	require.Equal(t, 400, code)
	require.Contains(t, body, "over the limit of 2 rules per group")
	code, body = post("acme", "ns", group("a", 1, "1s"))
	require.Equal(t, 400, code)
	require.Contains(t, body, "shorter than the minimum of 10s")
	for _, g := range []string{"a", "b"} {
		code, body = post("acme", "ns", group(g, 2, "1m"))
		require.Equal(t, 202, code, body)
	}
	code, body = post("acme", "other", group("c", 1, ""))
	require.Equal(t, 400, code)
	require.Contains(t, body, "already has 2 rule groups")
	code, body = post("acme", "ns", group("b", 1, "30s"))
	require.Equal(t, 202, code, "replacing a group is not a new one: %s", body)
	code, body = post("beta", "ns", group("c", 1, ""))
	require.Equal(t, 202, code, "the limit is per tenant: %s", body)

	// Reading back, as Grafana does: YAML; errors are plain text.
	code, body = do(a, "GET", "/config/v1/rules/ns/b", "acme", "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "name: b")
	code, body = do(a, "GET", "/prometheus/config/v1/rules", "acme", "")
	require.Equal(t, 200, code, body)
	require.Contains(t, body, "ns:")
	code, body = do(a, "GET", "/config/v1/rules/ns/nope", "acme", "")
	require.Equal(t, 404, code)
	require.Equal(t, "group does not exist\n", body)
	code, _ = do(a, "DELETE", "/config/v1/rules/ns/a", "acme", "")
	require.Equal(t, 202, code)
	code, _ = do(a, "DELETE", "/config/v1/rules/ns/a", "acme", "")
	require.Equal(t, 404, code)
	code, _ = do(a, "PUT", "/config/v1/rules/ns", "acme", group("z", 1, ""))
	require.Equal(t, 405, code)
}

// TestConfigAPINamespaceUTF8: a namespace that is not UTF-8 once unescaped
// is refused (it became the rule_group label of the group's metrics, and
// an invalid label value panicked the group's goroutine: tsdb exited).
func TestConfigAPINamespaceUTF8(t *testing.T) {
	a, r := rulesAPI(t, st.Open(t, nil), nil)
	n := len(r.Groups())
	code, body := do(a, "POST", "/config/v1/rules/%25E9", "", "name: g\ninterval: 1s\nrules:\n  - record: r\n    expr: vector(1)\n")
	require.Equal(t, 400, code)
	require.Contains(t, body, "UTF-8")
	require.Len(t, r.Groups(), n)
}

// FuzzRulesAPI sends arbitrary parameters to the rules, alerts and
// history endpoints and arbitrary paths and bodies to the ruler config
// API: none may panic, and every refusal says why.
func FuzzRulesAPI(f *testing.F) {
	// The real clock: stored groups run on timers while the fuzzer goes on.
	a, _ := rulesAPI(f, st.Open(f, nil), nil)
	group := "name: g2\ninterval: 1h\nrules:\n  - alert: A\n    expr: vector(1) > 0\n    for: 1m\n"
	for _, s := range []struct {
		which uint8
		path  string
		q     string
		body  string
	}{
		{0, "", "type=alert&rule_name[]=XHigh&rule_group[]=g&file[]=x", ""},
		{1, "", "", ""},
		{2, "", "since=2023-11-14T00:00:00Z&alertname=XHigh&limit=-1", ""},
		{2, "", "since=-1e308&until=%zz&limit=99999999999999999999", ""},
		{3, "/ns", "", group},
		{3, "/ns/g2", "", ""},
		{4, "/ns/g2", "", ""},
		{3, "/ns", "", "name: ''\nrules: [{alert: x, expr: 'sum('}]\n"},
		{3, "/%2F..%2F", "", "interval: -1s\n"},
	} {
		f.Add(s.which, s.path, s.q, s.body)
	}
	f.Fuzz(func(t *testing.T, which uint8, path, query, body string) {
		var ctx fasthttp.RequestCtx
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("%d %q %q %q took %s", which, path, query, body, d)
			}
		}()
		switch which % 5 {
		case 0:
			ctx.Request.SetRequestURI("/api/v1/rules?" + query)
		case 1:
			ctx.Request.SetRequestURI("/api/v1/alerts?" + query)
		case 2:
			ctx.Request.SetRequestURI("/api/v1/alerts/history?" + query)
		default:
			ctx.Request.SetRequestURI("/config/v1/rules" + path)
			ctx.Request.Header.SetMethod("POST")
			if which%5 == 4 {
				ctx.Request.Header.SetMethod("DELETE")
			} else if body == "" {
				ctx.Request.Header.SetMethod("GET")
			}
			ctx.Request.Header.SetContentType("application/yaml")
			ctx.Request.SetBodyString(body)
		}
		a.Handler(&ctx)
		code := ctx.Response.StatusCode()
		if code < 200 || code > 599 || (code >= 400 && len(ctx.Response.Body()) == 0) {
			t.Fatalf("status %d (body %q) for %d %q %q %q", code, ctx.Response.Body(), which, path, query, body)
		}
	})
}

// TestRuleGroupsStayWithTheirTenant: with authentication on, the rule
// groups of the --rules files belong to the default tenant and an API
// group to its own: /api/v1/rules shows each tenant only its own. The
// names of all of them are in /metrics (rule_group), so /metrics is the
// operators' (admin or the metrics role), not any reader's: a reader of
// tenant acme used to read the default tenant's group names there.
func TestRuleGroupsStayWithTheirTenant(t *testing.T) {
	db := st.Open(t, nil)
	eng := query.NewEngine(db, nil)
	reg := prometheus.NewRegistry()
	r := ruler.New(eng, db, nil, &ruler.Options{Registerer: reg})
	t.Cleanup(r.Stop)
	file := filepath.Join(t.TempDir(), "payroll-rules.yml")
	require.NoError(t, os.WriteFile(file, []byte("groups:\n  - name: payroll-secret\n    interval: 1s\n    rules:\n      - record: r\n        expr: vector(1)\n"), 0o644))
	require.NoError(t, r.Load([]string{file}))
	r.SetAPIGroups(map[string]map[string][]rulefmt.Group{"acme": {"ns": {{Name: "acme-group", Interval: rulefmt.Duration(time.Second),
		Rules: []rulefmt.Rule{{Record: "a", Expr: "vector(2)"}}}}}})
	authn, err := auth.New(auth.Config{Users: []auth.User{
		{Name: "reader-acme", TokenSHA256: auth.HashToken("acme"), Roles: []auth.Role{auth.Read}, Tenants: []string{"acme"}},
		{Name: "reader-default", TokenSHA256: auth.HashToken("default"), Roles: []auth.Role{auth.Read}, Tenants: []string{"default"}},
		{Name: "scraper", TokenSHA256: auth.HashToken("scrape"), Roles: []auth.Role{auth.Metrics}, Tenants: []string{"*"}},
		{Name: "root", TokenSHA256: auth.HashToken("root"), Roles: []auth.Role{auth.Admin}, Tenants: []string{"*"}},
	}})
	require.NoError(t, err)
	a := New(Deps{Reader: db, Engine: eng, Ruler: r, RuleStore: db, Gatherer: reg, Auth: func() *auth.Authenticator { return authn }})
	get := func(token, uri string) (int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
		a.Handler(&ctx)
		return ctx.Response.StatusCode(), string(ctx.Response.Body())
	}
	groups := func(token string) []string {
		code, body := get(token, "/api/v1/rules")
		require.Equal(t, 200, code, body)
		var res struct {
			Data struct {
				Groups []struct{ Name string } `json:"groups"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &res))
		var out []string
		for _, g := range res.Data.Groups {
			out = append(out, g.Name)
		}
		return out
	}
	require.Equal(t, []string{"acme-group"}, groups("acme"))
	require.Equal(t, []string{"payroll-secret"}, groups("default"))
	require.Equal(t, []string{"payroll-secret"}, groups("root"), "admin without X-Scope-OrgID: the default tenant")

	require.Eventually(t, func() bool {
		_, body := get("root", "/metrics")
		return strings.Contains(body, `rule_group="`+file+`;payroll-secret"`) && strings.Contains(body, `rule_group="ns;acme-group"`)
	}, 10*time.Second, 50*time.Millisecond, "the groups evaluated")
	code, body := get("acme", "/metrics")
	require.Equal(t, 403, code)
	require.Contains(t, body, "lacks the metrics role")
	require.NotContains(t, body, "payroll")
	code, body = get("scrape", "/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, "payroll-secret")
	code, _ = get("scrape", "/api/v1/query?query=1")
	require.Equal(t, 403, code, "the metrics role reads no tenant's data")
}
