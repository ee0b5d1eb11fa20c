package web

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// A range query answered from a downsampled tier says so in the data
// ("tier") and in X-Tsdb-Tier; a raw answer only in the header.
func TestQueryRangeSaysWhichTierAnswered(t *testing.T) {
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	db := st.Open(t, &storage.Options{Now: func() time.Time { return now },
		Tiers: []storage.Tier{{Resolution: time.Hour}}})
	var smp []storage.Sample
	for ts := now.Add(-72 * time.Hour).UnixMilli(); ts <= now.UnixMilli(); ts += 60_000 {
		smp = append(smp, storage.Sample{T: ts, V: float64(ts / 60_000 % 100)})
	}
	st.Write(t, db, "default", storage.SeriesSamples{Labels: labels.FromStrings("__name__", "g"), Samples: smp})
	require.NoError(t, db.BuildTiers(context.Background()))
	a := New(Deps{Reader: db, Engine: query.NewEngine(db, nil), Now: func() time.Time { return now }, Version: "test"})

	get := func(q, step string) (string, string, json.RawMessage) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("GET")
		params := url.Values{"query": {q}, "step": {step},
			"start": {strconv.FormatInt(now.Add(-48*time.Hour).Unix(), 10)}, "end": {strconv.FormatInt(now.Unix(), 10)}}
		ctx.Request.SetRequestURI("/api/v1/query_range?" + params.Encode())
		a.Handler(&ctx)
		require.Equal(t, 200, ctx.Response.StatusCode(), string(ctx.Response.Body()))
		var env envelope
		require.NoError(t, json.Unmarshal(ctx.Response.Body(), &env))
		return string(ctx.Response.Header.Peek("X-Tsdb-Tier")), string(ctx.Response.Header.Peek("X-Tsdb-Samples-Read")), env.Data
	}
	tier, read, data := get(`avg_over_time(g[1h])`, "3600")
	require.Equal(t, "1h", tier)
	require.Equal(t, "49", read) // one bucket per hour, both ends included
	var d struct {
		Tier string `json:"tier"`
	}
	require.NoError(t, json.Unmarshal(data, &d))
	require.Equal(t, "1h", d.Tier)

	tier, read, data = get(`quantile_over_time(0.9, g[1h])`, "3600")
	require.Equal(t, "raw", tier)
	require.Equal(t, strconv.Itoa(49*60), read) // the first window reaches back 1h
	require.NotContains(t, string(data), `"tier"`)
}
