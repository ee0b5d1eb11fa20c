package query

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRecycledSlabsStayOutOfResults runs range queries one after another on
// one engine, so that each reads into the point slabs the one before gave
// back: no result may change afterwards (a result sharing a recycled slab
// would be overwritten), and each equals the same query on a fresh engine.
func TestRecycledSlabsStayOutOfResults(t *testing.T) {
	db, end := benchDB(t, 20)
	ctx := context.Background()
	queries := []string{
		`rate(node_cpu_seconds_total[5m])`,
		`sum by (mode) (rate(node_cpu_seconds_total[5m]))`,
		`increase(node_cpu_seconds_total{mode="idle"}[10m])`,
		`max_over_time(node_cpu_seconds_total[3m])`,
		`node_cpu_seconds_total`,
		`rate(node_cpu_seconds_total[5m]) - rate(node_cpu_seconds_total[10m])`,
	}
	dump := func(r *Result) string { return fmt.Sprint(r.Series) }
	eng := NewEngine(db, nil)
	var kept []*Result
	var was []string
	for round := range 3 {
		for _, q := range queries {
			r, err := eng.Range(ctx, "default", q, end-3600_000, end, 60_000)
			require.NoError(t, err, q)
			fresh, err := NewEngine(db, nil).Range(ctx, "default", q, end-3600_000, end, 60_000)
			require.NoError(t, err, q)
			require.Equal(t, dump(fresh), dump(r), "round %d: %s", round, q)
			kept, was = append(kept, r), append(was, dump(r))
		}
	}
	for i, r := range kept {
		require.Equal(t, was[i], dump(r), "result %d changed after later queries", i)
	}
}
