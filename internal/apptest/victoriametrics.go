package apptest

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/emsdb/tsdb/internal/apptest/refbin"
)

// ReferenceVictoriaMetricsVersion is the VictoriaMetrics release whose
// MetricsQL is our reference (the newest the module proxy serves that
// builds with our Go).
const ReferenceVictoriaMetricsVersion = refbin.VictoriaMetricsVersion

// ReferenceVictoriaMetrics returns the path of a VictoriaMetrics
// single-node binary built from the Go module proxy with CGO_ENABLED=0,
// building it on first use (a few minutes) into the same cache folder as
// ReferencePrometheus: $TSDB_CACHE_DIR, else the user cache folder.
func ReferenceVictoriaMetrics(t testing.TB) string {
	t.Helper()
	bin, err := refbin.VictoriaMetrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// StartVictoriaMetrics starts a VictoriaMetrics single-node binary on a
// free loopback port with a private data folder and waits until it is
// healthy. It keeps everything (-retentionPeriod=100y), answers from
// the newest samples (-search.latencyOffset=0), does not deduplicate and
// caches no query results, so that data written a moment ago, with any
// timestamps, is what it answers from. Remote write goes to
// /api/v1/write; call ForceFlush before querying what was written.
func StartVictoriaMetrics(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	dir := t.TempDir()
	addr := FreePort(t)
	all := append([]string{
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + filepath.Join(dir, "data"),
		"-retentionPeriod=100y",
		"-search.latencyOffset=0",
		"-dedup.minScrapeInterval=0",
		"-search.disableCache",
		"-loggerLevel=WARN",
	}, args...)
	url := "http://" + addr + "/health"
	return startProc(t, "victoria-metrics", addr, exec.Command(bin, all...), 60*time.Second, func() bool {
		code, _ := tryGet(url)
		return code == 200
	})
}

// ForceFlush makes VictoriaMetrics' freshly written samples searchable
// (they are buffered for a second or two otherwise).
func (p *Proc) ForceFlush(t testing.TB) {
	t.Helper()
	if code, body := p.Get(t, "/internal/force_flush"); code != 200 {
		t.Fatalf("force_flush: %d %s", code, body)
	}
}
