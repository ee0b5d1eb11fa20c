package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every duration flag of tsdb serve reads Prometheus's syntax, so the
// forms Go's flag.Duration refused (1d, 2w, 1y) work on all of them.
func TestServeDurationFlags(t *testing.T) {
	day := 24 * time.Hour
	cases := []struct {
		flag, value string
		got         func(*serveConfig) time.Duration
		want        time.Duration
	}{
		{"query.lookback-delta", "1d", func(c *serveConfig) time.Duration { return c.queryLookback }, day}, // refused before
		{"query.timeout", "1h30m", func(c *serveConfig) time.Duration { return c.queryTimeout }, 90 * time.Minute},
		{"query.cache-offset", "500ms", func(c *serveConfig) time.Duration { return c.queryCacheOff }, 500 * time.Millisecond},
		{"rules.evaluation-interval", "1w", func(c *serveConfig) time.Duration { return c.evalInterval }, 7 * day},
		{"shutdown.timeout", "2m", func(c *serveConfig) time.Duration { return c.shutdownWait }, 2 * time.Minute},
		{"http.read-timeout", "1d", func(c *serveConfig) time.Duration { return c.readTimeout }, day},
		{"http.header-read-timeout", "2s", func(c *serveConfig) time.Duration { return c.headerTimeout }, 2 * time.Second},
		{"http.idle-timeout", "30s", func(c *serveConfig) time.Duration { return c.idleTimeout }, 30 * time.Second},
		{"retention", "30d", func(c *serveConfig) time.Duration { return c.retention }, 30 * day},
		{"retention", "1y2w", func(c *serveConfig) time.Duration { return c.retention }, 365*day + 14*day},
		{"retention", "0", func(c *serveConfig) time.Duration { return c.retention }, 0},
		{"snapshots.max-age", "1d", func(c *serveConfig) time.Duration { return c.snapshotMaxAge }, day},
		{"snapshots.max-age", "0", func(c *serveConfig) time.Duration { return c.snapshotMaxAge }, 0},
	}
	for _, tc := range cases {
		t.Run(tc.flag+"="+tc.value, func(t *testing.T) {
			for _, args := range [][]string{{"--" + tc.flag, tc.value}, {"--" + tc.flag + "=" + tc.value}} {
				c, err := parseServeFlags(args)
				require.NoError(t, err, args)
				require.Equal(t, tc.want, tc.got(c), args)
			}
		})
	}

	c, err := parseServeFlags(nil)
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, c.queryLookback, "defaults are kept")
	require.Equal(t, 2*time.Minute, c.queryTimeout)
	require.Equal(t, 30*time.Second, c.shutdownWait)
	require.Equal(t, 10*time.Second, c.headerTimeout)
	require.Equal(t, 2*time.Minute, c.idleTimeout)
	require.Equal(t, 256, c.maxConnsPerIP)
	require.Equal(t, 256<<10, c.maxHeaderBytes)
	require.Zero(t, c.retention)
	require.Equal(t, time.Hour, c.snapshotMaxAge)
}

// A bad duration names the flag, the value and the syntax wanted.
func TestServeDurationFlagErrors(t *testing.T) {
	cases := []struct{ flag, value, want string }{
		{"query.lookback-delta", "1.5h", `invalid value "1.5h" for flag -query.lookback-delta: unknown unit "." in duration "1.5h"; want integers with units`},
		{"query.timeout", "30", `invalid value "30" for flag -query.timeout: not a valid duration string`},
		{"retention", "3x", `invalid value "3x" for flag -retention: unknown unit "x" in duration "3x"`},
		{"rules.evaluation-interval", "1m1h", `invalid value "1m1h" for flag -rules.evaluation-interval: not a valid duration string`},
		{"shutdown.timeout", "-5s", `invalid value "-5s" for flag -shutdown.timeout`},
	}
	for _, tc := range cases {
		t.Run(tc.flag+"="+tc.value, func(t *testing.T) {
			printed, err := parseQuietly(t, "--"+tc.flag, tc.value)
			require.ErrorContains(t, err, tc.want)
			require.Contains(t, printed, tc.want)
		})
	}
}

// --config is --config.file; the help says what the file holds.
func TestConfigFlagAlias(t *testing.T) {
	for _, name := range []string{"--config", "--config.file"} {
		c, err := parseServeFlags([]string{name, "tsdb.yml"})
		require.NoError(t, err)
		require.Equal(t, "tsdb.yml", c.configFile, name)
	}
	help, err := parseQuietly(t, "-h")
	require.True(t, errors.Is(err, flag.ErrHelp))
	for _, s := range []string{"MQTT", "SNMP", "relabelling", "limits", "users and roles (auth)", "(itsm)", "(kpis)", "alias of --config.file"} {
		require.Contains(t, help, s)
	}
	require.Contains(t, help, "(default 5m)", "duration defaults in the syntax the flags read")
}

// parseQuietly runs parseServeFlags and returns what it printed (the
// flag package prints errors and the usage to os.Stderr).
func parseQuietly(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	stderr := os.Stderr
	os.Stderr = w
	_, perr := parseServeFlags(args)
	os.Stderr = stderr
	require.NoError(t, w.Close())
	out, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(out), perr
}
