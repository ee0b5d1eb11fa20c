package rulefmt

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yml")
	require.NoError(t, err)
	for _, f := range files {
		_, errs := ParseFile(f)
		if strings.HasPrefix(filepath.Base(f), "good_") {
			require.Empty(t, errs, f)
		} else {
			require.NotEmpty(t, errs, f)
		}
	}
}

func TestParseGroup(t *testing.T) {
	f, errs := Parse([]byte(`
groups:
  - name: g
    interval: 15s
    query_offset: 1m
    limit: 10
    labels: {team: ops}
    rules:
      - alert: A
        expr: up == 0
        for: 1h30m
        keep_firing_for: 2m
`))
	require.Empty(t, errs)
	g := f.Groups[0]
	require.Equal(t, Duration(15*time.Second), g.Interval)
	require.Equal(t, Duration(time.Minute), g.QueryOffset)
	require.Equal(t, 10, g.Limit)
	require.Equal(t, Duration(90*time.Minute), g.Rules[0].For)
	require.Equal(t, "A", g.Rules[0].Name())
	out, err := g.Rules[0].For.MarshalYAML()
	require.NoError(t, err)
	require.Equal(t, "1h30m", out)
}
