// Package reqbody reads the body of an ingest request within its bounds,
// as the text and JSON-lines imports share it: the body-size limit, the
// in-flight memory budget, gzip up to the decoded-size limit, and the
// extra_label=name=value parameters.
package reqbody

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/ingest/writeerr"
	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/storage"
)

// Limits bound a body. A zero field means its default (see WithDefaults).
type Limits struct {
	// MaxBodyBytes caps a request body as sent (413 over it). Default 32
	// MiB; tsdb serve sets it with --remote-write.max-body-bytes.
	MaxBodyBytes int
	// MaxDecodedBytes caps a body after gzip (413 over it). Default 64 MiB;
	// tsdb serve sets it with --ingest.max-decoded-bytes.
	MaxDecodedBytes int
	// InFlight is the memory budget the handler shares with the other
	// ingest handlers (see limits.InFlight). Nil: a budget of its own of
	// limits.DefaultInFlightBytes.
	InFlight *limits.InFlight
}

// WithDefaults returns l with its zero fields set to their defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 32 << 20
	}
	if l.MaxDecodedBytes <= 0 {
		l.MaxDecodedBytes = 64 << 20
	}
	if l.InFlight == nil {
		l.InFlight = limits.NewInFlight(0, 0)
	}
	return l
}

// Error is a request the client must change: a body over a limit, a bad
// gzip stream, a bad parameter. Its Status is the HTTP answer.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func clientErr(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Read returns the request's body, decompressed when its Content-Encoding
// is gzip, and the reservation holding its memory in the in-flight budget;
// the caller releases it (and may grow it while decoding). An *Error is
// the client's; any other error is the budget's (busy, too large), to
// answer as writeerr maps it. The waits for the budget run to completion
// even if the client goes away: pass a context that does not end with it.
func Read(bg context.Context, ctx *fasthttp.RequestCtx, l Limits) ([]byte, *limits.Reservation, error) {
	body := ctx.PostBody()
	if len(body) > l.MaxBodyBytes {
		return nil, nil, clientErr(fasthttp.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d (--remote-write.max-body-bytes)", len(body), l.MaxBodyBytes)
	}
	res, err := l.InFlight.Reserve(bg, int64(len(body)))
	if err != nil {
		return nil, nil, err
	}
	if !strings.EqualFold(string(ctx.Request.Header.ContentEncoding()), "gzip") {
		if len(body) > l.MaxDecodedBytes {
			res.Release()
			return nil, nil, clientErr(fasthttp.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d (--ingest.max-decoded-bytes)", len(body), l.MaxDecodedBytes)
		}
		return body, res, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		res.Release()
		return nil, nil, clientErr(fasthttp.StatusBadRequest, "bad gzip body: %v", err)
	}
	body, err = res.ReadAll(bg, zr, l.MaxDecodedBytes, 0)
	switch {
	case errors.Is(err, limits.ErrTooLarge) || errors.Is(err, limits.ErrBusy):
		res.Release()
		return nil, nil, err
	case err != nil:
		res.Release()
		return nil, nil, clientErr(fasthttp.StatusBadRequest, "bad gzip body: %v", err)
	}
	return body, res, nil
}

// ExtraLabels returns the labels of the request's extra_label=name=value
// parameters, which an import adds to (or replaces on) every series.
func ExtraLabels(ctx *fasthttp.RequestCtx) ([]labels.Label, error) {
	var extra []labels.Label
	for _, kv := range ctx.QueryArgs().PeekMulti("extra_label") {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok || k == "" {
			return nil, clientErr(fasthttp.StatusBadRequest, "bad extra_label %q: want name=value", kv)
		}
		extra = append(extra, labels.Label{Name: k, Value: v})
	}
	return extra, nil
}

// SetLabels sets extra on every series of b (an import's extra_label),
// replacing labels of the same names.
func SetLabels(b *storage.Batch, extra []labels.Label) {
	if len(extra) == 0 {
		return
	}
	for i := range b.Series {
		lb := labels.NewBuilder(b.Series[i].Labels)
		for _, l := range extra {
			lb.Set(l.Name, l.Value)
		}
		b.Series[i].Labels = lb.Labels()
	}
}

// Fail answers a failed import in plain text: an *Error with its status,
// anything else (storage, the budget) as writeerr maps it, with
// Retry-After where it applies.
func Fail(ctx *fasthttp.RequestCtx, err error) {
	if e, ok := errors.AsType[*Error](err); ok {
		ctx.Error(e.Msg+"\n", e.Status)
		return
	}
	ctx.Error(err.Error()+"\n", writeerr.Status(err))
	writeerr.Answer(ctx, err)
}

// DroppedHeader is the response header that counts the samples of a write
// dropped as older than the tenant's retention (storage.WriteStats): the
// write succeeds without them, and says so.
const DroppedHeader = "X-Tsdb-Samples-Dropped-Retention"

// ReportDropped sets DroppedHeader when st dropped samples.
func ReportDropped(ctx *fasthttp.RequestCtx, st *storage.WriteStats) {
	if st.DroppedOld > 0 {
		ctx.Response.Header.Set(DroppedHeader, strconv.Itoa(st.DroppedOld))
	}
}
