package influx

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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

	"github.com/emsdb/tsdb/ingest/reqbody"
	"github.com/emsdb/tsdb/ingest/writeerr"
	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/storage"
)

// Options configures a Handler. A zero field means its default.
type Options struct {
	// MaxBodyBytes caps a request body as sent (413 over it). Default 32
	// MiB; tsdb serve sets it with --remote-write.max-body-bytes.
	MaxBodyBytes int
	// MaxDecodedBytes caps a body after gzip (413 over it). Default 64 MiB;
	// tsdb serve sets it with --ingest.max-decoded-bytes.
	MaxDecodedBytes int
	// BatchSamples is how many samples go to storage in one write: a body
	// is parsed and written in batches of this many (or of batchBytes of
	// labels, whichever comes first), so the memory a request takes beyond
	// its body does not grow with it. Default 10,000.
	BatchSamples int
	// InFlight is the memory budget the handler shares with the other
	// ingest handlers (see limits.InFlight). Nil: a budget of its own of
	// limits.DefaultInFlightBytes.
	InFlight   *limits.InFlight
	Logger     *slog.Logger
	Registerer prometheus.Registerer
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
	if o.MaxDecodedBytes <= 0 {
		o.MaxDecodedBytes = 64 << 20
	}
	if o.BatchSamples <= 0 {
		o.BatchSamples = 10_000
	}
	if o.InFlight == nil {
		o.InFlight = limits.NewInFlight(0, 0)
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
	// NB: the write runs to completion even if the client goes away, and
	// so do the waits for the budget.
	bg := context.Background()
	body := ctx.PostBody()
	if len(body) > h.opts.MaxBodyBytes {
		h.fail(ctx, v2, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is over the limit of %d (--remote-write.max-body-bytes)", len(body), h.opts.MaxBodyBytes))
		return
	}
	res, err := h.opts.InFlight.Reserve(bg, int64(len(body)))
	if err != nil {
		h.failWrite(ctx, v2, err)
		return
	}
	defer res.Release()
	if strings.EqualFold(string(ctx.Request.Header.ContentEncoding()), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			h.fail(ctx, v2, fasthttp.StatusBadRequest, "bad gzip body: "+err.Error())
			return
		}
		body, err = res.ReadAll(bg, zr, h.opts.MaxDecodedBytes, gzipSize(body))
		if errors.Is(err, limits.ErrTooLarge) || errors.Is(err, limits.ErrBusy) {
			h.failWrite(ctx, v2, err)
			return
		}
		if err != nil {
			h.fail(ctx, v2, fasthttp.StatusBadRequest, "bad gzip body: "+err.Error())
			return
		}
	} else if len(body) > h.opts.MaxDecodedBytes {
		h.fail(ctx, v2, fasthttp.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes is over the limit of %d (--ingest.max-decoded-bytes)", len(body), h.opts.MaxDecodedBytes))
		return
	}
	if err := res.Grow(bg, h.workingBytes(body)); err != nil {
		h.failWrite(ctx, v2, err)
		return
	}
	var written storage.WriteStats
	stored, bad, err := h.write(storage.WithWriteStats(bg, &written), tenant, db, body, prec)
	reqbody.ReportDropped(ctx, &written)
	if err != nil {
		h.failWrite(ctx, v2, err)
		return
	}
	if bad.n > 0 {
		msgs := make([]string, 0, len(bad.first))
		for _, e := range bad.first {
			msgs = append(msgs, e.Error())
		}
		more := ""
		if bad.n > len(bad.first) {
			more = fmt.Sprintf("; … %d more", bad.n-len(bad.first))
		}
		h.fail(ctx, v2, fasthttp.StatusBadRequest, fmt.Sprintf("partial write: %d bad lines not stored (%s%s); %d samples stored",
			bad.n, strings.Join(msgs, "; "), more, stored))
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// failWrite answers a write refused by storage or the limits.
func (h *Handler) failWrite(ctx *fasthttp.RequestCtx, v2 bool, err error) {
	h.fail(ctx, v2, writeerr.Status(err), err.Error())
	writeerr.Answer(ctx, err)
}

// gzipSize returns the decoded size a gzip stream states in its trailer
// (ISIZE, modulo 2^32), a hint only: a sender may lie.
func gzipSize(b []byte) int {
	if len(b) < 18 {
		return 0
	}
	return int(binary.LittleEndian.Uint32(b[len(b)-4:]))
}

// Memory a request takes beyond its bodies, measured with hostile bodies
// (TestHostileBodiesStayInBudget) and rounded up: per sample of the batch
// being built and written (batch entry, storage's write item, the labels
// beyond their bytes), and per byte of the line being parsed (its tags and
// fields). A batch also holds up to batchBytes of labels.
const (
	sampleBytes   = 768
	lineByteBytes = 48
	batchBytes    = 4 << 20
)

// workingBytes estimates the memory parsing and writing a decoded body
// holds beyond the body: one batch, and its longest line. The shortest
// line with a sample ("m f=1") and each more field (",g=1") take at least
// four bytes.
func (h *Handler) workingBytes(body []byte) int64 {
	n := len(body)
	samples := min(n/4+1, h.opts.BatchSamples)
	return int64(samples)*sampleBytes + int64(min(n, batchBytes)) + int64(min(longestLine(body), MaxLineBytes))*lineByteBytes
}

// longestLine returns the length of the longest line of body.
func longestLine(body []byte) int {
	longest := 0
	for len(body) > 0 {
		i := bytes.IndexByte(body, '\n')
		if i < 0 {
			return max(longest, len(body))
		}
		longest = max(longest, i)
		body = body[i+1:]
	}
	return longest
}

// badLines is the first bad lines of a body and how many there were: a
// body of bad lines must not take memory for each.
type badLines struct {
	n     int
	first []*LineError
}

const keepBadLines = 10

func (b *badLines) add(line int, err error) {
	if b.n++; len(b.first) < keepBadLines {
		b.first = append(b.first, &LineError{Line: line, Err: err})
	}
}

// write parses body and stores its good lines in batches of
// Options.BatchSamples; it returns the samples stored and the bad lines.
// NB: when storage refuses a batch, the batches before it stay stored; the
// error says how many samples that was.
func (h *Handler) write(ctx context.Context, tenant, db string, body []byte, prec precision) (int, badLines, error) {
	now := h.opts.Now().UnixMilli()
	var (
		b       storage.Batch
		lbytes  int // of the labels in b
		bad     badLines
		good    int
		stored  int
		through int // the last line whose samples are all stored
	)
	defer func() {
		h.lines.WithLabelValues("bad").Add(float64(bad.n))
		h.lines.WithLabelValues("ok").Add(float64(good))
		h.samples.Add(float64(stored))
	}()
	// flush writes the batch, which holds samples of lines up to line.
	flush := func(line int) error {
		if len(b.Series) == 0 {
			return nil
		}
		if err := h.w.Write(ctx, tenant, &b); err != nil {
			if stored > 0 {
				return fmt.Errorf("%w (%d samples of earlier batches, of lines 1 to %d, were stored)", err, stored, through)
			}
			return err
		}
		stored += len(b.Series)
		b.Reset()
		lbytes = 0
		through = line
		return nil
	}
	sb := labels.NewScratchBuilder(16)
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
			bad.add(line, err)
			continue
		}
		good++
		// NB: every field is a series with all the line's tags: a long
		// line of tags and fields makes that many times its size in
		// labels, so batches are cut by the bytes of labels too.
		tagBytes := len(p.Measurement) + len(db) + 8
		for _, tg := range p.Tags {
			tagBytes += len(tg.Key) + len(tg.Value) + 2
		}
		for i, f := range p.Fields {
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
			if lbytes += tagBytes + len(f.Key); len(b.Series) >= h.opts.BatchSamples || lbytes >= batchBytes {
				whole := line
				if i < len(p.Fields)-1 {
					whole-- // the rest of the line's fields go in the next batch
				}
				if err := flush(whole); err != nil {
					return stored, bad, err
				}
			}
		}
	}
	if err := flush(r.line); err != nil {
		return stored, bad, err
	}
	return stored, bad, nil
}

// ServeTCP reads newline-separated lines from every connection, storing
// them in batches into tenant (nanosecond timestamps). It returns when ln
// is closed. NB: the listener has no authentication: whoever reaches it
// writes into tenant.
func (h *Handler) ServeTCP(ln net.Listener, tenant string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go h.serveConn(c, tenant)
	}
}

// writeStream stores lines received over TCP or UDP. It waits as long as
// it takes for room in the in-flight budget: the sender waits meanwhile
// (TCP pushes back; UDP datagrams queue in the kernel, then drop).
func (h *Handler) writeStream(proto, tenant string, buf []byte) {
	ctx := context.Background()
	var res *limits.Reservation
	for {
		var err error
		res, err = h.opts.InFlight.Reserve(ctx, int64(len(buf))+h.workingBytes(buf))
		if err == nil {
			break
		}
		if !errors.Is(err, limits.ErrBusy) {
			h.opts.Logger.Warn("influx "+proto+": lines dropped", "err", err)
			return
		}
	}
	defer res.Release()
	if _, bad, err := h.write(ctx, tenant, "", buf, nanoseconds); err != nil {
		h.opts.Logger.Warn("influx "+proto+" write", "err", err)
	} else if bad.n > 0 {
		h.opts.Logger.Warn("influx "+proto+": bad lines dropped", "count", bad.n, "first", bad.first[0].Error())
	}
}

// serveConn stores a connection's lines in batches of up to 1000 lines or
// 1 MiB, and whenever the sender pauses (nothing more to read right now),
// so that a slow, long-lived sender's lines do not wait for the batch to
// fill. A line longer than MaxLineBytes is dropped.
func (h *Handler) serveConn(c net.Conn, tenant string) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	var buf, long []byte
	lines := 0
	flush := func() {
		if len(buf) == 0 {
			return
		}
		h.writeStream("tcp", tenant, buf)
		buf, lines = buf[:0], 0
	}
	for {
		if r.Buffered() == 0 {
			flush() // the next read may wait for the sender
		}
		chunk, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) { // a line longer than the buffer
			if long = append(long, chunk...); len(long) > MaxLineBytes {
				h.opts.Logger.Warn("influx tcp: a line over the limit dropped", "limit", MaxLineBytes)
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
			if lines++; lines >= 1000 || len(buf) >= 1<<20 {
				flush()
			}
		}
		if err != nil {
			flush()
			return
		}
	}
}

// ServeUDP stores each datagram's lines into tenant. It returns when pc is
// closed. NB: as for ServeTCP, whoever reaches pc writes into tenant.
func (h *Handler) ServeUDP(pc net.PacketConn, tenant string) error {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		h.writeStream("udp", tenant, buf[:n])
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
