package influx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/ingest/writeerr"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/storage"
)

// Options configures a Handler. A zero field means its default.
type Options struct {
	// MaxBodyBytes caps a request body, after gzip. Default 32 MiB.
	MaxBodyBytes int
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	// Now is the clock that stamps lines without a timestamp.
	Now func() time.Time
}

// Handler serves line protocol.
type Handler struct {
	w       storage.Writer
	opts    Options
	lines   *prometheus.CounterVec
	samples prometheus.Counter
}

// New returns a Handler writing to w.
func New(w storage.Writer, opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{w: w, opts: o,
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tsdb_influx_lines_total", Help: "Line-protocol lines received, by result.",
		}, []string{"result"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_influx_samples_total", Help: "Samples stored from line protocol.",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(h.lines, h.samples)
	}
	return h
}

// precision is the unit of a request's timestamps: the factor to
// milliseconds as a multiplier (mul) or divisor (div).
type precision struct {
	name     string
	mul, div int64
}

var nanoseconds = precision{"ns", 1, 1_000_000}

func parsePrecision(p string) (precision, error) {
	switch p {
	case "", "n", "ns":
		return nanoseconds, nil
	case "u", "us", "µ":
		return precision{"us", 1, 1000}, nil
	case "ms":
		return precision{"ms", 1, 1}, nil
	case "s":
		return precision{"s", 1000, 1}, nil
	case "m":
		return precision{"m", 60_000, 1}, nil
	case "h":
		return precision{"h", 3_600_000, 1}, nil
	}
	return precision{}, fmt.Errorf("unknown precision %q: want ns, us, ms, s, m or h", p)
}

// millis scales a timestamp to milliseconds. A timestamp whose scaling
// overflows int64, or that storage cannot keep, is an error: it used to
// wrap around and be stored near 1970.
func (p precision) millis(ts int64) (int64, error) {
	if ts > math.MaxInt64/p.mul || ts < math.MinInt64/p.mul {
		return 0, fmt.Errorf("timestamp %d at precision %s overflows a 64-bit count of milliseconds", ts, p.name)
	}
	t := ts * p.mul / p.div
	if t < storage.MinTime || t > storage.MaxTime {
		return 0, fmt.Errorf("timestamp %d at precision %s is out of the storable range", ts, p.name)
	}
	return t, nil
}

// ServeV1 handles POST /write (db, precision).
func (h *Handler) ServeV1(ctx *fasthttp.RequestCtx) {
	h.serve(ctx, string(ctx.QueryArgs().Peek("db")), string(ctx.QueryArgs().Peek("precision")), false)
}

// ServeV2 handles POST /api/v2/write (org, bucket, precision).
func (h *Handler) ServeV2(ctx *fasthttp.RequestCtx) {
	h.serve(ctx, string(ctx.QueryArgs().Peek("bucket")), string(ctx.QueryArgs().Peek("precision")), true)
}

// Ping answers /ping as InfluxDB does, for clients that check it.
func (h *Handler) Ping(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("X-Influxdb-Version", "1.8.10")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

func (h *Handler) fail(ctx *fasthttp.RequestCtx, v2 bool, code int, msg string) {
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	b := []byte(`{"error":`)
	if v2 {
		b = []byte(`{"code":"invalid","message":`)
	}
	b = append(b, jsonString(msg)...)
	ctx.SetBody(append(b, "}\n"...))
}

func (h *Handler) serve(ctx *fasthttp.RequestCtx, db, precision string, v2 bool) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		h.fail(ctx, v2, fasthttp.StatusMethodNotAllowed, "line protocol writes need POST")
		return
	}
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		h.fail(ctx, v2, fasthttp.StatusBadRequest, err.Error())
		return
	}
	prec, err := parsePrecision(precision)
	if err != nil {
		h.fail(ctx, v2, fasthttp.StatusBadRequest, err.Error())
		return
	}
	body := ctx.PostBody()
	if strings.EqualFold(string(ctx.Request.Header.ContentEncoding()), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			h.fail(ctx, v2, fasthttp.StatusBadRequest, "bad gzip body: "+err.Error())
			return
		}
		body, err = io.ReadAll(io.LimitReader(zr, int64(h.opts.MaxBodyBytes)+1))
		if err != nil {
			h.fail(ctx, v2, fasthttp.StatusBadRequest, "bad gzip body: "+err.Error())
			return
		}
	}
	if len(body) > h.opts.MaxBodyBytes {
		h.fail(ctx, v2, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("body over the limit of %d bytes", h.opts.MaxBodyBytes))
		return
	}
	stored, bad, err := h.write(context.Background(), tenant, db, body, prec)
	if err != nil {
		h.fail(ctx, v2, writeerr.Status(err), err.Error())
		writeerr.Answer(ctx, err)
		return
	}
	if len(bad) > 0 {
		msgs := make([]string, 0, min(len(bad), 10))
		for _, e := range bad[:min(len(bad), 10)] {
			msgs = append(msgs, e.Error())
		}
		more := ""
		if len(bad) > 10 {
			more = fmt.Sprintf("; … %d more", len(bad)-10)
		}
		h.fail(ctx, v2, fasthttp.StatusBadRequest, fmt.Sprintf("partial write: %d bad lines not stored (%s%s); %d samples stored",
			len(bad), strings.Join(msgs, "; "), more, stored))
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// write parses body and stores its good lines; it returns the samples
// stored and the bad lines.
func (h *Handler) write(ctx context.Context, tenant, db string, body []byte, prec precision) (int, []*LineError, error) {
	now := h.opts.Now().UnixMilli()
	var (
		b    storage.Batch
		bad  []*LineError
		good int
	)
	sb := labels.NewScratchBuilder(16)
	n := 0
	r := lineReader{body: body}
	for {
		line, l, ok := r.next()
		if !ok {
			break
		}
		p, err := ParseLine(l)
		t := now
		if err == nil && p.HasTime {
			t, err = prec.millis(p.Time)
		}
		if err != nil {
			bad = append(bad, &LineError{Line: line, Err: err})
			continue
		}
		good++
		for _, f := range p.Fields {
			sb.Reset()
			sb.Add(model.MetricNameLabel, p.Measurement+"_"+f.Key)
			for _, tg := range p.Tags {
				sb.Add(tg.Key, tg.Value)
			}
			if db != "" {
				sb.Add("db", db)
			}
			sb.Sort()
			b.Add(sb.Labels(), storage.Sample{T: t, V: f.Value})
			n++
		}
	}
	h.lines.WithLabelValues("bad").Add(float64(len(bad)))
	h.lines.WithLabelValues("ok").Add(float64(good))
	if n == 0 {
		return 0, bad, nil
	}
	if err := h.w.Write(ctx, tenant, &b); err != nil {
		return 0, bad, err
	}
	h.samples.Add(float64(n))
	return n, bad, nil
}

// ServeTCP reads newline-separated lines from every connection, storing
// them in batches (the default tenant, nanosecond timestamps). It returns
// when ln is closed.
func (h *Handler) ServeTCP(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go h.serveConn(c)
	}
}

// serveConn stores a connection's lines in batches of up to 1000, and
// whenever the sender pauses (nothing more to read right now), so that a
// slow, long-lived sender's lines do not wait for the batch to fill. A
// line longer than 1 MiB is dropped.
func (h *Handler) serveConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	var buf, long []byte
	lines := 0
	flush := func() {
		if len(buf) == 0 {
			return
		}
		if _, bad, err := h.write(context.Background(), tenancy.Default, "", buf, nanoseconds); err != nil {
			h.opts.Logger.Warn("influx tcp write", "err", err)
		} else if len(bad) > 0 {
			h.opts.Logger.Warn("influx tcp: bad lines dropped", "count", len(bad), "first", bad[0].Error())
		}
		buf, lines = buf[:0], 0
	}
	for {
		if r.Buffered() == 0 {
			flush() // the next read may wait for the sender
		}
		chunk, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) { // a line longer than the buffer
			if long = append(long, chunk...); len(long) > 1<<20 {
				h.opts.Logger.Warn("influx tcp: a line over 1 MiB dropped")
				long = long[:0]
				for errors.Is(err, bufio.ErrBufferFull) { // skip to its end
					_, err = r.ReadSlice('\n')
				}
			}
			continue
		}
		if len(long) > 0 {
			chunk, long = append(long, chunk...), long[:0]
		}
		if len(chunk) > 0 {
			buf = append(buf, chunk...)
			if chunk[len(chunk)-1] != '\n' {
				buf = append(buf, '\n')
			}
			if lines++; lines >= 1000 {
				flush()
			}
		}
		if err != nil {
			flush()
			return
		}
	}
}

// ServeUDP stores each datagram's lines. It returns when pc is closed.
func (h *Handler) ServeUDP(pc net.PacketConn) error {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if _, bad, err := h.write(context.Background(), tenancy.Default, "", buf[:n], nanoseconds); err != nil {
			h.opts.Logger.Warn("influx udp write", "err", err)
		} else if len(bad) > 0 {
			h.opts.Logger.Warn("influx udp: bad lines dropped", "count", len(bad), "first", bad[0].Error())
		}
	}
}

func jsonString(s string) []byte {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return []byte(b.String())
}
