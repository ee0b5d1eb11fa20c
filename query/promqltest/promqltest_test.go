package promqltest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

// conformanceDir holds Prometheus's PromQL test scripts, copied unedited
// into the repository (origin, version and licence in its NOTICE.md).
const conformanceDir = "testdata/conformance"

// knownFailures lists the stable cases (file:line) that do not pass yet.
// The test fails when any other stable case fails, and tells which listed
// cases pass now so the list only shrinks.
const knownFailuresFile = "testdata/known_failures.txt"

func openStore(t testing.TB) func() (Store, func(), error) {
	return func() (Store, func(), error) {
		dir, err := os.MkdirTemp(t.TempDir(), "db")
		if err != nil {
			return nil, nil, err
		}
		db, err := storage.Open(dir, &storage.Options{Shards: 1, NoSync: true})
		if err != nil {
			return nil, nil, err
		}
		return db, func() { _ = db.Close() }, nil
	}
}

// TestConformance runs the scripts and tallies the cases by class and by
// file (shown with -v). PROMQLTEST_VERBOSE=1 logs the failing stable
// cases; any other value logs the failing cases whose class starts with
// it (PROMQLTEST_VERBOSE=experimental, or "experimental: functions").
func TestConformance(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(conformanceDir, "*.test"))
	require.NoError(t, err)
	if len(files) == 0 {
		t.Fatalf("no *.test files in %s: the PromQL conformance scripts are part of the repository; restore them with git checkout -- query/promqltest/%s (its NOTICE.md says how to refresh them)", conformanceDir, conformanceDir)
	}
	known := readKnown(t)
	type tally struct{ pass, fail, skip int }
	byClass := map[string]*tally{}
	byFile := map[string]*tally{}
	var failures, fixed []string
	ctx := context.Background()
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		name := filepath.Base(f)
		cases, err := Run(ctx, name, string(src), openStore(t))
		require.NoError(t, err, name)
		for _, c := range cases {
			class := c.Class
			if strings.HasPrefix(class, "experimental") {
				class = "experimental"
			}
			for i, m := range []map[string]*tally{byClass, byFile} {
				key := class
				if i == 1 {
					key = name
				}
				if m[key] == nil {
					m[key] = &tally{}
				}
				switch c.Status {
				case Pass:
					m[key].pass++
				case Fail:
					m[key].fail++
				case Skip:
					m[key].skip++
				}
			}
			if v := os.Getenv("PROMQLTEST_VERBOSE"); v != "" && v != "1" && c.Status == Fail && strings.HasPrefix(c.Class, v) {
				t.Logf("FAIL [%s] %s: %s\n\t%s", c.Class, c.ID(), c.Query, c.Err)
			}
			if c.Class != "stable" && c.Class != NativeHistograms {
				continue
			}
			switch {
			case c.Status == Fail && !known[c.ID()]:
				failures = append(failures, fmt.Sprintf("%s: %s\n\t%s", c.ID(), c.Query, c.Err))
			case c.Status == Pass && known[c.ID()]:
				fixed = append(fixed, c.ID())
			}
			if os.Getenv("PROMQLTEST_VERBOSE") == "1" && c.Status == Fail {
				t.Logf("FAIL %s: %s\n\t%s", c.ID(), c.Query, c.Err)
			}
		}
	}
	var names []string
	for n := range byFile {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := byFile[n]
		t.Logf("%-28s pass %4d  fail %4d  skip %4d", n, c.pass, c.fail, c.skip)
	}
	for _, cl := range []string{"stable", "experimental", NativeHistograms, "skip: start timestamps"} {
		if c := byClass[cl]; c != nil {
			t.Logf("%-28s pass %4d  fail %4d  skip %4d", cl, c.pass, c.fail, c.skip)
		}
	}
	if p := os.Getenv("PROMQLTEST_WRITE_KNOWN"); p != "" {
		writeKnown(t, files)
		return
	}
	if len(fixed) > 0 {
		t.Errorf("%d known failures pass now; remove them from %s: %s", len(fixed), knownFailuresFile, strings.Join(fixed, " "))
	}
	if len(failures) > 0 {
		t.Errorf("%d stable cases fail that are not known failures:\n%s", len(failures), strings.Join(failures, "\n"))
	}
}

func readKnown(t *testing.T) map[string]bool {
	known := map[string]bool{}
	f, err := os.Open(knownFailuresFile)
	if os.IsNotExist(err) {
		return known
	}
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			id, _, _ := strings.Cut(l, " ")
			known[id] = true
		}
	}
	require.NoError(t, sc.Err())
	return known
}

// writeKnown rewrites the known-failures list from a fresh run.
func writeKnown(t *testing.T, files []string) {
	var lines []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		cases, err := Run(context.Background(), filepath.Base(f), string(src), openStore(t))
		require.NoError(t, err)
		for _, c := range cases {
			if (c.Class == "stable" || c.Class == NativeHistograms) && c.Status == Fail {
				lines = append(lines, c.ID()+" "+c.Query)
			}
		}
	}
	require.NoError(t, os.MkdirAll(filepath.Dir(knownFailuresFile), 0o755))
	body := "# Stable PromQL conformance cases that fail today (file:line query).\n" +
		"# Regenerate: PROMQLTEST_WRITE_KNOWN=1 go test ./query/promqltest/\n" + strings.Join(lines, "\n") + "\n"
	require.NoError(t, os.WriteFile(knownFailuresFile, []byte(body), 0o644))
}

func TestParse(t *testing.T) {
	cmds, err := Parse(`
load 5m
  metric{a="x"} 0+10x2 _ stale
  {__name__="m2"} 1 2

# comment
eval instant at 10m metric
  metric{a="x"} 20

eval range from 0 to 10m step 5m sum(metric)
  {} 0 10 20

eval instant at 0 1+1
  2

eval_fail instant at 0 foo(
  expected_fail_message boom
`)
	require.NoError(t, err)
	require.Len(t, cmds, 5)
	ld := cmds[0].(*Load)
	require.Len(t, ld.Series, 2)
	require.Len(t, ld.Series[0].Samples, 4)
	require.Equal(t, int64(1_200_000), ld.Series[0].Samples[3].T, "the gap still advances time")
	require.True(t, storage.IsStaleNaN(ld.Series[0].Samples[3].V))
	ev := cmds[2].(*Eval)
	require.False(t, ev.Instant)
	require.Equal(t, int64(600_000), ev.End)
	require.Len(t, ev.Series[0].Values, 3)
	require.Equal(t, 2.0, *cmds[3].(*Eval).Scalar)
	f := cmds[4].(*Eval)
	require.True(t, f.Fail)
	require.Equal(t, "boom", f.FailMsg)
}

// TestMetricsQLExtensions runs our own script of MetricsQL extensions.
func TestMetricsQLExtensions(t *testing.T) {
	src, err := os.ReadFile("testdata/metricsql.test")
	require.NoError(t, err)
	cases, err := Run(context.Background(), "metricsql.test", string(src), openStore(t))
	require.NoError(t, err)
	require.NotEmpty(t, cases)
	for _, c := range cases {
		require.Equal(t, Pass, c.Status, "%s: %s\n%s", c.ID(), c.Query, c.Err)
	}
}

// TestPromQLCorners runs our own script of PromQL corners (issue 17),
// expectations taken from Prometheus 3.14.
func TestPromQLCorners(t *testing.T) {
	src, err := os.ReadFile("testdata/promql.test")
	require.NoError(t, err)
	cases, err := Run(context.Background(), "promql.test", string(src), openStore(t))
	require.NoError(t, err)
	require.NotEmpty(t, cases)
	for _, c := range cases {
		require.Equal(t, Pass, c.Status, "%s: %s\n%s", c.ID(), c.Query, c.Err)
	}
}

func TestParseHistograms(t *testing.T) {
	cmds, err := Parse(`
load 1m
  h {{schema:1 sum:5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 2] offset:-1 n_buckets:[0 1] n_offset:2}} _ {{count:1}}x1 stale
  c {{schema:0 sum:1 count:1 buckets:[1] counter_reset_hint:gauge}}+{{sum:2 count:2 buckets:[2]}}x2
  d {{schema:-53 sum:9 count:3 custom_values:[1 5] buckets:[1 2]}}-{{schema:-53 sum:1 count:1 custom_values:[1 5] buckets:[0 1]}}x1

eval instant at 1m h
  h {{count:1 counter_reset_hint:not_reset}}
`)
	require.NoError(t, err)
	ld := cmds[0].(*Load)
	h := ld.Series[0]
	require.Len(t, h.Histograms, 3)
	require.Equal(t, []int64{0, 120_000, 180_000}, []int64{h.Histograms[0].T, h.Histograms[1].T, h.Histograms[2].T})
	require.Len(t, h.Samples, 1, "stale is a float stale marker")
	require.True(t, storage.IsStaleNaN(h.Samples[0].V))
	require.Equal(t, int64(240_000), h.Samples[0].T)
	want := &histogram.FloatHistogram{
		Schema: 1, Sum: 5, Count: 4, ZeroCount: 1, ZeroThreshold: 0.001,
		PositiveSpans: []histogram.Span{{Offset: -1, Length: 2}}, PositiveBuckets: []float64{1, 2},
		NegativeSpans: []histogram.Span{{Offset: 2, Length: 2}}, NegativeBuckets: []float64{0, 1},
	}
	require.True(t, want.Equals(h.Histograms[0].H), "%s", h.Histograms[0].H.TestExpression())

	c := ld.Series[1].Histograms
	require.Len(t, c, 3, "the base and 2 increments")
	require.Equal(t, 5.0, c[2].H.Count)
	require.Equal(t, []float64{5}, c[2].H.PositiveBuckets)

	d := ld.Series[2].Histograms
	require.Len(t, d, 2)
	require.Equal(t, 2.0, d[1].H.Count)
	require.Equal(t, []float64{1, 5}, d[1].H.CustomValues)

	ev := cmds[1].(*Eval)
	require.True(t, ev.ExpectsHistograms)
	v := ev.Series[0].Values[0]
	require.True(t, v.HintSet)
	require.Equal(t, histogram.NotCounterReset, v.H.CounterResetHint)

	_, err = Parse("load 1m\n  h {{schema:0 bogus:1}}\n")
	require.Error(t, err)
	_, err = Parse("load 1m\n  h {{schema:0 counter_reset_hint:maybe}}\n")
	require.Error(t, err)
}

func TestHistogramEq(t *testing.T) {
	a := &histogram.FloatHistogram{Count: 2, Sum: 3, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}, {Offset: 2, Length: 0}}, PositiveBuckets: []float64{2}}
	b := &histogram.FloatHistogram{Count: 2, Sum: 3 + 1e-9, PositiveSpans: []histogram.Span{{Offset: 0, Length: 1}}, PositiveBuckets: []float64{2}}
	require.True(t, histogramEq(a, b, false), "empty spans and tiny float differences do not count")
	b.CounterResetHint = histogram.GaugeType
	require.True(t, histogramEq(a, b, false))
	require.False(t, histogramEq(a, b, true), "the hint counts when the script set it")
	b.PositiveBuckets = []float64{3}
	require.False(t, histogramEq(a, b, false))
}
