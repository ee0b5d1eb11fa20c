package web

import (
	"context"
	"math"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// metadataReader is the optional interface of a storage.Reader that keeps
// metric metadata (storage.DB does).
type metadataReader interface {
	Metadata(tenant, metric string, limit, limitPerMetric int) ([]storage.Metadata, error)
}

// exemplarReader is the optional interface of a storage.Reader that keeps
// exemplars (storage.DB does).
type exemplarReader interface {
	Exemplars(ctx context.Context, tenant string, mint, maxt int64, matcherSets [][]*labels.Matcher) ([]storage.SeriesExemplars, error)
}

// metadataEntry is one entry of /api/v1/metadata, in Prometheus' field
// order.
type metadataEntry struct {
	Type string `json:"type"`
	Unit string `json:"unit"`
	Help string `json:"help"`
}

// intArg parses an optional integer parameter, def when absent.
func intArg(r *Request, name string, def int) (int, error) {
	s := r.Arg(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, badData("%s must be a number", name)
	}
	return n, nil
}

// metadata serves /api/v1/metadata?metric=&limit=&limit_per_metric= as
// Prometheus does: metric family -> list of {type, unit, help}. A
// negative limit (the default) means all; limit_per_metric only matters
// at 1 or more, and storage keeps one entry per family.
func (a *queries) metadata(r *Request) (any, error) {
	tenant, err := r.Tenant()
	if err != nil {
		return nil, err
	}
	limit, err := intArg(r, "limit", -1)
	if err != nil {
		return nil, err
	}
	perMetric, err := intArg(r, "limit_per_metric", -1)
	if err != nil {
		return nil, err
	}
	out := map[string][]metadataEntry{}
	mr, ok := a.r.(metadataReader)
	if !ok {
		return out, nil
	}
	ms, err := mr.Metadata(tenant, r.Arg("metric"), limit, perMetric)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		out[m.Family] = append(out[m.Family], metadataEntry{Type: m.Type, Unit: m.Unit, Help: m.Help})
	}
	return out, nil
}

// exemplars serves /api/v1/query_exemplars?query=&start=&end=: the
// exemplars in the range of the series the expression's selectors pick.
func (a *queries) exemplars(r *Request) (any, error) {
	tenant, err := r.Tenant()
	if err != nil {
		return nil, err
	}
	start, err := parseTime(r.Arg("start"), minTime)
	if err != nil {
		return nil, err
	}
	end, err := parseTime(r.Arg("end"), maxTime)
	if err != nil {
		return nil, err
	}
	if end < start {
		return nil, badData("end timestamp must not be before start timestamp")
	}
	q := r.Arg("query")
	if q == "" {
		return nil, badData("invalid parameter \"query\": query must not be empty")
	}
	selectors, err := query.Selectors(q)
	if err != nil {
		return nil, badData("invalid parameter \"query\": %v", err)
	}
	var sets [][]*labels.Matcher
	for _, sel := range selectors {
		sets = append(sets, sel...)
	}
	er, ok := a.r.(exemplarReader)
	if !ok || len(sets) == 0 {
		return rawJSON(`[]`), nil
	}
	c, cancel := requestContext(r, a.timeout)
	defer cancel()
	got, err := er.Exemplars(c, tenant, start, end, sets)
	if err != nil {
		return nil, err
	}
	return exemplarsJSON(got), nil
}

// exemplarsJSON encodes query_exemplars' result as Prometheus does:
// values as strings, timestamps as seconds with milliseconds.
type exemplarsJSON []storage.SeriesExemplars

// AppendJSON implements jsonAppender.
func (x exemplarsJSON) AppendJSON(b []byte) []byte {
	b = append(b, '[')
	for i, s := range x {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"seriesLabels":`...)
		b = appendLabelsJSON(b, s.Labels)
		b = append(b, `,"exemplars":[`...)
		for j, e := range s.Exemplars {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"labels":`...)
			b = appendLabelsJSON(b, e.Labels)
			b = append(b, `,"value":"`...)
			b = appendPromFloat(b, e.V)
			b = append(b, `","timestamp":`...)
			b = appendPromTimestamp(b, e.T)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, ']')
}

// appendPromFloat appends v as Prometheus' API writes sample values.
func appendPromFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendPromTimestamp appends milliseconds t as seconds the way
// Prometheus' API does: the fraction, when there is one, in three digits.
func appendPromTimestamp(b []byte, t int64) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if f := t % 1000; f != 0 {
		b = append(b, '.')
		if f < 100 {
			b = append(b, '0')
		}
		if f < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, f, 10)
	}
	return b
}
