package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

// TestPortTakenOpensNothing: with the port taken, tsdb serve fails at
// once and opens nothing (it once opened storage and started the rule
// groups, which then kept evaluating against the closed database).
func TestPortTakenOpensNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte("groups:\n  - name: g\n    interval: 1s\n    rules:\n      - record: r\n        expr: vector(1)\n"), 0o644))
	sc, err := parseServeFlags([]string{"--listen", taken.Addr().String(), "--data", filepath.Join(dir, "data"), "--rules", rules})
	require.NoError(t, err)
	var logs bytes.Buffer
	err = runServer(context.Background(), sc, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	require.ErrorContains(t, err, "address already in use")
	_, serr := os.Stat(filepath.Join(dir, "data"))
	require.True(t, errors.Is(serr, os.ErrNotExist), "storage was not opened")
	time.Sleep(1500 * time.Millisecond) // a group with a 1s interval would have evaluated by now
	require.NotContains(t, logs.String(), "rule evaluation")
}

// TestFailedStartClosesWhatItOpened: a failure late in opening (a rule
// file that does not load) closes exactly what was opened: the storage
// can be opened again at once, and no goroutine is left behind.
func TestFailedStartClosesWhatItOpened(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: sum(\n"), 0o644))
	cfg := filepath.Join(dir, "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
itsm:
  cis: [{name: web, kind: service, selector: '{service="web"}', owner_group: ops, impact: high}]
  receivers: []
`), 0o644))
	sc, err := parseServeFlags([]string{"--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--rules", rules, "--config.file", cfg})
	require.NoError(t, err)
	before := runtime.NumGoroutine()
	err = runServer(context.Background(), sc, slog.New(slog.DiscardHandler), nil)
	require.ErrorContains(t, err, "could not parse expression")
	require.DirExists(t, filepath.Join(dir, "data"), "the failure came after the storage was opened")
	db, err := storage.Open(filepath.Join(dir, "data"), nil)
	require.NoError(t, err, "the storage was closed")
	require.NoError(t, db.Close())
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+2 }, 5*time.Second, 50*time.Millisecond,
		"goroutines left behind: %d before, %d after", before, runtime.NumGoroutine())
}

// TestLifecycleClosesInReverse: closers run in reverse order of opening,
// after every goroutine has stopped.
func TestLifecycleClosesInReverse(t *testing.T) {
	lc := newLifecycle(context.Background(), slog.New(slog.DiscardHandler))
	var order []string
	stopped := false
	lc.onClose("a", func() error { order = append(order, "a"); return nil })
	lc.run("worker", func(ctx context.Context) error { <-ctx.Done(); stopped = true; return nil })
	lc.onClose("b", func() error { order = append(order, "b"); require.True(t, stopped); return errors.New("b broke") })
	lc.onClose("c", func() error { order = append(order, "c"); return nil })
	err := lc.shutdown()
	require.Equal(t, []string{"c", "b", "a"}, order)
	require.ErrorContains(t, err, "close b: b broke")
}
