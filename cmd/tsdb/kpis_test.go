package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
)

// TestKPIsBacktest: `tsdb kpis backtest` replays a configured KPI over a
// data folder — a checkout success ratio that drifts below its target —
// and reports the warning, the breach it foretold and how early; the
// text form says the same for people.
func TestKPIsBacktest(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	db, err := storage.Open(data, nil)
	require.NoError(t, err)
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var smp []storage.Sample
	for at := t0.Add(-48 * time.Hour); !at.After(t0.Add(6 * time.Hour)); at = at.Add(time.Minute) {
		v := 0.99 + 0.001*math.Sin(float64(at.Unix())/977)
		if d := at.Sub(t0); d > 0 {
			v -= 0.01 * d.Hours() // crosses 0.95 four hours after t0
		}
		smp = append(smp, storage.Sample{T: at.UnixMilli(), V: v})
	}
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "orders_ok_ratio", "service", "checkout"), smp...)
	require.NoError(t, db.Write(context.Background(), "default", &b))
	require.NoError(t, db.Close())
	cfg := filepath.Join(dir, "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
kpis:
  - {name: checkout_success, expr: 'orders_ok_ratio{service="checkout"}', target: 0.95, direction: above,
     interval: 15m, horizon: 6h, step: 5m, history: 1d, seasonality: none}
`), 0o644))
	from, to := strconv.FormatInt(t0.Add(-12*time.Hour).Unix(), 10), strconv.FormatInt(t0.Add(6*time.Hour).Unix(), 10)
	var out bytes.Buffer
	require.NoError(t, kpisBacktest([]string{"--config.file", cfg, "--data", data, "--kpi", "checkout_success", "--from", from, "--to", to, "--json"}, &out))
	var rep struct {
		Evaluations int `json:"evaluations"`
		Warnings    []struct {
			Breach *time.Time    `json:"breach"`
			Lead   time.Duration `json:"lead"`
			False  bool          `json:"false"`
		} `json:"warnings"`
		Breaches []time.Time `json:"breaches"`
		Missed   []time.Time `json:"missed"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	require.Equal(t, 73, rep.Evaluations)
	require.Len(t, rep.Breaches, 1)
	require.Empty(t, rep.Missed)
	require.Len(t, rep.Warnings, 1)
	require.False(t, rep.Warnings[0].False)
	require.GreaterOrEqual(t, rep.Warnings[0].Lead, time.Hour, "warned at least an hour ahead")

	out.Reset()
	require.NoError(t, kpisBacktest([]string{"--config.file", cfg, "--data", data, "--kpi", "checkout_success", "--from", from, "--to", to}, &out))
	require.Contains(t, out.String(), "warnings 1 (false 0), breaches 1 (missed 0)")
	require.Contains(t, out.String(), "ahead")
	t.Log(out.String())

	require.ErrorContains(t, kpisBacktest([]string{"--config.file", cfg, "--data", data, "--kpi", "nope"}, &out), `no KPI "nope"`)
}
