package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/query"
)

// The self-monitoring examples only use metrics tsdb exposes, and parse:
// the alert rules pass `tsdb rules check`, every dashboard query parses.
func TestSelfMonitoringExamples(t *testing.T) {
	var out bytes.Buffer
	require.Equal(t, 0, rulesCheck([]string{"../../examples/tsdb-alerts.yml"}, &out), out.String())

	raw, err := os.ReadFile("../../examples/grafana/tsdb-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.Panels)
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			e := strings.ReplaceAll(tg.Expr, "$__rate_interval", "5m")
			_, err := query.Parse(e)
			require.NoError(t, err, "%s: %s", p.Title, e)
			exprs = append(exprs, e)
		}
	}
	rules, err := os.ReadFile("../../examples/tsdb-alerts.yml")
	require.NoError(t, err)

	// Every tsdb_ metric they name is registered somewhere in the code.
	known := map[string]bool{}
	lit := regexp.MustCompile(`"(tsdb_[a-z0-9_]+)"`)
	require.NoError(t, filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		for _, m := range lit.FindAllSubmatch(b, -1) {
			known[string(m[1])] = true
		}
		return err
	}))
	used := regexp.MustCompile(`tsdb_[a-z0-9_]+`)
	for _, name := range used.FindAllString(strings.Join(exprs, " ")+string(rules), -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		require.True(t, known[name] || known[base], "%s is not a metric tsdb exposes", name)
	}
}
