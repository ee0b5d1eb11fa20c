package promtext

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

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

	code, body = send("/api/v1/import/prometheus", "up 1\nup{ 2\n", false)
	require.Equal(t, 400, code)
	require.Contains(t, body, "bad exposition format")
	require.Empty(t, st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "up")), "a bad body stores nothing")

	code, _ = send("/api/v1/import/prometheus?timestamp=yesterday", "up 1\n", false)
	require.Equal(t, 400, code)
}

// Over --ingest.max-decoded-bytes a gzip body is a 413 naming the limit; a
// body whose lines would take more memory than the whole in-flight budget
// is a 413 too, and stores nothing (#23).
func TestHandlerBoundsMemory(t *testing.T) {
	db := st.Open(t, nil)
	h := New(db, &Options{MaxDecodedBytes: 1 << 20, InFlight: limits.NewInFlight(64<<20, 0)})
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
