// Package storagetest opens throwaway DBs for tests, as bbolt's btesting
// does: a temporary folder, sensible test options, and DB.Check then Close
// in t.Cleanup.
//
//	db := storagetest.Open(t, nil)
//	storagetest.Write(t, db, "default", storagetest.Series("up", 1000, 1))
package storagetest

import (
	"context"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

// Open opens a DB in a new temporary folder; opts may be nil. The DB is
// closed when the test ends.
func Open(t testing.TB, opts *storage.Options) *storage.DB {
	t.Helper()
	return OpenDir(t, t.TempDir(), opts)
}

// OpenDir opens a DB in dir, closed when the test ends unless the test
// closes it first. When the test ends, DB.Check runs first: the test fails
// if the index is inconsistent or, under the invariants tag, a querier was
// left open.
func OpenDir(t testing.TB, dir string, opts *storage.Options) *storage.DB {
	t.Helper()
	var o storage.Options
	if opts != nil {
		o = *opts
	}
	if o.Shards == 0 {
		o.Shards = 2
	}
	db, err := storage.Open(dir, &o)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Errorf("storage check: %v", err)
		}
		_ = db.Close()
	})
	return db
}

// Write writes samples of one series per call of Series.
func Write(t testing.TB, db storage.Writer, tenant string, series ...storage.SeriesSamples) {
	t.Helper()
	require.NoError(t, db.Write(context.Background(), tenant, &storage.Batch{Series: series}))
}

// Series builds a SeriesSamples from alternating timestamps and values.
func Series(lset labels.Labels, tv ...float64) storage.SeriesSamples {
	s := storage.SeriesSamples{Labels: lset}
	for i := 0; i+1 < len(tv); i += 2 {
		s.Samples = append(s.Samples, storage.Sample{T: int64(tv[i]), V: tv[i+1]})
	}
	return s
}

// Read returns every series matching ms in [mint, maxt] with its samples.
func Read(t testing.TB, db storage.Reader, tenant string, mint, maxt int64, ms ...*labels.Matcher) map[string][]storage.Sample {
	t.Helper()
	ctx := context.Background()
	q, err := db.Querier(ctx, tenant, mint, maxt)
	require.NoError(t, err)
	defer q.Close()
	out := map[string][]storage.Sample{}
	ss := q.Select(ctx, nil, ms...)
	for ss.Next() {
		s := ss.At()
		it := s.Iterator(nil)
		var got []storage.Sample
		for it.Next() {
			t, v := it.At()
			got = append(got, storage.Sample{T: t, V: v})
		}
		require.NoError(t, it.Err())
		if len(got) > 0 {
			out[s.Labels().String()] = got
		}
	}
	require.NoError(t, ss.Err())
	return out
}

// Eq is shorthand for an equality matcher.
func Eq(name, value string) *labels.Matcher {
	return labels.MustNewMatcher(labels.MatchEqual, name, value)
}

// Mixed is one sample of a series that may hold native histograms: H is
// nil for a float sample (value V).
type Mixed struct {
	T int64
	V float64
	H *histogram.FloatHistogram
}

// ReadMixed returns every series matching ms in [mint, maxt] with its
// float and histogram samples in time order.
func ReadMixed(t testing.TB, db storage.Reader, tenant string, mint, maxt int64, ms ...*labels.Matcher) map[string][]Mixed {
	t.Helper()
	ctx := context.Background()
	q, err := db.Querier(ctx, tenant, mint, maxt)
	require.NoError(t, err)
	defer q.Close()
	out := map[string][]Mixed{}
	ss := q.Select(ctx, nil, ms...)
	for ss.Next() {
		s := ss.At()
		it := s.Iterator(nil)
		hit, _ := it.(storage.HistogramIterator)
		var got []Mixed
		for it.Next() {
			var m Mixed
			m.T, m.V = it.At()
			if hit != nil {
				if m.H = hit.AtHistogram(); m.H != nil {
					m.V = 0
				}
			}
			got = append(got, m)
		}
		require.NoError(t, it.Err())
		if len(got) > 0 {
			out[s.Labels().String()] = got
		}
	}
	require.NoError(t, ss.Err())
	return out
}
