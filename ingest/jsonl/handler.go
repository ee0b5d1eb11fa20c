package jsonl

import (
	"context"
	"errors"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/ingest/reqbody"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/storage"
)

// Handler serves POST /api/v1/import.
type Handler struct {
	w    storage.Writer
	opts Options
}

// Options configures a Handler: the bounds of a body. A zero field means
// its default.
type Options = reqbody.Limits

// New returns a Handler writing to w; opts may be nil.
func New(w storage.Writer, opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	return &Handler{w: w, opts: o.WithDefaults()}
}

func fail(ctx *fasthttp.RequestCtx, code int, msg string) {
	ctx.Error(msg+"\n", code)
}

// Serve imports one body, all of it or nothing: 204 once it is durable,
// 400 naming the first malformed line. extra_label=name=value adds (or
// replaces) a label on every series.
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
	extra, err := reqbody.ExtraLabels(ctx)
	if err != nil {
		reqbody.Fail(ctx, err)
		return
	}
	// NB: the write runs to completion even if the client goes away, and
	// so do the waits for the budget.
	bg := context.Background()
	body, res, err := reqbody.Read(bg, ctx, h.opts)
	if err != nil {
		reqbody.Fail(ctx, err)
		return
	}
	defer res.Release()
	var b storage.Batch
	d := Decoder{Reserve: func(n int64) error { return res.Grow(bg, n) }}
	if err := d.Decode(body, &b); err != nil {
		if errors.Is(err, ErrMalformed) {
			fail(ctx, fasthttp.StatusBadRequest, "bad JSON lines: "+err.Error())
			return
		}
		reqbody.Fail(ctx, err)
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
