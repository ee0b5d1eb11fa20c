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

// TestCalendarHoliday forecasts an hourly KPI with a weekly shape
// (0.985 on weekdays with a small daily cycle, 0.962 at weekends, in
// Seoul time) against a target of 0.95, with one holiday on a Thursday
// at 0.91. Without the tenant's calendar the holiday is a breach on the
// day, forecast to go on, and a week later it raises next Thursday's
// breach probability; with it, neither, and the weekend's low is no
// warning either.
func TestCalendarHoliday(t *testing.T) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	require.NoError(t, err)
	holiday := time.Date(2026, 11, 19, 0, 0, 0, 0, seoul) // a Thursday
	kpiAt := func(at time.Time) float64 {
		l := at.In(seoul)
		v := 0.985 + 0.003*math.Sin(2*math.Pi*float64(l.Hour())/24) + 0.001*math.Sin(float64(at.Unix())/3917)
		switch {
		case l.Format(time.DateOnly) == holiday.Format(time.DateOnly):
			v = 0.91 + 0.001*math.Sin(float64(at.Unix())/3917)
		case l.Weekday() == time.Saturday || l.Weekday() == time.Sunday:
			v = 0.962 + 0.001*math.Sin(float64(at.Unix())/3917)
		}
		return v
	}
	db := st.Open(t, nil)
	var b storage.Batch
	var smp []storage.Sample
	for at := holiday.Add(-30 * 24 * time.Hour); at.Before(holiday.Add(10 * 24 * time.Hour)); at = at.Add(time.Hour) {
		smp = append(smp, storage.Sample{T: at.UnixMilli(), V: kpiAt(at)})
	}
	b.Add(labels.FromStrings("__name__", "orders_completed_ratio", "shop", "kr"), smp...)
	require.NoError(t, db.Write(context.Background(), "default", &b))

	def := Definition{Name: "orders", Expr: `orders_completed_ratio{shop="kr"}`, Target: 0.95, Direction: "above",
		Interval: time.Hour, Step: time.Hour, Horizon: 24 * time.Hour, History: 21 * 24 * time.Hour, Seasonality: "weekly"}
	cal := Calendar{Timezone: "Asia/Seoul", Holidays: []string{"2026-11-19", "2026-12-25"}}
	eval := func(cals []Calendar, at time.Time) *Evaluation {
		t.Helper()
		eng, err := New([]Definition{def}, query.NewEngine(db, nil), db, nil, &Options{Calendars: cals, Now: func() time.Time { return at }})
		require.NoError(t, err)
		ev, _, err := eng.EvaluateAt(context.Background(), "default", "orders", at)
		require.NoError(t, err)
		t.Logf("%s cal=%v: v=%.3f p=%.2f model=%s state=%s lowest forecast %.3f", at.In(seoul).Format("Mon 01-02 15:04"), cals != nil,
			ev.Value, ev.Probability, ev.Model, ev.State, lowest(ev))
		return ev
	}
	cals := []Calendar{cal}

	onHoliday := holiday.Add(14 * time.Hour)
	ev := eval(nil, onHoliday)
	require.Equal(t, StateBreached, ev.State, "without the calendar, the holiday is a breach")
	require.Less(t, lowest(ev), def.Target, "and is forecast to go on")
	ev = eval(cals, onHoliday)
	require.True(t, ev.Holiday)
	require.Equal(t, StateOK, ev.State, "on a holiday the KPI is not judged")
	require.Less(t, ev.Probability, 0.4)

	weekLater := holiday.Add(6*24*time.Hour + 20*time.Hour) // Wednesday evening; Thursday ahead
	without := eval(nil, weekLater)
	ev = eval(cals, weekLater)
	require.False(t, ev.Holiday)
	require.Equal(t, StateOK, ev.State)
	require.Less(t, ev.Probability, 0.05)
	require.Greater(t, lowest(ev), 0.975, "no holiday-shaped dip next Thursday")
	require.Greater(t, without.Probability, ev.Probability+0.1, "without the calendar, last Thursday's holiday weighs on next Thursday")

	beforeWeekend := holiday.Add(8*24*time.Hour + 18*time.Hour) // Friday evening: the weekend's low is its shape
	ev = eval(cals, beforeWeekend)
	require.Equal(t, StateOK, ev.State)
	require.Less(t, ev.Probability, 0.4)
	require.Equal(t, 7*24, ev.PeriodSteps, "weekly")
}

// lowest is the lowest mean forecast of an evaluation.
func lowest(ev *Evaluation) float64 {
	m := math.Inf(1)
	for _, p := range ev.Forecast {
		m = min(m, p.Mid)
	}
	return m
}

func TestCalendarFill(t *testing.T) {
	c := Calendar{Holidays: []string{"2026-11-19"}}
	require.NoError(t, c.Validate())
	day := time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)
	var ts []int64
	var y []float64
	for i := range 72 { // three days, hourly: the middle one a holiday
		ts = append(ts, day.Add(time.Duration(i)*time.Hour).UnixMilli())
		y = append(y, float64(i%24))
	}
	for i := 24; i < 48; i++ {
		y[i] = -1
	}
	require.Equal(t, 24, c.fill(ts, y, 24))
	for i, v := range y {
		require.Equal(t, float64(i%24), v, i)
	}
	// At the start, a later season stands in.
	y2 := append([]float64(nil), y...)
	for i := range 24 {
		y2[i+24] = -1
	}
	require.Equal(t, 24, c.fill(ts[24:], y2[24:], 24))
	require.Equal(t, y, y2)

	require.Error(t, (&Calendar{Timezone: "Mars/Olympus"}).Validate())
	require.Error(t, (&Calendar{Holidays: []string{"19.11.2026"}}).Validate())
	require.False(t, (*Calendar)(nil).Holiday(day))
	_, err := New(nil, nil, nil, nil, &Options{Calendars: []Calendar{{}, {Tenant: "default"}}})
	require.ErrorContains(t, err, "twice")
}

func TestCalendarWeekend(t *testing.T) {
	c := Calendar{Timezone: "Asia/Dubai", Weekend: []string{"Saturday", "sunday"}, Holidays: []string{"2026-12-02"}}
	require.NoError(t, c.Validate())
	dubai, _ := time.LoadLocation("Asia/Dubai")
	require.True(t, c.BusinessDay(time.Date(2026, 12, 1, 10, 0, 0, 0, dubai)))
	require.False(t, c.BusinessDay(time.Date(2026, 12, 2, 10, 0, 0, 0, dubai)), "a holiday")
	require.False(t, c.BusinessDay(time.Date(2026, 12, 5, 10, 0, 0, 0, dubai)), "Saturday")
	// 22:00 UTC on Friday is already Saturday in Dubai.
	require.False(t, c.BusinessDay(time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)))
	bad := Calendar{Weekend: []string{"Caturday"}}
	require.ErrorContains(t, bad.Validate(), "weekend day")
	var none *Calendar
	require.False(t, none.BusinessDay(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)), "Sunday, without a calendar")
}
