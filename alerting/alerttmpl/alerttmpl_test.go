package alerttmpl_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/alerttmpl"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// The ruler's parity test (alerting/ruler TestTemplateParity) runs every
// function against Prometheus's expander; these cover the seam.

func ExampleExpand() {
	text, err := alerttmpl.Expand(context.Background(), "__alert_DiskFull",
		"{{ $labels.instance | stripPort }} is at {{ $value | humanizePercentage }}",
		alerttmpl.Data{Labels: map[string]string{"instance": "db-1:9100"}, Value: 0.97}, time.Now(), nil, nil)
	fmt.Println(text, err)
	// Output: db-1 is at 97% <nil>
}

// TestQuery: a vector comes back as is, a scalar as one sample without
// labels, anything else is Prometheus's error.
func TestQuery(t *testing.T) {
	ctx := context.Background()
	db := st.Open(t, nil)
	ts := time.Unix(1_700_000_000, 0)
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "up", "job", "a"), storage.Sample{T: ts.UnixMilli(), V: 1})
	require.NoError(t, db.Write(ctx, "t1", &b))
	q := alerttmpl.Query(query.NewEngine(db, nil), "t1")

	v, err := q(ctx, "up", ts)
	require.NoError(t, err)
	require.Len(t, v, 1)
	require.Equal(t, labels.FromStrings("__name__", "up", "job", "a"), v[0].Metric)
	require.Equal(t, 1.0, v[0].F)
	v, err = q(ctx, "scalar(up) * 3", ts)
	require.NoError(t, err)
	require.Len(t, v, 1)
	require.True(t, v[0].Metric.IsEmpty())
	require.Equal(t, 3.0, v[0].F)
	_, err = q(ctx, "up[5m]", ts)
	require.EqualError(t, err, "rule result is not a vector or scalar")
	_, err = q(ctx, `"a string"`, ts)
	require.EqualError(t, err, "rule result is not a vector or scalar")
	v, err = alerttmpl.Query(query.NewEngine(db, nil), "t2")(ctx, "up", ts)
	require.NoError(t, err)
	require.Empty(t, v, "another tenant's data")

	out, err := alerttmpl.Expand(ctx, "__alert_X", `{{ query "up" | first | label "job" }}`, alerttmpl.Data{}, ts, q, nil)
	require.NoError(t, err)
	require.Equal(t, "a", out)
	_, err = alerttmpl.Expand(ctx, "__alert_X", `{{ query "up" }}`, alerttmpl.Data{}, ts, nil, nil)
	require.ErrorContains(t, err, "no query function")
}

// TestCheckKnowsEveryFunction: the check knows Prometheus's functions and
// variables, and nothing else.
func TestCheckKnowsEveryFunction(t *testing.T) {
	names := alerttmpl.Funcs()
	require.Contains(t, names, "graphLink")
	require.Contains(t, names, "toDuration")
	require.GreaterOrEqual(t, len(names), 29)
	for _, n := range names {
		require.NoError(t, alerttmpl.Check("__alert_A", "{{ "+n+" }}"), n)
	}
	require.NoError(t, alerttmpl.Check("__alert_A", "{{ $labels.a }}{{ $externalLabels.b }}{{ $externalURL }}{{ $value }}"))
	require.EqualError(t, alerttmpl.Check("__alert_A", "{{ humanise 1 }}"), `template: __alert_A:1: function "humanise" not defined`)
}
