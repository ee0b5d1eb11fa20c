package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func TestRulesReplay(t *testing.T) {
	data := t.TempDir()
	db := st.OpenDir(t, data, nil)
	t0 := time.Unix(1_700_000_000, 0).Truncate(time.Minute)
	var b storage.Batch
	var smp []storage.Sample
	for m := 0; m <= 120; m++ {
		v := 1.0
		if m >= 30 && m < 50 {
			v = 10 // a 20-minute spike
		}
		smp = append(smp, storage.Sample{T: t0.Add(time.Duration(m) * time.Minute).UnixMilli(), V: v})
	}
	b.Add(labels.FromStrings("__name__", "load", "host", "a"), smp...)
	require.NoError(t, db.Write(context.Background(), "default", &b))
	require.NoError(t, db.Close())

	rules := filepath.Join(t.TempDir(), "r.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`
groups:
  - name: r
    interval: 1m
    rules:
      - record: load:max
        expr: max(load)
      - alert: LoadHigh
        expr: load:max > 5
        for: 5m
`), 0o644))
	args := []string{"--rules", rules, "--data", data, "--from", strconv.FormatInt(t0.Unix(), 10), "--to", strconv.FormatInt(t0.Add(2*time.Hour).Unix(), 10)}
	var out bytes.Buffer
	require.NoError(t, replay(append(args, "--dry-run"), &out))
	require.Contains(t, out.String(), "LoadHigh: would have fired 1 times for 15m0s", out.String())

	db = st.OpenDir(t, data, nil)
	require.Empty(t, st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "load:max")), "a dry run writes nothing")
	require.NoError(t, db.Close())

	out.Reset()
	require.NoError(t, replay(args, &out))
	require.Contains(t, out.String(), "rule evaluations/s")
	db = st.OpenDir(t, data, nil)
	require.Len(t, st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "load:max"))[`{__name__="load:max"}`], 121)
	firing := st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("alertstate", "firing"))
	require.Len(t, firing, 1)
	n := 0
	for _, s := range firing[`{__name__="ALERTS", alertname="LoadHigh", alertstate="firing"}`] {
		if !storage.IsStaleNaN(s.V) {
			n++
		}
	}
	require.Equal(t, 15, n, "firing from minute 35 to 49")
}
