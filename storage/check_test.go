package storage

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage/internal/invariants"
)

func TestCheck(t *testing.T) {
	db, err := Open(t.TempDir(), &Options{Shards: 1})
	require.NoError(t, err)
	defer db.Close()
	ctx := context.Background()
	var b Batch
	for _, job := range []string{"a", "b", "c"} {
		b.Add(labels.FromStrings("__name__", "up", "job", job), Sample{T: 1000, V: 1})
	}
	require.NoError(t, db.Write(ctx, "t", &b))
	require.NoError(t, db.Check())

	t.Run("queriers left open", func(t *testing.T) {
		q, err := db.Querier(ctx, "t", 0, 2000)
		require.NoError(t, err)
		ss := q.Select(ctx, nil, labels.MustNewMatcher(labels.MatchEqual, "job", "a"))
		require.True(t, ss.Next())
		if invariants.Enabled {
			require.ErrorContains(t, db.Check(), "storage.querier opened at")
		}
		require.NoError(t, q.Close())
		require.NoError(t, db.Check())
		if invariants.Enabled {
			require.Panics(t, func() { ss.At().Iterator(nil) }, "a series of a closed querier")
		}
	})

	t.Run("index out of step", func(t *testing.T) {
		sh := db.shards[0]
		sh.idxMu.Lock()
		ti := sh.tenants["t"]
		refs := ti.postings["job"]["b"]
		empty := ti.newList(nil)
		ti.postings["job"]["b"] = empty
		sh.idxMu.Unlock()
		err := db.Check()
		require.ErrorContains(t, err, `job="b" has no series`)
		require.ErrorContains(t, err, `job="b" has a list`)
		require.ErrorContains(t, err, `is not in the postings of job="b"`)
		sh.idxMu.Lock()
		ti.dropRefs(empty)
		ti.postings["job"]["b"] = refs
		sh.idxMu.Unlock()
		require.NoError(t, db.Check())
	})
}
