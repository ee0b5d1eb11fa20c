// Package refbin builds the reference binaries that the query tests and
// the benchmark harness compare tsdb with — Prometheus 3.14 and
// VictoriaMetrics v1.151.0 — from the Go module proxy, once, into a cache
// folder kept between runs ($TSDB_CACHE_DIR, else the user cache folder).
// It does not import testing, so that benchmarks/cmd/compare can use it as
// well as internal/apptest.
//
//	bin, err := refbin.VictoriaMetrics(ctx) // ~/.cache/tsdb/victoria-metrics-v1.151.0/victoria-metrics
package refbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// The reference releases: Prometheus's module version and the release it
// is, and the VictoriaMetrics release whose MetricsQL is our reference (the
// newest the module proxy serves that builds with our Go).
const (
	PrometheusModule       = "v0.314.0"
	PrometheusRelease      = "3.14.0"
	VictoriaMetricsVersion = "v1.151.0"
)

// CacheDir is the folder reference binaries are built into.
func CacheDir() string {
	if c := os.Getenv("TSDB_CACHE_DIR"); c != "" {
		return c
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "tsdb")
}

// Prometheus returns the path of a Prometheus 3.14 binary, building it on
// first use (a few minutes).
func Prometheus(ctx context.Context) (string, error) {
	return build(ctx, "prometheus-"+PrometheusRelease, "prometheus",
		"github.com/prometheus/prometheus/cmd/prometheus", PrometheusModule, nil)
}

// VictoriaMetrics returns the path of a VictoriaMetrics single-node binary
// built with CGO_ENABLED=0, building it on first use (a few minutes).
func VictoriaMetrics(ctx context.Context) (string, error) {
	return build(ctx, "victoria-metrics-"+VictoriaMetricsVersion, "victoria-metrics",
		"github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics", VictoriaMetricsVersion, []string{"CGO_ENABLED=0"})
}

// build builds pkg at version into CacheDir()/folder/name unless it is
// there. go install refuses both modules (they have replace directives), so
// it builds from a scratch module. A temporary name per process and the
// rename keep a half-written binary out of the cache.
func build(ctx context.Context, folder, name, pkg, version string, env []string) (string, error) {
	dir := filepath.Join(CacheDir(), folder)
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	scratch, err := os.MkdirTemp("", "refbin-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(scratch)
	tmp := bin + ".tmp" + strconv.Itoa(os.Getpid())
	steps := [][]string{
		{"go", "mod", "init", name + "-reference"},
		{"go", "get", pkg + "@" + version},
		{"go", "build", "-o", tmp, pkg},
	}
	for _, st := range steps {
		cmd := exec.CommandContext(ctx, st[0], st[1:]...)
		cmd.Dir = scratch
		cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod"), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			return "", fmt.Errorf("build reference %s %s: %v: %w\n%s", name, version, st, err, out)
		}
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}
