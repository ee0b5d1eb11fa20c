package kpi

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/query"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// A KPI whose evaluations fail says why, since when and how often (the
// console showed "not evaluated yet"), and the log says it once, not at
// every evaluation; once an evaluation works, the failure is gone.
func TestFailingKPISaysWhy(t *testing.T) {
	db := st.Open(t, nil)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	def := Definition{Name: "orders", Expr: "orders_ratio", Target: 0.5, Direction: "above", Interval: time.Minute,
		Step: time.Minute, Horizon: 10 * time.Minute, History: time.Hour, Seasonality: "none"}
	eng, err := New([]Definition{def}, query.NewEngine(db, nil), db, nil,
		&Options{Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	ctx := context.Background()

	require.Nil(t, eng.Failing("default", "orders"), "none ran yet")
	start := now
	for range 3 {
		_, err := eng.Evaluate(ctx, "default", "orders")
		require.Error(t, err)
		now = now.Add(time.Minute)
	}
	f := eng.Failing("default", "orders")
	require.NotNil(t, f)
	require.Equal(t, 3, f.Count)
	require.Equal(t, start, f.Since)
	require.Contains(t, f.Error, "no data")
	require.Equal(t, 1, strings.Count(logs.String(), "kpi evaluation failed"), logs.String())
	list := eng.Definitions("default")
	require.Equal(t, f, list[0]["failure"])

	b := make([]float64, 0, 240)
	for i := range 120 {
		b = append(b, float64(now.Add(-time.Duration(119-i)*time.Minute).UnixMilli()), 0.9)
	}
	st.Write(t, db, "default", st.Series(labels.FromStrings("__name__", "orders_ratio"), b...))
	_, err = eng.Evaluate(ctx, "default", "orders")
	require.NoError(t, err)
	require.Nil(t, eng.Failing("default", "orders"))
	require.Contains(t, logs.String(), "kpi evaluations work again")
}
