package duration

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestParse(t *testing.T) {
	day := 24 * time.Hour
	f := func(in string, want time.Duration) {
		t.Helper()
		got, err := Parse(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
		// Parity: Parse is model.ParseDuration, value for value.
		m, err := model.ParseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, time.Duration(m), got, in)
	}
	f("0", 0)
	f("1y", 365*day)
	f("2w", 14*day)
	f("3d", 3*day)
	f("4h", 4*time.Hour)
	f("5m", 5*time.Minute)
	f("6s", 6*time.Second)
	f("7ms", 7*time.Millisecond)
	f("1h30m", 90*time.Minute)
	f("1y2w3d4h5m6s7ms", 365*day+14*day+3*day+4*time.Hour+5*time.Minute+6*time.Second+7*time.Millisecond)
	f("2m0s", 2*time.Minute) // what Go's time.Duration.String writes for whole minutes
}

func TestParseRefuses(t *testing.T) {
	for _, in := range []string{"", "1.5h", "30", "-5m", "1m1h", "1h1h", "5x", "1µs", "1ns", "d", "9999999999y"} {
		_, err := Parse(in)
		require.Error(t, err, in)
		_, merr := model.ParseDuration(in)
		require.Error(t, merr, "parity with model.ParseDuration: %q", in)
		require.Contains(t, err.Error(), "want integers with units", in)
	}
}

func TestString(t *testing.T) {
	for _, d := range []time.Duration{0, time.Millisecond, 90 * time.Minute, 72 * time.Hour, 14 * 24 * time.Hour, 365 * 24 * time.Hour} {
		got, err := Parse(String(d))
		require.NoError(t, err)
		require.Equal(t, d, got, String(d))
	}
	require.Equal(t, "1h30m", String(90*time.Minute))
	require.Equal(t, "3d", Duration(72*time.Hour).String())
}

func TestYAML(t *testing.T) {
	var c struct {
		A Duration `yaml:"a"`
		B Duration `yaml:"b"`
		C Duration `yaml:"c"`
		D Duration `yaml:"d"`
	}
	require.NoError(t, yaml.Unmarshal([]byte("a: 3d\nb: 1h30m\nc:\nd: &x 2w\n"), &c))
	require.Equal(t, 3*24*time.Hour, time.Duration(c.A))
	require.Equal(t, 90*time.Minute, time.Duration(c.B))
	require.Zero(t, c.C, "empty is zero: the default")
	require.Equal(t, 14*24*time.Hour, time.Duration(c.D))
	out, err := yaml.Marshal(c)
	require.NoError(t, err)
	require.Equal(t, "a: 3d\nb: 1h30m\nc: 0s\nd: 2w\n", string(out))

	cases := []struct{ doc, want string }{
		{"a: 1d\nb: 1.5h\n", `line 2: unknown unit "." in duration "1.5h"; want integers with units, largest first`},
		{"a: 90\n", `line 1: not a valid duration string: "90"`},
		{"a: 3x\n", `line 1: unknown unit "x" in duration "3x"`},
		{"a: [1d]\n", "line 1: a YAML sequence is not a duration; want integers with units, largest first: 30d, 2w, 1h30m, 500ms (units y w d h m s ms)"},
	}
	for _, tc := range cases {
		err := yaml.Unmarshal([]byte(tc.doc), &c)
		require.ErrorContains(t, err, tc.want, tc.doc)
		var de *Error
		require.True(t, errors.As(err, &de), tc.doc)
		require.Equal(t, 4, de.Column, "the column of the value")
	}
}
