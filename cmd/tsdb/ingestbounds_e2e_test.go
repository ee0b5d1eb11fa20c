package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/emsdb/tsdb/benchmarks/peer"
	"github.com/emsdb/tsdb/internal/apptest"
)

// TestHostileIngestStaysBounded sends bin/tsdb, with its default limits,
// rounds of four hostile ingest requests at once — gzip line protocol that
// decodes to 32 and 64 MiB of the shortest lines, and remote-write bodies
// of millions of samples of one series or of one-sample entries, the
// shapes that take the most memory per byte — and checks the process's
// peak RSS. Before #23 one 58 KB gzip body took 1.37 GB, four 5.8 GB, and
// one 11.75 MB remote-write body 3.5 GB. Every answer is a 204, a 413
// naming a limit, or a 503 with Retry-After. Measured: peak RSS 626-736
// MiB from 33 MiB idle — the 256 MiB in-flight budget, up to twice that
// with the collector at GOGC=100 (the server now runs at 50 unless GOGC is
// set), and storage's own memory for the millions of samples accepted
// (--memory.budget-bytes lowers it further).
func TestHostileIngestStaysBounded(t *testing.T) {
	const bound = 1 << 30
	db := apptest.StartTSDB(t, apptest.Build(t), t.TempDir())

	type body struct {
		name, path, encoding string
		data                 []byte
	}
	gz := func(line string, size int) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		chunk := []byte(strings.Repeat(line, (1<<20)/len(line)))
		for n := 0; n+len(chunk) < size; n += len(chunk) {
			_, _ = zw.Write(chunk)
		}
		_ = zw.Close()
		return buf.Bytes()
	}
	rw := func(entries bool, decoded int) []byte {
		var raw, ts []byte
		name := []byte("\x0a\x08__name__\x12\x01m")
		for i := 0; len(raw)+len(ts) < decoded; i++ {
			if entries || ts == nil {
				ts = protowire.AppendTag(ts, 1, protowire.BytesType)
				ts = protowire.AppendBytes(ts, name)
			}
			ts = protowire.AppendTag(ts, 2, protowire.BytesType)
			ts = protowire.AppendBytes(ts, protowire.AppendVarint([]byte{0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10}, uint64(i)))
			if entries {
				raw = protowire.AppendTag(raw, 1, protowire.BytesType)
				raw = protowire.AppendBytes(raw, ts)
				ts = ts[:0]
			}
		}
		if !entries {
			raw = protowire.AppendTag(raw, 1, protowire.BytesType)
			raw = protowire.AppendBytes(raw, ts)
		}
		return snappy.Encode(nil, raw)
	}
	lp64 := body{"line protocol, 64 MiB of 'm f=1'", "/write", "gzip", gz("m f=1\n", 64<<20-1)}
	lp32 := body{"line protocol, 2.1 M lines in 32 MiB", "/write", "gzip", gz("cpu,h=a v=1 16\n", 32<<20)}
	samples := body{"remote write, 2.7 M samples of one series", "/api/v1/write", "snappy", rw(false, 40<<20)}
	entries := body{"remote write, 1 M one-sample entries of one series", "/api/v1/write", "snappy", rw(true, 32<<20)}
	huge := body{"remote write, 5 M samples (75 MiB decoded)", "/api/v1/write", "snappy", rw(false, 75<<20)}
	t.Logf("bodies: %d, %d, %d, %d, %d KiB", len(lp64.data)>>10, len(lp32.data)>>10, len(samples.data)>>10, len(entries.data)>>10, len(huge.data)>>10)

	idle, _, err := peer.ProcRSS(db.PID())
	require.NoError(t, err)
	c := &http.Client{Timeout: 2 * time.Minute}
	send := func(b body) (int, string, string) {
		req, err := http.NewRequest("POST", db.URL()+b.path, bytes.NewReader(b.data))
		require.NoError(t, err)
		req.Header.Set("Content-Encoding", b.encoding)
		if b.encoding == "snappy" {
			req.Header.Set("Content-Type", "application/x-protobuf")
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(msg), resp.Header.Get("Retry-After")
	}
	var (
		mu    sync.Mutex
		codes = map[string]int{}
	)
	for round, four := range [][]body{
		{lp64, lp64, lp64, lp64},
		{lp32, lp32, samples, samples},
		{samples, entries, lp64, lp32},
		{huge, entries, entries, samples},
		{lp64, samples, lp64, samples},
		{samples}, // alone it fits: the budget is not held by anything left behind
	} {
		var wg sync.WaitGroup
		for _, b := range four {
			wg.Go(func() {
				code, msg, after := send(b)
				switch code {
				case 204:
				case 413:
					require.Regexp(t, `--ingest\.max-(decoded|inflight)-bytes`, msg, b.name)
				case 503:
					require.Contains(t, msg, "--ingest.max-inflight-bytes", b.name)
					require.NotEmpty(t, after, b.name)
				default:
					t.Errorf("round %d, %s: %d %.300s", round, b.name, code, msg)
				}
				mu.Lock()
				codes[fmt.Sprintf("%s: %d", b.name, code)]++
				mu.Unlock()
			})
		}
		wg.Wait()
		now, peak, _ := peer.ProcRSS(db.PID())
		t.Logf("after round %d: RSS %d MiB, peak %d MiB", round, now>>20, peak>>20)
	}
	now, peak, err := peer.ProcRSS(db.PID())
	require.NoError(t, err)
	t.Logf("answers: %v", codes)
	t.Logf("RSS idle %d MiB, now %d MiB, peak %d MiB (bound %d MiB)", idle>>20, now>>20, peak>>20, bound>>20)
	require.Less(t, peak, int64(bound))
	require.Positive(t, codes[lp64.name+": 204"])
	require.Positive(t, codes[samples.name+": 204"])
	code, _ := db.Get(t, "/-/ready")
	require.Equal(t, 200, code)
}
