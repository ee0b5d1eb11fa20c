package main

import (
	"context"
	"encoding/json"
	"math"
	"net/url"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/storage"
)

// TestOTLPFromTheOpenTelemetrySDK: the OpenTelemetry Go SDK's OTLP/HTTP
// exporter pushes a counter, an up-down counter, a gauge, an
// explicit-bucket histogram and an exponential histogram into a live
// tsdb; the query API answers them with Prometheus 3's names and labels.
func TestOTLPFromTheOpenTelemetrySDK(t *testing.T) {
	bin := apptest.Build(t)
	dir := t.TempDir()
	srv := apptest.StartTSDB(t, bin, dir)
	ctx := context.Background()

	res := resource.NewSchemaless(
		attribute.String("service.name", "shop-api"),
		attribute.String("service.namespace", "shop"),
		attribute.String("service.instance.id", "pod-1"),
		attribute.String("deployment.environment", "test"),
	)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(reader),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "rpc.latency"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}},
		)),
	)
	defer func() { require.NoError(t, mp.Shutdown(ctx)) }()
	m := mp.Meter("shop")
	region := metric.WithAttributes(attribute.String("region", "eu"))

	orders, err := m.Int64Counter("orders.placed", metric.WithUnit("{order}"), metric.WithDescription("Orders placed."))
	require.NoError(t, err)
	orders.Add(ctx, 5, region)
	orders.Add(ctx, 2, region)
	queue, err := m.Int64UpDownCounter("queue.depth", metric.WithUnit("{item}"))
	require.NoError(t, err)
	queue.Add(ctx, 10)
	queue.Add(ctx, -3)
	temp, err := m.Float64Gauge("cpu.temperature", metric.WithUnit("Cel"))
	require.NoError(t, err)
	temp.Record(ctx, 61.5)
	dur, err := m.Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.1, 0.5, 1))
	require.NoError(t, err)
	for _, v := range []float64{0.05, 0.3, 0.7, 2} {
		dur.Record(ctx, v)
	}
	lat, err := m.Float64Histogram("rpc.latency", metric.WithUnit("ms"))
	require.NoError(t, err)
	for _, v := range []float64{1, 2, 4, 8, 100} {
		lat.Record(ctx, v)
	}

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	for _, compress := range []otlpmetrichttp.Compression{otlpmetrichttp.NoCompression, otlpmetrichttp.GzipCompression} {
		exp, err := otlpmetrichttp.New(ctx,
			otlpmetrichttp.WithEndpointURL(srv.URL()+"/api/v1/otlp/v1/metrics"),
			otlpmetrichttp.WithCompression(compress))
		require.NoError(t, err)
		require.NoError(t, exp.Export(ctx, &rm), "the exporter takes the answer as a success")
		require.NoError(t, exp.Shutdown(ctx))
	}

	query := func(q string) []sample {
		t.Helper()
		code, body := srv.Get(t, "/api/v1/query?query="+url.QueryEscape(q))
		require.Equal(t, 200, code, body)
		var r struct {
			Data struct {
				Result []sample `json:"result"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &r), body)
		return r.Data.Result
	}
	one := func(q string) sample {
		t.Helper()
		r := query(q)
		require.Len(t, r, 1, q)
		return r[0]
	}
	who := map[string]string{"job": "shop/shop-api", "instance": "pod-1"}
	with := func(name string, more ...string) map[string]string {
		l := map[string]string{"__name__": name}
		for k, v := range who {
			l[k] = v
		}
		for i := 0; i+1 < len(more); i += 2 {
			l[more[i]] = more[i+1]
		}
		return l
	}

	s := one("orders_placed_total")
	require.Equal(t, with("orders_placed_total", "region", "eu"), s.Metric)
	require.Equal(t, "7", s.value())
	s = one("queue_depth")
	require.Equal(t, with("queue_depth"), s.Metric, "a non-monotonic sum is a gauge: no _total")
	require.Equal(t, "7", s.value())
	s = one("cpu_temperature_celsius")
	require.Equal(t, "61.5", s.value())
	require.Equal(t, "2", one(`http_server_request_duration_seconds_bucket{le="0.5"}`).value())
	require.Equal(t, "4", one(`http_server_request_duration_seconds_bucket{le="+Inf"}`).value())
	require.Equal(t, "4", one("http_server_request_duration_seconds_count").value())
	require.Equal(t, "3.05", one("http_server_request_duration_seconds_sum").value())
	s = one("target_info")
	require.Equal(t, with("target_info", "deployment_environment", "test"), s.Metric)
	require.Len(t, query(`{__name__=~"http_server_request_duration_seconds_bucket"}`), 4)

	// The exponential histogram is a native histogram: in the query API's
	// JSON (as Prometheus writes it for Grafana's heatmaps), to PromQL,
	// and in storage.
	code, body := srv.Get(t, "/api/v1/query?query=rpc_latency_milliseconds")
	require.Equal(t, 200, code, body)
	var hr struct {
		Data struct {
			Result []struct {
				Histogram [2]json.RawMessage `json:"histogram"`
			} `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &hr), body)
	require.Len(t, hr.Data.Result, 1, body)
	var h struct {
		Count   string  `json:"count"`
		Sum     string  `json:"sum"`
		Buckets [][]any `json:"buckets"`
	}
	require.NoError(t, json.Unmarshal(hr.Data.Result[0].Histogram[1], &h), body)
	require.Equal(t, "5", h.Count)
	require.Equal(t, "115", h.Sum)
	require.Len(t, h.Buckets, 5, "five populated buckets: %s", body)
	require.Equal(t, "5", one("histogram_count(rpc_latency_milliseconds)").value())
	require.Equal(t, "115", one("histogram_sum(rpc_latency_milliseconds)").value())
	s = one("rpc_latency_milliseconds")
	require.Equal(t, with("rpc_latency_milliseconds"), s.Metric)
	srv.Stop(t)
	db, err := storage.Open(dir, nil)
	require.NoError(t, err)
	defer db.Close()
	q, err := db.Querier(ctx, "default", 0, math.MaxInt64/2)
	require.NoError(t, err)
	defer q.Close()
	ss := q.Select(ctx, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "rpc_latency_milliseconds"))
	require.True(t, ss.Next())
	it, ok := ss.At().Iterator(nil).(storage.HistogramIterator)
	require.True(t, ok, "the series' iterator reads histograms")
	n := 0
	for it.Next() {
		h := it.AtHistogram()
		require.NotNil(t, h, "a histogram sample, not a float")
		require.Equal(t, 5.0, h.Count)
		require.Equal(t, 115.0, h.Sum)
		// 160 buckets cover 1..100 (a ratio of 2^6.6) at scale 4, not 5.
		require.Equal(t, int32(4), h.Schema)
		total, nonEmpty := 0.0, 0
		for bi := h.PositiveBucketIterator(); bi.Next(); {
			b := bi.At()
			total += b.Count
			if b.Count > 0 {
				nonEmpty++
				require.LessOrEqual(t, b.Lower, 100.0)
				require.GreaterOrEqual(t, b.Upper, 1.0)
			}
		}
		require.Equal(t, 5.0, total)
		require.Equal(t, 5, nonEmpty, "the five observations, a bucket each")
		n++
	}
	require.NoError(t, it.Err())
	require.Equal(t, 1, n, "one sample: the second export had the same timestamp")
	require.False(t, ss.Next())
	require.NoError(t, ss.Err())
}

// sample is one element of an instant query's result.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

func (s sample) value() string {
	if len(s.Value) != 2 {
		return ""
	}
	v, _ := s.Value[1].(string)
	return v
}
