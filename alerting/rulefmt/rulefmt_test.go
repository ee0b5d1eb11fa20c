package rulefmt

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yml")
	require.NoError(t, err)
	for _, f := range files {
		_, errs := ParseFileOptions(f, Options{PromQL: true})
		if strings.HasPrefix(filepath.Base(f), "good_") {
			require.Empty(t, errs, f)
		} else {
			require.NotEmpty(t, errs, f)
		}
	}
}

// TestMetricsQLRules: what promtool refuses only because it is not PromQL
// is a rule the ruler runs.
func TestMetricsQLRules(t *testing.T) {
	for _, f := range []string{"testdata/bad_expr_metricsql.yml", "testdata/bad_expr_range_duration.yml"} {
		_, errs := ParseFile(f)
		require.Empty(t, errs, f)
		_, errs = ParseFileOptions(f, Options{PromQL: true})
		require.NotEmpty(t, errs, f)
	}
	_, errs := ParseFile("testdata/bad_expr_end_of_input.yml")
	require.Len(t, errs, 1)
	require.EqualError(t, errs[0], `testdata/bad_expr_end_of_input.yml: group "x", rule 1, "A": could not parse expression: 1:5: parse error: unexpected end of input`)
}

func TestParseGroup(t *testing.T) {
	f, errs := Parse([]byte(`
groups:
  - name: g
    interval: 15s
    query_offset: 1m
    limit: 10
    labels: {team: ops}
    rules:
      - alert: A
        expr: up == 0
        for: 1h30m
        keep_firing_for: 2m
`))
	require.Empty(t, errs)
	g := f.Groups[0]
	require.Equal(t, Duration(15*time.Second), g.Interval)
	require.Equal(t, Duration(time.Minute), g.QueryOffset)
	require.Equal(t, 10, g.Limit)
	require.Equal(t, Duration(90*time.Minute), g.Rules[0].For)
	require.Equal(t, "A", g.Rules[0].Name())
	out, err := g.Rules[0].For.MarshalYAML()
	require.NoError(t, err)
	require.Equal(t, "1h30m", out)
}

// TestGroupNameMustBeUTF8: a group name that is not UTF-8 would become an
// invalid metric label value (and panic the ruler's metrics); it is refused.
func TestGroupNameMustBeUTF8(t *testing.T) {
	_, errs := Parse([]byte("groups:\n  - name: \xe9;0AdA\n    rules:\n      - record: r\n        expr: vector(1)\n"))
	require.NotEmpty(t, errs)
	require.Contains(t, errs[0].Error(), "UTF-8")
}

// TestTemplateCheck: alerting-rule templates are checked with
// Prometheus's functions and variables ($externalURL too), and a bad one
// is reported as promtool reports it.
func TestTemplateCheck(t *testing.T) {
	rule := func(annotation string) []error {
		_, errs := Parse([]byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n" +
			"        annotations:\n          summary: '" + annotation + "'\n"))
		return errs
	}
	require.Empty(t, rule(`{{ graphLink "up" }} {{ tableLink "up" }} {{ toDuration 60 }} {{ $externalURL }}`))
	errs := rule(`{{ $labels.instance `)
	require.Len(t, errs, 1)
	require.EqualError(t, errs[0], `group "g", rule 1, "A": annotation "summary": template: __alert_A:1: unclosed action`)
	require.Len(t, rule(`{{ nosuchfunction }}`), 1)
}
