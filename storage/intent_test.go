package storage

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestIntentRoundTrip(t *testing.T) {
	in := &deleteIntent{tenant: "acme", mint: math.MinInt64, maxt: 42, matchers: []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, "__name__", "up"),
		labels.MustNewMatcher(labels.MatchNotRegexp, "job", "node|.*x"),
		labels.MustNewMatcher(labels.MatchNotEqual, "a", ""),
	}}
	b := in.encode()
	out, err := decodeIntent(b)
	require.NoError(t, err)
	require.Equal(t, in.tenant, out.tenant)
	require.Equal(t, [2]int64{in.mint, in.maxt}, [2]int64{out.mint, out.maxt})
	require.Equal(t, len(in.matchers), len(out.matchers))
	for i := range in.matchers {
		require.Equal(t, in.matchers[i].String(), out.matchers[i].String())
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x20
		_, err := decodeIntent(c)
		require.ErrorIs(t, err, ErrCorrupt, "byte %d flipped", i)
	}
}

func FuzzDecodeIntent(f *testing.F) {
	f.Add((&deleteIntent{tenant: "t", maxt: 1, matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "a", "b+")}}).encode())
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := decodeIntent(b)
		if err != nil {
			return
		}
		again, err := decodeIntent(in.encode())
		require.NoError(t, err)
		require.Equal(t, in.encode(), again.encode())
	})
}
