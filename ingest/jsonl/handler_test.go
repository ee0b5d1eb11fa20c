package jsonl

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/internal/limits/limitstest"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func serve(h *Handler, method, uri, body string, gz bool) (int, string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
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

func TestHandler(t *testing.T) {
	db := st.Open(t, nil)
	h := New(db, nil)
	code, msg := serve(h, "POST", "/api/v1/import?extra_label=source=backup", body, true)
	require.Equal(t, 204, code, msg)
	var want storage.Batch
	var d Decoder
	require.NoError(t, d.Decode([]byte(body), &want))
	got := st.ReadMixed(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("source", "backup"))
	require.Len(t, got, 2)
	up := got[`{__name__="up", job="a", source="backup"}`]
	require.Len(t, up, 7)
	for i, m := range up {
		s := want.Series[0].Samples[i]
		require.Equal(t, s.T, m.T)
		require.Equal(t, math.Float64bits(s.V), math.Float64bits(m.V), "sample %d bit-exact", i)
	}
	rq := got[`{__name__="rq_seconds", job="a", source="backup"}`]
	require.Len(t, rq, 5)
	require.Equal(t, st.Mixed{T: 500, V: 5}, rq[0])
	// Storage refines counter reset hints as Prometheus' head does: the
	// first counter histogram and the one after a gauge are unknown; a
	// gauge and an explicit reset keep their hint.
	hints := []histogram.CounterResetHint{histogram.UnknownCounterReset, histogram.GaugeType, histogram.UnknownCounterReset, histogram.CounterReset}
	for i, hs := range want.Series[1].Histograms {
		require.Equal(t, hs.T, rq[i+1].T)
		require.Equal(t, hints[i], rq[i+1].H.CounterResetHint, "histogram %d", i)
		if storage.IsStaleHistogram(hs.H) {
			require.True(t, storage.IsStaleHistogram(rq[i+1].H))
			continue
		}
		hs.H.CounterResetHint = hints[i]
		require.Equal(t, hs.H, rq[i+1].H, "histogram %d", i)
	}
}

// A bad line, a bad sample and a bad request store nothing and say why.
func TestHandlerRefuses(t *testing.T) {
	db := st.Open(t, nil)
	h := New(db, &Options{MaxBodyBytes: 1 << 20})
	ok := `{"metric":{"__name__":"a"},"values":[1],"timestamps":[1000]}` + "\n"
	f := func(method, uri, body string, wantCode int, wantMsg string) {
		t.Helper()
		code, msg := serve(h, method, uri, body, false)
		require.Equal(t, wantCode, code, msg)
		require.Contains(t, msg, wantMsg)
		require.Empty(t, st.ReadMixed(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "a")), "nothing stored")
	}
	f("POST", "/api/v1/import", ok+ok+`{"metric":{"__name__":"a"},"values":[1,2],"timestamps":[1]}`, 400, "bad JSON lines: line 3: 2 values for 1 timestamps")
	f("POST", "/api/v1/import", ok+`{"metric":{"__name__":"a"}`, 400, "line 2: unexpected EOF")
	f("POST", "/api/v1/import", ok+`{"metric":{"__name__":"b"},"values":[1],"timestamps":[`+strconv.FormatInt(storage.MaxTime+1, 10)+`]}`, 400, "out of the storable range")
	f("POST", "/api/v1/import?extra_label=nope", ok, 400, `bad extra_label "nope"`)
	f("GET", "/api/v1/import", ok, 405, "import needs POST")
	f("POST", "/api/v1/import", strings.Repeat(ok, (1<<20)/len(ok)+1), 413, "--remote-write.max-body-bytes")
}

// Over --ingest.max-decoded-bytes a gzip body is a 413 naming the limit;
// a body whose lines would take more than the whole in-flight budget is a
// 413 too, and stores nothing.
func TestHandlerBoundsMemory(t *testing.T) {
	db := st.Open(t, nil)
	h := New(db, &Options{MaxDecodedBytes: 1 << 20, InFlight: limits.NewInFlight(16<<20, 0)})
	line := `{"metric":{"__name__":"a"},"values":[1],"timestamps":[1000]}` + "\n"
	code, msg := serve(h, "POST", "/", strings.Repeat(line, 20_000), true)
	require.Equal(t, 413, code, msg)
	require.Contains(t, msg, "larger than the limit of 1048576 bytes (--ingest.max-decoded-bytes)")
	h = New(db, &Options{InFlight: limits.NewInFlight(16<<20, 0)})
	code, msg = serve(h, "POST", "/", strings.Repeat(line, 20_000), false)
	require.Equal(t, 413, code, msg)
	require.Contains(t, msg, "more than the whole in-flight budget of 16.0 MiB (--ingest.max-inflight-bytes)")
	require.Empty(t, st.ReadMixed(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "a")))
	code, msg = serve(h, "POST", "/", strings.Repeat(line, 1000), false)
	require.Equal(t, 204, code, msg)
}

// hostile returns a body of about n bytes of the given shape: the
// cheapest elements JSON lines allow, so the most memory per byte.
func hostile(shape string, n int) string {
	var b strings.Builder
	switch shape {
	case "values":
		b.WriteString(`{"metric":{"__name__":"a"},"values":[`)
		k := n / 10
		for i := range k {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('1')
		}
		b.WriteString(`],"timestamps":[`)
		for i := range k {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(i))
		}
		b.WriteString("]}\n")
	case "series":
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, `{"metric":{"a":"%d"},"values":[1],"timestamps":[1]}`+"\n", i)
		}
	case "histograms":
		b.WriteString(`{"metric":{"__name__":"h"},"histograms":[`)
		k := n / 16
		for i := range k {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{}`)
		}
		b.WriteString(`],"histogram_timestamps":[`)
		for i := range k {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(i))
		}
		b.WriteString("]}\n")
	case "buckets": // histograms as large as allowed, one per line
		for b.Len() < n {
			b.WriteString(`{"metric":{"__name__":"h`)
			b.WriteString(strconv.Itoa(b.Len()))
			b.WriteString(`"},"histograms":[{"schema":0,"positive_spans":[{"offset":0,"length":`)
			b.WriteString(strconv.Itoa(maxBuckets))
			b.WriteString(`}],"positive_buckets":[`)
			for i := range maxBuckets {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteByte('0')
			}
			b.WriteString("]}],\"histogram_timestamps\":[1]}\n")
		}
	}
	return b.String()
}

// TestBodiesStayInBudget: the memory a body takes to decode and write,
// at its peak, is less than what it reserved from the in-flight budget,
// for bodies of the shapes that take the most per byte.
func TestBodiesStayInBudget(t *testing.T) {
	const size = 4 << 20
	for _, shape := range []string{"values", "series", "histograms", "buckets"} {
		t.Run(shape, func(t *testing.T) {
			db := st.Open(t, nil)
			budget := limits.NewInFlight(1<<30, 0)
			h := New(db, &Options{InFlight: budget})
			body := hostile(shape, size)
			var code int
			var msg string
			peak := limitstest.PeakHeap(func() { code, msg = serve(h, "POST", "/", body, false) })
			require.Equal(t, 204, code, msg)
			reserved := uint64(budget.Peak())
			t.Logf("body %d KiB, reserved %d MiB (%.1fx), peak heap %d MiB (%.1fx)", len(body)>>10, reserved>>20,
				float64(reserved)/float64(len(body)), peak>>20, float64(peak)/float64(len(body)))
			require.Less(t, peak, reserved)
		})
	}
}
