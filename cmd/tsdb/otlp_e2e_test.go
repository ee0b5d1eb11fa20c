package main

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestOTLPFromTheOpenTelemetrySDK: the OpenTelemetry Go SDK's OTLP/HTTP
// exporter pushes a counter, an up-down counter, a gauge, an
// explicit-bucket histogram and an exponential histogram into a live
// tsdb; the query API answers them with Prometheus 3's names and labels.
func TestOTLPFromTheOpenTelemetrySDK(t *testing.T) {
	bin := apptest.Build(t)
	srv := apptest.StartTSDB(t, bin, t.TempDir())
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

	// The exponential histogram is a native histogram.
	s = one("rpc_latency_milliseconds")
	require.Equal(t, with("rpc_latency_milliseconds"), s.Metric)
	require.NotNil(t, s.Histogram, "a native histogram: %+v", s)
	require.Equal(t, "5", s.Histogram[1].Count)
	require.Equal(t, "115", s.Histogram[1].Sum)
	require.Equal(t, "5", one("histogram_count(rpc_latency_milliseconds)").value())
}

// sample is one element of an instant query's result.
type sample struct {
	Metric    map[string]string `json:"metric"`
	Value     []any             `json:"value"`
	Histogram []histogramJSON   `json:"histogram"`
}

func (s sample) value() string {
	if len(s.Value) != 2 {
		return ""
	}
	v, _ := s.Value[1].(string)
	return v
}

// histogramJSON decodes [ts, {count, sum, buckets}] element by element.
type histogramJSON struct {
	Count string `json:"count"`
	Sum   string `json:"sum"`
}

func (h *histogramJSON) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '{' {
		return nil // the timestamp
	}
	type plain histogramJSON
	return json.Unmarshal(b, (*plain)(h))
}
