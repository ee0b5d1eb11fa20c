package query

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func TestParseFeatures(t *testing.T) {
	fs, err := ParseFeatures("promql-experimental-functions, promql-delayed-name-removal", "promql-binop-fill-modifiers")
	require.NoError(t, err)
	require.True(t, fs.Has(FeatureExperimentalFunctions))
	require.True(t, fs.Has(FeatureBinopFillModifiers))
	require.False(t, fs.Has(FeatureExtendedRangeSelectors))
	_, err = ParseFeatures("promql-experimental-functions,nope")
	require.EqualError(t, err, `query: unknown feature "nope"; known features: promql-binop-fill-modifiers, promql-delayed-name-removal, promql-experimental-functions, promql-extended-range-selectors`)
}

// TestFeaturesGate checks that an experimental function is Prometheus's
// error with its flag off and answers with it on.
func TestFeaturesGate(t *testing.T) {
	db := st.Open(t, nil)
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "m", "i", "1"), storage.Sample{T: 0, V: 1})
	b.Add(labels.FromStrings("__name__", "m", "i", "2"), storage.Sample{T: 0, V: 2})
	ctx := context.Background()
	require.NoError(t, db.Write(ctx, "default", &b))
	off := NewEngine(db, nil)
	on := NewEngine(db, &Options{Features: Features{FeatureExperimentalFunctions: true}})
	f := func(q, wantOff string) {
		t.Helper()
		_, err := off.Instant(ctx, "default", q, 0)
		require.EqualError(t, err, wantOff, q)
		var qe *Error
		require.ErrorAs(t, err, &qe)
		require.Equal(t, ErrBadData, qe.Type)
		_, err = on.Instant(ctx, "default", q, 0)
		require.NoError(t, err, q)
	}
	f(`sum(limit_ratio(0.5, m))`, `invalid parameter "query": 1:5: parse error: limit_ratio() is experimental and must be enabled with --enable-feature=promql-experimental-functions`)
	f(`ts_of_max_over_time(m[5m])`, `invalid parameter "query": 1:1: parse error: function "ts_of_max_over_time" is not enabled`)
	f(`double_exponential_smoothing(m[5m], 0.5, 0.5)`, `invalid parameter "query": 1:1: parse error: function "double_exponential_smoothing" is not enabled`)
	// Stable PromQL and MetricsQL's own names, also those Prometheus
	// marks experimental (limitk, sort_by_label, mad_over_time), do not
	// change.
	for _, q := range []string{`first_over_time(m[5m])`, `holt_winters(m[5m], 0.5, 0.5)`, `tmax_over_time(m[5m])`, `sum(m)`,
		`limitk(1, m)`, `1 + sort_by_label(m, "i")`, `mad_over_time(m[5m])`} {
		_, err := off.Instant(ctx, "default", q, 0)
		require.NoError(t, err, q)
	}
}
