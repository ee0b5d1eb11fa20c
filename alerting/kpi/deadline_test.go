package kpi

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestDeadlineKPI: "orders completed ≥ 99% by 18:00 each working day",
// recorded hourly, in Seoul. On Thursday the rate starts to slide at
// 04:00: by 10:00 it is already below the target but not breached — it
// is judged at 18:00 — and the KPI warns that today's deadline will be
// missed; after 18:00 it is breached. Saturday's low is no breach (not a
// working day), and the next deadline skips the weekend and a holiday.
func TestDeadlineKPI(t *testing.T) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	require.NoError(t, err)
	thu := time.Date(2026, 11, 19, 0, 0, 0, 0, seoul) // a Thursday
	db := st.Open(t, nil)
	ctx := context.Background()
	value := func(at time.Time) float64 {
		l := at.In(seoul)
		v := 0.995 + 0.0005*math.Sin(float64(at.Unix())/3600)
		if wd := l.Weekday(); wd == time.Saturday || wd == time.Sunday {
			v = 0.95 // little is shipped at weekends
		}
		if d := at.Sub(thu.Add(4 * time.Hour)); d > 0 && at.Before(thu.Add(24*time.Hour)) {
			v -= 0.0012 * d.Hours()
		}
		return v
	}
	var smp []storage.Sample
	for at := thu.Add(-21 * 24 * time.Hour); at.Before(thu.Add(6 * 24 * time.Hour)); at = at.Add(time.Hour) {
		smp = append(smp, storage.Sample{T: at.UnixMilli(), V: value(at)})
	}
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "orders_completed_ratio", "shop", "kr"), smp...)
	require.NoError(t, db.Write(ctx, "default", &b))

	def := Definition{Name: "orders_by_18", Expr: `orders_completed_ratio{shop="kr"}`, Target: 0.99, Direction: "above",
		Interval: time.Hour, Step: time.Hour, Horizon: 3 * 24 * time.Hour, History: 21 * 24 * time.Hour, Deadline: "18:00"}
	cal := Calendar{Timezone: "Asia/Seoul", Holidays: []string{"2026-11-23"}} // the Monday after
	now := thu.Add(6 * 24 * time.Hour)
	eng, err := New([]Definition{def}, query.NewEngine(db, nil), db, nil, &Options{Now: func() time.Time { return now }, Calendars: []Calendar{cal}})
	require.NoError(t, err)
	asOf := func(at time.Time) *Evaluation {
		t.Helper()
		ev, _, err := eng.EvaluateAt(ctx, "default", def.Name, at)
		require.NoError(t, err)
		t.Logf("%s v=%.4f p=%.2f state=%s deadline=%v eta=%v", at.In(seoul).Format("Mon 15:04"), ev.Value, ev.Probability, ev.State, ev.Deadline, ev.ETA)
		return ev
	}

	// Wednesday evening: on target, today's deadline met, tomorrow's next.
	ev := asOf(thu.Add(-5 * time.Hour))
	require.Equal(t, StateOK, ev.State)
	require.Equal(t, thu.Add(18*time.Hour), ev.Deadline.In(seoul))

	// Thursday 10:00: below the target already, but judged at 18:00 —
	// warned that today's deadline will be missed.
	ev = asOf(thu.Add(10 * time.Hour))
	require.Less(t, ev.Value, 0.99)
	require.Equal(t, StateWarning, ev.State)
	require.Equal(t, thu.Add(18*time.Hour), ev.Deadline.In(seoul))
	require.NotNil(t, ev.ETA)
	require.Equal(t, thu.Add(18*time.Hour), ev.ETA.In(seoul), "the breach expected at the deadline")
	require.Greater(t, ev.Probability, 0.8)

	// Without a deadline the same KPI is breached at 10:00.
	plain := def
	plain.Deadline = ""
	eng2, err := New([]Definition{plain}, query.NewEngine(db, nil), db, nil, &Options{Now: func() time.Time { return now }, Calendars: []Calendar{cal}})
	require.NoError(t, err)
	ev2, _, err := eng2.EvaluateAt(ctx, "default", def.Name, thu.Add(10*time.Hour))
	require.NoError(t, err)
	require.Equal(t, StateBreached, ev2.State)
	require.Nil(t, ev2.Deadline)

	// Thursday 18:30: breached at the deadline.
	ev = asOf(thu.Add(18*time.Hour + 30*time.Minute))
	require.Equal(t, StateBreached, ev.State)
	require.Equal(t, thu.Add(24*time.Hour+18*time.Hour), ev.Deadline.In(seoul), "next: Friday")

	// Saturday 18:30: far below the target, not a working day.
	sat := thu.Add(2 * 24 * time.Hour)
	ev = asOf(sat.Add(18*time.Hour + 30*time.Minute))
	require.NotEqual(t, StateBreached, ev.State)
	require.Equal(t, sat.Add(3*24*time.Hour+18*time.Hour), ev.Deadline.In(seoul), "Sunday and the Monday holiday skipped: Tuesday")
}
