package query

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// A query that kills the process (a stack overflow is fatal to a Go
// program, whatever recovers) or eats the machine's memory cannot be
// tested in the test binary itself: a regression would take the runner,
// or the machine, down with it. TestGuarded runs each guarded case in a
// child process of the test binary with its address space, its stack
// and its time bounded, and fails cleanly when the child dies.

const (
	guardEnv     = "QUERY_GUARDED_CASE"
	guardMemory  = 3 << 30 // address space the child may add, bytes
	guardStack   = 64 << 20
	guardTimeout = 90 * time.Second
)

// guardedCases are run one per child process.
var guardedCases = map[string]func(t *testing.T){
	"deep nesting":    guardedDeepNesting,
	"WITH expansion":  guardedWithExpansion,
	"tiny subquery":   guardedTinySubquery,
	"samples counted": guardedSamplesCounted,
	"timeout holds":   guardedTimeoutHolds,
}

func TestGuarded(t *testing.T) {
	if name := os.Getenv(guardEnv); name != "" {
		guardChild(t)
		guardedCases[name](t)
		return
	}
	names := make([]string, 0, len(guardedCases))
	for name := range guardedCases {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), guardTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGuarded$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), guardEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("the child ran longer than %v and was killed; its output:\n%s", guardTimeout, tail(out))
			}
			require.NoError(t, err, "the child failed or died; its output:\n%s", tail(out))
			require.Contains(t, string(out), "--- PASS: TestGuarded", "the child ran nothing:\n%s", tail(out))
			t.Logf("%s", grepLogs(out))
		})
	}
}

// guardChild bounds the child: its stack (a stack overflow then comes
// sooner than the default 1 GiB) and its address space (an allocation
// beyond it fails with a fatal "out of memory" instead of swapping the
// machine).
func guardChild(t *testing.T) {
	debug.SetMaxStack(guardStack)
	vm := procStatusBytes(t, "VmSize")
	lim := syscall.Rlimit{Cur: vm + guardMemory, Max: vm + guardMemory}
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_AS, &lim))
}

// procStatusBytes reads a "kB" field of /proc/self/status.
func procStatusBytes(t *testing.T, field string) uint64 {
	f, err := os.Open("/proc/self/status")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// tail is what the child said that tells why it died (runtime and test
// failures), then its last lines.
func tail(out []byte) string {
	var why []string
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, "fatal error") || strings.HasPrefix(l, "runtime: ") || strings.HasPrefix(l, "panic: ") ||
			strings.Contains(l, "Error:") || strings.Contains(l, "Messages:") {
			why = append(why, strings.TrimRight(l, "\n"))
		}
	}
	if len(why) > 20 {
		why = why[:20]
	}
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return strings.Join(why, "\n") + "\n…\n" + string(out)
}

// grepLogs keeps the child's t.Log lines.
func grepLogs(out []byte) string {
	var keep []string
	for l := range strings.Lines(string(out)) {
		if strings.Contains(l, "_test.go:") {
			keep = append(keep, strings.TrimRight(l, "\n"))
		}
	}
	return strings.Join(keep, "\n")
}

// requireQueryError requires err to be a query *Error of type typ whose
// message contains msg.
func requireQueryError(t *testing.T, err error, typ ErrorType, msg string) {
	t.Helper()
	var qe *Error
	require.ErrorAs(t, err, &qe)
	require.Equal(t, typ, qe.Type, "%v", err)
	require.ErrorContains(t, err, msg)
}

// guardedDeepNesting: 400,000 nested parentheses (or brackets, or
// braces) overflowed the parser's stack.
func guardedDeepNesting(t *testing.T) {
	db := st.Open(t, nil)
	ctx := context.Background()
	// Long enough a limit that the depth is what refuses them.
	eng := NewEngine(db, &Options{MaxQueryLength: 4 << 20})
	for _, q := range []string{
		strings.Repeat("(", 400_000) + "1" + strings.Repeat(")", 400_000),
		strings.Repeat("abs(", 400_000) + "up" + strings.Repeat(")", 400_000),
		"up" + strings.Repeat("[", 400_000),
		strings.Repeat("{", 400_000),
		strings.Repeat("(", 400_000), // never closed
	} {
		_, err := eng.Instant(ctx, "default", q, 0)
		requireQueryError(t, err, ErrBadData, "query is nested 400000 deep; the limit is 1000 (--query.max-depth)")
		_, err = eng.Range(ctx, "default", q, 0, 60_000, 15_000)
		requireQueryError(t, err, ErrBadData, "(--query.max-depth)")
	}
	// With the default limits the length refuses it first.
	_, err := NewEngine(db, nil).Instant(ctx, "default", strings.Repeat("(", 400_000)+"1"+strings.Repeat(")", 400_000), 0)
	requireQueryError(t, err, ErrBadData, "(--query.max-length)")
	_, err = Parse(strings.Repeat("(", 100_000) + "1" + strings.Repeat(")", 100_000))
	requireQueryError(t, err, ErrBadData, "(--query.max-depth)")
	// What the limit lets through still evaluates.
	res, err := eng.Instant(ctx, "default", strings.Repeat("(", DefaultMaxDepth)+"1"+strings.Repeat(")", DefaultMaxDepth), 0)
	require.NoError(t, err)
	require.Equal(t, 1.0, res.Scalar.F)
}

// guardedWithExpansion: WITH templates that double at each level (325
// bytes) pinned memory and a core for minutes.
func guardedWithExpansion(t *testing.T) {
	db := st.Open(t, nil)
	ctx := context.Background()
	eng := NewEngine(db, nil)
	for _, q := range []string{
		withBomb(26),
		strings.Repeat("ru(up, ", 26) + "up" + strings.Repeat(")", 26),
		"WITH (g(a, b) = b + b) " + strings.Repeat("g(", 26) + "up" + strings.Repeat(", a())", 26),
	} {
		start := time.Now()
		_, err := eng.Instant(ctx, "default", q, 0)
		requireQueryError(t, err, ErrBadData, "the limit is 20000 (--query.max-terms)")
		_, err = eng.Range(ctx, "default", q, 0, 60_000, 15_000)
		requireQueryError(t, err, ErrBadData, "(--query.max-terms)")
		require.Less(t, time.Since(start), 5*time.Second)
	}
	res, err := eng.Instant(ctx, "default", withBomb(10), 0)
	require.NoError(t, err)
	require.Equal(t, 1024.0, res.Scalar.F)
}

// guardedTinySubquery: a subquery of a millisecond's resolution over a
// week, on an empty database, was OOM-killed within seconds whatever the
// limits: the points of constants and selectors inside subqueries were
// not counted.
func guardedTinySubquery(t *testing.T) {
	db := st.Open(t, nil)
	ctx := context.Background()
	eng := NewEngine(db, &Options{Timeout: 30 * time.Second})
	const week = 7 * 24 * 3600_000
	for _, q := range []string{
		`sum_over_time(vector(1)[7d:1ms])`,
		`count_over_time(up[7d:1ms])`,
		`max_over_time(sum_over_time(vector(1)[1m:1s])[7d:1ms])`,
		`max_over_time(sum_over_time(vector(1)[7d:1ms])[1h:1m])`,
		`absent_over_time(time()[7d:1ms])`,
	} {
		start := time.Now()
		_, err := eng.Instant(ctx, "default", q, week)
		requireQueryError(t, err, ErrExecution, "steps, more than the 50000000 samples a query may hold (--query.max-samples)")
		require.Less(t, time.Since(start), 2*time.Second, q)
	}
	// A range query's own steps.
	_, err := eng.Range(ctx, "default", `vector(1)`, 0, week, 1)
	requireQueryError(t, err, ErrExecution, "query would evaluate 604800001 steps, more than the 50000000 samples a query may hold (--query.max-samples)")

	// Within the steps, every point held is counted: two constants of
	// 864,000 steps each are more than 1e6.
	small := NewEngine(db, &Options{MaxSamples: 1_000_000})
	_, err = small.Instant(ctx, "default", `sum_over_time((vector(1) + vector(2))[1d:100ms])`, week)
	requireQueryError(t, err, ErrExecution, "query processing would load too many samples into memory in query execution")
	res, err := small.Instant(ctx, "default", `sum_over_time(vector(1)[1d:100ms])`, week)
	require.NoError(t, err)
	require.Equal(t, 864_000.0, res.Series[0].Points[0].F)
}

// writeSeries writes n series m{i="…"} with a sample every 15 s over
// [0, dur] (ms): a slowly growing counter.
func writeSeries(t *testing.T, db storage.Writer, n int, dur int64) {
	var b storage.Batch
	for i := range n {
		var smp []storage.Sample
		for ts := int64(0); ts <= dur; ts += 15_000 {
			smp = append(smp, storage.Sample{T: ts, V: float64(ts/1000) + float64(i)})
		}
		b.Add(labels.FromStrings("__name__", "m", "i", fmt.Sprint(i)), smp...)
	}
	require.NoError(t, db.Write(context.Background(), "default", &b))
}

// guardedSamplesCounted: the points a subquery produces count, and the
// points of an expression already consumed do not (Prometheus counts the
// samples held at once, not all ever made).
func guardedSamplesCounted(t *testing.T) {
	db := st.Open(t, nil)
	writeSeries(t, db, 100, 3600_000)
	ctx := context.Background()
	eng := NewEngine(db, &Options{MaxSamples: 100_000})
	// 24,000 points read; the subquery makes 100 × 3,600.
	_, err := eng.Instant(ctx, "default", `max_over_time(rate(m[5m])[1h:1s])`, 3600_000)
	requireQueryError(t, err, ErrExecution, "too many samples")
	// Six expressions of 24,100 points each, one after the other: never
	// more than about 50,000 held at once.
	_, err = eng.Range(ctx, "default", `abs(abs(abs(abs(abs(rate(m[5m]))))))`, 0, 3600_000, 15_000)
	require.NoError(t, err)
	_, err = eng.Range(ctx, "default", `sum(abs(rate(m[5m])) + abs(rate(m[5m])))`, 0, 3600_000, 15_000)
	require.NoError(t, err)
	// A selector's points at each step count, besides those it read.
	_, err = NewEngine(db, &Options{MaxSamples: 40_000}).Range(ctx, "default", `abs(m)`, 0, 3600_000, 15_000)
	requireQueryError(t, err, ErrExecution, "too many samples")
}

// guardedTimeoutHolds: heavy functions ran 3–13 times past the query
// timeout; the context is now looked at in every long loop.
func guardedTimeoutHolds(t *testing.T) {
	db := st.Open(t, nil)
	const h = 3600_000
	writeSeries(t, db, 50, 12*h)
	ctx := context.Background()
	// run returns how long q took to time out. A loop that does not look
	// at the context overruns every time; the machine being busy with
	// something else (it is shared) only now and then: a second try
	// tells them apart.
	run := func(timeout time.Duration, q string, step int64) time.Duration {
		t.Helper()
		var took time.Duration
		for try := range 2 {
			eng := NewEngine(db, &Options{Timeout: timeout})
			start := time.Now()
			_, err := eng.Range(ctx, "default", q, 6*h, 12*h, step)
			if d := time.Since(start); try == 0 || d < took {
				took = d
			}
			requireQueryError(t, err, ErrTimeout, "query timed out")
			if took < timeout*11/10+100*time.Millisecond {
				break
			}
		}
		return took
	}
	// Nested subqueries whose outer window function sorts 21,600 points
	// per series and step: the previous code returned after 25 s.
	took := run(2*time.Second, `quantile_over_time(0.5, sin(max_over_time(m[1m:1s]))[6h:1s])`, 60_000)
	t.Logf("a 2 s timeout on nested subqueries returned after %v", took)
	require.Less(t, took, 2500*time.Millisecond)
	// Every kind of loop, each with three times or more the work its
	// timeout allows: within 10% + 100 ms.
	const timeout = 250 * time.Millisecond
	for _, c := range []struct {
		q    string
		step int64
	}{
		{`quantile_over_time(0.5, m[6h])`, 1000},
		{`max_over_time(m[1h:100ms])`, 60_000},
		{`m * on(i) group_left m`, 100},
		{`topk(3, m)`, 50},
		{`sum by (i) (m)`, 100},
		{`count_values("v", m)`, 100},
		{`label_replace(m, "j", "$1", "i", "(.*)") > 0`, 100},
		{`(m + 1) offset 1m`, 100},
		{`absent_over_time(m[6h])`, 1},
		{`m default 0`, 100},
		{`timestamp(m) - time()`, 100},
	} {
		took := run(timeout, c.q, c.step)
		t.Logf("%-50s %v", c.q, took)
		require.Less(t, took, timeout*11/10+100*time.Millisecond, c.q)
	}
}
