package influx

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/internal/limits/limitstest"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// batches records the size of every write and fails the one numbered
// failAt (from 1).
type batches struct {
	w      storage.Writer
	sizes  []int
	failAt int
}

func (b *batches) Write(ctx context.Context, tenant string, batch *storage.Batch) error {
	b.sizes = append(b.sizes, batch.Len())
	if len(b.sizes) == b.failAt {
		return fmt.Errorf("%w: refused for the test", storage.ErrTooManySeries)
	}
	return b.w.Write(ctx, tenant, batch)
}

func gzipped(s string) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return buf.Bytes()
}

func serveGzip(h *Handler, body []byte) (int, string, string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.Header.Set("Content-Encoding", "gzip")
	ctx.Request.SetBody(body)
	h.ServeV1(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body()), string(ctx.Response.Header.Peek("Retry-After"))
}

// A body is parsed and written in batches, so that what a request holds
// beyond its body does not grow with it; a line's fields may span batches;
// a refused batch says what was stored before it (#23).
func TestHandlerWritesInBatches(t *testing.T) {
	db := st.Open(t, nil)
	rec := &batches{w: db}
	h := New(rec, &Options{BatchSamples: 100})
	var body strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&body, "m,i=%d f=1 %d\n", i%7, i)
	}
	body.WriteString("wide a=1,b=2,c=3\n")
	code, msg, _ := serveGzip(h, gzipped(body.String()))
	require.Equal(t, 204, code, msg)
	require.Len(t, rec.sizes, 11)
	for _, n := range rec.sizes {
		require.LessOrEqual(t, n, 100)
	}
	require.Len(t, st.Read(t, db, "default", math.MinInt64, math.MaxInt64, st.Eq("__name__", "m_f")), 7)

	rec.sizes, rec.failAt = nil, 3
	code, msg, _ = serveGzip(h, gzipped(body.String()))
	require.Equal(t, 400, code, msg)
	require.Contains(t, msg, "refused for the test (200 samples of earlier batches, of lines 1 to 200, were stored)")
}

// Over --ingest.max-decoded-bytes a gzip body is a 413 naming the limit;
// the in-flight budget refuses as it does for remote write; bad lines are
// counted, and only the first few kept (#23).
func TestHandlerBoundsMemory(t *testing.T) {
	db := st.Open(t, nil)
	budget := limits.NewInFlight(16<<20, 10*time.Millisecond)
	h := New(db, &Options{MaxDecodedBytes: 1 << 20, InFlight: budget})
	small := gzipped(strings.Repeat("m f=1\n", 1000))

	code, msg, _ := serveGzip(h, gzipped(strings.Repeat("m f=1\n", 200_000)))
	require.Equal(t, 413, code, msg)
	require.Contains(t, msg, "larger than the limit of 1048576 bytes (--ingest.max-decoded-bytes)")

	res, err := budget.Reserve(t.Context(), 31<<19)
	require.NoError(t, err)
	code, msg, after := serveGzip(h, small)
	require.Equal(t, 503, code, msg)
	require.Contains(t, msg, "ingest is busy")
	require.Equal(t, "1", after)
	res.Release()

	code, msg, _ = serveGzip(h, gzipped(strings.Repeat("bad\n", 100_000)+"m f=1\n"))
	require.Equal(t, 400, code, msg)
	require.Contains(t, msg, "partial write: 100000 bad lines not stored (line 1: missing fields;")
	require.Contains(t, msg, "line 10: missing fields; … 99990 more); 1 samples stored")
	require.Zero(t, budget.Used())
}

// TestHostileBodiesStayInBudget: for each of the line-protocol shapes
// that take the most memory per byte, the heap a request takes at its
// peak (near live memory: the collector runs at GOGC=5) stays under what
// it reserved. The costs of workingBytes come from this test. Before #23 a
// 58 KB gzip body of 2.1 M lines took 1.37 GB.
func TestHostileBodiesStayInBudget(t *testing.T) {
	const decoded = 4 << 20
	wide := "m f=1" + strings.Repeat(",f=1", MaxLineBytes/4-2) + "\n"
	tags := "m" + strings.Repeat(",a=b", MaxLineBytes/4-4) + " f=1\n"
	for _, tc := range []struct{ name, line string }{
		{"short lines", "m f=1\n"},
		{"lines of 1 MiB of fields", wide},
		{"lines of 1 MiB of tags", tags},
		{"bad lines", "x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := st.Open(t, nil)
			h := New(db, &Options{InFlight: limits.NewInFlight(1<<30, 0)})
			text := strings.Repeat(tc.line, decoded/len(tc.line))
			body := gzipped(text)
			reserved := uint64(len(body)+len(text)) + uint64(h.workingBytes([]byte(text)))
			text = ""
			var code int
			var msg string
			peak := limitstest.PeakHeap(func() { code, msg, _ = serveGzip(h, body) })
			require.Less(t, code, 500, "%.200s", msg)
			t.Logf("gzip body of %d KiB: reserved %d MiB, peak heap %d MiB", len(body)>>10, reserved>>20, peak>>20)
			require.Less(t, peak, reserved)
		})
	}
}
