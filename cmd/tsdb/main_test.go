package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every subcommand answers --help (or -h) with its usage and status 0; none
// takes the flag for an argument (rules check used to open a file named
// "--help").
func TestHelpExitsZero(t *testing.T) {
	for _, args := range []string{
		"--help", "help", "serve --help", "rules --help", "rules check --help", "rules replay --help",
		"kpis --help", "kpis backtest -h", "backup --help", "restore -h", "import --help",
		"export --help", "auth -h", "auth hash --help",
	} {
		require.Equal(t, 0, run(strings.Fields(args)), "tsdb %s", args)
	}
	var out bytes.Buffer
	require.Equal(t, 0, rulesCheck([]string{"--help"}, &out))
	require.Contains(t, out.String(), "usage: tsdb rules check")
	require.NotContains(t, out.String(), "Checking --help")

	// Without help, a missing subcommand is still a usage error.
	require.Equal(t, 2, run([]string{"rules"}))
	require.Equal(t, 2, run([]string{"kpis", "forecast"}))
	require.Equal(t, 2, run([]string{"nonsense"}))
}
