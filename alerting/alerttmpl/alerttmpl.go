package alerttmpl

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/template"
	"github.com/prometheus/prometheus/util/features"

	"github.com/emsdb/tsdb/query"
)

// Defs are the variables Prometheus's ruler defines in front of every
// label and annotation template (rules/alerting.go); Check and Expand
// prepend them, so error positions match Prometheus's too.
const Defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// Data is what a template sees: $labels (the sample's labels, with
// __name__ if the expression kept it), $externalLabels, $externalURL and
// $value.
type Data struct {
	Labels         map[string]string
	ExternalLabels map[string]string
	ExternalURL    string
	Value          float64
}

// QueryFunc runs the template function `query`: an instant query at ts.
type QueryFunc = template.QueryFunc

// Instanter is the part of query.Engine that Query needs.
type Instanter interface {
	Instant(ctx context.Context, tenant, q string, ts int64) (*query.Result, error)
}

// errNotVector is Prometheus's message for a query result a template
// cannot use (rules.EngineQueryFunc).
var errNotVector = errors.New("rule result is not a vector or scalar")

// Query returns the QueryFunc that runs instant queries of tenant on eng.
// A vector comes back as is, a scalar as one sample without labels; any
// other result is an error, as in Prometheus.
func Query(eng Instanter, tenant string) QueryFunc {
	return func(ctx context.Context, q string, ts time.Time) (promql.Vector, error) {
		res, err := eng.Instant(ctx, tenant, q, ts.UnixMilli())
		if err != nil {
			return nil, err
		}
		switch res.Type {
		case query.ValueScalar:
			return promql.Vector{{T: res.Scalar.T, F: res.Scalar.F, Metric: labels.EmptyLabels()}}, nil
		case query.ValueVector:
			out := make(promql.Vector, 0, len(res.Series))
			for _, s := range res.Series {
				if len(s.Points) == 0 {
					continue
				}
				p := s.Points[len(s.Points)-1]
				out = append(out, promql.Sample{Metric: s.Metric, T: p.T, F: p.F})
			}
			return out, nil
		}
		return nil, errNotVector
	}
}

// Check parses text as `promtool check rules` does, with Prometheus's
// functions and variables; name is the template's name in errors
// (Prometheus uses "__alert_" + the alert name).
func Check(name, text string) error {
	data := template.AlertTemplateData(map[string]string{}, map[string]string{}, "", promql.Sample{})
	return template.NewTemplateExpander(context.Background(), Defs+text, name, data, 0, nil, nil, nil).ParseTest()
}

// Expand renders text at ts. q answers the template function `query`
// (nil: a template that queries fails); externalURL answers externalURL
// and pathPrefix (nil: empty). The error is Prometheus's, which the
// ruler writes into the label or annotation as Prometheus does:
// "<error expanding template: ...>".
func Expand(ctx context.Context, name, text string, d Data, ts time.Time, q QueryFunc, externalURL *url.URL) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil // nothing to expand: the text is its own output
	}
	if externalURL == nil {
		externalURL = &url.URL{}
	}
	if q == nil {
		q = func(context.Context, string, time.Time) (promql.Vector, error) {
			return nil, errors.New("alerttmpl: no query function")
		}
	}
	data := template.AlertTemplateData(d.Labels, d.ExternalLabels, d.ExternalURL, promql.Sample{F: d.Value})
	e := template.NewTemplateExpander(ctx, Defs+text, name, data, model.TimeFromUnixNano(ts.UnixNano()), q, externalURL, nil)
	return e.Expand()
}

// Funcs lists the names of the template functions, sorted: Prometheus's
// table, which Check and Expand use.
func Funcs() []string {
	reg := features.NewRegistry()
	template.RegisterFeatures(reg)
	var out []string
	for name, on := range reg.Get()[features.TemplatingFunctions] {
		if on {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
