package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startInProcess runs tsdb serve in this process with args and returns
// its address; it stops with the test.
func startInProcess(t *testing.T, args ...string) string {
	t.Helper()
	sc, err := parseServeFlags(append([]string{"--listen", "127.0.0.1:0", "--data", filepath.Join(t.TempDir(), "data")}, args...))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, sc, slog.New(slog.DiscardHandler), ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return addr
}

// dialFrom connects from the loopback address from (127.0.0.x), so one
// test plays clients on several addresses.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSlowClientsDoNotLockOut: with the --http.* bounds, 300 slowloris
// connections from one address neither lock out a client on another
// address (served within a second, a 100 KiB GET query included) nor
// outlive the header timeout. Before, with 300 over
// --http.max-connections, that client got 503 for the read timeout (1m),
// and any GET query over 4 KiB got 431.
func TestSlowClientsDoNotLockOut(t *testing.T) {
	addr := startInProcess(t, "--http.max-connections", "256", "--http.max-connections-per-ip", "32",
		"--http.header-read-timeout", "1s")
	var slow []net.Conn
	for range 300 {
		c := dialFrom(t, "127.0.0.1", addr)
		_, err := io.WriteString(c, "GET /api/v1/query?query=up HTTP/1.1\r\nHo") // and no more
		require.NoError(t, err)
		slow = append(slow, c)
	}
	started := time.Now()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}
	// Long but few terms (--query.max-terms bounds those): a 100 KiB label.
	q := `label_replace(vector(1),"x","` + strings.Repeat("a", 100<<10) + `","","")`
	for _, path := range []string{"/-/healthy", "/api/v1/query?query=" + url.QueryEscape(q)} {
		t0 := time.Now()
		resp, err := client.Get("http://" + addr + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, "%.80s: %s", path, body)
		require.Less(t, time.Since(t0), time.Second, "%.80s", path)
		t.Logf("%.40s… (%d bytes): %d in %v under 300 slow connections", path, len(path), resp.StatusCode, time.Since(t0))
	}

	// The header timeout (1s) cut every slow connection that was let in.
	for i, c := range slow {
		_ = c.SetReadDeadline(started.Add(5 * time.Second))
		_, err := io.ReadAll(bufio.NewReader(c))
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "slow connection %d still open after 5s", i)
	}
	require.Less(t, time.Since(started), 4*time.Second)

	resp, err := client.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), fmt.Sprintf(`tsdb_http_connections_refused_total{reason="per_ip"} %d`, 300-32))
}
