// Package promtext imports the Prometheus text exposition format and
// OpenMetrics (POST /api/v1/import/prometheus): how scripts push and how
// old data is backfilled. Samples, the metric metadata of # TYPE, # HELP
// and # UNIT lines and OpenMetrics exemplars go to storage in one write.
package promtext

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/ingest/reqbody"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/storage"
)

// Decode parses body (text format, or OpenMetrics when contentType says
// so) into b. Samples without a timestamp get def (ms). # TYPE, # HELP and
// # UNIT lines become b.Metadata, one entry per family with what the body
// says of it; OpenMetrics exemplars become the exemplars of their sample's
// series (at the sample's time when they have none). Native histograms
// are skipped and counted. A malformed body is an error that names where.
func Decode(body []byte, contentType string, def int64, b *storage.Batch) (skipped int, err error) {
	if contentType == "" || !strings.Contains(contentType, "openmetrics") {
		contentType = "text/plain"
	}
	p, err := textparse.New(body, contentType, labels.NewSymbolTable(), textparse.ParserOptions{FallbackContentType: "text/plain"})
	if err != nil && p == nil {
		return 0, err
	}
	// families indexes b.Metadata by family name; made at the first
	// metadata line, so that a body without any pays nothing.
	var families map[string]int
	family := func(name []byte) *storage.Metadata {
		if families == nil {
			families = map[string]int{}
		}
		i, ok := families[string(name)]
		if !ok {
			i = len(b.Metadata)
			families[string(name)] = i
			b.Metadata = append(b.Metadata, storage.Metadata{Family: string(name)})
		}
		return &b.Metadata[i]
	}
	// Only OpenMetrics has exemplars; ex is made at its first sample, so
	// that a text body does not pay for the allocation.
	om := strings.Contains(contentType, "openmetrics")
	var ex *exemplar.Exemplar
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return skipped, nil
		}
		if err != nil {
			return skipped, fmt.Errorf("line %d: %w", lineOf(body, err), err)
		}
		switch e {
		case textparse.EntrySeries:
			_, ts, v := p.Series()
			var ls labels.Labels
			p.Labels(&ls)
			t := def
			if ts != nil {
				t = *ts
			}
			b.Add(ls, storage.Sample{T: t, V: v})
			if !om {
				continue
			}
			if ex == nil {
				ex = new(exemplar.Exemplar)
			}
			for p.Exemplar(ex) {
				s := &b.Series[len(b.Series)-1]
				et := t
				if ex.HasTs {
					et = ex.Ts
				}
				s.Exemplars = append(s.Exemplars, storage.Exemplar{Labels: ex.Labels, T: et, V: ex.Value})
				*ex = exemplar.Exemplar{}
			}
		case textparse.EntryHistogram:
			skipped++
		case textparse.EntryType:
			name, typ := p.Type()
			family(name).Type = string(typ)
		case textparse.EntryHelp:
			name, help := p.Help()
			family(name).Help = string(help)
		case textparse.EntryUnit:
			name, unit := p.Unit()
			family(name).Unit = string(unit)
		}
	}
}

// lineOf guesses the line of a parse error from the text it quotes.
func lineOf(body []byte, err error) int {
	msg := err.Error()
	if i := strings.Index(msg, `"`); i >= 0 {
		if j := strings.Index(msg[i+1:], `"`); j > 0 {
			if k := bytes.Index(body, []byte(msg[i+1:i+1+j])); k >= 0 {
				return bytes.Count(body[:k], []byte("\n")) + 1
			}
		}
	}
	return bytes.Count(body, []byte("\n")) + 1
}

// Handler serves POST /api/v1/import/prometheus.
type Handler struct {
	w    storage.Writer
	opts Options
}

// Options configures a Handler. A zero field means its default.
type Options struct {
	// Limits bound a body.
	reqbody.Limits
	// Now is the clock that stamps samples without a timestamp.
	Now func() time.Time
}

// New returns a Handler writing to w; opts may be nil.
func New(w storage.Writer, opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Limits = o.Limits.WithDefaults()
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{w: w, opts: o}
}

// lineBytes is the memory one line of a body takes once decoded into the
// batch and written (labels, batch entry, storage's write item), measured
// with a body of the shortest lines ("a 1") and rounded up. A body is
// written in one batch, so that a bad line stores nothing: the request
// reserves this much per line before it decodes.
const lineBytes = 512

func fail(ctx *fasthttp.RequestCtx, code int, msg string) {
	ctx.Error(msg+"\n", code)
}

// Serve imports one body. ?timestamp=ms sets the time of samples without
// one (default now); extra_label=name=value adds labels to every series.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		fail(ctx, fasthttp.StatusMethodNotAllowed, "import needs POST")
		return
	}
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		fail(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	def := h.opts.Now().UnixMilli()
	if ts := ctx.QueryArgs().Peek("timestamp"); len(ts) > 0 {
		v, err := strconv.ParseInt(string(ts), 10, 64)
		if err != nil {
			fail(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("bad timestamp %q: want milliseconds", ts))
			return
		}
		def = v
	}
	extra, err := reqbody.ExtraLabels(ctx)
	if err != nil {
		reqbody.Fail(ctx, err)
		return
	}
	// NB: the write runs to completion even if the client goes away, and
	// so do the waits for the budget.
	bg := context.Background()
	body, res, err := reqbody.Read(bg, ctx, h.opts.Limits)
	if err != nil {
		reqbody.Fail(ctx, err)
		return
	}
	defer res.Release()
	if err := res.Grow(bg, int64(bytes.Count(body, []byte{'\n'})+1)*lineBytes); err != nil {
		reqbody.Fail(ctx, err)
		return
	}
	var b storage.Batch
	if _, err := Decode(body, string(ctx.Request.Header.ContentType()), def, &b); err != nil {
		fail(ctx, fasthttp.StatusBadRequest, "bad exposition format: "+err.Error())
		return
	}
	reqbody.SetLabels(&b, extra)
	var written storage.WriteStats
	if err := h.w.Write(storage.WithWriteStats(bg, &written), tenant, &b); err != nil {
		reqbody.Fail(ctx, err)
		return
	}
	reqbody.ReportDropped(ctx, &written)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}
