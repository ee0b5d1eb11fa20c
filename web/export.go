package web

import (
	"bufio"
	"context"
	"log/slog"
	"slices"
	"strconv"

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
func (a *queries) export(log *slog.Logger) Handler {
	return func(r *Request) (any, error) {
		p, err := readListParams(r, true)
		if err != nil {
			return nil, err
		}
		sets := p.sets
		// Not r.Ctx: a fasthttp RequestCtx outside a server cannot be a context.
		qctx := context.Background()
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
	var ts []int64
	var vs []float64
	var it storage.Iterator
	for _, s := range list {
		ts, vs = ts[:0], vs[:0]
		it = s.Iterator(it)
		for it.Next() {
			t, v := it.At()
			ts = append(ts, t)
			vs = append(vs, v)
		}
		if err := it.Err(); err != nil {
			log.Error("export: read series", "series", s.Labels().String(), "err", err)
			return // the client sees a truncated stream
		}
		if len(ts) == 0 {
			continue
		}
		buf = append(buf[:0], `{"metric":`...)
		buf = appendLabelsJSON(buf, s.Labels())
		buf = append(buf, `,"values":[`...)
		for i, v := range vs {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendExportValue(buf, v)
		}
		buf = append(buf, `],"timestamps":[`...)
		for i, t := range ts {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, t, 10)
		}
		buf = append(buf, "]}\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
}
