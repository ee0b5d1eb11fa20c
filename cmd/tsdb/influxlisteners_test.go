package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The InfluxDB TCP and UDP listeners have no authentication. With auth:
// on they used to write into the default tenant without a word (#23); now
// tsdb serve refuses to start unless --influx.tenant names their tenant,
// warns at start, and they write there.
func TestInfluxListenersNeedATenantWithAuth(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
auth:
  users:
    - {name: reader, token_sha256: %x, roles: [read], tenants: ["*"]}
`, sha256.Sum256([]byte("secret")))), 0o644))
	data := filepath.Join(dir, "data")
	args := []string{"--listen", "127.0.0.1:0", "--data", data, "--config.file", cfg, "--influx.listen-tcp", "127.0.0.1:0"}

	sc, err := parseServeFlags(args)
	require.NoError(t, err)
	err = runServer(context.Background(), sc, slog.New(slog.DiscardHandler), nil)
	require.ErrorContains(t, err, "auth: is on: name the tenant they write into with --influx.tenant")

	sc, err = parseServeFlags(append(args, "--influx.tenant", "a|b"))
	require.NoError(t, err)
	require.ErrorContains(t, runServer(context.Background(), sc, slog.New(slog.DiscardHandler), nil), "--influx.tenant")

	sc, err = parseServeFlags(append(args, "--influx.tenant", "iot"))
	require.NoError(t, err)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, sc, slog.New(slog.NewTextHandler(&logs, nil)), ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready")
	}
	require.Contains(t, logs.String(), `level=WARN msg="influx line protocol listeners take writes without authentication: anyone who reaches them writes into their tenant" tenant=iot`)
	m := regexp.MustCompile(`msg="influx line protocol over tcp" addr=(\S+) tenant=iot`).FindStringSubmatch(logs.String())
	require.NotNil(t, m, logs.String())
	c, err := net.Dial("tcp", m[1])
	require.NoError(t, err)
	_, err = c.Write([]byte("sensor,room=1 temp=21.5 1700000000000000000\n"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	series := func(tenant string) string {
		req, err := http.NewRequest("GET", "http://"+addr+"/api/v1/series?match[]=sensor_temp&start=0", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer secret")
		req.Header.Set("X-Scope-OrgID", tenant)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, 200, resp.StatusCode, string(b))
		return string(b)
	}
	require.Eventually(t, func() bool { return strings.Contains(series("iot"), `"room":"1"`) },
		10*time.Second, 20*time.Millisecond, "written into the tenant named")
	require.NotContains(t, series("default"), "sensor_temp")
	cancel()
	require.NoError(t, <-done)
}
