package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestBinopMemoMatchesGeneral compares vector binary operations whose
// signatures and result labels are memoized per series (binopMemo) with
// the same operations working them out at every step: one-to-one,
// group_left and group_right (whose sides are swapped), on and ignoring,
// bool comparisons, set operators and fill modifiers, over series that
// come and go, so that a series' place in a step's vector changes from
// step to step. Errors (duplicate match groups) must be the same too.
func TestBinopMemoMatchesGeneral(t *testing.T) {
	db := st.Open(t, nil)
	rng := rand.New(rand.NewPCG(2, 18))
	const end = int64(3600_000)
	var b storage.Batch
	add := func(ls labels.Labels) {
		var smp []storage.Sample
		for ts := int64(0); ts <= end; ts += 15_000 {
			if rng.IntN(6) == 0 {
				ts += 60_000 * int64(rng.IntN(8)) // gone for a while
			}
			smp = append(smp, storage.Sample{T: ts, V: float64(rng.IntN(20)) - 5})
		}
		b.Add(ls, smp...)
	}
	for inst := range 5 {
		for _, mode := range []string{"idle", "user", "system"} {
			add(labels.FromStrings("__name__", "a", "instance", fmt.Sprint(inst), "mode", mode))
			if rng.IntN(3) > 0 {
				add(labels.FromStrings("__name__", "b", "instance", fmt.Sprint(inst), "mode", mode))
			}
		}
		add(labels.FromStrings("__name__", "one", "instance", fmt.Sprint(inst), "site", fmt.Sprint("s", inst%2)))
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))

	fs := Features{FeatureBinopFillModifiers: true}
	memo := NewEngine(db, &Options{Features: fs})
	general := NewEngine(db, &Options{Features: fs, generalPaths: true})
	ctx := context.Background()
	queries := []string{
		`a + b`, `a - on(instance, mode) b`, `a * ignoring(mode, site) group_left one`,
		`a / on(instance) group_left(site) one`, `one - on(instance) group_right(site) a`,
		`one > on(instance) group_right b`, `a > bool b`, `a == bool ignoring(mode, site) group_left one`,
		`a and b`, `a or b`, `a unless b`, `a and on(instance) one`, `b or ignoring(mode) one`,
		`a + fill(0) b`, `a - fill_left(1) b`, `a * fill_right(2) b`, `one + on(instance) group_right fill(0) b`,
		`a + on(instance) one`, // many-to-one without group_left: an error
		`a / b > 0.5`, `(a + b) * on(instance) group_left(site) one`,
	}
	for _, q := range queries {
		for range 4 {
			start := int64(rng.IntN(1800)) * 1000
			step := []int64{15_000, 60_000, 7_000}[rng.IntN(3)]
			ra, errA := memo.Range(ctx, "default", q, start, end, step)
			rb, errB := general.Range(ctx, "default", q, start, end, step)
			if errB != nil {
				require.EqualError(t, errA, errB.Error(), q)
				continue
			}
			require.NoError(t, errA, q)
			require.NotEmpty(t, rb.Series, q)
			require.Equal(t, fmt.Sprint(rb.Series), fmt.Sprint(ra.Series), "%s from %d by %d", q, start, step)
			at := start + int64(rng.IntN(1800))*1000
			ia, errA := memo.Instant(ctx, "default", q, at)
			ib, errB := general.Instant(ctx, "default", q, at)
			if errB != nil {
				require.EqualError(t, errA, errB.Error(), q)
				continue
			}
			require.NoError(t, errA, q)
			require.Equal(t, fmt.Sprint(ib.Series), fmt.Sprint(ia.Series), "%s at %d", q, at)
		}
	}
}
