package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emsdb/tsdb/internal/limits"
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
	code        int
	contentType string
	retryAfter  string
	body        []byte
}

func post(t testing.TB, c *fasthttp.Client, contentType, encoding string, body []byte, hdr ...string) reply {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://tsdb/api/v1/otlp/v1/metrics")
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
	return reply{resp.StatusCode(), string(resp.Header.ContentType()), string(resp.Header.Peek("Retry-After")), append([]byte(nil), resp.Body()...)}
}

func protoBody(t testing.TB, md pmetric.Metrics) []byte {
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	require.NoError(t, err)
	return b
}

func jsonBody(t testing.TB, md pmetric.Metrics) []byte {
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
	require.NoError(t, err)
	return b
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// partial decodes a 200's ExportMetricsServiceResponse.
func partial(t testing.TB, r reply) (int64, string) {
	t.Helper()
	require.Equal(t, fasthttp.StatusOK, r.code, string(r.body))
	resp := pmetricotlp.NewExportResponse()
	if r.contentType == ctJSON {
		require.NoError(t, resp.UnmarshalJSON(r.body))
	} else {
		require.Equal(t, ctProtobuf, r.contentType)
		require.NoError(t, resp.UnmarshalProto(r.body))
	}
	return resp.PartialSuccess().RejectedDataPoints(), resp.PartialSuccess().ErrorMessage()
}

// status decodes an error's google.rpc.Status (protobuf).
func status(t testing.TB, r reply) (int32, string) {
	t.Helper()
	require.Equal(t, ctProtobuf, r.contentType)
	var code int32
	var msg string
	b := r.body
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		require.GreaterOrEqual(t, n, 0)
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			code, b = int32(v), b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			msg, b = v, b[n:]
		default:
			t.Fatalf("unexpected field %d in Status", num)
		}
	}
	return code, msg
}

var anyName = labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")

func read(t testing.TB, db storage.Reader, tenant string) map[string][]storage.Sample {
	return st.Read(t, db, tenant, math.MinInt64/2, math.MaxInt64/2, anyName)
}

func TestHandlerStoresEveryEncoding(t *testing.T) {
	for _, tc := range []struct {
		name, ct, enc string
		body          func(testing.TB, pmetric.Metrics) []byte
	}{
		{"protobuf", ctProtobuf, "", protoBody},
		{"json", ctJSON, "", jsonBody},
		{"protobuf gzip", ctProtobuf, "gzip", func(t testing.TB, md pmetric.Metrics) []byte { return gzipped(t, protoBody(t, md)) }},
		{"json gzip", "application/json; charset=utf-8", "gzip", func(t testing.TB, md pmetric.Metrics) []byte { return gzipped(t, jsonBody(t, md)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := st.Open(t, nil)
			c := server(t, New(db, nil))
			r := post(t, c, tc.ct, tc.enc, tc.body(t, everyType()), "X-Scope-OrgID", "team-a")
			rejected, msg := partial(t, r)
			require.Zero(t, rejected, msg)
			require.Empty(t, msg)
			got := read(t, db, "team-a")
			require.Equal(t, []storage.Sample{{T: t0ms(1000), V: 1234.5}},
				got[`{__name__="http_server_requests_total", http_method="GET", http_status_code="200", instance="pod-7", job="shop/checkout"}`])
			require.Equal(t, []storage.Sample{{T: t0ms(1000), V: 8}},
				got[`{__name__="http_server_duration_milliseconds_bucket", instance="pod-7", job="shop/checkout", le="500", route="/cart"}`])
			require.Equal(t, []storage.Sample{{T: t0ms(1000), V: 1}, {T: t0ms(2000), V: 1}},
				got[`{__name__="target_info", deployment_environment="prod", host_name="node-1", instance="pod-7", job="shop/checkout", k8s_pod_uid="abc"}`])
			require.Empty(t, read(t, db, "default"), "written to the request's tenant only")
		})
	}
}

func TestHandlerPartialSuccess(t *testing.T) {
	md := everyType()
	sm := md.ResourceMetrics().At(0).ScopeMetrics().At(0)
	m := sm.Metrics().AppendEmpty()
	m.SetName("delta.requests")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for range 3 {
		s.DataPoints().AppendEmpty().SetTimestamp(ts(1000))
	}
	m = sm.Metrics().AppendEmpty()
	m.SetName("too.coarse")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	eh.DataPoints().AppendEmpty().SetScale(-5)

	for _, ct := range []string{ctProtobuf, ctJSON} {
		t.Run(ct, func(t *testing.T) {
			db := st.Open(t, nil)
			c := server(t, New(db, nil))
			body := protoBody(t, md)
			if ct == ctJSON {
				body = jsonBody(t, md)
			}
			rejected, msg := partial(t, post(t, c, ct, "", body))
			require.Equal(t, int64(4), rejected)
			require.Contains(t, msg, `metric "delta.requests" has Delta temporality: only cumulative is taken`)
			require.Contains(t, msg, `metric "too.coarse": exponential histogram scale -5 is below the least native histogram schema -4`)
			got := read(t, db, "default")
			require.Contains(t, got, `{__name__="queue_length", instance="pod-7", job="shop/checkout", queue="orders", shard="3"}`, "the rest is stored")
			for s := range got {
				require.NotContains(t, s, "delta")
			}
		})
	}
}

func TestHandlerRefuses(t *testing.T) {
	good := protoBody(t, everyType())
	for _, tc := range []struct {
		name, method, ct, enc string
		body                  []byte
		code                  int
		grpc                  int32
		msg                   string
	}{
		{"undecodable protobuf", "POST", ctProtobuf, "", []byte("\x0a\xff\xff\xff\xff\x0f garbage"), 400, 3, "undecodable OTLP metrics request"},
		{"undecodable json", "POST", ctJSON, "", []byte(`{"resourceMetrics": [`), 400, 3, "undecodable OTLP metrics request"},
		{"json as protobuf", "POST", ctProtobuf, "", []byte(`{"resourceMetrics": []}`), 400, 3, "undecodable"},
		{"bad gzip", "POST", ctProtobuf, "gzip", good, 400, 3, "bad gzip body"},
		{"other content type", "POST", "text/plain", "", good, 415, 3, `unsupported Content-Type "text/plain"`},
		{"no content type", "POST", "", "", good, 415, 3, "unsupported Content-Type"},
		{"snappy", "POST", ctProtobuf, "snappy", good, 415, 3, `unsupported Content-Encoding "snappy"`},
		{"GET", "GET", ctProtobuf, "", nil, 405, 12, "needs POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := st.Open(t, nil)
			c := server(t, New(db, nil))
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://tsdb/api/v1/otlp/v1/metrics")
			req.Header.SetMethod(tc.method)
			if tc.ct != "" {
				req.Header.SetContentType(tc.ct)
			}
			if tc.enc != "" {
				req.Header.Set("Content-Encoding", tc.enc)
			}
			req.SetBody(tc.body)
			require.NoError(t, c.Do(req, resp))
			r := reply{code: resp.StatusCode(), contentType: string(resp.Header.ContentType()), body: resp.Body()}
			require.Equal(t, tc.code, r.code, string(r.body))
			if tc.ct == ctJSON {
				require.Equal(t, ctJSON, r.contentType)
				require.Contains(t, string(r.body), fmt.Sprintf(`"code":%d`, tc.grpc))
				require.Contains(t, string(r.body), tc.msg)
			} else {
				code, msg := status(t, r)
				require.Equal(t, tc.grpc, code)
				require.Contains(t, msg, tc.msg)
			}
			require.Empty(t, read(t, db, "default"), "a refused request stores nothing")
		})
	}
}

// refusing is a storage.Writer whose disk or limits refuse every write.
type refusing struct{ err error }

func (r refusing) Write(context.Context, string, *storage.Batch) error { return r.err }

func TestHandlerMapsStorageErrors(t *testing.T) {
	for _, tc := range []struct {
		err        error
		code       int
		grpc       int32
		retryAfter string
	}{
		{fmt.Errorf("%w: tenant over 100 samples/s", storage.ErrRateLimited), 429, 8, "1"},
		{&storage.NotWritableError{Dir: "data", Cause: errors.New("disk full")}, 503, 14, ""},
		{fmt.Errorf("%w: label too long", storage.ErrInvalidSeries), 400, 3, ""},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			c := server(t, New(refusing{tc.err}, nil))
			r := post(t, c, ctProtobuf, "", protoBody(t, everyType()))
			require.Equal(t, tc.code, r.code)
			code, msg := status(t, r)
			require.Equal(t, tc.grpc, code)
			require.Contains(t, msg, tc.err.Error())
			if tc.retryAfter != "" {
				require.Equal(t, tc.retryAfter, r.retryAfter)
			}
		})
	}
}

func TestHandlerBounds(t *testing.T) {
	body := protoBody(t, everyType())
	t.Run("body", func(t *testing.T) {
		c := server(t, New(st.Open(t, nil), &Options{MaxBodyBytes: 100}))
		r := post(t, c, ctProtobuf, "", body)
		require.Equal(t, 413, r.code)
		_, msg := status(t, r)
		require.Contains(t, msg, "--remote-write.max-body-bytes")
	})
	t.Run("gzip bomb", func(t *testing.T) {
		bomb := gzipped(t, bytes.Repeat([]byte{0}, 8<<20))
		c := server(t, New(st.Open(t, nil), &Options{MaxDecodedBytes: 1 << 20}))
		r := post(t, c, ctProtobuf, "gzip", bomb)
		require.Equal(t, 413, r.code)
		_, msg := status(t, r)
		require.Contains(t, msg, "--ingest.max-decoded-bytes")
	})
	t.Run("in-flight budget", func(t *testing.T) {
		// A request that can never fit the budget is a 413; one that fits
		// but finds it full is a 503 with Retry-After.
		c := server(t, New(st.Open(t, nil), &Options{InFlight: limits.NewInFlight(int64(len(body)), time.Millisecond)}))
		require.Equal(t, 413, post(t, c, ctProtobuf, "", body).code)
		inf := limits.NewInFlight(64<<20, time.Millisecond)
		hold, err := inf.Reserve(context.Background(), 64<<20-int64(len(body))-1)
		require.NoError(t, err)
		defer hold.Release()
		c = server(t, New(st.Open(t, nil), &Options{InFlight: inf}))
		r := post(t, c, ctProtobuf, "", body)
		require.Equal(t, 503, r.code)
		require.Equal(t, "1", r.retryAfter)
		hold.Release()
		partial(t, post(t, c, ctProtobuf, "", body))
		require.Zero(t, inf.Used(), "every reservation released")
	})
	t.Run("many buckets", func(t *testing.T) {
		// A small body whose points fan out into many series reserves
		// them as they are built.
		md := pmetric.NewMetrics()
		sm := resource(md, "svc", "", "i")
		m := sm.Metrics().AppendEmpty()
		m.SetName("wide")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for i := range 50 {
			p := h.DataPoints().AppendEmpty()
			p.Attributes().PutStr("long", strings.Repeat("x", 1000)+fmt.Sprint(i))
			bounds := make([]float64, 1000)
			for j := range bounds {
				bounds[j] = float64(j)
			}
			p.ExplicitBounds().FromRaw(bounds)
			p.BucketCounts().FromRaw(make([]uint64, 1001))
		}
		body := gzipped(t, protoBody(t, md))
		inf := limits.NewInFlight(16<<20, time.Millisecond)
		c := server(t, New(st.Open(t, nil), &Options{InFlight: inf}))
		r := post(t, c, ctProtobuf, "gzip", body)
		require.Equal(t, 413, r.code, "50,000 series of 1 KB labels do not fit 16 MiB")
		require.LessOrEqual(t, inf.Peak(), int64(16<<20))
	})
}

func TestTranslationRejects(t *testing.T) {
	cases := map[string]struct {
		build func(sm pmetric.ScopeMetrics)
		msg   string
	}{
		"delta histogram": {func(sm pmetric.ScopeMetrics) {
			m := sm.Metrics().AppendEmpty()
			m.SetName("lat")
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
			h.DataPoints().AppendEmpty()
		}, `metric "lat" has Delta temporality`},
		"unspecified temporality": {func(sm pmetric.ScopeMetrics) {
			m := sm.Metrics().AppendEmpty()
			m.SetName("c")
			m.SetEmptySum().DataPoints().AppendEmpty()
		}, `metric "c" has Unspecified temporality`},
		"invalid utf-8": {func(sm pmetric.ScopeMetrics) {
			m := sm.Metrics().AppendEmpty()
			m.SetName("g")
			p := m.SetEmptyGauge().DataPoints().AppendEmpty()
			p.Attributes().PutStr("a", "\xff")
		}, `metric "g": the value of label "a" is not valid UTF-8`},
		"underscores only": {func(sm pmetric.ScopeMetrics) {
			m := sm.Metrics().AppendEmpty()
			m.SetName("g")
			p := m.SetEmptyGauge().DataPoints().AppendEmpty()
			p.Attributes().PutStr("__", "x")
		}, `metric "g": attribute "__"`},
		"histogram count below its buckets": {func(sm pmetric.ScopeMetrics) {
			m := sm.Metrics().AppendEmpty()
			m.SetName("e")
			eh := m.SetEmptyExponentialHistogram()
			eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			p := eh.DataPoints().AppendEmpty()
			p.SetCount(1)
			p.Positive().BucketCounts().FromRaw([]uint64{5})
		}, `metric "e": exponential histogram`},
		"nhcb with +Inf bound": {func(sm pmetric.ScopeMetrics) {
			m := sm.Metrics().AppendEmpty()
			m.SetName("h")
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			p := h.DataPoints().AppendEmpty()
			p.SetCount(1)
			p.ExplicitBounds().FromRaw([]float64{1, math.Inf(1)})
			p.BucketCounts().FromRaw([]uint64{0, 1, 0})
		}, `metric "h": histogram with custom buckets`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			md := pmetric.NewMetrics()
			tc.build(resource(md, "svc", "", "i"))
			cfg := DefaultConfig()
			cfg.ConvertHistogramsToNHCB = true
			var b storage.Batch
			res, err := NewTranslator(cfg).Translate(md, &b)
			require.NoError(t, err)
			require.Equal(t, int64(1), res.Rejected)
			require.Contains(t, res.Message(), tc.msg)
			for _, s := range b.Series {
				require.Equal(t, "target_info", s.Labels.Get("__name__"), "nothing but target_info: %s", s.Labels)
			}
		})
	}
}

func TestExponentialHistogram(t *testing.T) {
	md := pmetric.NewMetrics()
	sm := resource(md, "svc", "", "i")
	m := sm.Metrics().AppendEmpty()
	m.SetName("lat")
	m.SetUnit("s")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p := eh.DataPoints().AppendEmpty()
	p.SetTimestamp(ts(0))
	p.SetScale(10) // downscaled by 2: four buckets make one
	p.SetCount(11)
	p.SetSum(20)
	p.SetZeroCount(1)
	p.SetZeroThreshold(0.001)
	p.Positive().SetOffset(0)
	p.Positive().BucketCounts().FromRaw([]uint64{1, 2, 3, 4})
	var b storage.Batch
	res, err := NewTranslator(DefaultConfig()).Translate(md, &b)
	require.NoError(t, err)
	require.Zero(t, res.Rejected)
	require.Len(t, b.Series, 1)
	h := b.Series[0].Histograms[0].H
	require.Equal(t, `{__name__="lat_seconds", instance="i", job="svc"}`, b.Series[0].Labels.String())
	require.Equal(t, t0ms(0), b.Series[0].Histograms[0].T)
	require.Equal(t, int32(8), h.Schema)
	require.Equal(t, 0.001, h.ZeroThreshold, "the sender's zero threshold")
	require.Equal(t, 1.0, h.ZeroCount)
	require.Equal(t, 11.0, h.Count)
	require.Equal(t, 20.0, h.Sum)
	require.Equal(t, []float64{10}, h.PositiveBuckets, "buckets 0..3 at scale 10 are bucket 0 at scale 8, index 1 natively")
	require.Equal(t, int32(1), h.PositiveSpans[0].Offset)
	require.Equal(t, []storage.Metadata{{Family: "lat_seconds", Type: "histogram", Unit: "seconds"}}, b.Metadata)
}

func TestCustomBucketHistogram(t *testing.T) {
	md := pmetric.NewMetrics()
	sm := resource(md, "svc", "", "i")
	m := sm.Metrics().AppendEmpty()
	m.SetName("size")
	m.SetUnit("By")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p := h.DataPoints().AppendEmpty()
	p.SetTimestamp(ts(0))
	p.SetCount(6)
	p.SetSum(1000)
	p.ExplicitBounds().FromRaw([]float64{10, 100, 1000})
	p.BucketCounts().FromRaw([]uint64{0, 1, 2, 3})
	cfg := DefaultConfig()
	cfg.ConvertHistogramsToNHCB = true
	var b storage.Batch
	_, err := NewTranslator(cfg).Translate(md, &b)
	require.NoError(t, err)
	require.Len(t, b.Series, 1)
	require.Equal(t, `{__name__="size_bytes", instance="i", job="svc"}`, b.Series[0].Labels.String())
	fh := b.Series[0].Histograms[0].H
	require.Equal(t, int32(-53), fh.Schema)
	require.Equal(t, []float64{10, 100, 1000}, fh.CustomValues)
	require.Equal(t, []float64{1, 2, 3}, fh.PositiveBuckets)
	require.Equal(t, int32(1), fh.PositiveSpans[0].Offset)
}

func TestTargetInfoIsBounded(t *testing.T) {
	md := pmetric.NewMetrics()
	sm := resource(md, "svc", "", "i", "host.name", "h")
	m := sm.Metrics().AppendEmpty()
	m.SetName("up")
	g := m.SetEmptyGauge()
	g.DataPoints().AppendEmpty().SetTimestamp(0) // 1970
	g.DataPoints().AppendEmpty().SetTimestamp(ts(0))
	var b storage.Batch
	_, err := NewTranslator(DefaultConfig()).Translate(md, &b)
	require.NoError(t, err)
	var info []storage.Sample
	for _, s := range b.Series {
		if s.Labels.Get("__name__") == "target_info" {
			info = append(info, s.Samples...)
		}
	}
	require.Len(t, info, maxTargetInfoSamples+1)
	require.Equal(t, t0ms(0), info[len(info)-1].T, "the latest point's time")
	prev := info[len(info)-2].T
	require.Zero(t, prev%targetInfoStep, "on Prometheus' grid from the earliest point (0)")
	require.Less(t, prev, t0ms(0))
	require.GreaterOrEqual(t, prev+targetInfoStep, t0ms(0))
}

func TestConfigValidate(t *testing.T) {
	f := func(c Config, want string) {
		t.Helper()
		err := c.Validate()
		if want == "" {
			require.NoError(t, err)
			return
		}
		require.ErrorContains(t, err, want)
	}
	def := DefaultConfig()
	f(def, "")
	f(Config{TranslationStrategy: "Bogus"}, `unknown translation_strategy "Bogus"`)
	f(Config{PromoteAllResourceAttributes: true, PromoteResourceAttributes: []string{"a"}}, "cannot both be set")
	f(Config{IgnoreResourceAttributes: []string{"a"}}, "needs promote_all_resource_attributes")
	f(Config{PromoteResourceAttributes: []string{"a", " a "}}, `attribute "a" twice`)
	f(Config{PromoteResourceAttributes: []string{" "}}, "an empty attribute name")
	f(Config{PromoteAllResourceAttributes: true, IgnoreResourceAttributes: []string{"a"}}, "")
}
