package otlp

import (
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/emsdb/tsdb/storage"
)

// The resource attributes that make job and instance (OpenTelemetry
// semantic conventions).
const (
	attrServiceName       = "service.name"
	attrServiceNamespace  = "service.namespace"
	attrServiceInstanceID = "service.instance.id"
)

const (
	targetInfo = "target_info"
	// targetInfoStep is the spacing of target_info samples between a
	// resource's earliest and latest point: half of the default lookback
	// delta, as Prometheus, so that target_info is found for the whole
	// span of the request.
	targetInfoStep = int64(150_000)
	// maxTargetInfoSamples caps the target_info samples of one resource:
	// a request whose points span years would otherwise make millions.
	// The latest ones are kept.
	maxTargetInfoSamples = 48
	// maxExemplarRunes caps an exemplar's labels, as OpenMetrics says: the
	// filtered attributes are left out beyond it.
	maxExemplarRunes = 128
	// maxMessages is how many rejections the partial_success message names.
	maxMessages = 8
)

// Result is what a translation made and refused.
type Result struct {
	Samples, Histograms, Exemplars int
	// Rejected is the number of OTLP data points left out; Messages names
	// the first reasons.
	Rejected int64
	Messages []string
}

// Message is the partial_success error message: the first reasons, and
// how many more there were.
func (r *Result) Message() string {
	if r.Rejected == 0 {
		return ""
	}
	msg := fmt.Sprintf("%d data points rejected: ", r.Rejected)
	for i, m := range r.Messages {
		if i > 0 {
			msg += "; "
		}
		msg += m
	}
	if r.Rejected > int64(len(r.Messages)) && len(r.Messages) == maxMessages {
		msg += "; …"
	}
	return msg
}

func (r *Result) reject(points int, format string, args ...any) {
	r.Rejected += int64(points)
	msg := fmt.Sprintf(format, args...)
	if len(r.Messages) < maxMessages && !slices.Contains(r.Messages, msg) {
		r.Messages = append(r.Messages, msg)
	}
}

// Translator turns OTLP metrics into a storage.Batch as Prometheus 3's
// OTLP endpoint does. It is not safe for concurrent use; the Handler
// keeps one per request.
type Translator struct {
	cfg        Config
	metrics    otlptranslator.MetricNamer
	labelNamer otlptranslator.LabelNamer
	units      otlptranslator.UnitNamer
	promote    map[string]bool
	utf8       bool

	// Reserve, when set, is told the bytes the batch grows by as it is
	// built; an error stops the translation and is returned.
	Reserve func(n int64) error

	b       *storage.Batch
	res     Result
	pending int64 // bytes not yet passed to Reserve
	sb      labels.ScratchBuilder
	lb      *labels.Builder
	names   map[string]string // attribute name -> label name
	meta    map[string]bool   // metric families with metadata in b

	// Per resource and scope.
	job, instance string
	promoted      labels.Labels
	scope         labels.Labels // otel_scope_* labels, empty unless promoted
}

// NewTranslator returns a Translator for cfg, which must be valid.
func NewTranslator(cfg Config) *Translator {
	t := &Translator{
		cfg:     cfg,
		metrics: otlptranslator.NewMetricNamer("", cfg.TranslationStrategy),
		utf8:    !cfg.TranslationStrategy.ShouldEscape(),
		lb:      labels.NewBuilder(labels.EmptyLabels()),
		sb:      labels.NewScratchBuilder(16),
	}
	t.labelNamer = otlptranslator.LabelNamer{
		UTF8Allowed: t.utf8,
		//lint:ignore SA1019 Prometheus 3 still sets it from its config key, as here.
		UnderscoreLabelSanitization: cfg.LabelNameUnderscoreSanitization,
		PreserveMultipleUnderscores: cfg.LabelNamePreserveMultipleUnderscores,
	}
	attrs := cfg.PromoteResourceAttributes
	if cfg.PromoteAllResourceAttributes {
		attrs = cfg.IgnoreResourceAttributes
	}
	t.promote = make(map[string]bool, len(attrs))
	for _, a := range attrs {
		t.promote[a] = true
	}
	return t
}

// errBudget wraps an error of Reserve, to tell it from a refused point.
type errBudget struct{ err error }

func (e errBudget) Error() string { return e.err.Error() }
func (e errBudget) Unwrap() error { return e.err }

// Translate appends md's series, exemplars and metadata to b. Points it
// cannot take are counted in the Result with a reason; the error is
// Reserve's, and then b is incomplete.
func (t *Translator) Translate(md pmetric.Metrics, b *storage.Batch) (Result, error) {
	t.b, t.res, t.pending = b, Result{}, 0
	t.names = make(map[string]string)
	t.meta = make(map[string]bool)
	defer func() { t.b = nil }()
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		if err := t.resource(rms.At(i)); err != nil {
			return t.res, err
		}
	}
	if err := t.flush(); err != nil {
		return t.res, err
	}
	return t.res, nil
}

// grow accounts for n more bytes of batch, passing them to Reserve in
// steps of 64 KiB.
func (t *Translator) grow(n int64) error {
	t.pending += n
	if t.pending < 64<<10 {
		return nil
	}
	return t.flush()
}

func (t *Translator) flush() error {
	if t.Reserve == nil || t.pending == 0 {
		t.pending = 0
		return nil
	}
	n := t.pending
	t.pending = 0
	if err := t.Reserve(n); err != nil {
		return errBudget{err}
	}
	return nil
}

// Memory a series of the batch takes beyond its labels' bytes (entry,
// labels header, storage's write item), and a sample, histogram bucket and
// exemplar: an estimate rounded up, as the other ingest handlers.
const (
	seriesBytes    = 640
	sampleBytes    = 64
	bucketBytes    = 24
	exemplarBytes  = 256
	histogramBytes = 256
)

func (t *Translator) labelName(attr string) (string, error) {
	if n, ok := t.names[attr]; ok {
		return n, nil
	}
	n, err := t.labelNamer.Build(attr)
	if err != nil {
		return "", err
	}
	if len(t.names) < 4096 {
		t.names[attr] = n
	}
	return n, nil
}

func (t *Translator) resource(rm pmetric.ResourceMetrics) error {
	attrs := rm.Resource().Attributes()
	t.job, t.instance = "", ""
	if v, ok := attrs.Get(attrServiceName); ok {
		t.job = v.AsString()
		if ns, ok := attrs.Get(attrServiceNamespace); ok {
			t.job = ns.AsString() + "/" + t.job
		}
	}
	if v, ok := attrs.Get(attrServiceInstanceID); ok {
		t.instance = v.AsString()
	}
	t.lb.Reset(labels.EmptyLabels())
	var err error
	attrs.Range(func(k string, v pcommon.Value) bool {
		if t.promote[k] == t.cfg.PromoteAllResourceAttributes {
			return true
		}
		var name string
		if name, err = t.labelName(k); err != nil {
			err = fmt.Errorf("resource attribute %q: %w", k, err)
			return false
		}
		t.lb.Set(name, v.AsString())
		return true
	})
	sms := rm.ScopeMetrics()
	if err != nil {
		t.res.reject(countPoints(rm), "%v", err)
		return nil
	}
	t.promoted = t.lb.Labels()

	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for j := range sms.Len() {
		sm := sms.At(j)
		if err := t.setScope(sm); err != nil {
			t.res.reject(countScopePoints(sm), "scope %q: %v", sm.Scope().Name(), err)
			continue
		}
		ms := sm.Metrics()
		for k := range ms.Len() {
			m := ms.At(k)
			lo, hi := timeSpan(m)
			first, last = min(first, lo), max(last, hi)
			if err := t.metric(m); err != nil {
				return err
			}
		}
	}
	if first <= last {
		return t.targetInfo(attrs, first, last)
	}
	return nil
}

func (t *Translator) setScope(sm pmetric.ScopeMetrics) error {
	t.scope = labels.EmptyLabels()
	s := sm.Scope()
	if !t.cfg.PromoteScopeMetadata || s.Name() == "" {
		return nil
	}
	t.lb.Reset(labels.EmptyLabels())
	var err error
	s.Attributes().Range(func(k string, v pcommon.Value) bool {
		var name string
		if name, err = t.labelName("otel_scope_" + k); err != nil {
			return false
		}
		t.lb.Set(name, v.AsString())
		return true
	})
	if err != nil {
		return err
	}
	t.lb.Set("otel_scope_name", s.Name())
	t.lb.Set("otel_scope_version", s.Version())
	t.lb.Set("otel_scope_schema_url", sm.SchemaUrl())
	t.scope = t.lb.Labels()
	return nil
}

// attributes returns the labels of a point: its attributes with names
// translated (values of colliding names joined by ";"), the promoted
// resource attributes, job, instance and the scope labels, then extras
// (name, value pairs; a name of the form __x__ is kept as it is).
func (t *Translator) attributes(attrs pcommon.Map, ignore []string, extras ...string) (labels.Labels, error) {
	t.sb.Reset()
	attrs.Range(func(k string, v pcommon.Value) bool {
		if !slices.Contains(ignore, k) {
			t.sb.Add(k, v.AsString())
		}
		return true
	})
	t.sb.Sort()
	sorted := t.sb.Labels()
	if t.utf8 {
		t.lb.Reset(sorted)
	} else {
		t.lb.Reset(labels.EmptyLabels())
		var err error
		sorted.Range(func(l labels.Label) {
			if err != nil {
				return
			}
			var name string
			if name, err = t.labelName(l.Name); err != nil {
				err = fmt.Errorf("attribute %q: %w", l.Name, err)
				return
			}
			if old := t.lb.Get(name); old != "" {
				t.lb.Set(name, old+";"+l.Value)
			} else {
				t.lb.Set(name, l.Value)
			}
		})
		if err != nil {
			return labels.EmptyLabels(), err
		}
	}
	t.promoted.Range(func(l labels.Label) {
		if t.lb.Get(l.Name) == "" {
			t.lb.Set(l.Name, l.Value)
		}
	})
	if t.job != "" {
		t.lb.Set(model.JobLabel, t.job)
	}
	if t.instance != "" {
		t.lb.Set(model.InstanceLabel, t.instance)
	}
	t.scope.Range(func(l labels.Label) { t.lb.Set(l.Name, l.Value) })
	for i := 0; i+1 < len(extras); i += 2 {
		name := extras[i]
		if len(name) <= 4 || name[:2] != "__" || name[len(name)-2:] != "__" {
			var err error
			if name, err = t.labelName(name); err != nil {
				return labels.EmptyLabels(), err
			}
		}
		t.lb.Set(name, extras[i+1])
	}
	ls := t.lb.Labels()
	var err error
	ls.Range(func(l labels.Label) {
		if err == nil && !utf8.ValidString(l.Value) {
			err = fmt.Errorf("the value of label %q is not valid UTF-8", l.Name)
		}
	})
	return ls, err
}

// withName returns base with __name__ and the extra pairs set.
func (t *Translator) withName(base labels.Labels, name string, extras ...string) labels.Labels {
	t.lb.Reset(base)
	for i := 0; i+1 < len(extras); i += 2 {
		t.lb.Set(extras[i], extras[i+1])
	}
	t.lb.Set(model.MetricNameLabel, name)
	return t.lb.Labels()
}

// add appends one series to the batch.
func (t *Translator) add(s storage.SeriesSamples) error {
	n := int64(seriesBytes + len(s.Samples)*sampleBytes + len(s.Exemplars)*exemplarBytes)
	n += int64(s.Labels.ByteSize())
	for _, h := range s.Histograms {
		n += histogramBytes + int64(len(h.H.PositiveBuckets)+len(h.H.NegativeBuckets)+len(h.H.CustomValues))*bucketBytes
	}
	for _, e := range s.Exemplars {
		n += int64(e.Labels.ByteSize())
	}
	t.b.Series = append(t.b.Series, s)
	t.res.Samples += len(s.Samples)
	t.res.Histograms += len(s.Histograms)
	t.res.Exemplars += len(s.Exemplars)
	return t.grow(n)
}

func (t *Translator) addFloat(ls labels.Labels, ts int64, v float64, stale bool, ex []storage.Exemplar) error {
	if stale {
		v = math.Float64frombits(storage.StaleNaN)
	}
	return t.add(storage.SeriesSamples{Labels: ls, Samples: []storage.Sample{{T: ts, V: v}}, Exemplars: ex})
}

// metric translates one metric. Its error is the budget's only.
func (t *Translator) metric(m pmetric.Metric) error {
	points := pointCount(m)
	temporality, hasTemporality := aggregationTemporality(m)
	if m.Type() == pmetric.MetricTypeEmpty {
		t.res.reject(points, "metric %q has no data (type Empty)", m.Name())
		return nil
	}
	if hasTemporality && temporality != pmetric.AggregationTemporalityCumulative {
		t.res.reject(points, "metric %q has %s temporality: only cumulative is taken (convert deltas to cumulative in the sender, e.g. the collector's deltatocumulative processor)",
			m.Name(), temporality)
		return nil
	}
	name, err := t.metrics.Build(otlptranslator.Metric{Name: m.Name(), Unit: m.Unit(), Type: metricType(m)})
	if err != nil {
		t.res.reject(points, "metric %q: %v", m.Name(), err)
		return nil
	}
	if points == 0 {
		return nil // Prometheus warns and drops it
	}
	if !t.meta[name] {
		t.meta[name] = true
		t.b.Metadata = append(t.b.Metadata, storage.Metadata{
			Family: name, Type: string(promType(m)), Unit: t.units.Build(m.Unit()), Help: m.Description(),
		})
		if err := t.grow(int64(len(name) + len(m.Unit()) + len(m.Description()) + 64)); err != nil {
			return err
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return t.numbers(m.Name(), name, m.Gauge().DataPoints(), false)
	case pmetric.MetricTypeSum:
		return t.numbers(m.Name(), name, m.Sum().DataPoints(), true)
	case pmetric.MetricTypeHistogram:
		if t.cfg.ConvertHistogramsToNHCB {
			pts := m.Histogram().DataPoints()
			return nativeHistograms(t, m.Name(), name, pts.Len(), pts.At, explicitToCustomBuckets)
		}
		return t.classic(m.Name(), name, m.Histogram().DataPoints())
	case pmetric.MetricTypeExponentialHistogram:
		pts := m.ExponentialHistogram().DataPoints()
		return nativeHistograms(t, m.Name(), name, pts.Len(), pts.At, exponentialToNative)
	case pmetric.MetricTypeSummary:
		return t.summaries(m.Name(), name, m.Summary().DataPoints())
	}
	t.res.reject(points, "metric %q has unsupported type %s", m.Name(), m.Type())
	return nil
}

func (t *Translator) numbers(otelName, name string, pts pmetric.NumberDataPointSlice, exemplars bool) error {
	for i := range pts.Len() {
		pt := pts.At(i)
		ls, err := t.attributes(pt.Attributes(), reserved, model.MetricNameLabel, name)
		if err != nil {
			t.res.reject(1, "metric %q: %v", otelName, err)
			continue
		}
		var v float64
		switch pt.ValueType() {
		case pmetric.NumberDataPointValueTypeInt:
			v = float64(pt.IntValue())
		case pmetric.NumberDataPointValueTypeDouble:
			v = pt.DoubleValue()
		}
		ts := millis(pt.Timestamp())
		var ex []storage.Exemplar
		if exemplars { // Prometheus keeps the exemplars of sums, not of gauges
			ex = t.exemplars(pt.Exemplars(), ts)
			sortExemplars(ex)
		}
		if err := t.addFloat(ls, ts, v, pt.Flags().NoRecordedValue(), ex); err != nil {
			return err
		}
	}
	return nil
}

func (t *Translator) classic(otelName, name string, pts pmetric.HistogramDataPointSlice) error {
	for i := range pts.Len() {
		pt := pts.At(i)
		base, err := t.attributes(pt.Attributes(), reserved)
		if err != nil {
			t.res.reject(1, "metric %q: %v", otelName, err)
			continue
		}
		ts := millis(pt.Timestamp())
		stale := pt.Flags().NoRecordedValue()
		if pt.HasSum() {
			if err := t.addFloat(t.withName(base, name+"_sum"), ts, pt.Sum(), stale, nil); err != nil {
				return err
			}
		}
		if err := t.addFloat(t.withName(base, name+"_count"), ts, float64(pt.Count()), stale, nil); err != nil {
			return err
		}
		// Exemplars go to the first bucket whose bound is at least their
		// value, as Prometheus (which takes them as sorted by value).
		exs := t.exemplars(pt.Exemplars(), ts)
		next := 0
		var cum uint64
		bounds, counts := pt.ExplicitBounds(), pt.BucketCounts()
		for j := 0; j < bounds.Len() && j < counts.Len(); j++ {
			bound := bounds.At(j)
			cum += counts.At(j)
			if math.IsInf(bound, 1) {
				continue // le="+Inf" is the count, below
			}
			var ex []storage.Exemplar
			for ; next < len(exs) && exs[next].V <= bound; next++ {
				ex = append(ex, exs[next])
			}
			sortExemplars(ex)
			le := strconv.FormatFloat(bound, 'f', -1, 64)
			if err := t.addFloat(t.withName(base, name+"_bucket", model.BucketLabel, le), ts, float64(cum), stale, ex); err != nil {
				return err
			}
		}
		ex := exs[next:]
		sortExemplars(ex)
		if err := t.addFloat(t.withName(base, name+"_bucket", model.BucketLabel, "+Inf"), ts, float64(pt.Count()), stale, ex); err != nil {
			return err
		}
	}
	return nil
}

func (t *Translator) summaries(otelName, name string, pts pmetric.SummaryDataPointSlice) error {
	for i := range pts.Len() {
		pt := pts.At(i)
		base, err := t.attributes(pt.Attributes(), reserved)
		if err != nil {
			t.res.reject(1, "metric %q: %v", otelName, err)
			continue
		}
		ts := millis(pt.Timestamp())
		stale := pt.Flags().NoRecordedValue()
		if err := t.addFloat(t.withName(base, name+"_sum"), ts, pt.Sum(), stale, nil); err != nil {
			return err
		}
		if err := t.addFloat(t.withName(base, name+"_count"), ts, float64(pt.Count()), stale, nil); err != nil {
			return err
		}
		qs := pt.QuantileValues()
		for j := range qs.Len() {
			q := qs.At(j)
			ql := strconv.FormatFloat(q.Quantile(), 'f', -1, 64)
			if err := t.addFloat(t.withName(base, name, model.QuantileLabel, ql), ts, q.Value(), stale, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// histPoint is what native-histogram translation reads of a data point
// (exponential, or explicit-bucket as custom buckets).
type histPoint interface {
	Attributes() pcommon.Map
	Timestamp() pcommon.Timestamp
	Exemplars() pmetric.ExemplarSlice
}

// nativeHistograms adds the points of a histogram metric as native
// histograms, converted by conv; a point that does not convert is refused
// on its own.
func nativeHistograms[P histPoint](t *Translator, otelName, name string, n int, at func(int) P, conv func(P) (storage.HSample, error)) error {
	for i := range n {
		pt := at(i)
		h, err := conv(pt)
		if err != nil {
			t.res.reject(1, "metric %q: %v", otelName, err)
			continue
		}
		if err := t.addHistogram(otelName, name, pt.Attributes(), millis(pt.Timestamp()), h, pt.Exemplars()); err != nil {
			return err
		}
	}
	return nil
}

func (t *Translator) addHistogram(otelName, name string, attrs pcommon.Map, ts int64, h storage.HSample, exs pmetric.ExemplarSlice) error {
	ls, err := t.attributes(attrs, reserved, model.MetricNameLabel, name)
	if err != nil {
		t.res.reject(1, "metric %q: %v", otelName, err)
		return nil
	}
	h.T = ts
	ex := t.exemplars(exs, ts)
	sortExemplars(ex)
	return t.add(storage.SeriesSamples{Labels: ls, Histograms: []storage.HSample{h}, Exemplars: ex})
}

// reserved are attributes never made labels: __name__ comes from the
// metric name.
var reserved = []string{model.MetricNameLabel}

// exemplars translates a point's exemplars: trace_id and span_id in hex,
// then the filtered attributes unless they make the labels longer than
// OpenMetrics allows. An exemplar without a timestamp takes the point's.
func (t *Translator) exemplars(exs pmetric.ExemplarSlice, pointT int64) []storage.Exemplar {
	if exs.Len() == 0 {
		return nil
	}
	out := make([]storage.Exemplar, 0, exs.Len())
	for i := range exs.Len() {
		e := exs.At(i)
		ex := storage.Exemplar{T: millis(e.Timestamp())}
		if e.Timestamp() == 0 {
			ex.T = pointT
		}
		switch e.ValueType() {
		case pmetric.ExemplarValueTypeInt:
			ex.V = float64(e.IntValue())
		case pmetric.ExemplarValueTypeDouble:
			ex.V = e.DoubleValue()
		default:
			continue
		}
		t.sb.Reset()
		runes := 0
		hasTrace, hasSpan := !e.TraceID().IsEmpty(), !e.SpanID().IsEmpty()
		if hasTrace {
			id := e.TraceID()
			v := hex.EncodeToString(id[:])
			runes += len("trace_id") + len(v)
			t.sb.Add("trace_id", v)
		}
		if hasSpan {
			id := e.SpanID()
			v := hex.EncodeToString(id[:])
			runes += len("span_id") + len(v)
			t.sb.Add("span_id", v)
		}
		overridden := func(k string) bool { return (hasTrace && k == "trace_id") || (hasSpan && k == "span_id") }
		attrs := e.FilteredAttributes()
		attrs.Range(func(k string, v pcommon.Value) bool {
			if !overridden(k) {
				runes += utf8.RuneCountInString(k) + utf8.RuneCountInString(v.AsString())
			}
			return true
		})
		if runes <= maxExemplarRunes {
			attrs.Range(func(k string, v pcommon.Value) bool {
				if !overridden(k) && utf8.ValidString(k) && utf8.ValidString(v.AsString()) {
					t.sb.Add(k, v.AsString())
				}
				return true
			})
		}
		t.sb.Sort()
		ex.Labels = t.sb.Labels()
		out = append(out, ex)
	}
	return out
}

func sortExemplars(ex []storage.Exemplar) {
	slices.SortStableFunc(ex, func(a, b storage.Exemplar) int {
		if a.T != b.T {
			return compareInt(a.T, b.T)
		}
		if a.V != b.V {
			if a.V < b.V {
				return -1
			}
			return 1
		}
		return labels.Compare(a.Labels, b.Labels)
	})
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// targetInfo adds the target_info series of a resource: its attributes
// but the identifying ones, with job and instance, at every
// targetInfoStep from its earliest point and at its latest, as Prometheus.
// A resource with only identifying attributes, or neither job nor
// instance, has none.
func (t *Translator) targetInfo(attrs pcommon.Map, first, last int64) error {
	identifying := []string{attrServiceNamespace, attrServiceName, attrServiceInstanceID}
	others := attrs.Len()
	for _, a := range identifying {
		if _, ok := attrs.Get(a); ok {
			others--
		}
	}
	if others == 0 || (t.job == "" && t.instance == "") {
		return nil
	}
	if t.cfg.KeepIdentifyingResourceAttributes {
		identifying = nil
	}
	promoted, scope := t.promoted, t.scope
	t.promoted, t.scope = labels.EmptyLabels(), labels.EmptyLabels()
	ls, err := t.attributes(attrs, identifying, model.MetricNameLabel, targetInfo)
	t.promoted, t.scope = promoted, scope
	if err != nil {
		t.res.reject(0, "target_info of resource %s: %v", ls, err)
		return nil
	}
	if !t.meta[targetInfo] {
		t.meta[targetInfo] = true
		t.b.Metadata = append(t.b.Metadata, storage.Metadata{Family: targetInfo, Type: string(model.MetricTypeGauge), Help: "Target metadata"})
	}
	var samples []storage.Sample
	if first < last {
		steps := (last - first - 1) / targetInfoStep // samples before last: steps+1
		start := first
		if steps+1 > maxTargetInfoSamples {
			start = first + (steps+1-maxTargetInfoSamples)*targetInfoStep
		}
		for ts := start; ts < last; ts += targetInfoStep {
			samples = append(samples, storage.Sample{T: ts, V: 1})
		}
	}
	samples = append(samples, storage.Sample{T: last, V: 1})
	return t.add(storage.SeriesSamples{Labels: ls, Samples: samples})
}

// millis converts OTLP's nanoseconds to milliseconds, as Prometheus.
func millis(ts pcommon.Timestamp) int64 { return int64(ts) / 1_000_000 }

func aggregationTemporality(m pmetric.Metric) (pmetric.AggregationTemporality, bool) {
	switch m.Type() {
	case pmetric.MetricTypeSum:
		return m.Sum().AggregationTemporality(), true
	case pmetric.MetricTypeHistogram:
		return m.Histogram().AggregationTemporality(), true
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().AggregationTemporality(), true
	}
	return 0, false
}

func metricType(m pmetric.Metric) otlptranslator.MetricType {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return otlptranslator.MetricTypeGauge
	case pmetric.MetricTypeSum:
		if m.Sum().IsMonotonic() {
			return otlptranslator.MetricTypeMonotonicCounter
		}
		return otlptranslator.MetricTypeNonMonotonicCounter
	case pmetric.MetricTypeHistogram:
		return otlptranslator.MetricTypeHistogram
	case pmetric.MetricTypeExponentialHistogram:
		return otlptranslator.MetricTypeExponentialHistogram
	case pmetric.MetricTypeSummary:
		return otlptranslator.MetricTypeSummary
	}
	return otlptranslator.MetricTypeUnknown
}

// promType is the Prometheus metadata type of a (cumulative) metric.
func promType(m pmetric.Metric) model.MetricType {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return model.MetricTypeGauge
	case pmetric.MetricTypeSum:
		if m.Sum().IsMonotonic() {
			return model.MetricTypeCounter
		}
		return model.MetricTypeGauge
	case pmetric.MetricTypeHistogram, pmetric.MetricTypeExponentialHistogram:
		return model.MetricTypeHistogram
	case pmetric.MetricTypeSummary:
		return model.MetricTypeSummary
	}
	return model.MetricTypeUnknown
}

func pointCount(m pmetric.Metric) int {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints().Len()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints().Len()
	case pmetric.MetricTypeHistogram:
		return m.Histogram().DataPoints().Len()
	case pmetric.MetricTypeExponentialHistogram:
		return m.ExponentialHistogram().DataPoints().Len()
	case pmetric.MetricTypeSummary:
		return m.Summary().DataPoints().Len()
	}
	return 0
}

func countScopePoints(sm pmetric.ScopeMetrics) int {
	n := 0
	for i := range sm.Metrics().Len() {
		n += pointCount(sm.Metrics().At(i))
	}
	return n
}

func countPoints(rm pmetric.ResourceMetrics) int {
	n := 0
	for i := range rm.ScopeMetrics().Len() {
		n += countScopePoints(rm.ScopeMetrics().At(i))
	}
	return n
}

// timeSpan returns the earliest and latest point timestamps of m, in
// milliseconds; lo > hi when it has none.
func timeSpan(m pmetric.Metric) (lo, hi int64) {
	lo, hi = math.MaxInt64, math.MinInt64
	see := func(ts pcommon.Timestamp) {
		ms := millis(ts)
		lo, hi = min(lo, ms), max(hi, ms)
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		for i := range m.Gauge().DataPoints().Len() {
			see(m.Gauge().DataPoints().At(i).Timestamp())
		}
	case pmetric.MetricTypeSum:
		for i := range m.Sum().DataPoints().Len() {
			see(m.Sum().DataPoints().At(i).Timestamp())
		}
	case pmetric.MetricTypeHistogram:
		for i := range m.Histogram().DataPoints().Len() {
			see(m.Histogram().DataPoints().At(i).Timestamp())
		}
	case pmetric.MetricTypeExponentialHistogram:
		for i := range m.ExponentialHistogram().DataPoints().Len() {
			see(m.ExponentialHistogram().DataPoints().At(i).Timestamp())
		}
	case pmetric.MetricTypeSummary:
		for i := range m.Summary().DataPoints().Len() {
			see(m.Summary().DataPoints().At(i).Timestamp())
		}
	}
	return lo, hi
}
