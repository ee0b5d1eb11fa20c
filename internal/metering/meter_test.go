package metering_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/metering"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// clock is a settable time for the meter and storage.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var day0 = time.Date(2026, 3, 14, 23, 0, 0, 0, time.UTC)

func writeN(t *testing.T, w storage.Writer, tenant string, series, samples int) {
	t.Helper()
	var b storage.Batch
	for s := range series {
		smp := make([]storage.Sample, samples)
		for i := range smp {
			smp[i] = storage.Sample{T: int64(i+1) * 1000, V: float64(i)}
		}
		b.Add(labels.FromStrings("__name__", "m", "s", fmt.Sprint(s)), smp...)
	}
	require.NoError(t, w.Write(context.Background(), tenant, &b))
}

func TestReportAcrossDaysAndRestarts(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: day0}
	db := st.OpenDir(t, dir, &storage.Options{Now: clk.now})
	active := map[string]int{"a": 10, "b": 2}
	newMeter := func(db *storage.DB) *metering.Meter {
		return metering.New(metering.Options{Store: db, Now: clk.now, SampleInterval: time.Minute,
			ActiveSeries: func() map[string]int { return active },
			StoredBytes: func() (map[string]map[string]int64, error) {
				return map[string]map[string]int64{"a": {"raw": 5000, "1h": 700}}, nil
			},
			Limits: func(tenant string) metering.Limits {
				return map[string]metering.Limits{"a": {MaxSeries: 12, IngestRate: 1000}, "b": {MaxSeries: 100}}[tenant]
			},
			IngestRate: func(tenant string) float64 { return 500 },
		})
	}
	m := newMeter(db)
	writeN(t, metering.Tag("remote_write", db), "a", 10, 3)
	writeN(t, metering.Tag("influx", db), "b", 2, 1)
	m.Add("a", metering.Queries, 2)
	m.Add("a", metering.RuleEvaluations, 7)
	m.Add("b", metering.NotificationsSent, 1)
	m.SampleSeries() // the first sample: the maximum only
	clk.t = clk.t.Add(30 * time.Second)
	m.SampleSeries() // 30 s of 10 and 2 series
	m.SampleBytes()
	// Not flushed yet: the report has it all the same.
	rep, err := m.Report(day0, day0, "a")
	require.NoError(t, err)
	require.Len(t, rep.Tenants, 1)
	require.Equal(t, uint64(2), rep.Tenants[0].Total.Queries)
	require.NoError(t, m.Flush(context.Background()))

	clk.t = day0.Add(2 * time.Hour) // the next day
	writeN(t, metering.Tag("remote_write", db), "a", 1, 5)
	m.Add("a", metering.Queries, 1)
	active["a"] = 11
	m.SampleSeries() // 2 min at most: 11 series × 120 s
	require.NoError(t, m.Flush(context.Background()))

	check := func(m *metering.Meter) {
		t.Helper()
		rep, err := m.Report(day0, day0.Add(24*time.Hour), "")
		require.NoError(t, err)
		require.Equal(t, "2026-03-14", rep.From)
		require.Equal(t, "2026-03-15", rep.To)
		require.Len(t, rep.Tenants, 2)
		a, b := rep.Tenants[0], rep.Tenants[1]
		require.Equal(t, "a", a.Tenant)
		require.Len(t, a.Days, 2)
		d0, d1 := a.Days[0], a.Days[1]
		require.Equal(t, "2026-03-14", d0.Date)
		require.Equal(t, uint64(30), d0.SamplesIngested)
		require.Equal(t, map[string]uint64{"remote_write": 30}, d0.SamplesIngestedByProtocol)
		require.Equal(t, uint64(10), d0.ActiveSeriesMax)
		require.InDelta(t, 10*30.0/3600, d0.SeriesHours, 1e-9)
		require.Equal(t, uint64(5700), d0.BytesStored, "every tier")
		require.Equal(t, map[string]uint64{"raw": 5000, "1h": 700}, d0.BytesStoredByTier)
		require.Equal(t, uint64(2), d0.Queries)
		require.Equal(t, uint64(7), d0.RuleEvaluations)
		require.Equal(t, uint64(5), d1.SamplesIngested)
		require.Equal(t, uint64(11), d1.ActiveSeriesMax)
		require.InDelta(t, 11*120.0/3600, d1.SeriesHours, 1e-9)
		require.Equal(t, uint64(35), a.Total.SamplesIngested)
		require.Equal(t, uint64(11), a.Total.ActiveSeriesMax, "the largest day")
		require.Equal(t, uint64(3), a.Total.Queries)
		// 11 of 12 series (91.7%) is near the limit; 500 of 1000 samples/s is not.
		require.True(t, a.NearLimit)
		require.Equal(t, []metering.LimitUse{
			{Name: "max_series", Limit: 12, Current: 11, Percent: 91.7, NearLimit: true},
			{Name: "ingest_rate", Limit: 1000, Current: 500, Percent: 50},
		}, a.Limits)
		require.Equal(t, "b", b.Tenant)
		require.Equal(t, map[string]uint64{"influx": 2}, b.Total.SamplesIngestedByProtocol)
		require.Equal(t, uint64(1), b.Total.NotificationsSent)
		require.False(t, b.NearLimit)
	}
	check(m)
	// Reopened: the counters were in storage.
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, &storage.Options{Now: clk.now})
	check(newMeter(db))
	// A tenant asked for by name is there without usage too.
	rep, err = newMeter(db).Report(day0, day0, "nobody")
	require.NoError(t, err)
	require.Len(t, rep.Tenants, 1)
	require.Len(t, rep.Tenants[0].Days, 1)
	require.Zero(t, rep.Tenants[0].Total.SamplesIngested)
}

func TestReportBounds(t *testing.T) {
	m := metering.New(metering.Options{Store: st.Open(t, nil)})
	_, err := m.Report(day0, day0.Add(-24*time.Hour), "")
	require.ErrorContains(t, err, "before")
	_, err = m.Report(day0, day0.Add(400*24*time.Hour), "")
	require.ErrorContains(t, err, "at most 366")
	for _, bad := range []string{"", "2026-3-1", "2026-02-30", "yesterday"} {
		_, err := metering.ParseDay(bad)
		require.Error(t, err, bad)
	}
	d, err := metering.ParseDay("2026-02-28")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC), d)
}

func TestWriteCSV(t *testing.T) {
	clk := &clock{t: day0}
	db := st.Open(t, &storage.Options{Now: clk.now})
	m := metering.New(metering.Options{Store: db, Now: clk.now})
	writeN(t, metering.Tag("remote_write", db), "a", 2, 2)
	writeN(t, metering.Tag("otlp", db), "a", 1, 1)
	m.Add("a", metering.SamplesScanned, 40)
	rep, err := m.Report(day0, day0.Add(24*time.Hour), "")
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, rep.WriteCSV(&buf))
	require.Equal(t, strings.Join([]string{
		"date,tenant,samples_ingested,samples_ingested_otlp,samples_ingested_remote_write,active_series_max,series_hours,bytes_stored,queries,samples_scanned,rule_evaluations,alerts_sent,notifications_sent,near_limit",
		"2026-03-14,a,5,1,4,0,0.000,0,0,40,0,0,0,",
		"2026-03-15,a,0,0,0,0,0.000,0,0,0,0,0,0,",
		"total,a,5,1,4,0,0.000,0,0,40,0,0,0,false",
		""}, "\n"), buf.String())
}

// The Reader counts the samples each tenant's queriers iterate.
func TestReaderCountsSamplesScanned(t *testing.T) {
	db := st.Open(t, nil)
	m := metering.New(metering.Options{Store: db})
	writeN(t, db, "a", 3, 10)
	writeN(t, db, "b", 1, 10)
	r := m.Reader(db)
	ctx := context.Background()
	scan := func(tenant string, mint, maxt int64) {
		q, err := r.Querier(ctx, tenant, mint, maxt)
		require.NoError(t, err)
		ss := q.Select(ctx, nil, st.Eq("__name__", "m"))
		var it storage.Iterator
		for ss.Next() {
			it = ss.At().Iterator(it) // reused, as the engine does
			for it.Next() {
			}
			require.NoError(t, it.Err())
		}
		require.NoError(t, ss.Err())
		require.NoError(t, q.Close())
	}
	scan("a", math.MinInt64, math.MaxInt64)
	scan("a", 1000, 5000) // 5 samples of each of 3 series
	scan("b", math.MinInt64, math.MaxInt64)
	rep, err := m.Report(time.Now(), time.Now(), "")
	require.NoError(t, err)
	require.Len(t, rep.Tenants, 2)
	require.Equal(t, uint64(30+15), rep.Tenants[0].Total.SamplesScanned)
	require.Equal(t, uint64(10), rep.Tenants[1].Total.SamplesScanned)
}

// failingStore refuses every record with err.
type failingStore struct {
	metering.Store
	err   error
	calls int
}

func (f *failingStore) RecordUsage(context.Context, string, time.Time, []storage.UsageDelta) error {
	f.calls++
	return f.err
}

// A record refused before the log took it (a full disk) is kept for the
// next flush; one that failed otherwise is dropped, as it may have been
// recorded and must not count twice.
func TestFlushKeepsOnlyWhatWasNotLogged(t *testing.T) {
	db := st.Open(t, nil)
	fs := &failingStore{Store: db, err: fmt.Errorf("write: %w", storage.ErrNotWritable)}
	m := metering.New(metering.Options{Store: fs})
	m.Add("a", metering.Queries, 3)
	require.Error(t, m.Flush(context.Background()))
	fs.err = errors.New("sync wal: i/o error")
	m.Add("a", metering.Queries, 1)
	require.Error(t, m.Flush(context.Background()))
	require.Equal(t, 2, fs.calls)
	fs.err = nil
	m.Add("a", metering.Queries, 10)
	require.NoError(t, m.Flush(context.Background()))
	require.NoError(t, m.Flush(context.Background()))
	require.Equal(t, 3, fs.calls, "nothing left after a good flush")
}

func TestCollector(t *testing.T) {
	clk := &clock{t: day0}
	db := st.Open(t, &storage.Options{Now: clk.now})
	m := metering.New(metering.Options{Store: db, Now: clk.now,
		ActiveSeries: func() map[string]int { return map[string]int{"a": 3} },
		StoredBytes: func() (map[string]map[string]int64, error) {
			return map[string]map[string]int64{"a": {"raw": 4096}}, nil
		}})
	writeN(t, metering.Tag("remote_write", db), "a", 3, 2)
	m.Add("a", metering.Queries, 2)
	require.NoError(t, m.Flush(context.Background()))
	// Three days later: the first day's counts are in the totals still.
	clk.t = day0.Add(72 * time.Hour)
	writeN(t, metering.Tag("remote_write", db), "a", 3, 1)
	m.Add("a", metering.Queries, 1) // not flushed
	m.SampleBytes()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var ls []string
			for _, lp := range mt.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			v := mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
			got[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	require.Equal(t, map[string]float64{
		"tsdb_usage_active_series{tenant=a}":                                3,
		"tsdb_usage_bytes_stored{tenant=a,tier=raw}":                        4096,
		"tsdb_usage_queries_total{tenant=a}":                                3,
		"tsdb_usage_samples_ingested_total{protocol=remote_write,tenant=a}": 9,
	}, got)
}
