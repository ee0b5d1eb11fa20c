package health

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSourceLogsEachChangeOnce(t *testing.T) {
	var buf bytes.Buffer
	s := New(slog.New(slog.NewTextHandler(&buf, nil)), "connecting")
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	require.Equal(t, State{Reason: "connecting"}, s.State(), "not tried yet")

	for range 5 {
		s.Down("dial tcp 127.0.0.1:1: connection refused")
	}
	require.Equal(t, 1, strings.Count(buf.String(), "source is down"), buf.String())
	require.Contains(t, buf.String(), "level=WARN")
	require.Equal(t, State{Reason: "dial tcp 127.0.0.1:1: connection refused", Since: now}, s.State())

	now = now.Add(time.Minute)
	s.Down("no route to host")
	require.Equal(t, 1, strings.Count(buf.String(), "source is down"), "still down: not said again")
	require.Equal(t, State{Reason: "no route to host", Since: time.Unix(1000, 0)}, s.State(), "the latest reason, down since the first failure")

	now = now.Add(time.Minute)
	s.Up()
	s.Up()
	require.Equal(t, 1, strings.Count(buf.String(), "source is back"))
	require.Contains(t, buf.String(), "down_for=2m0s")
	require.Equal(t, State{Up: true, Since: now}, s.State())
	s.Down("timeout")
	require.Equal(t, 2, strings.Count(buf.String(), "source is down"), "down again: said again")
}
