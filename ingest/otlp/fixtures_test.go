package otlp

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// t0 is the time of the test points.
var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// ts is t0 plus ms milliseconds, as an OTLP timestamp.
func ts(ms int64) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(t0.Add(time.Duration(ms) * time.Millisecond))
}

// t0ms is t0 plus ms, in milliseconds since the epoch.
func t0ms(ms int64) int64 { return t0.UnixMilli() + ms }

// resource adds a resource with the service attributes given (empty ones
// left out) and more attribute pairs, and returns its scope "lib" 1.2.
func resource(md pmetric.Metrics, name, namespace, instance string, attrs ...string) pmetric.ScopeMetrics {
	rm := md.ResourceMetrics().AppendEmpty()
	a := rm.Resource().Attributes()
	if name != "" {
		a.PutStr("service.name", name)
	}
	if namespace != "" {
		a.PutStr("service.namespace", namespace)
	}
	if instance != "" {
		a.PutStr("service.instance.id", instance)
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		a.PutStr(attrs[i], attrs[i+1])
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("lib")
	sm.Scope().SetVersion("1.2")
	sm.Scope().Attributes().PutStr("lib.attr", "x")
	sm.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	return sm
}

func traceID(b byte) pcommon.TraceID {
	var id pcommon.TraceID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func spanID(b byte) pcommon.SpanID {
	var id pcommon.SpanID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func addExemplar(exs pmetric.ExemplarSlice, v float64, ms int64, id byte, attrs ...string) {
	e := exs.AppendEmpty()
	e.SetDoubleValue(v)
	e.SetTimestamp(ts(ms))
	e.SetTraceID(traceID(id))
	e.SetSpanID(spanID(id))
	for i := 0; i+1 < len(attrs); i += 2 {
		e.FilteredAttributes().PutStr(attrs[i], attrs[i+1])
	}
}

// everyType is a request with a point of every metric type, with
// attributes, exemplars and resource attributes.
func everyType() pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := resource(md, "checkout", "shop", "pod-7", "host.name", "node-1", "deployment.environment", "prod", "k8s.pod.uid", "abc")

	m := sm.Metrics().AppendEmpty()
	m.SetName("queue.length")
	m.SetDescription("Items waiting.")
	m.SetUnit("{item}")
	g := m.SetEmptyGauge().DataPoints().AppendEmpty()
	g.SetTimestamp(ts(1000))
	g.SetIntValue(42)
	g.Attributes().PutStr("queue", "orders")
	g.Attributes().PutInt("shard", 3)
	addExemplar(g.Exemplars(), 42, 900, 1) // Prometheus drops a gauge's exemplars

	m = sm.Metrics().AppendEmpty()
	m.SetName("http.server.requests")
	m.SetDescription("Requests served.")
	m.SetUnit("1")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p := sum.DataPoints().AppendEmpty()
	p.SetStartTimestamp(ts(-60_000))
	p.SetTimestamp(ts(1000))
	p.SetDoubleValue(1234.5)
	p.Attributes().PutStr("http.method", "GET")
	p.Attributes().PutStr("http.status_code", "200")
	addExemplar(p.Exemplars(), 1, 950, 10, "user", "ann")
	addExemplar(p.Exemplars(), 2, 800, 20)

	m = sm.Metrics().AppendEmpty()
	m.SetName("memory.usage")
	m.SetUnit("By")
	nm := m.SetEmptySum()
	nm.SetIsMonotonic(false)
	nm.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p = nm.DataPoints().AppendEmpty()
	p.SetTimestamp(ts(1000))
	p.SetIntValue(-17)

	m = sm.Metrics().AppendEmpty()
	m.SetName("http.server.duration")
	m.SetDescription("Request latency.")
	m.SetUnit("ms")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := h.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts(1000))
	hp.SetCount(10)
	hp.SetSum(1234)
	hp.ExplicitBounds().FromRaw([]float64{5, 10, 50, 100, 500})
	hp.BucketCounts().FromRaw([]uint64{0, 1, 4, 0, 3, 2})
	hp.Attributes().PutStr("route", "/cart")
	addExemplar(hp.Exemplars(), 7, 990, 30)
	addExemplar(hp.Exemplars(), 420, 980, 40)
	addExemplar(hp.Exemplars(), 9000, 970, 50)
	hp = h.DataPoints().AppendEmpty() // without sum
	hp.SetTimestamp(ts(2000))
	hp.SetCount(3)
	hp.ExplicitBounds().FromRaw([]float64{0.25})
	hp.BucketCounts().FromRaw([]uint64{1, 2})
	hp.Attributes().PutStr("route", "/pay")

	m = sm.Metrics().AppendEmpty()
	m.SetName("rpc.latency")
	m.SetUnit("s")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(ts(1500))
	ep.SetScale(2)
	ep.SetCount(9)
	ep.SetSum(3.75)
	ep.SetZeroCount(1)
	ep.Positive().SetOffset(-2)
	ep.Positive().BucketCounts().FromRaw([]uint64{2, 0, 3, 0, 0, 0, 1})
	ep.Negative().SetOffset(0)
	ep.Negative().BucketCounts().FromRaw([]uint64{2})
	addExemplar(ep.Exemplars(), 0.5, 1400, 60)

	m = sm.Metrics().AppendEmpty()
	m.SetName("gc.pause")
	m.SetUnit("us")
	m.SetDescription("GC pauses.")
	sp := m.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetTimestamp(ts(1000))
	sp.SetCount(100)
	sp.SetSum(5000)
	for _, q := range [][2]float64{{0, 1}, {0.5, 40}, {0.99, 310}, {1, 400}} {
		qv := sp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q[0])
		qv.SetValue(q[1])
	}
	return md
}

// namesAndUnits has the name and unit cases of the translation.
func namesAndUnits() pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := resource(md, "svc", "", "", "host.name", "h")
	add := func(name, unit string, monotonic bool) {
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		m.SetUnit(unit)
		if monotonic {
			s := m.SetEmptySum()
			s.SetIsMonotonic(true)
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			p := s.DataPoints().AppendEmpty()
			p.SetTimestamp(ts(1000))
			p.SetDoubleValue(1)
			p.Attributes().PutStr("_private", "a")
			p.Attributes().PutStr("2xx", "b")
			p.Attributes().PutStr("a.b", "c")
			p.Attributes().PutStr("a_b", "d")
			p.Attributes().PutStr("weird__name", "e")
			p.Attributes().PutStr("ünïcode", "f")
			return
		}
		p := m.SetEmptyGauge().DataPoints().AppendEmpty()
		p.SetTimestamp(ts(1000))
		p.SetDoubleValue(2)
	}
	add("system.cpu.time", "s", true)
	add("bytes_sent", "By", true)
	add("requests_total", "", true)
	add("cpu.utilization", "1", false)
	add("disk.io", "By/s", false)
	add("net.packets", "{packets}", true)
	add("latency", "ms", false)
	add("temp", "Cel", false)
	add("mem.free", "MiBy", false)
	add("speed", "m/s", false)
	add("weird-name.with/chars", "KiBy", false)
	add("3d.points", "", false)
	add("ratio.already_ratio", "1", false)
	add("ünïcode.metric", "", false)
	add("foo_seconds", "s", false)
	return md
}

// stalePoints are points flagged NoRecordedValue, of every type.
func stalePoints() pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := resource(md, "svc", "", "i", "host.name", "h")
	stale := pmetric.DefaultDataPointFlags.WithNoRecordedValue(true)

	m := sm.Metrics().AppendEmpty()
	m.SetName("g")
	g := m.SetEmptyGauge().DataPoints().AppendEmpty()
	g.SetTimestamp(ts(1000))
	g.SetFlags(stale)

	m = sm.Metrics().AppendEmpty()
	m.SetName("c")
	s := m.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p := s.DataPoints().AppendEmpty()
	p.SetTimestamp(ts(1000))
	p.SetFlags(stale)

	m = sm.Metrics().AppendEmpty()
	m.SetName("h")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := h.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts(1000))
	hp.SetFlags(stale)
	hp.SetSum(0)
	hp.ExplicitBounds().FromRaw([]float64{1, 2})
	hp.BucketCounts().FromRaw([]uint64{0, 0, 0})

	m = sm.Metrics().AppendEmpty()
	m.SetName("e")
	eh := m.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(ts(1000))
	ep.SetScale(3)
	ep.SetFlags(stale)

	m = sm.Metrics().AppendEmpty()
	m.SetName("s")
	sp := m.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetTimestamp(ts(1000))
	sp.SetFlags(stale)
	sp.QuantileValues().AppendEmpty().SetQuantile(0.5)
	return md
}

// twoResources has two resources, one without service attributes (no
// job, instance or target_info), one whose points span 10 minutes
// (target_info every 2.5 minutes).
func twoResources() pmetric.Metrics {
	md := pmetric.NewMetrics()
	sm := resource(md, "", "", "", "host.name", "anon")
	m := sm.Metrics().AppendEmpty()
	m.SetName("up")
	p := m.SetEmptyGauge().DataPoints().AppendEmpty()
	p.SetTimestamp(ts(0))
	p.SetDoubleValue(1)

	sm = resource(md, "api", "", "", "cloud.region", "eu")
	m = sm.Metrics().AppendEmpty()
	m.SetName("up")
	gauge := m.SetEmptyGauge()
	for _, ms := range []int64{0, 300_000, 600_000} {
		p := gauge.DataPoints().AppendEmpty()
		p.SetTimestamp(ts(ms))
		p.SetDoubleValue(1)
	}
	return md
}
