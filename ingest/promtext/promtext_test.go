package promtext

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/ingest/reqbody"
	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

const exposition = `# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",method="get"} 1027 1700000000000
http_requests_total{code="400",method="post"} 3
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.5"} 4.773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
`

func TestDecodeText(t *testing.T) {
	var b storage.Batch
	_, err := Decode([]byte(exposition), "text/plain; version=0.0.4", 42, &b)
	require.NoError(t, err)
	require.Len(t, b.Series, 5)
	require.Equal(t, labels.FromStrings("__name__", "http_requests_total", "code", "200", "method", "get"), b.Series[0].Labels)
	require.Equal(t, []storage.Sample{{T: 1700000000000, V: 1027}}, b.Series[0].Samples)
	require.Equal(t, int64(42), b.Series[1].Samples[0].T, "no timestamp: the default")
}

func TestDecodeOpenMetrics(t *testing.T) {
	var b storage.Batch
	_, err := Decode([]byte("# TYPE foo counter\nfoo_total 1 1700000000.5\n# EOF\n"), "application/openmetrics-text; version=1.0.0", 0, &b)
	require.NoError(t, err)
	require.Len(t, b.Series, 1)
	require.Equal(t, int64(1700000000500), b.Series[0].Samples[0].T, "OpenMetrics timestamps are seconds")
}

func TestDecodeMetadata(t *testing.T) {
	f := func(body, contentType string, want ...storage.Metadata) {
		t.Helper()
		var b storage.Batch
		_, err := Decode([]byte(body), contentType, 0, &b)
		require.NoError(t, err)
		require.Equal(t, want, b.Metadata)
	}
	f(exposition, "",
		storage.Metadata{Family: "http_requests_total", Type: "counter", Help: "Requests."},
		storage.Metadata{Family: "rpc_duration_seconds", Type: "summary"})
	f("up 1\n", "")
	f(`# HELP a Escaped \\ and \n.
# TYPE a untyped
# TYPE b gauge
# HELP b Gauge.
# TYPE c histogram
`, "",
		storage.Metadata{Family: "a", Type: "unknown", Help: "Escaped \\ and \n."},
		storage.Metadata{Family: "b", Type: "gauge", Help: "Gauge."},
		storage.Metadata{Family: "c", Type: "histogram"})
	om := `# TYPE rq_seconds histogram
# UNIT rq_seconds seconds
# HELP rq_seconds Request time.
rq_seconds_bucket{le="+Inf"} 1
rq_seconds_sum 1
rq_seconds_count 1
# TYPE g gaugehistogram
# TYPE i info
i_info{v="1"} 1
# TYPE s stateset
s{s="a"} 1
# TYPE u unknown
# TYPE x counter
# EOF
`
	f(om, "application/openmetrics-text; version=1.0.0",
		storage.Metadata{Family: "rq_seconds", Type: "histogram", Unit: "seconds", Help: "Request time."},
		storage.Metadata{Family: "g", Type: "gaugehistogram"},
		storage.Metadata{Family: "i", Type: "info"},
		storage.Metadata{Family: "s", Type: "stateset"},
		storage.Metadata{Family: "u", Type: "unknown"},
		storage.Metadata{Family: "x", Type: "counter"})
}

func TestDecodeExemplars(t *testing.T) {
	var b storage.Batch
	body := "# TYPE foo counter\n" +
		"foo_total{a=\"1\"} 1 1700000001 # {trace_id=\"abc\"} 0.5 1700000000.123\n" +
		"foo_total{a=\"2\"} 2 # {trace_id=\"def\",span_id=\"7\"} 3\n" +
		"foo_total{a=\"3\"} 3\n# EOF\n"
	_, err := Decode([]byte(body), "application/openmetrics-text", 42, &b)
	require.NoError(t, err)
	require.Len(t, b.Series, 3)
	require.Equal(t, []storage.Exemplar{{Labels: labels.FromStrings("trace_id", "abc"), T: 1700000000123, V: 0.5}}, b.Series[0].Exemplars)
	require.Equal(t, []storage.Exemplar{{Labels: labels.FromStrings("span_id", "7", "trace_id", "def"), T: 42, V: 3}}, b.Series[1].Exemplars,
		"no timestamp: the sample's")
	require.Empty(t, b.Series[2].Exemplars)
	require.Equal(t, []storage.Sample{{T: 1700000001000, V: 1}}, b.Series[0].Samples)
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, bad := range []string{"up{job=\"x\" 1\n", "up 1\nup{a=} 2\n", "{} 1\n", "up abc\n"} {
		var b storage.Batch
		_, err := Decode([]byte(bad), "", 0, &b)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "line")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(exposition), "")
	f.Add([]byte("# TYPE foo counter\nfoo_total 1 1.5\n# EOF\n"), "application/openmetrics-text")
	f.Add([]byte("# TYPE foo counter\n# UNIT foo seconds\n# HELP foo H.\nfoo_total 1 1.5 # {trace_id=\"a\"} 0.5 1.25\n# EOF\n"), "application/openmetrics-text")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		var b storage.Batch
		if _, err := Decode(body, ct, 0, &b); err != nil {
			return
		}
		for _, s := range b.Series {
			if s.Labels.IsEmpty() {
				t.Fatalf("accepted a series without labels from %q", body)
			}
		}
		seen := map[string]bool{}
		for _, m := range b.Metadata {
			if m.Family == "" || seen[m.Family] {
				t.Fatalf("metadata %+v: empty or repeated family from %q", m, body)
			}
			seen[m.Family] = true
		}
	})
}

func TestHandler(t *testing.T) {
	db := st.Open(t, nil)
	h := New(db, &Options{Now: func() time.Time { return time.UnixMilli(5000) }})
	send := func(uri, body string, gz bool) (int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI(uri)
		if gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write([]byte(body))
			_ = zw.Close()
			ctx.Request.Header.Set("Content-Encoding", "gzip")
			body = buf.String()
		}
		ctx.Request.SetBodyString(body)
		h.Serve(&ctx)
		return ctx.Response.StatusCode(), string(ctx.Response.Body())
	}
	code, body := send("/api/v1/import/prometheus?extra_label=source=script", exposition, true)
	require.Equal(t, 204, code, body)
	got := st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("source", "script"))
	require.Len(t, got, 5)
	require.Equal(t, []storage.Sample{{T: 5000, V: 3}}, got[`{__name__="http_requests_total", code="400", method="post", source="script"}`])

	md, err := db.Metadata("default", "", -1, -1)
	require.NoError(t, err)
	require.Equal(t, []storage.Metadata{
		{Family: "http_requests_total", Type: "counter", Help: "Requests."},
		{Family: "rpc_duration_seconds", Type: "summary"},
	}, md, "metadata stored by the same write")

	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.SetContentType("application/openmetrics-text; version=1.0.0")
	ctx.Request.SetBodyString("# TYPE ex counter\n# HELP ex With exemplars.\nex_total 7 1.5 # {trace_id=\"abc\"} 0.5 1.25\n# EOF\n")
	h.Serve(ctx)
	require.Equal(t, 204, ctx.Response.StatusCode(), string(ctx.Response.Body()))
	exs, err := db.Exemplars(context.Background(), "default", 0, 10_000, [][]*labels.Matcher{{st.Eq("__name__", "ex_total")}})
	require.NoError(t, err)
	require.Len(t, exs, 1)
	require.Equal(t, []storage.Exemplar{{Labels: labels.FromStrings("trace_id", "abc"), T: 1250, V: 0.5}}, exs[0].Exemplars)
	md, err = db.Metadata("default", "ex", -1, -1)
	require.NoError(t, err)
	require.Equal(t, []storage.Metadata{{Family: "ex", Type: "counter", Help: "With exemplars."}}, md)

	code, body = send("/api/v1/import/prometheus", "up 1\nup{ 2\n", false)
	require.Equal(t, 400, code)
	require.Contains(t, body, "bad exposition format")
	require.Empty(t, st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "up")), "a bad body stores nothing")
	code, body = send("/api/v1/import/prometheus", "# TYPE bad counter\nup{ 2\n", false)
	require.Equal(t, 400, code, body)
	md, err = db.Metadata("default", "bad", -1, -1)
	require.NoError(t, err)
	require.Empty(t, md, "nor its metadata")

	code, _ = send("/api/v1/import/prometheus?timestamp=yesterday", "up 1\n", false)
	require.Equal(t, 400, code)
}

// Over --ingest.max-decoded-bytes a gzip body is a 413 naming the limit; a
// body whose lines would take more memory than the whole in-flight budget
// is a 413 too, and stores nothing (#23).
func TestHandlerBoundsMemory(t *testing.T) {
	db := st.Open(t, nil)
	h := New(db, &Options{Limits: reqbody.Limits{MaxDecodedBytes: 1 << 20, InFlight: limits.NewInFlight(64<<20, 0)}})
	send := func(body string, gz bool) (int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		if gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write([]byte(body))
			_ = zw.Close()
			ctx.Request.Header.Set("Content-Encoding", "gzip")
			body = buf.String()
		}
		ctx.Request.SetBodyString(body)
		h.Serve(&ctx)
		return ctx.Response.StatusCode(), string(ctx.Response.Body())
	}
	code, msg := send(strings.Repeat("up 1\n", 300_000), true)
	require.Equal(t, 413, code, msg)
	require.Contains(t, msg, "larger than the limit of 1048576 bytes (--ingest.max-decoded-bytes)")
	code, msg = send(strings.Repeat("a 1\n", 200_000), false)
	require.Equal(t, 413, code, msg)
	require.Contains(t, msg, "more than the whole in-flight budget of 64.0 MiB (--ingest.max-inflight-bytes)")
	require.Empty(t, st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "a")))
	code, msg = send(strings.Repeat("a 1\n", 1000), false)
	require.Equal(t, 204, code, msg)
}
