package storage

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// TestMatchCacheFollowsSeries checks that a selector's cached series are
// used only while the tenant's series are unchanged: a series added or
// deleted in any shard is seen by the next select, the time range is
// applied on a hit, and another tenant's or another selector's entry is
// never used.
func TestMatchCacheFollowsSeries(t *testing.T) {
	ctx := context.Background()
	db, err := Open(t.TempDir(), &Options{NoSync: true, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	write := func(tenant string, i int, ts ...int64) {
		t.Helper()
		var b Batch
		for _, tt := range ts {
			b.Add(labels.FromStrings("__name__", "up", "job", fmt.Sprintf("job-%02d", i)), Sample{T: tt, V: 1})
		}
		if err := db.Write(ctx, tenant, &b); err != nil {
			t.Fatal(err)
		}
	}
	sel := labels.MustNewMatcher(labels.MatchRegexp, "job", "job-.*")
	match := func(tenant string, mint, maxt int64, ms ...*labels.Matcher) []string {
		t.Helper()
		q, err := db.Querier(ctx, tenant, mint, maxt)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		found, err := q.(*querier).match(ctx, mint, maxt, ms)
		if err != nil {
			t.Fatal(err)
		}
		db.matches.Wait() // the cache takes its entries asynchronously
		var out []string
		for _, f := range found {
			out = append(out, f.s.lset.Get("job"))
		}
		return out
	}
	want := func(n int, skip ...int) []string {
		var out []string
		for i := range n {
			if !slices.Contains(skip, i) {
				out = append(out, fmt.Sprintf("job-%02d", i))
			}
		}
		return out
	}
	for i := range 20 {
		write("a", i, 1000)
	}
	write("b", 0, 1000)
	for range 2 { // a miss, then a hit
		if got := match("a", 0, 2000, sel); !slices.Equal(got, want(20)) {
			t.Fatalf("select: %v", got)
		}
	}
	// Added series, whichever shard they land in.
	for i := 20; i < 30; i++ {
		write("a", i, 1000)
		if got := match("a", 0, 2000, sel); !slices.Equal(got, want(i+1)) {
			t.Fatalf("after adding series %d: %v", i, got)
		}
	}
	// Another tenant, another selector.
	if got := match("b", 0, 2000, sel); !slices.Equal(got, want(1)) {
		t.Fatalf("tenant b: %v", got)
	}
	if got := match("a", 0, 2000, sel, labels.MustNewMatcher(labels.MatchEqual, "job", "job-03")); !slices.Equal(got, []string{"job-03"}) {
		t.Fatalf("narrower selector: %v", got)
	}
	// The time range applies to a cached list.
	write("a", 5, 5000)
	match("a", 0, 6000, sel)
	if got := match("a", 4000, 6000, sel); !slices.Equal(got, []string{"job-05"}) {
		t.Fatalf("select [4000, 6000]: %v", got)
	}
	// Deleted series.
	if _, err := db.DeleteSeries(ctx, "a", 0, 10000, labels.MustNewMatcher(labels.MatchEqual, "job", "job-07")); err != nil {
		t.Fatal(err)
	}
	if got := match("a", 0, 6000, sel); !slices.Equal(got, want(30, 7)) {
		t.Fatalf("after deleting job-07: %v", got)
	}
}
