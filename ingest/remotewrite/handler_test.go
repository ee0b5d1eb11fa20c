package remotewrite

import (
	"math"
	"net"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// server serves h on an in-memory listener and returns a client for it.
func server(t testing.TB, h *Handler) *fasthttp.Client {
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: h.Serve}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	return &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
}

type reply struct {
	code    int
	body    string
	written string
}

func post(t testing.TB, c *fasthttp.Client, contentType, encoding string, body []byte, hdr ...string) reply {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://tsdb/api/v1/write")
	req.Header.SetMethod("POST")
	if contentType != "" {
		req.Header.SetContentType(contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	req.SetBody(body)
	require.NoError(t, c.Do(req, resp))
	return reply{resp.StatusCode(), string(resp.Body()), string(resp.Header.Peek("X-Prometheus-Remote-Write-Samples-Written"))}
}

func snappyV1(t testing.TB, req *prompb.WriteRequest) []byte {
	raw, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, raw)
}

var anyName = labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")

func TestHandlerV1(t *testing.T) {
	db := st.Open(t, nil)
	c := server(t, New(db, nil))
	r := post(t, c, "application/x-protobuf", "snappy", snappyV1(t, v1Request()))
	require.Equal(t, 204, r.code, r.body)
	got := st.Read(t, db, "default", math.MinInt64, math.MaxInt64, anyName)
	require.Len(t, got, 3) // the histogram series too
	require.Len(t, got[`{__name__="up", job="node"}`], 2)
	// The tenant header scopes the write.
	r = post(t, c, "application/x-protobuf", "", snappyV1(t, v1Request()), "X-Scope-OrgID", "acme")
	require.Equal(t, 204, r.code, r.body)
	require.Len(t, st.Read(t, db, "acme", math.MinInt64, math.MaxInt64, anyName), 3)
}

func TestHandlerV2(t *testing.T) {
	db := st.Open(t, nil)
	c := server(t, New(db, nil))
	syms := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("__name__", "up", "job", "v2"), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}, {Value: 0, Timestamp: 2000}, {Value: 1, Timestamp: 3000}},
	}}}
	req.Symbols = syms.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	r := post(t, c, "application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy", snappy.Encode(nil, raw))
	require.Equal(t, 204, r.code, r.body)
	require.Equal(t, "3", r.written)
	require.Len(t, st.Read(t, db, "default", 0, math.MaxInt64, anyName)[`{__name__="up", job="v2"}`], 3)
}

func TestHandlerRejects(t *testing.T) {
	db := st.Open(t, &storage.Options{MaxLabelsPerSeries: 4})
	c := server(t, New(db, &Options{MaxBodyBytes: 1 << 16}))
	good := snappyV1(t, v1Request())
	tooMany := snappyV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "ok"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "a", Value: "1"}, {Name: "b", Value: "1"}, {Name: "c", Value: "1"}, {Name: "d", Value: "1"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
	}})
	dup := snappyV1(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "m"}, {Name: "a", Value: "1"}, {Name: "a", Value: "2"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}},
	}})
	big := make([]byte, 1<<17)
	cases := []struct {
		name, ct, enc string
		body          []byte
		code          int
		msg           string
	}{
		{"json", "application/json", "snappy", good, 415, "Content-Type"},
		{"unknown proto", "application/x-protobuf;proto=foo", "snappy", good, 415, "proto"},
		{"gzip", "application/x-protobuf", "gzip", good, 415, "Content-Encoding"},
		{"not snappy", "application/x-protobuf", "snappy", []byte("hello world"), 400, "snappy"},
		{"not protobuf", "application/x-protobuf", "snappy", snappy.Encode(nil, []byte{0x0a, 0x7f}), 400, "malformed"},
		{"too many labels", "application/x-protobuf", "snappy", tooMany, 400, "limit of 4"},
		{"duplicate label", "application/x-protobuf", "snappy", dup, 400, "twice"},
		{"too large", "application/x-protobuf", "snappy", big, 413, "limit"},
	}
	for _, tc := range cases {
		r := post(t, c, tc.ct, tc.enc, tc.body)
		require.Equal(t, tc.code, r.code, "%s: %s", tc.name, r.body)
		require.Contains(t, r.body, tc.msg, tc.name)
	}
	require.Empty(t, st.Read(t, db, "default", math.MinInt64, math.MaxInt64, anyName), "rejected requests stored nothing")
	require.Zero(t, db.Stats().Series)
}

// A body of one protocol version declared as the other used to answer 204
// and store nothing (#23); it is a 400 that says what was declared and what
// the body looks like.
func TestHandlerRefusesTheOtherVersion(t *testing.T) {
	db := st.Open(t, nil)
	c := server(t, New(db, nil))
	v1 := snappyV1(t, v1Request())
	syms := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("__name__", "up", "job", "v2"), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}},
	}}}
	req.Symbols = syms.Symbols()
	raw, err := req.Marshal()
	require.NoError(t, err)
	v2 := snappy.Encode(nil, raw)

	r := post(t, c, "application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy", v1, "X-Prometheus-Remote-Write-Version", "2.0.0")
	require.Equal(t, 400, r.code, r.body)
	require.Contains(t, r.body, `declares remote-write 2.0 (io.prometheus.write.v2.Request) by Content-Type "application/x-protobuf;proto=io.prometheus.write.v2.Request" (X-Prometheus-Remote-Write-Version: 2.0.0)`)
	require.Contains(t, r.body, "it looks like remote-write 1.0")

	for _, ct := range []string{"application/x-protobuf", "application/x-protobuf;proto=prometheus.WriteRequest"} {
		r = post(t, c, ct, "snappy", v2, "X-Prometheus-Remote-Write-Version", "0.1.0")
		require.Equal(t, 400, r.code, r.body)
		require.Contains(t, r.body, "declares remote-write 1.0 (prometheus.WriteRequest)", ct)
		require.Contains(t, r.body, "it looks like remote-write 2.0", ct)
	}
	require.Empty(t, st.Read(t, db, "default", math.MinInt64, math.MaxInt64, anyName))
}

// Every series needs a metric name, as the remote-write specification
// says: a series without one is a 400 that names it, and the request
// stores nothing, whether its labels are decoded at once (2.0,
// interleaved 1.0 labels) or only when storage meets an unknown key (1.0).
func TestHandlerRefusesSeriesWithoutName(t *testing.T) {
	db := st.Open(t, nil)
	c := server(t, New(db, nil))
	noName := prompb.TimeSeries{Labels: []prompb.Label{{Name: "job", Value: "nameless"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}
	emptyName := prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: ""}, {Name: "job", Value: "nameless"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}
	for _, ts := range []prompb.TimeSeries{noName, emptyName} {
		body := snappyV1(t, &prompb.WriteRequest{Timeseries: append(v1Request().Timeseries, ts)})
		r := post(t, c, "application/x-protobuf", "snappy", body)
		require.Equal(t, 400, r.code, r.body)
		require.Contains(t, r.body, `job="nameless"} has no __name__ label`)
	}

	// Labels interleaved with samples are decoded at once.
	raw, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{noName}}).Marshal()
	require.NoError(t, err)
	var inter []byte
	inter = protowire.AppendTag(inter, 1, protowire.BytesType)
	var ts []byte
	ts = protowire.AppendTag(ts, 1, protowire.BytesType)
	ts = protowire.AppendBytes(ts, []byte("\x0a\x01a\x12\x01b"))
	ts = protowire.AppendTag(ts, 2, protowire.BytesType)
	ts = protowire.AppendBytes(ts, []byte{0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x01})
	ts = protowire.AppendTag(ts, 1, protowire.BytesType)
	ts = protowire.AppendBytes(ts, []byte("\x0a\x03job\x12\x08nameless"))
	inter = protowire.AppendBytes(inter, ts)
	for _, body := range [][]byte{raw, inter} {
		r := post(t, c, "application/x-protobuf", "snappy", snappy.Encode(nil, body))
		require.Equal(t, 400, r.code, r.body)
		require.Contains(t, r.body, `job="nameless"} has no __name__ label`)
	}
	r := post(t, c, "application/x-protobuf", "snappy", snappy.Encode(nil, inter))
	require.NotContains(t, r.body, "storage:", "interleaved labels are checked by the decoder")

	syms := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("job", "nameless"), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}},
	}}}
	req.Symbols = syms.Symbols()
	raw, err = req.Marshal()
	require.NoError(t, err)
	r = post(t, c, "application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy", snappy.Encode(nil, raw))
	require.Equal(t, 400, r.code, r.body)
	require.Contains(t, r.body, `job="nameless"} has no __name__ label`)
	require.Empty(t, st.Read(t, db, "default", math.MinInt64, math.MaxInt64, anyName))
	require.Zero(t, db.Stats().Series)
}

// FuzzHandler: any body gets 204 or a 4xx, and a rejected body stores nothing.
func FuzzHandler(f *testing.F) {
	f.Add(snappyV1(f, v1Request()), false)
	f.Add([]byte{0x0a, 0x7f}, true)
	f.Add([]byte{}, false)
	db := st.Open(f, nil)
	h := New(db, nil)
	f.Fuzz(func(t *testing.T, body []byte, v2 bool) {
		before := db.Stats().SamplesWritten
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		if v2 {
			ctx.Request.Header.SetContentType("application/x-protobuf;proto=io.prometheus.write.v2.Request")
		}
		ctx.Request.SetBody(body)
		h.Serve(&ctx)
		code := ctx.Response.StatusCode()
		switch {
		case code == 204:
		case code >= 400 && code < 500:
			require.Equal(t, before, db.Stats().SamplesWritten, "a %d stored samples", code)
		default:
			t.Fatalf("status %d: %s", code, ctx.Response.Body())
		}
	})
}

func FuzzDecodeV1(f *testing.F) {
	raw, _ := v1Request().Marshal()
	f.Add(raw)
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	for _, seed := range extrasSeedsV1(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var batch storage.Batch
		d, total := reserving()
		c, err := d.DecodeV1(b, &batch)
		checkReserved(t, b, false, *total, c, &batch, err)
	})
}

func FuzzDecodeV2(f *testing.F) {
	syms := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: syms.SymbolizeLabels(labels.FromStrings("__name__", "up"), nil),
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 1000}},
	}}}
	req.Symbols = syms.Symbols()
	raw, _ := req.Marshal()
	f.Add(raw)
	for _, seed := range extrasSeedsV2(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var batch storage.Batch
		d, total := reserving()
		c, err := d.DecodeV2(b, &batch)
		checkReserved(t, b, true, *total, c, &batch, err)
	})
}

// reserving returns a decoder whose Reserve adds up what it is told.
func reserving() (*Decoder, *Size) {
	d := NewDecoder()
	var total Size
	d.Reserve = func(more Size) error {
		total.add(more)
		return nil
	}
	return d, &total
}

// checkReserved: what the decoder told Reserve (and the handler reserves
// memory for) is never less than what it decoded, body accepted or not;
// nor is what measure counts, for a body accepted.
func checkReserved(t *testing.T, b []byte, v2 bool, total Size, c Counts, batch *storage.Batch, err error) {
	require.GreaterOrEqual(t, total.Series, len(batch.Series))
	require.GreaterOrEqual(t, total.Samples, c.Samples)
	require.GreaterOrEqual(t, total.Histograms, c.Histograms)
	require.GreaterOrEqual(t, total.Exemplars, c.Exemplars)
	require.GreaterOrEqual(t, total.Metadata, len(batch.Metadata))
	if err != nil {
		return
	}
	sz, merr := measure(b, v2)
	require.NoError(t, merr, "measure refused a body the decoder took")
	require.GreaterOrEqual(t, sz.Series, len(batch.Series))
	require.GreaterOrEqual(t, sz.Samples, c.Samples)
	require.GreaterOrEqual(t, sz.Histograms, c.Histograms)
	require.GreaterOrEqual(t, sz.Exemplars, c.Exemplars)
}
