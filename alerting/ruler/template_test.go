package ruler

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/template"
	"github.com/prometheus/prometheus/util/features"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/rulefmt"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// promDefs are the variables Prometheus's ruler defines in front of every
// template (rules/alerting.go), copied here so that the judge does not
// depend on our code.
const promDefs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// TestTemplateParity runs every template function of Prometheus's
// template package through the ruler's expand and through Prometheus's
// own expander on the same inputs: the output must be the same, byte for
// byte, and so must the error. `tsdb rules check` must accept exactly the
// templates Prometheus's parser accepts. Prometheus's table is the list
// of functions to cover: a function added to it fails this test until a
// case covers it.
func TestTemplateParity(t *testing.T) {
	ctx := context.Background()
	ts := time.Unix(1_700_000_000, 0)
	db := st.Open(t, nil)
	var b storage.Batch
	for inst, v := range map[string]float64{"b:9100": 0, "a:9100": 1, "c:9100": 1} {
		b.Add(labels.FromStrings("__name__", "up", "instance", inst, "job", "node"), storage.Sample{T: ts.UnixMilli(), V: v})
	}
	require.NoError(t, db.Write(ctx, "default", &b))
	const extURL = "http://tsdb.example.com:9090/prom"
	ext := map[string]string{"dc": "eu-1"}
	r := New(query.NewEngine(db, nil), db, nil, &Options{ExternalLabels: ext, ExternalURL: extURL})
	ls := labels.FromStrings("__name__", "up", "instance", "node-1.example.com:9100", "job", "node")
	const value = 1234.5

	// The judge answers `query` with what Prometheus's engine returns for
	// the same data (rules.EngineQueryFunc: a scalar is one sample).
	up := func(inst string, v float64) promql.Sample {
		return promql.Sample{Metric: labels.FromStrings("__name__", "up", "instance", inst, "job", "node"), T: ts.UnixMilli(), F: v}
	}
	judgeQuery := func(_ context.Context, q string, _ time.Time) (promql.Vector, error) {
		switch q {
		case "up":
			return promql.Vector{up("a:9100", 1), up("b:9100", 0), up("c:9100", 1)}, nil
		case "sum(up)":
			return promql.Vector{{Metric: labels.EmptyLabels(), T: ts.UnixMilli(), F: 2}}, nil
		case "scalar(sum(up))":
			return promql.Vector{{Metric: labels.EmptyLabels(), T: ts.UnixMilli(), F: 2}}, nil
		case `up{job="none"}`:
			return promql.Vector{}, nil
		case "up[5m]":
			return nil, errors.New("rule result is not a vector or scalar")
		case "sum(":
			return nil, errors.New("parse error") // errOnly: engines word it differently
		}
		return nil, fmt.Errorf("judge: no canned answer for %q", q)
	}
	u, err := url.Parse(extURL)
	require.NoError(t, err)
	judgeData := template.AlertTemplateData(ls.Map(), ext, extURL, promql.Sample{F: value})

	cases := []struct {
		fn, text string // fn: the function the case is for ("": variables, parsing)
		errOnly  bool   // the error comes from the query engine: compare only that there is one
	}{
		// Variables.
		{"", "{{ $labels.instance }} {{ $labels.__name__ }} {{ $value }} {{ .Value }}", false},
		{"", "{{ $externalLabels.dc }} {{ $externalURL }} {{ .ExternalURL }}", false},
		{"", "no action at all", false},
		{"", "{{ nosuchfunction 1 }}", false},
		{"", "{{ $labels.instance ", false},
		// Numbers.
		{"humanize", "{{ humanize 1234567.0 }} {{ humanize 0.0012 }} {{ humanize 0 }} {{ humanize -1e30 }} {{ humanize \"1e3\" }}", false},
		{"humanize", "{{ $value | humanize }}", false},
		{"humanize", `{{ humanize "abc" }}`, false},
		{"humanize1024", "{{ humanize1024 2048.0 }} {{ humanize1024 0.5 }} {{ humanize1024 -1048576 }} {{ humanize1024 1e30 }}", false},
		{"humanize1024", `{{ humanize1024 "x" }}`, false},
		{"humanizeDuration", "{{ humanizeDuration 93784.0 }}|{{ humanizeDuration 0.25 }}|{{ humanizeDuration 42 }}|{{ humanizeDuration -3700.5 }}|{{ humanizeDuration 1.5 }}|{{ humanizeDuration 0 }}", false},
		{"humanizeDuration", `{{ humanizeDuration "NaN" }} {{ humanizeDuration "90" }}`, false},
		{"humanizePercentage", `{{ humanizePercentage 0.1234 }} {{ humanizePercentage "0.5" }} {{ humanizePercentage 2 }}`, false},
		{"humanizeTimestamp", `{{ humanizeTimestamp 1435065584.128 }}|{{ humanizeTimestamp "1435065584" }}|{{ humanizeTimestamp "NaN" }}`, false},
		{"toTime", `{{ toTime 1435065584.128 }}|{{ (toTime 1435065584).Format "2006-01-02" }}`, false},
		{"toTime", `{{ toTime "NaN" }}`, false},
		{"toTime", `{{ toTime 1e300 }}`, false},
		{"toDuration", `{{ toDuration 3661.5 }} {{ (toDuration 90).Minutes }} {{ toDuration "0.001" }}`, false},
		{"parseDuration", `{{ parseDuration "1h2m" }} {{ parseDuration "-5m" }} {{ parseDuration "1d" }} {{ parseDuration "250ms" }}`, false},
		{"parseDuration", `{{ parseDuration "1.5h" }}`, false},
		{"parseDuration", `{{ parseDuration "5" }}`, false},
		// Strings.
		{"stripPort", `{{ stripPort "[::1]:6006" }}|{{ stripPort "example.com:80" }}|{{ stripPort "example.com" }}|{{ stripPort "::1" }}|{{ stripPort $labels.instance }}`, false},
		{"stripDomain", `{{ stripDomain "127.0.0.1:9090" }}|{{ stripDomain "node-1.example.com:9100" }}|{{ stripDomain "[2001:db8::1]:80" }}|{{ stripDomain "localhost" }}|{{ stripDomain "a.b.c" }}|{{ stripDomain "::1" }}`, false},
		{"urlQueryEscape", `{{ urlQueryEscape "a b&c=d" }}|{{ urlQueryEscape "ü/x?y#z%" }}`, false},
		{"graphLink", `{{ graphLink "rate(up[5m]) == 0" }}`, false},
		{"tableLink", `{{ tableLink "up{job=\"node\"} == 0" }}`, false},
		{"reReplaceAll", `{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}`, false},
		{"reReplaceAll", `{{ reReplaceAll "(" "" "x" }}`, false},
		{"match", `{{ match "^node" $labels.job }} {{ match "x$" "abc" }}`, false},
		{"match", `{{ match "(" "x" }}`, false},
		{"title", `{{ title "hello wORLD-foo bar_baz" }}`, false},
		{"toUpper", `{{ toUpper "MiXed ß" }}`, false},
		{"toLower", `{{ toLower "MiXed İ" }}`, false},
		{"safeHtml", `{{ safeHtml "<b>bold</b> & co" }}`, false},
		{"args", `{{ define "t" }}{{ .arg0 }}-{{ .arg1 }}-{{ .arg2 }}{{ end }}{{ template "t" (args 1 "b" 2.5) }}`, false},
		// The URL and the clock.
		{"pathPrefix", `{{ pathPrefix }}`, false},
		{"externalURL", `{{ externalURL }}`, false},
		{"now", `{{ now }} {{ now | humanizeTimestamp }}`, false},
		// Queries.
		{"query", `{{ range query "up" }}{{ .Labels.instance }}={{ .Value }} {{ end }}`, false},
		{"query", `{{ query "up" | first }}`, false},
		{"query", `{{ with query "sum(up)" }}{{ . | first | value }}{{ end }} {{ with query "scalar(sum(up))" }}{{ . | first | value }}{{ end }}`, false},
		{"query", `{{ query "up[5m]" }}`, false},
		{"query", `{{ query "sum(" }}`, true},
		{"first", `{{ query "up" | first | label "instance" }}`, false},
		{"first", `{{ query "up{job=\"none\"}" | first }}`, false},
		{"label", `{{ with query "up" }}{{ range . }}{{ label "instance" . }},{{ label "missing" . }};{{ end }}{{ end }}`, false},
		{"value", `{{ with query "up" }}{{ range . }}{{ value . }} {{ end }}{{ end }}`, false},
		{"strvalue", `[{{ query "up" | first | strvalue }}]`, false},
		{"sortByLabel", `{{ range query "up" | sortByLabel "job" }}{{ .Labels.instance }} {{ end }}`, false},
		{"sortByLabel", `{{ range query "up" | sortByLabel "instance" }}{{ label "instance" . }} {{ end }}`, false},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.fn] = true
		t.Run(c.fn+":"+c.text, func(t *testing.T) {
			want, wantErr := template.NewTemplateExpander(ctx, promDefs+c.text, "__alert_T", judgeData,
				model.Time(ts.UnixMilli()), judgeQuery, u, nil).Expand()
			got, gotErr := r.expand(ctx, "default", "__alert_T", c.text, ls, value, ts.UnixMilli())
			if wantErr != nil || c.errOnly {
				require.Error(t, gotErr, "Prometheus: %v", wantErr)
				if !c.errOnly {
					require.Equal(t, wantErr.Error(), gotErr.Error())
				}
			} else {
				require.NoError(t, gotErr)
				require.Equal(t, want, got)
			}

			// The check agrees with Prometheus's parser.
			parseErr := template.NewTemplateExpander(ctx, promDefs+c.text, "__alert_T", judgeData, 0, nil, nil, nil).ParseTest()
			_, errs := rulefmt.Parse([]byte(fmt.Sprintf("groups:\n  - name: g\n    rules:\n      - alert: T\n        expr: up == 0\n        annotations:\n          a: %q\n", c.text)))
			require.Equal(t, parseErr == nil, len(errs) == 0, "Prometheus: %v; rules check: %v", parseErr, errs)
		})
	}

	// Every function of Prometheus's table has a case above.
	reg := features.NewRegistry()
	template.RegisterFeatures(reg)
	var missing []string
	for name := range reg.Get()[features.TemplatingFunctions] {
		if !covered[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "Prometheus template functions without a parity case")
}

// TestAlertTemplatesAsPrometheus: in a rule, $labels are the sample's
// labels with __name__ when the expression keeps it, group labels are
// templates too, and a template that fails leaves Prometheus's
// "<error expanding template: …>" in place of its text.
func TestAlertTemplatesAsPrometheus(t *testing.T) {
	db := st.Open(t, nil)
	r := New(query.NewEngine(db, nil), db, nil, &Options{ExternalURL: "http://tsdb:9090"})
	g := groupFrom(t, r, `
groups:
  - name: g
    labels: {team: "{{ $labels.job }}-team"}
    rules:
      - alert: XHigh
        expr: x > 0
        labels: {link: "{{ graphLink \"x > 0\" }}"}
        annotations:
          name: "{{ $labels.__name__ }}"
          bad: "{{ query \"x[5m]\" }}"
          where: "{{ $externalURL }}{{ pathPrefix }}"
`)
	t0 := time.Unix(1_700_000_000, 0)
	write(t, db, "x", t0, 1)
	g.Eval(context.Background(), t0)
	a := r.Alerts()
	require.Len(t, a, 1)
	require.Equal(t, "a-team", a[0].Labels.Get("team"))
	require.Equal(t, "/graph?g0.expr=x+%3E+0&g0.tab=0", a[0].Labels.Get("link"))
	require.Equal(t, "x", a[0].Annotations.Get("name"))
	require.Equal(t, "http://tsdb:9090", a[0].Annotations.Get("where"))
	require.Equal(t, `<error expanding template: error executing template __alert_XHigh: template: __alert_XHigh:1:115: `+
		`executing "__alert_XHigh" at <query "x[5m]">: error calling query: rule result is not a vector or scalar>`, a[0].Annotations.Get("bad"))
}
