package query

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	"deep nesting":   guardedDeepNesting,
	"WITH expansion": guardedWithExpansion,
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
