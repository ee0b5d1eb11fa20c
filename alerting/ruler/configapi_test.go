package ruler

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/query"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestConfigAPILimits: groups stored through the API are bounded per
// tenant in number, rules and interval, with messages naming the limit;
// replacing a group does not count as a new one.
func TestConfigAPILimits(t *testing.T) {
	db := st.Open(t, nil)
	r := New(query.NewEngine(db, nil), db, nil, &Options{MaxAPIGroups: 2, MaxAPIGroupRules: 2, MinAPIInterval: 10 * time.Second,
		Now: func() time.Time { return time.Unix(1_700_000_000, 0) }})
	defer r.Stop()
	post := func(tenant, ns, body string) (int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.Header.Set("X-Scope-OrgID", tenant)
		ctx.Request.SetBodyString(body)
		r.ConfigHandler(&ctx, db, "/"+ns)
		return ctx.Response.StatusCode(), string(ctx.Response.Body())
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
}

// TestConfigAPINamespaceUTF8: a namespace that is not UTF-8 once unescaped
// is refused (it became the rule_group label of the group's metrics, and
// an invalid label value panicked the group's goroutine: tsdb exited).
func TestConfigAPINamespaceUTF8(t *testing.T) {
	db := st.Open(t, nil)
	r := New(query.NewEngine(db, nil), db, nil, nil)
	defer r.Stop()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetBodyString("name: g\ninterval: 1s\nrules:\n  - record: r\n    expr: vector(1)\n")
	r.ConfigHandler(&ctx, db, "/%E9")
	require.Equal(t, 400, ctx.Response.StatusCode())
	require.Contains(t, string(ctx.Response.Body()), "UTF-8")
	require.Empty(t, r.Groups())
	g := &Group{File: "\xe9", Name: "g"}
	require.Equal(t, "\uFFFD;g", g.metricKey())
}
