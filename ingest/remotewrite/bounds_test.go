package remotewrite

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/internal/limits/limitstest"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// hostileV1 is a remote-write 1.0 body of about n bytes decoded, of one of
// the shapes that take the most memory per byte: one series with many
// samples, or one series sent as one entry per sample (each entry is a
// batch item and a storage write item).
func hostileV1(shape string, n int) []byte {
	var raw []byte
	switch shape {
	case "samples":
		var ts []byte
		ts = protowire.AppendTag(ts, 1, protowire.BytesType)
		ts = protowire.AppendBytes(ts, []byte("\x0a\x08__name__\x12\x01m"))
		for i := 0; len(ts) < n; i++ {
			ts = protowire.AppendTag(ts, 2, protowire.BytesType)
			ts = protowire.AppendBytes(ts, protowire.AppendVarint([]byte{0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10}, uint64(i)))
		}
		raw = protowire.AppendTag(raw, 1, protowire.BytesType)
		raw = protowire.AppendBytes(raw, ts)
	case "entries":
		for i := 0; len(raw) < n; i++ {
			var ts []byte
			ts = protowire.AppendTag(ts, 1, protowire.BytesType)
			ts = protowire.AppendBytes(ts, []byte("\x0a\x08__name__\x12\x01m"))
			ts = protowire.AppendTag(ts, 2, protowire.BytesType)
			ts = protowire.AppendBytes(ts, protowire.AppendVarint([]byte{0x10}, uint64(i)))
			raw = protowire.AppendTag(raw, 1, protowire.BytesType)
			raw = protowire.AppendBytes(raw, ts)
		}
	}
	return raw
}

// hostileV2 is a remote-write 2.0 body of about n bytes decoded: many
// short symbols, or many entries of one series.
func hostileV2(shape string, n int) []byte {
	var raw []byte
	for _, s := range []string{"", "__name__", "m"} {
		raw = protowire.AppendTag(raw, 4, protowire.BytesType)
		raw = protowire.AppendBytes(raw, []byte(s))
	}
	entry := protowire.AppendTag(nil, 5, protowire.BytesType)
	entry = protowire.AppendBytes(entry, []byte{0x0a, 0x02, 0x01, 0x02, 0x12, 0x00})
	switch shape {
	case "symbols":
		for i := 0; len(raw) < n; i++ {
			raw = protowire.AppendTag(raw, 4, protowire.BytesType)
			raw = protowire.AppendBytes(raw, fmt.Appendf(nil, "%x", i))
		}
		raw = append(raw, entry...)
	case "entries":
		for len(raw) < n {
			raw = append(raw, entry...)
		}
	}
	return raw
}

func serveBody(h *Handler, body []byte, v2 bool) (int, string, string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	if v2 {
		ctx.Request.Header.SetContentType("application/x-protobuf;proto=io.prometheus.write.v2.Request")
	}
	ctx.Request.SetBody(body)
	h.Serve(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body()), string(ctx.Response.Header.Peek("Retry-After"))
}

// Over --ingest.max-decoded-bytes is a 413 that names the limit; a request
// that would need more memory than the whole in-flight budget is a 413; one
// that finds the budget taken by others is a 503 with Retry-After. None of
// them stores anything (#23).
func TestHandlerBoundsMemory(t *testing.T) {
	db := st.Open(t, nil)
	budget := limits.NewInFlight(8<<20, 10*time.Millisecond)
	h := New(db, &Options{MaxDecodedBytes: 1 << 20, InFlight: budget})

	code, msg, _ := serveBody(h, snappy.Encode(nil, hostileV1("samples", 2<<20)), false)
	require.Equal(t, 413, code, msg)
	require.Contains(t, msg, "over the limit of 1048576 (--ingest.max-decoded-bytes)")

	code, msg, _ = serveBody(h, snappy.Encode(nil, hostileV1("entries", 1<<19)), false)
	require.Equal(t, 413, code, msg)
	require.Contains(t, msg, "more than the whole in-flight budget of 8.0 MiB (--ingest.max-inflight-bytes)")

	// Refused part way through decoding while others hold the budget, a
	// request that could never fit is still a 413, not a 503 a sender
	// would retry for ever.
	res, err := budget.Reserve(t.Context(), 4<<20)
	require.NoError(t, err)
	code, msg, _ = serveBody(h, snappy.Encode(nil, hostileV1("entries", 1<<19)), false)
	require.Equal(t, 413, code, msg)
	require.Contains(t, msg, "more than the whole in-flight budget")
	res.Release()

	res, err = budget.Reserve(t.Context(), 7<<20)
	require.NoError(t, err)
	code, msg, after := serveBody(h, snappy.Encode(nil, hostileV1("samples", 1<<19)), false)
	require.Equal(t, 503, code, msg)
	require.Contains(t, msg, "ingest is busy")
	require.Equal(t, "1", after)
	res.Release()

	raw := hostileV1("samples", 1<<19)
	var batch storage.Batch
	c, err := NewDecoder().DecodeV1(raw, &batch)
	require.NoError(t, err)
	code, msg, _ = serveBody(h, snappy.Encode(nil, raw), false)
	require.Equal(t, 204, code, msg)
	require.Zero(t, budget.Used(), "every request gave back what it reserved")
	got := st.Read(t, db, "default", math.MinInt64, math.MaxInt64, anyName)
	require.Equal(t, c.Samples, len(got[`{__name__="m"}`]), "only the last request stored")
}

// TestHostileBodiesStayInBudget: for each of the shapes that take the most
// memory per decoded byte, the heap a request takes at its peak (near live
// memory: the collector runs at GOGC=5) stays under what it reserved from
// the in-flight budget. The per-series, per-sample and per-symbol costs of
// workingBytes come from this test. Before #23 nothing was reserved and a
// 64 MiB decoded body of entries took 1.2 GiB of heap.
func TestHostileBodiesStayInBudget(t *testing.T) {
	const decoded = 4 << 20
	for _, tc := range []struct {
		name string
		raw  []byte
		v2   bool
	}{
		{"1.0 one series, many samples", hostileV1("samples", decoded), false},
		{"1.0 one series, an entry per sample", hostileV1("entries", decoded), false},
		{"2.0 many symbols", hostileV2("symbols", decoded), true},
		{"2.0 one series, an entry per sample", hostileV2("entries", decoded), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := st.Open(t, nil)
			budget := limits.NewInFlight(1<<30, 0)
			h := New(db, &Options{InFlight: budget})
			body := snappy.Encode(nil, tc.raw)
			tc.raw = nil
			var code int
			peak := limitstest.PeakHeap(func() { code, _, _ = serveBody(h, body, tc.v2) })
			require.Equal(t, 204, code)
			reserved := uint64(budget.Peak())
			t.Logf("reserved %d MiB, peak heap %d MiB", reserved>>20, peak>>20)
			require.Less(t, peak, reserved)
		})
	}
}
