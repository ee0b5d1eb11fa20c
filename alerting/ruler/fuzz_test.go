package ruler

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/query"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// FuzzAPI sends arbitrary parameters to the rules, alerts and history
// endpoints and arbitrary paths and bodies to the ruler config API: none
// may panic, and every refusal says why.
func FuzzAPI(f *testing.F) {
	db := st.Open(f, nil)
	// The real clock: stored groups run on timers while the fuzzer goes on.
	r := New(query.NewEngine(db, nil), db, nil, nil)
	f.Cleanup(r.Stop)
	file := filepath.Join(f.TempDir(), "rules.yml")
	if err := os.WriteFile(file, []byte(rulesYAML), 0o644); err != nil {
		f.Fatal(err)
	}
	if err := r.Load([]string{file}); err != nil {
		f.Fatal(err)
	}
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
		ctx.Request.SetRequestURI("/api/v1/x?" + query)
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("%d %q %q %q took %s", which, path, query, body, d)
			}
		}()
		switch which % 5 {
		case 0:
			r.RulesHandler(&ctx)
		case 1:
			r.AlertsHandler(&ctx)
		case 2:
			r.HistoryHandler(&ctx)
		default:
			ctx.Request.Header.SetMethod("POST")
			if which%5 == 4 {
				ctx.Request.Header.SetMethod("DELETE")
			} else if body == "" {
				ctx.Request.Header.SetMethod("GET")
			}
			ctx.Request.Header.SetContentType("application/yaml")
			ctx.Request.SetBodyString(body)
			r.ConfigHandler(&ctx, db, path)
		}
		code := ctx.Response.StatusCode()
		if code < 200 || code > 599 || (code >= 400 && len(ctx.Response.Body()) == 0) {
			t.Fatalf("status %d (body %q) for %d %q %q %q", code, ctx.Response.Body(), which, path, query, body)
		}
	})
}
