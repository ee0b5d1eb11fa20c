package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzRouter sends arbitrary methods, query strings, bodies and content
// types to every endpoint of a whole server running in this process (with
// ITSM, a KPI, rules and the admin API on): a panic in any handler stops
// the fuzzer; every answer must be a valid status, and every refusal must
// say why.
func FuzzRouter(f *testing.F) {
	dir := f.TempDir()
	cfg := filepath.Join(dir, "tsdb.yml")
	if err := os.WriteFile(cfg, []byte(`
itsm:
  cis: [{name: web, kind: service, selector: '{service="web"}', owner_group: ops, impact: high}]
  receivers: []
kpis:
  - {name: k, expr: up, target: 1, direction: above, interval: 1s, step: 1s, horizon: 10s, history: 1m, seasonality: none}
`), 0o644); err != nil {
		f.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rules, []byte("groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: A\n        expr: up > 0\n        labels: {service: web}\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	sc, err := parseServeFlags([]string{"--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--config.file", cfg,
		"--rules", rules, "--web.enable-admin-api", "--memory.budget-bytes", "0"})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, sc, slog.New(slog.DiscardHandler), ready) }()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		f.Fatal(err)
	}
	f.Cleanup(func() {
		cancel()
		<-done
	})
	c := &http.Client{Timeout: 30 * time.Second}
	if _, err := c.Post(base+"/api/v1/import/prometheus", "text/plain", strings.NewReader(`up{service="web"} 1`+"\n")); err != nil {
		f.Fatal(err)
	}
	paths := []string{"/api/v1/write", "/write", "/api/v2/write", "/api/v1/import/prometheus", "/api/v1/export",
		"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels", "/api/v1/label/job/values",
		"/api/v1/metadata", "/api/v1/query_exemplars", "/api/v1/status/buildinfo", "/api/v1/status/tsdb",
		"/api/v1/status/ingest", "/api/v1/status/whoami", "/api/v1/format_query", "/api/v1/rules", "/api/v1/alerts",
		"/api/v1/alerts/history", "/api/v1/admin/tsdb/delete_series", "/api/v1/admin/tsdb/snapshot",
		"/api/v1/admin/tsdb/snapshots/x", "/api/v1/incidents", "/api/v1/incidents/INC-000001/ack", "/api/v1/problems",
		"/api/v1/reports/sla", "/api/v1/maintenance", "/api/v1/groups", "/api/v1/kpis", "/api/v1/kpis/k",
		"/api/v1/kpis/k/chart.svg", "/api/v1/forecast", "/config/v1/rules", "/config/v1/rules/ns", "/prometheus/config/v1/rules/ns/g",
		"/console/", "/console/app.js", "/", "/metrics", "/-/healthy", "/-/ready", "/ping", "/api/v1/nope", "/api/v1/import"}
	methods := []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"}
	ctypes := []string{"", "application/x-www-form-urlencoded", "application/json", "text/plain", "application/x-protobuf", "application/yaml"}
	for i := range paths {
		f.Add(uint8(i), uint8(0), uint8(0), "", "", "")
		f.Add(uint8(i), uint8(1), uint8(1), "", "query=up&match[]=up&start=0&end=1e9&step=15", "")
		f.Add(uint8(i), uint8(1), uint8(2), "/../x", "", `{"title":"t","text":"x"}`)
	}
	f.Add(uint8(3), uint8(1), uint8(3), "", "timestamp=-1&extra_label=a=b", "m{a=\"1\"} 1 1\n")
	f.Add(uint8(1), uint8(1), uint8(3), "", "db=x&precision=h", "m,t=1 v=1 1\n")
	f.Fuzz(func(t *testing.T, which, method, ctype uint8, suffix, query, body string) {
		path := paths[int(which)%len(paths)] + suffix
		req, err := http.NewRequest(methods[int(method)%len(methods)], base+path+"?"+query, bytes.NewReader([]byte(body)))
		if err != nil {
			return // not a request a client can send
		}
		if ct := ctypes[int(ctype)%len(ctypes)]; ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := c.Do(req)
		if err != nil {
			select {
			case err := <-done:
				t.Fatalf("the server stopped: %v", err)
			default:
			}
			t.Fatalf("%s %s: %v", req.Method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 599 {
			t.Fatalf("status %d for %s %s", resp.StatusCode, req.Method, path)
		}
		if resp.StatusCode >= 400 && len(b) == 0 && req.Method != "HEAD" {
			t.Fatalf("%d without a message for %s %s?%s", resp.StatusCode, req.Method, path, query)
		}
	})
}
