package query

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// A prepared query is shared by every evaluation of its text: evaluated
// again (from the cache), and by several goroutines at once, each query
// answers as a fresh engine's does — evaluation changes nothing of it
// (implicit MetricsQL windows, @, subqueries, duration expressions, binary
// operators and MetricsQL-only functions among them). Run it with -race
// too.
func TestPreparedQueriesAnswerAsFresh(t *testing.T) {
	db, end := benchDB(t, 20)
	queries := []string{
		`sum by (mode) (rate(node_cpu_seconds_total[5m]))`,
		`rate(node_cpu_seconds_total{mode="user"}[5m])`,
		`max_over_time(rate(node_cpu_seconds_total{mode="user"}[5m])[30m:1m])`,
		`rate(node_cpu_seconds_total{mode="user"}[5m]) / on(instance, cpu) rate(node_cpu_seconds_total{mode="idle"}[5m])`,
		`topk(3, sum by (instance) (rate(node_cpu_seconds_total[5m])))`,
		`label_replace(node_cpu_seconds_total{mode="idle"}, "host", "$1", "instance", "(.*):.*")`,
		`sum(rate(node_cpu_seconds_total[5m] offset 10m))`,
		`node_cpu_seconds_total{mode="idle", cpu="1"} @ end()`,
		`-node_cpu_seconds_total{cpu="0", mode="idle"}`,
		`count(node_cpu_seconds_total > 100000)`,
		`rate(node_cpu_seconds_total{mode="nice"})`,
		`sum(increase(node_cpu_seconds_total{mode="steal"}))`,
		`quantile_over_time(0.9, node_cpu_seconds_total{mode="user"}[10m])`,
		`rate(node_cpu_seconds_total{mode="irq"}[1m+1m])`,
		`limitk(2, node_cpu_seconds_total{mode="idle"})`,
		`absent(nonexistent_metric)`,
		`vector(1) + 2 * time()`,
		`sum(rate(node_cpu_seconds_total[5m])) by (cpu) > bool 1`,
		`{__name__=~"node_cpu.*", mode="system"}[5m]`,
		`not valid ((`,
	}
	ctx := context.Background()
	type answer struct{ instant, rng string }
	run := func(e *Engine, q string) answer {
		var a answer
		r, err := e.Instant(ctx, "default", q, end)
		a.instant = fmt.Sprint(r, err)
		if r != nil {
			a.instant = fmt.Sprint(r.Type, r.Series, r.Scalar, r.Warnings, err)
		}
		r, err = e.Range(ctx, "default", q, end-3600_000, end, 60_000)
		a.rng = fmt.Sprint(r, err)
		if r != nil {
			a.rng = fmt.Sprint(r.Type, r.Series, r.Warnings, err)
		}
		return a
	}
	want := map[string]answer{}
	for _, q := range queries {
		want[q] = run(NewEngine(db, nil), q)
	}
	e := NewEngine(db, nil)
	for round := range 2 {
		for _, q := range queries {
			require.Equal(t, want[q], run(e, q), "round %d: %s", round, q)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range len(queries) {
				q := queries[(i+g*5)%len(queries)]
				if got := run(e, q); got != want[q] {
					t.Errorf("concurrent: %s: %v, want %v", q, got, want[q])
				}
			}
		})
	}
	wg.Wait()
	e.preparedMu.Lock()
	n := len(e.prepared)
	e.preparedMu.Unlock()
	require.Equal(t, 2*(len(queries)-1), n, "every valid query, instant and range, once; no error kept")

	// Bounded: the oldest are not kept past maxPrepared.
	for i := range maxPrepared + 10 {
		_, err := e.Instant(ctx, "default", fmt.Sprintf("vector(%d)", i), end)
		require.NoError(t, err)
	}
	require.LessOrEqual(t, len(e.prepared), maxPrepared)
}
