package otlp

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emsdb/tsdb/ingest/writeerr"
	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/storage"
)

// The two encodings of OTLP/HTTP.
const (
	ctProtobuf = "application/x-protobuf"
	ctJSON     = "application/json"
)

// Options configures a Handler. A zero field means its default.
type Options struct {
	// Config is the translation (the otlp: section); the zero value is
	// taken as DefaultConfig.
	Config Config
	// MaxBodyBytes caps the request body as sent (413 over it). Default
	// 32 MiB; tsdb serve sets it with --remote-write.max-body-bytes.
	MaxBodyBytes int
	// MaxDecodedBytes caps the body after gzip (413 over it). Default 64
	// MiB; tsdb serve sets it with --ingest.max-decoded-bytes.
	MaxDecodedBytes int
	// InFlight is the memory budget shared with the other ingest
	// handlers: a request reserves its bodies, an estimate of the decoded
	// request and the batch as it is built. Nil: a budget of its own of
	// limits.DefaultInFlightBytes.
	InFlight *limits.InFlight
	Logger   *slog.Logger
	// Registerer receives the handler's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Handler serves POST /api/v1/otlp/v1/metrics. It is safe for concurrent
// use.
type Handler struct {
	w    storage.Writer
	opts Options

	requests *prometheus.CounterVec
	points   *prometheus.CounterVec
}

// New returns a Handler writing to w. opts.Config must be valid (see
// Config.Validate).
func New(w storage.Writer, opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Config.TranslationStrategy == "" {
		o.Config = DefaultConfig()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.MaxDecodedBytes <= 0 {
		o.MaxDecodedBytes = 64 << 20
	}
	if o.InFlight == nil {
		o.InFlight = limits.NewInFlight(0, 0)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		w:    w,
		opts: o,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tsdb_otlp_requests_total",
			Help: "OTLP/HTTP metrics export requests by encoding and HTTP status code.",
		}, []string{"encoding", "code"}),
		points: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tsdb_otlp_data_points_total",
			Help: "OTLP data points received, by result (accepted or rejected).",
		}, []string{"result"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(h.requests, h.points)
	}
	return h
}

// httpError is a failed request: its status and what to tell the sender.
type httpError struct {
	code int
	err  error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func fail(code int, format string, args ...any) error {
	return &httpError{code: code, err: fmt.Errorf(format, args...)}
}

// Serve handles one export request.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) {
	enc := encoding(ctx)
	res, err := h.serve(ctx, enc)
	code := fasthttp.StatusOK
	if err != nil {
		code = writeerr.Status(err)
		var he *httpError
		if errors.As(err, &he) {
			code = he.code
		}
		if code >= 500 && !errors.Is(err, storage.ErrNotWritable) && !errors.Is(err, limits.ErrBusy) {
			h.opts.Logger.Warn("otlp write failed", "err", err, "code", code)
		}
		if code == fasthttp.StatusTooManyRequests || code == fasthttp.StatusServiceUnavailable {
			writeerr.RetryAfter(ctx, err)
		}
		writeStatus(ctx, enc, code, err.Error())
	} else {
		h.points.WithLabelValues("rejected").Add(float64(res.Rejected))
		if err := writeResponse(ctx, enc, res); err != nil {
			code = fasthttp.StatusInternalServerError
			writeStatus(ctx, enc, code, err.Error())
		}
	}
	name := "protobuf"
	if enc == ctJSON {
		name = "json"
	} else if enc == "" {
		name = "unsupported"
	}
	h.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
}

// encoding returns the request's media type if it is one of OTLP's, or "".
func encoding(ctx *fasthttp.RequestCtx) string {
	mt, _, err := mime.ParseMediaType(string(ctx.Request.Header.ContentType()))
	if err != nil {
		return ""
	}
	switch mt {
	case ctProtobuf, ctJSON:
		return mt
	}
	return ""
}

func (h *Handler) serve(ctx *fasthttp.RequestCtx, enc string) (Result, error) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		return Result{}, fail(fasthttp.StatusMethodNotAllowed, "OTLP export needs POST")
	}
	if enc == "" {
		return Result{}, fail(fasthttp.StatusUnsupportedMediaType, "unsupported Content-Type %q: want %s or %s", ctx.Request.Header.ContentType(), ctProtobuf, ctJSON)
	}
	ce := strings.ToLower(strings.TrimSpace(string(ctx.Request.Header.ContentEncoding())))
	if ce != "" && ce != "gzip" && ce != "identity" {
		return Result{}, fail(fasthttp.StatusUnsupportedMediaType, "unsupported Content-Encoding %q: want gzip or none", ce)
	}
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		return Result{}, fail(fasthttp.StatusBadRequest, "%v", err)
	}
	body := ctx.PostBody()
	if len(body) > h.opts.MaxBodyBytes {
		return Result{}, fail(fasthttp.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d (--remote-write.max-body-bytes)", len(body), h.opts.MaxBodyBytes)
	}
	// NB: the write runs to completion even if the client goes away, and
	// so do the waits for the budget.
	bg := context.Background()
	res, err := h.opts.InFlight.Reserve(bg, int64(len(body)))
	if err != nil {
		return Result{}, err
	}
	defer res.Release()
	if ce == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return Result{}, fail(fasthttp.StatusBadRequest, "bad gzip body: %v", err)
		}
		body, err = res.ReadAll(bg, zr, h.opts.MaxDecodedBytes, gzipSize(body))
		if errors.Is(err, limits.ErrTooLarge) || errors.Is(err, limits.ErrBusy) {
			return Result{}, err
		}
		if err != nil {
			return Result{}, fail(fasthttp.StatusBadRequest, "bad gzip body: %v", err)
		}
	} else if len(body) > h.opts.MaxDecodedBytes {
		return Result{}, fail(fasthttp.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d (--ingest.max-decoded-bytes)", len(body), h.opts.MaxDecodedBytes)
	}
	decoded := decodedSize(body)
	if enc == ctJSON {
		decoded = decodedSizeJSON(body)
	}
	if err := res.Grow(bg, decoded); err != nil {
		return Result{}, err
	}
	req := pmetricotlp.NewExportRequest()
	if enc == ctJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return Result{}, fail(fasthttp.StatusBadRequest, "undecodable OTLP metrics request (%s): %v", enc, err)
	}
	md := req.Metrics()
	points := md.DataPointCount()
	tr := NewTranslator(h.opts.Config)
	tr.Reserve = func(n int64) error { return res.Grow(bg, n) }
	var b storage.Batch
	out, err := tr.Translate(md, &b)
	if err != nil {
		return out, err
	}
	if len(b.Series) > 0 || len(b.Metadata) > 0 {
		if err := h.w.Write(bg, tenant, &b); err != nil {
			return out, err
		}
	}
	h.points.WithLabelValues("accepted").Add(float64(int64(points) - out.Rejected))
	return out, nil
}

// writeResponse answers 200 with an ExportMetricsServiceResponse in the
// request's encoding, with partial_success when points were rejected.
func writeResponse(ctx *fasthttp.RequestCtx, enc string, r Result) error {
	resp := pmetricotlp.NewExportResponse()
	if r.Rejected > 0 {
		resp.PartialSuccess().SetRejectedDataPoints(r.Rejected)
		resp.PartialSuccess().SetErrorMessage(r.Message())
	}
	var b []byte
	var err error
	if enc == ctJSON {
		b, err = resp.MarshalJSON()
	} else {
		b, err = resp.MarshalProto()
	}
	if err != nil {
		return fmt.Errorf("encode the export response: %w", err)
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(enc)
	ctx.SetBody(b)
	return nil
}

// grpcCode is the google.rpc.Code an OTLP/HTTP error carries in its
// Status body.
func grpcCode(httpCode int) int32 {
	switch httpCode {
	case fasthttp.StatusBadRequest, fasthttp.StatusRequestEntityTooLarge, fasthttp.StatusUnsupportedMediaType:
		return 3 // INVALID_ARGUMENT
	case fasthttp.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case fasthttp.StatusMethodNotAllowed:
		return 12 // UNIMPLEMENTED
	case fasthttp.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	case fasthttp.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case fasthttp.StatusForbidden:
		return 7 // PERMISSION_DENIED
	}
	return 13 // INTERNAL
}

// writeStatus answers an error as OTLP/HTTP says: a google.rpc.Status
// (code, message) in the request's encoding, protobuf when the request's
// is not known.
func writeStatus(ctx *fasthttp.RequestCtx, enc string, code int, msg string) {
	ctx.SetStatusCode(code)
	gc := grpcCode(code)
	if enc == ctJSON {
		b, _ := json.Marshal(struct {
			Code    int32  `json:"code"`
			Message string `json:"message"`
		}{gc, msg})
		ctx.SetContentType(ctJSON)
		ctx.SetBody(b)
		return
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(gc))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, msg)
	ctx.SetContentType(ctProtobuf)
	ctx.SetBody(b)
}

// gzipSize returns the decoded size a gzip stream states in its trailer
// (ISIZE, modulo 2^32), a hint only: a sender may lie.
func gzipSize(b []byte) int {
	if len(b) < 18 {
		return 0
	}
	return int(binary.LittleEndian.Uint32(b[len(b)-4:]))
}
