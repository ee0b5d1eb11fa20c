package query

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestParseSelector(t *testing.T) {
	f := func(in string, want ...string) {
		t.Helper()
		sets, err := ParseSelector(in)
		require.NoError(t, err, in)
		var got []string
		for _, set := range sets {
			s := ""
			for _, m := range set {
				s += m.String() + " "
			}
			got = append(got, s)
		}
		require.Equal(t, want, got, in)
	}
	f(`up`, `__name__="up" `)
	f(`up{job="a",i!="b"}`, `__name__="up" job="a" i!="b" `)
	f(`{job=~"a.*",x!~"y"}`, `job=~"a.*" x!~"y" `)
	f(`{a="1" or b="2"}`, `a="1" `, `b="2" `)
	f(`{"my.metric"}`, `__name__="my.metric" `)

	bad := func(in string) {
		t.Helper()
		_, err := ParseSelector(in)
		require.ErrorIs(t, err, ErrBadSelector, in)
	}
	bad(``)
	bad(`{}`)
	bad(`{a=""}`)
	bad(`{a=~".*"}`)
	bad(`sum(up)`)
	bad(`up{`)
	bad(`rate(up[5m])`)
	_ = labels.MatchEqual
}
