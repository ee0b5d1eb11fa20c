package storage_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// hookFS calls hook before every operation that changes a file or a
// folder, so that a test can take a crash clone at each of those points.
type hookFS struct {
	vfs.FS
	mu   sync.Mutex
	hook func()
}

func (h *hookFS) fire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hook != nil {
		h.hook()
	}
}

func (h *hookFS) set(hook func()) {
	h.mu.Lock()
	h.hook = hook
	h.mu.Unlock()
}

func (h *hookFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, h: h}, nil
}

func (h *hookFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	h.fire()
	return h.wrap(h.FS.Create(name, c))
}

func (h *hookFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, o ...vfs.OpenOption) (vfs.File, error) {
	h.fire()
	return h.wrap(h.FS.OpenReadWrite(name, c, o...))
}

func (h *hookFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	h.fire()
	return h.wrap(h.FS.ReuseForWrite(old, name, c))
}

func (h *hookFS) OpenDir(name string) (vfs.File, error) { return h.wrap(h.FS.OpenDir(name)) }
func (h *hookFS) Link(old, name string) error           { h.fire(); return h.FS.Link(old, name) }
func (h *hookFS) Remove(name string) error              { h.fire(); return h.FS.Remove(name) }
func (h *hookFS) RemoveAll(name string) error           { h.fire(); return h.FS.RemoveAll(name) }
func (h *hookFS) Rename(old, name string) error         { h.fire(); return h.FS.Rename(old, name) }
func (h *hookFS) Unwrap() vfs.FS                        { return h.FS }

type hookFile struct {
	vfs.File
	h *hookFS
}

func (f *hookFile) Write(p []byte) (int, error)            { f.h.fire(); return f.File.Write(p) }
func (f *hookFile) WriteAt(p []byte, o int64) (int, error) { f.h.fire(); return f.File.WriteAt(p, o) }
func (f *hookFile) Sync() error                            { f.h.fire(); return f.File.Sync() }
func (f *hookFile) SyncData() error                        { f.h.fire(); return f.File.SyncData() }

var _ io.Writer = (*hookFile)(nil)

// deleteFixture is a DB of series in three groups, spread over four
// shards, part sealed and flushed to tables, part sealed into memtables,
// part only in the log:
//
//	grp="del"   samples at [0, 100 s]         deleted whole
//	grp="part"  samples at [0, 200 s]         loses [0, 100 s] in the range delete
//	grp="keep"  samples at [0, 200 s]         not matched
//
// Half of "del" and "part" begin at 70 s, after the flush, so that their
// series exist only in the log.
type deleteFixture struct {
	opts  storage.Options
	want  map[string][]storage.Sample // every series before the delete
	group map[string]string           // series -> its grp
}

func newDeleteFixture(t *testing.T, fs vfs.FS, perGroup int) (*deleteFixture, *storage.DB) {
	f := &deleteFixture{
		opts:  storage.Options{Shards: 4, HeadChunkSamples: 8, WALSegmentSize: 16 << 10},
		want:  map[string][]storage.Sample{},
		group: map[string]string{},
	}
	db := crashOpen(t, fs, f.opts)
	ctx := context.Background()
	for step := int64(0); step <= 200; step += 10 {
		var b storage.Batch
		for _, grp := range []string{"del", "part", "keep"} {
			if grp == "del" && step > 100 {
				continue
			}
			for i := range perGroup {
				if grp != "keep" && i%2 == 1 && step < 70 {
					continue // created after the flush: only in the log
				}
				lset := labels.FromStrings("__name__", "m", "grp", grp, "i", fmt.Sprintf("%s-%03d", grp, i))
				smp := storage.Sample{T: step * 1000, V: float64(i) + float64(step)/1000}
				b.Add(lset, smp)
				f.want[lset.String()] = append(f.want[lset.String()], smp)
				f.group[lset.String()] = grp
			}
		}
		require.NoError(t, db.Write(ctx, "default", &b))
		switch step {
		case 60:
			require.NoError(t, db.Flush()) // sealed, in tables, log truncated
		case 150:
			require.NoError(t, storage.Maintain(db))
		}
	}
	return f, db
}

// state reads what a querier sees: series by Select (with or without
// samples), their samples, label names and values, and the counts.
type dbState struct {
	series      map[string][]storage.Sample
	grpValues   []string
	iValues     int
	names       []string
	tenant      int
	statsSeries int
}

func readState(t *testing.T, db *storage.DB) dbState {
	t.Helper()
	ctx := context.Background()
	q, err := db.Querier(ctx, "default", math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	defer q.Close()
	s := dbState{series: map[string][]storage.Sample{}}
	ss := q.Select(ctx, nil, st.Eq("__name__", "m"))
	for ss.Next() {
		var smp []storage.Sample
		it := ss.At().Iterator(nil)
		for it.Next() {
			t, v := it.At()
			smp = append(smp, storage.Sample{T: t, V: v})
		}
		require.NoError(t, it.Err())
		s.series[ss.At().Labels().String()] = smp
	}
	require.NoError(t, ss.Err())
	s.grpValues, err = q.LabelValues(ctx, "grp")
	require.NoError(t, err)
	iv, err := q.LabelValues(ctx, "i")
	require.NoError(t, err)
	s.iValues = len(iv)
	s.names, err = q.LabelNames(ctx)
	require.NoError(t, err)
	s.tenant = db.TenantSeries("default")
	s.statsSeries = db.Stats().Series - db.TenantSeries("other") // all tenants
	return s
}

// expect returns the state after deleting [mint, maxt] from the groups
// listed (none: the state before the delete).
func (f *deleteFixture) expect(mint, maxt int64, groups ...string) dbState {
	s := dbState{series: map[string][]storage.Sample{}, names: []string{"__name__", "grp", "i"}}
	for k, smp := range f.want {
		if slices.Contains(groups, f.group[k]) {
			var kept []storage.Sample
			for _, x := range smp {
				if x.T < mint || x.T > maxt {
					kept = append(kept, x)
				}
			}
			if len(kept) == 0 {
				continue
			}
			smp = kept
		}
		s.series[k] = smp
	}
	seen := map[string]bool{}
	for k := range s.series {
		seen[f.group[k]] = true
	}
	for _, g := range []string{"del", "keep", "part"} {
		if seen[g] {
			s.grpValues = append(s.grpValues, g)
		}
	}
	s.iValues = len(s.series)
	s.tenant, s.statsSeries = len(s.series), len(s.series)
	return s
}

// TestDeleteIsDurableAndWhole deletes across four shards while a crash
// clone is taken before every file operation of the delete (and of
// anything Pebble does meanwhile). Each clone, reopened, shows the delete
// either not started or complete — never some shards done and others
// not — in Select, LabelNames, LabelValues, TenantSeries and Stats; the
// other series are untouched. A clone taken after DeleteSeries returned
// shows it complete, also after the log has been truncated and after a
// second crash.
func TestDeleteIsDurableAndWhole(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mint, maxt int64
		ms         []*labels.Matcher
		groups     []string
	}{
		// Every sample: the whole-series path.
		{"all-time", math.MinInt64, math.MaxInt64, []*labels.Matcher{st.Eq("grp", "del")}, []string{"del"}},
		// A range that holds every sample of "del" (which must disappear
		// too) and part of "part".
		{"range", 0, 100_000, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "grp", "del|part")}, []string{"del", "part"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			fs := &hookFS{FS: mem}
			f, db := newDeleteFixture(t, fs, 25)
			before := f.expect(0, 0)
			after := f.expect(tc.mint, tc.maxt, tc.groups...)
			require.Empty(t, diffState(before, readState(t, db)))

			rng := rand.New(rand.NewPCG(1, 2))
			var clones []*vfs.MemFS
			fs.set(func() {
				cfg := vfs.CrashCloneCfg{}
				if rng.IntN(3) == 0 {
					cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(rng.Uint64(), 0))}
				}
				clones = append(clones, mem.CrashClone(cfg))
			})
			n, err := db.DeleteSeries(context.Background(), "default", tc.mint, tc.maxt, tc.ms...)
			fs.set(nil)
			require.NoError(t, err)
			require.Equal(t, 25*len(tc.groups), n)
			require.Empty(t, diffState(after, readState(t, db)))
			done := mem.CrashClone(vfs.CrashCloneCfg{}) // the moment it returned

			// Later: more writes, the log truncated behind them, then a crash.
			st.Write(t, db, "other", st.Series(labels.FromStrings("__name__", "m"), 1000, 1))
			require.NoError(t, storage.Maintain(db))
			later := mem.CrashClone(vfs.CrashCloneCfg{})
			require.NoError(t, db.Close())

			check := func(t *testing.T, clone *vfs.MemFS, allowed ...dbState) bool {
				t.Helper()
				db := crashOpen(t, clone, f.opts)
				got := readState(t, db)
				// Recovery was durable and whole: flushing what it left in
				// memory (and truncating the log) and crashing again
				// changes nothing.
				require.NoError(t, db.Flush())
				again := clone.CrashClone(vfs.CrashCloneCfg{})
				require.NoError(t, db.Close())
				db = crashOpen(t, again, f.opts)
				got2 := readState(t, db)
				require.NoError(t, db.Close())
				if d := diffState(got, got2); d != "" {
					t.Fatalf("a second crash after recovery changed the state:\n%s", d)
				}
				for i, want := range allowed {
					if reflect.DeepEqual(got, want) {
						return i == len(allowed)-1
					}
				}
				for _, want := range allowed {
					t.Errorf("not this state:\n%s", diffState(want, got))
				}
				return false
			}
			require.Greater(t, len(clones), 5)
			completed := 0
			for i, c := range clones {
				if check(t, c, before, after) {
					completed++
				}
				if t.Failed() {
					t.Fatalf("crash point %d of %d", i, len(clones))
				}
			}
			require.True(t, check(t, done, after), "after DeleteSeries returned")
			require.True(t, check(t, later, after), "after the log was truncated")
			require.Less(t, completed, len(clones), "some crash point came before the delete began")
			require.Positive(t, completed, "some crash point came after the delete was decided")
			t.Logf("%d crash points, %d with the delete complete after reopening", len(clones), completed)
		})
	}
}

// diffState describes how got differs from want, in a few lines.
func diffState(want, got dbState) string {
	var out []string
	keys := slices.Sorted(maps.Keys(want.series))
	for _, k := range slices.Sorted(maps.Keys(got.series)) {
		if _, ok := want.series[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		w, inW := want.series[k]
		g, inG := got.series[k]
		switch {
		case !inG:
			out = append(out, fmt.Sprintf("missing %s (%d samples)", k, len(w)))
		case !inW:
			out = append(out, fmt.Sprintf("unexpected %s (%d samples)", k, len(g)))
		case !slices.Equal(w, g):
			out = append(out, fmt.Sprintf("%s: %d samples, want %d", k, len(g), len(w)))
		}
	}
	if len(out) > 8 {
		out = append(out[:8], fmt.Sprintf("... %d more series differ", len(out)-8))
	}
	w, g := want, got
	w.series, g.series = nil, nil
	if !reflect.DeepEqual(w, g) {
		out = append(out, fmt.Sprintf("got %+v\nwant %+v", g, w))
	}
	return strings.Join(out, "\n")
}
