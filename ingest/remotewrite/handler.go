package remotewrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/ingest/reqbody"
	"github.com/emsdb/tsdb/ingest/writeerr"
	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/storage"
)

// Content types of the two protocol versions.
const (
	protoV1 = "prometheus.WriteRequest"
	protoV2 = "io.prometheus.write.v2.Request"
)

// Options configures a Handler. A zero field means its default.
type Options struct {
	// MaxBodyBytes caps the compressed request body (413 over it). Default
	// 32 MiB; tsdb serve sets it with --remote-write.max-body-bytes.
	MaxBodyBytes int
	// MaxDecodedBytes caps the body after snappy decoding (413 over it).
	// Default 64 MiB; tsdb serve sets it with --ingest.max-decoded-bytes.
	MaxDecodedBytes int
	// InFlight is the memory budget the handler shares with the other
	// ingest handlers: a request reserves its bodies and an estimate of
	// what decoding and writing it takes before it decodes. Nil: a budget
	// of its own of limits.DefaultInFlightBytes.
	InFlight *limits.InFlight
	Logger   *slog.Logger
	// Registerer receives the handler's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

func (o *Options) ensureDefaults() {
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
}

// Handler serves POST /api/v1/write for remote-write 1.0 and 2.0.
type Handler struct {
	w    storage.Writer
	opts Options
	pool sync.Pool // *state

	requests   *prometheus.CounterVec
	samples    prometheus.Counter
	histograms prometheus.Counter
	exemplars  prometheus.Counter
}

type state struct {
	dec   *Decoder
	batch storage.Batch
	buf   []byte
}

// New returns a Handler that writes to w.
func New(w storage.Writer, opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.ensureDefaults()
	h := &Handler{
		w:    w,
		opts: o,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tsdb_remote_write_requests_total",
			Help: "Remote-write requests by protocol version and HTTP status code.",
		}, []string{"version", "code"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_remote_write_samples_total",
			Help: "Float samples written through remote write.",
		}),
		histograms: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_remote_write_histograms_total",
			Help: "Native histogram samples written through remote write.",
		}),
		exemplars: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_remote_write_exemplars_total",
			Help: "Exemplars stored through remote write (an exemplar repeating its series' newest counts).",
		}),
	}
	h.pool.New = func() any { return &state{dec: NewDecoder()} }
	if o.Registerer != nil {
		o.Registerer.MustRegister(h.requests, h.samples, h.histograms, h.exemplars)
	}
	return h
}

// Memory a request takes to decode and write beyond its two bodies, per
// series (batch entry, storage's write item, labels decoded for a new
// key), per sample and per 2.0 symbol, with the garbage their buffers
// leave as they grow: measured with hostile bodies of each shape
// (TestHostileBodiesStayInBudget), rounded up.
//
// A histogram sample holds its FloatHistogram (and, when it came as
// integers, the Histogram it was converted from), each bucket a delta and
// a float count or a float count; an exemplar its entry and labels (about
// twice its wire bytes: the strings, and storage's encoding), a metadata
// entry its strings.
const (
	seriesBytes    = 640
	sampleBytes    = 64
	symbolBytes    = 56
	histogramBytes = 512
	bucketBytes    = 32
	exemplarBytes  = 160
	metadataBytes  = 96
	wireByteBytes  = 3
)

// workingBytes estimates the memory decoding and writing a request of size
// sz holds, beyond its bodies.
func workingBytes(sz Size) int64 {
	return int64(sz.Series)*seriesBytes + int64(sz.Samples)*sampleBytes + int64(sz.Symbols)*symbolBytes +
		int64(sz.Histograms)*histogramBytes + int64(sz.Buckets)*bucketBytes + int64(sz.Exemplars)*exemplarBytes +
		int64(sz.Metadata)*metadataBytes + int64(sz.Bytes)*wireByteBytes
}

// put returns st to the pool, without the buffers of a large request: the
// pool would keep them out of the in-flight budget's sight.
func (h *Handler) put(st *state) {
	const keep = 64 << 10 // samples or series: larger than Prometheus sends
	st.batch.Reset()
	st.dec.Reserve = nil
	if cap(st.batch.Series) > keep {
		st.batch.Series = nil
	}
	if cap(st.buf) > 4<<20 {
		st.buf = nil
	}
	st.dec.Trim(keep)
	h.pool.Put(st)
}

// version picks the protocol from Content-Type, as the remote-write 2.0
// spec says: a missing proto parameter means 1.0.
func version(contentType string) (string, error) {
	if contentType == "" {
		return protoV1, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", fmt.Errorf("unparsable Content-Type %q: %v", contentType, err)
	}
	if mt != "application/x-protobuf" {
		return "", fmt.Errorf("unsupported Content-Type %q: want application/x-protobuf", contentType)
	}
	switch p := params["proto"]; p {
	case "", protoV1:
		return protoV1, nil
	case protoV2:
		return protoV2, nil
	default:
		return "", fmt.Errorf("unsupported proto %q: want %s or %s", p, protoV1, protoV2)
	}
}

// declared says how the request declared its protocol version.
func declared(ctx *fasthttp.RequestCtx, ver string) string {
	v := "remote-write 1.0 (prometheus.WriteRequest)"
	if ver == protoV2 {
		v = "remote-write 2.0 (io.prometheus.write.v2.Request)"
	}
	ct := string(ctx.Request.Header.ContentType())
	if ct == "" {
		v += " by sending no Content-Type"
	} else {
		v += fmt.Sprintf(" by Content-Type %q", ct)
	}
	if h := ctx.Request.Header.Peek("X-Prometheus-Remote-Write-Version"); len(h) > 0 {
		v += fmt.Sprintf(" (X-Prometheus-Remote-Write-Version: %s)", h)
	}
	return v
}

// Serve handles one write request.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) {
	ver, code, err := h.serve(ctx)
	label := "1.0"
	if ver == protoV2 {
		label = "2.0"
	}
	h.requests.WithLabelValues(label, strconv.Itoa(code)).Inc()
	if err != nil {
		// NB: storage logs once that its disk takes no writes, and
		// shedding is counted, not logged per request; the sender sees
		// the 503 and retries.
		if code >= 500 && !errors.Is(err, storage.ErrNotWritable) && !errors.Is(err, limits.ErrBusy) {
			h.opts.Logger.Warn("remote write failed", "err", err, "code", code)
		}
		ctx.Error(err.Error()+"\n", code)
		writeerr.RetryAfter(ctx, err)
		return
	}
	ctx.SetStatusCode(code)
}

func (h *Handler) serve(ctx *fasthttp.RequestCtx) (string, int, error) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		return "", fasthttp.StatusMethodNotAllowed, errors.New("remote write needs POST")
	}
	ver, err := version(string(ctx.Request.Header.ContentType()))
	if err != nil {
		return "", fasthttp.StatusUnsupportedMediaType, err
	}
	if enc := strings.ToLower(string(ctx.Request.Header.ContentEncoding())); enc != "" && enc != "snappy" {
		return ver, fasthttp.StatusUnsupportedMediaType, fmt.Errorf("unsupported Content-Encoding %q: want snappy", enc)
	}
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		return ver, fasthttp.StatusBadRequest, err
	}
	body := ctx.PostBody()
	if len(body) > h.opts.MaxBodyBytes {
		return ver, fasthttp.StatusRequestEntityTooLarge, fmt.Errorf("body of %d bytes is over the limit of %d (--remote-write.max-body-bytes)", len(body), h.opts.MaxBodyBytes)
	}
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return ver, fasthttp.StatusBadRequest, fmt.Errorf("%w: snappy: %v", ErrMalformed, err)
	}
	if n > h.opts.MaxDecodedBytes {
		return ver, fasthttp.StatusRequestEntityTooLarge, fmt.Errorf("decoded body of %d bytes is over the limit of %d (--ingest.max-decoded-bytes)", n, h.opts.MaxDecodedBytes)
	}
	// NB: the write runs to completion even if the client goes away: a
	// half-applied batch would only be retried anyway. So do the waits
	// for the budget.
	bg := context.Background()
	res, err := h.opts.InFlight.Reserve(bg, int64(len(body)+n))
	if err != nil {
		return ver, writeerr.Status(err), err
	}
	defer res.Release()
	st := h.pool.Get().(*state)
	defer h.put(st)
	st.batch.Reset()

	raw, err := snappy.Decode(st.buf[:cap(st.buf)], body)
	if err != nil {
		return ver, fasthttp.StatusBadRequest, fmt.Errorf("%w: snappy: %v", ErrMalformed, err)
	}
	st.buf = raw[:0]

	// The decoder reserves what it decodes as it goes.
	st.dec.Reserve = func(more Size) error { return res.Grow(bg, workingBytes(more)) }
	if ver == protoV2 {
		_, err = st.dec.DecodeV2(raw, &st.batch)
	} else {
		_, err = st.dec.DecodeV1(raw, &st.batch)
	}
	if errors.Is(err, limits.ErrBusy) {
		// NB: a sender retries a 503 for ever: say 413 if the whole
		// request can never fit, which only counting all of it tells.
		if sz, merr := measure(raw, ver == protoV2); merr == nil {
			if tl := h.opts.InFlight.TooLarge(int64(len(body)+n) + workingBytes(sz)); tl != nil {
				err = tl
			}
		}
	}
	if errors.Is(err, limits.ErrTooLarge) || errors.Is(err, limits.ErrBusy) {
		return ver, writeerr.Status(err), err
	}
	if errors.Is(err, ErrOtherVersion) {
		return ver, fasthttp.StatusBadRequest, fmt.Errorf("the request declares %s; the body does not match: %w", declared(ctx, ver), err)
	}
	if err != nil {
		return ver, fasthttp.StatusBadRequest, err
	}
	// The written counts come from storage, through any wrappers: what
	// was stored, not what was sent (retention and relabelling drop
	// samples, storage drops exemplars out of order).
	var written storage.WriteStats
	if err := h.w.Write(storage.WithWriteStats(bg, &written), tenant, &st.batch); err != nil {
		return ver, writeerr.Status(err), err
	}
	if written.DroppedOld > 0 {
		ctx.Response.Header.Set(reqbody.DroppedHeader, strconv.Itoa(written.DroppedOld))
	}
	h.samples.Add(float64(written.Samples))
	h.histograms.Add(float64(written.Histograms))
	h.exemplars.Add(float64(written.Exemplars))
	if ver == protoV2 {
		hd := &ctx.Response.Header
		hd.Set("X-Prometheus-Remote-Write-Samples-Written", strconv.Itoa(written.Samples))
		hd.Set("X-Prometheus-Remote-Write-Histograms-Written", strconv.Itoa(written.Histograms))
		hd.Set("X-Prometheus-Remote-Write-Exemplars-Written", strconv.Itoa(written.Exemplars))
	}
	return ver, fasthttp.StatusNoContent, nil
}
