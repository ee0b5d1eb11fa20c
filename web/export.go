package web

import (
	"bufio"
	"context"
	"log/slog"
	"slices"
	"strconv"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// export serves GET /api/v1/export: the raw samples of the series matching
// match[] in [start, end], one JSON object per series and line, as
// VictoriaMetrics does:
//
//	{"metric":{"__name__":"up","job":"a"},"values":[1,0],"timestamps":[1000,2000]}
//
// Values are exact; NaN, ±Inf and stale markers are the strings "NaN",
// "+Inf", "-Inf" and "StaleNaN".
//
// A series with native histogram samples has them in the same line, after
// its floats (values and timestamps are then possibly empty), one object
// per sample in "histograms" and its time in "histogram_timestamps":
//
//	{"metric":{…},"values":[],"timestamps":[],
//	 "histograms":[{"schema":3,"zero_threshold":1e-128,"zero_count":1,"count":6,"sum":9.5,
//	   "positive_spans":[{"offset":0,"length":2}],"positive_buckets":[2,3],
//	   "negative_spans":[{"offset":-1,"length":1}],"negative_buckets":[0],
//	   "counter_reset_hint":"not_reset"}],
//	 "histogram_timestamps":[1000]}
//
// Bucket counts are absolute, as in a float histogram. Every float (sum,
// counts, thresholds, custom_values) is written as values are, so a stale
// marker is a sum of "StaleNaN". Spans and buckets are left out when a
// side has none; custom_values appears for custom-bucket schemas (-53)
// only. counter_reset_hint is one of "unknown", "reset", "not_reset" and
// "gauge". POST /api/v1/import (ingest/jsonl) takes these lines back.
func (a *queries) export(log *slog.Logger) Handler {
	return func(r *Request) (any, error) {
		p, err := readListParams(r, true)
		if err != nil {
			return nil, err
		}
		sets := p.sets
		// Not r.Ctx: a fasthttp RequestCtx outside a server cannot be a context.
		ro, err := readOptions(r)
		if err != nil {
			return nil, err
		}
		qctx := storage.WithReadOptions(context.Background(), ro)
		q, err := a.r.Querier(qctx, p.tenant, p.start, p.end)
		if err != nil {
			return nil, err
		}
		// Collect the series first so that a bad selector or a storage error
		// is still an error status, then stream the samples.
		var list []storage.Series
		seen := map[string]struct{}{}
		for _, set := range sets {
			ss := q.Select(qctx, nil, set...)
			for ss.Next() {
				s := ss.At()
				key := s.Labels().String()
				if _, dup := seen[key]; dup {
					continue
				}
				seen[key] = struct{}{}
				list = append(list, s)
			}
			if err := ss.Err(); err != nil {
				q.Close()
				return nil, err
			}
		}
		if len(sets) > 1 {
			slices.SortFunc(list, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
		}
		return streamWriter{contentType: "application/stream+json", fn: func(w *bufio.Writer) {
			defer q.Close()
			writeExport(w, list, log)
		}}, nil
	}
}

func writeExport(w *bufio.Writer, list []storage.Series, log *slog.Logger) {
	var buf []byte
	var ts, hts []int64
	var vs []float64
	var hs []*histogram.FloatHistogram
	var it storage.Iterator
	for _, s := range list {
		ts, vs, hts = ts[:0], vs[:0], hts[:0]
		clear(hs)
		hs = hs[:0]
		it = s.Iterator(it)
		hit, _ := it.(storage.HistogramIterator)
		for it.Next() {
			if hit != nil {
				if h := hit.AtHistogram(); h != nil {
					t, _ := it.At()
					hts = append(hts, t)
					hs = append(hs, h)
					continue
				}
			}
			t, v := it.At()
			ts = append(ts, t)
			vs = append(vs, v)
		}
		if err := it.Err(); err != nil {
			log.Error("export: read series", "series", s.Labels().String(), "err", err)
			return // the client sees a truncated stream
		}
		if len(ts) == 0 && len(hts) == 0 {
			continue
		}
		buf = append(buf[:0], `{"metric":`...)
		buf = appendLabelsJSON(buf, s.Labels())
		buf = append(buf, `,"values":`...)
		buf = appendExportValues(buf, vs)
		buf = append(buf, `,"timestamps":`...)
		buf = appendInts(buf, ts)
		if len(hs) > 0 {
			buf = append(buf, `,"histograms":[`...)
			for i, h := range hs {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = appendExportHistogram(buf, h)
			}
			buf = append(buf, `],"histogram_timestamps":`...)
			buf = appendInts(buf, hts)
		}
		buf = append(buf, "}\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
}

// appendInts appends xs as a JSON array.
func appendInts(b []byte, xs []int64) []byte {
	b = append(b, '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, x, 10)
	}
	return append(b, ']')
}

// counterResetHints are the words of export's counter_reset_hint, by
// histogram.CounterResetHint.
var counterResetHints = [...]string{
	histogram.UnknownCounterReset: "unknown",
	histogram.CounterReset:        "reset",
	histogram.NotCounterReset:     "not_reset",
	histogram.GaugeType:           "gauge",
}

// appendExportHistogram appends h as export's histogram object (see
// export), every float exact as appendExportValue writes it.
func appendExportHistogram(b []byte, h *histogram.FloatHistogram) []byte {
	b = append(b, `{"schema":`...)
	b = strconv.AppendInt(b, int64(h.Schema), 10)
	b = append(b, `,"zero_threshold":`...)
	b = appendExportValue(b, h.ZeroThreshold)
	b = append(b, `,"zero_count":`...)
	b = appendExportValue(b, h.ZeroCount)
	b = append(b, `,"count":`...)
	b = appendExportValue(b, h.Count)
	b = append(b, `,"sum":`...)
	b = appendExportValue(b, h.Sum)
	b = appendExportSide(b, "positive", h.PositiveSpans, h.PositiveBuckets)
	b = appendExportSide(b, "negative", h.NegativeSpans, h.NegativeBuckets)
	if h.CustomValues != nil || histogram.IsCustomBucketsSchema(h.Schema) {
		b = append(b, `,"custom_values":`...)
		b = appendExportValues(b, h.CustomValues)
	}
	b = append(b, `,"counter_reset_hint":"`...)
	if int(h.CounterResetHint) < len(counterResetHints) {
		b = append(b, counterResetHints[h.CounterResetHint]...)
	} else {
		b = append(b, "unknown"...)
	}
	return append(b, `"}`...)
}

// appendExportSide appends one side's spans and buckets, nothing when it
// has neither.
func appendExportSide(b []byte, side string, spans []histogram.Span, buckets []float64) []byte {
	if len(spans) == 0 && len(buckets) == 0 {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, side...)
	b = append(b, `_spans":[`...)
	for i, sp := range spans {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"offset":`...)
		b = strconv.AppendInt(b, int64(sp.Offset), 10)
		b = append(b, `,"length":`...)
		b = strconv.AppendUint(b, uint64(sp.Length), 10)
		b = append(b, '}')
	}
	b = append(b, `],"`...)
	b = append(b, side...)
	b = append(b, `_buckets":`...)
	return appendExportValues(b, buckets)
}

// appendExportValues appends vs as a JSON array of export values.
func appendExportValues(b []byte, vs []float64) []byte {
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendExportValue(b, v)
	}
	return append(b, ']')
}
