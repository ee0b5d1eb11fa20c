package kpi

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// recorded is a KPI as a batch records it: one sample every every, at
// phase past the multiples of every, from `from` to `to`; each value
// tells its own time apart.
func recorded(t *testing.T, db storage.Writer, name string, from, to time.Time, every, phase time.Duration) func(time.Time) float64 {
	v := func(at time.Time) float64 { return 0.98 + 0.01*math.Sin(float64(at.Unix())/float64(every/time.Second)) }
	var b storage.Batch
	var smp []storage.Sample
	for at := from.Truncate(every).Add(phase); !at.After(to); at = at.Add(every) {
		smp = append(smp, storage.Sample{T: at.UnixMilli(), V: v(at)})
	}
	b.Add(labels.FromStrings("__name__", name, "shop", "kr"), smp...)
	require.NoError(t, db.Write(context.Background(), "default", &b))
	return v
}

// TestHistoryAsRecorded reads hourly, daily and 15-minute KPIs at every
// minute of the hour (every phase of the day for the daily ones), by an
// ad hoc forecast and by a configured KPI: the history holds one point
// per step, on the step's boundaries, each the last sample within the
// step before it, and nothing recorded after now.
func TestHistoryAsRecorded(t *testing.T) {
	db := st.Open(t, nil)
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	hourly := recorded(t, db, "orders_completed_ratio", base.Add(-15*24*time.Hour), base.Add(3*time.Hour), time.Hour, 0)
	quarter := recorded(t, db, "orders_quarter_ratio", base.Add(-3*24*time.Hour), base.Add(3*time.Hour), 15*time.Minute, 0)
	daily := recorded(t, db, "orders_daily_ratio", base.Add(-60*24*time.Hour), base.Add(3*24*time.Hour), 24*time.Hour, 2*time.Hour)
	midnight := recorded(t, db, "orders_midnight_ratio", base.Add(-60*24*time.Hour), base.Add(3*24*time.Hour), 24*time.Hour, 0)

	type tc struct {
		name, expr    string
		v             func(time.Time) float64
		every, phase  time.Duration
		step, history time.Duration
		now           time.Time
	}
	var cases []tc
	for m := range 60 {
		now := base.Add(time.Duration(m) * time.Minute)
		cases = append(cases,
			tc{fmt.Sprintf("hourly/%02dm", m), `orders_completed_ratio{shop="kr"}`, hourly, time.Hour, 0, time.Hour, 14 * 24 * time.Hour, now},
			tc{fmt.Sprintf("15m/%02dm", m), `sum(orders_quarter_ratio)`, quarter, 15 * time.Minute, 0, 15 * time.Minute, 2 * 24 * time.Hour, now})
	}
	day := base.Truncate(24 * time.Hour)
	for _, h := range []time.Duration{0, time.Minute, 119 * time.Minute, 2 * time.Hour, 121 * time.Minute, 9 * time.Hour, 15 * time.Hour, 23*time.Hour + 59*time.Minute} {
		now := day.Add(h)
		cases = append(cases,
			tc{"daily@02:00/" + now.Format("15:04"), `orders_daily_ratio`, daily, 24 * time.Hour, 2 * time.Hour, 24 * time.Hour, 30 * 24 * time.Hour, now},
			tc{"daily@00:00/" + now.Format("15:04"), `orders_midnight_ratio * 1`, midnight, 24 * time.Hour, 0, 24 * time.Hour, 30 * 24 * time.Hour, now})
	}
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := c.now
			def := Definition{Name: "k", Expr: c.expr, Target: 0.5, Direction: "above", Interval: c.step, Step: c.step,
				Horizon: 4 * c.step, History: c.history, Seasonality: "none"}
			eng, err := New([]Definition{def}, query.NewEngine(db, nil), db, nil, &Options{Now: func() time.Time { return now }})
			require.NoError(t, err)
			// The last sample at or before now, and the last step boundary.
			lastSample := now.Add(-c.phase).Truncate(c.every).Add(c.phase)
			boundary := now.Truncate(c.step)
			check := func(ev *Evaluation) {
				require.Len(t, ev.History, int(c.history/c.step), "one point per step")
				for i, p := range ev.History {
					at := time.UnixMilli(p.T).UTC()
					require.Equal(t, boundary.Add(-time.Duration(len(ev.History)-1-i)*c.step), at, "point %d on the step's boundary", i)
					sample := at.Add(-c.phase).Truncate(c.every).Add(c.phase)
					require.Equal(t, c.v(sample), p.F, "point %d at %s is the sample of %s", i, at, sample)
				}
				require.Equal(t, c.v(lastSample), ev.Value, "the value is the last sample (%s)", lastSample)
			}

			adhoc := def
			adhoc.Interval = 0
			ev, err := eng.Forecast(ctx, adhoc, time.Time{})
			require.NoError(t, err, "ad hoc forecast")
			check(ev)

			ev, err = eng.Evaluate(ctx, "default", "k")
			require.NoError(t, err, "configured KPI")
			check(ev)
		})
	}
}

func TestSampled(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		require.Equal(t, want, sampled(in, time.Hour))
	}
	f(`x`, `last_over_time(x[3600s])`)
	f(`sum(x{a="b"}) / sum(y)`, `sum(last_over_time(x{a="b"}[3600s])) / sum(last_over_time(y[3600s]))`)
	f(`x offset 1d`, `last_over_time(x[3600s] offset 1d)`)
	f(`sum(rate(x[1h]))`, `sum(rate(x[1h]))`)
	f(`rate(x)`, `rate(x)`)
	f(`max_over_time(x[1d:1h])`, `max_over_time(x[1d:1h])`)
	f(`clamp_max(x, 1)`, `clamp_max(last_over_time(x[3600s]), 1)`)
	f(`1`, `1`)
	f(`sum(`, `sum(`)
}
