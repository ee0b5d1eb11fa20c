package promqltest

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// Status is the outcome of one eval.
type Status string

// Outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Case is the outcome of one eval command.
type Case struct {
	File   string
	Line   int
	Query  string
	Status Status
	// Class is "stable" for stable float PromQL, else why the case is a
	// stretch ("experimental: …") or skipped ("native histograms").
	Class string
	Err   string
}

// ID names the case as file:line.
func (c Case) ID() string { return fmt.Sprintf("%s:%d", c.File, c.Line) }

// Store is what a script runs against: a fresh, empty storage per call.
type Store interface {
	storage.Writer
	storage.Reader
}

// Run runs one script. open returns an empty store and a function that
// discards it; it is called at the start and at every clear.
func Run(ctx context.Context, file, src string, open func() (Store, func(), error)) ([]Case, error) {
	cmds, err := Parse(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	st, done, err := open()
	if err != nil {
		return nil, err
	}
	defer func() { done() }()
	eng := query.NewEngine(st, engineOptions())
	histNames := map[string]bool{}
	var histSeries []labels.Labels
	var out []Case
	for _, c := range cmds {
		switch c := c.(type) {
		case *Clear:
			done()
			if st, done, err = open(); err != nil {
				return out, err
			}
			eng = query.NewEngine(st, engineOptions())
			clear(histNames)
			histSeries = nil
		case *Load:
			var b storage.Batch
			for _, s := range c.Series {
				if s.Histogram {
					histNames[s.Labels.Get(model.MetricNameLabel)] = true
					histSeries = append(histSeries, s.Labels)
				}
				if len(s.Samples) > 0 {
					b.Add(s.Labels, s.Samples...)
				}
				if len(s.Histograms) > 0 {
					b.AddHistograms(s.Labels, s.Histograms...)
				}
			}
			if c.WithNHCB {
				nhcb, err := customBucketSeries(c.Series)
				if err != nil {
					return out, fmt.Errorf("%s:%d: load_with_nhcb: %w", file, c.Line, err)
				}
				for _, s := range nhcb {
					histNames[s.Labels.Get(model.MetricNameLabel)] = true
					histSeries = append(histSeries, s.Labels)
					b.AddHistograms(s.Labels, s.Histograms...)
				}
			}
			if err := st.Write(ctx, "default", &b); err != nil {
				return out, fmt.Errorf("%s:%d: load: %w", file, c.Line, err)
			}
		case *Eval:
			k := Case{File: file, Line: c.Line, Query: c.Query, Class: classify(file, c, histNames, histSeries)}
			if strings.HasPrefix(k.Class, "skip") {
				k.Status = Skip
			} else if err := runEval(ctx, eng, c); err != nil {
				k.Status, k.Err = Fail, err.Error()
			} else {
				k.Status = Pass
			}
			out = append(out, k)
		}
	}
	return out, nil
}

var (
	experimentalFuncs = regexp.MustCompile(`\b(limitk|limit_ratio|sort_by_label|sort_by_label_desc|info|mad_over_time|ts_of_\w+|double_exponential_smoothing|histogram_quantiles|start_timestamp|first_over_time)\s*\(`)
	extendedSelectors = regexp.MustCompile(`\b(anchored|smoothed)\b`)
	fillModifiers     = regexp.MustCompile(`\bfill(_left|_right)?\s*\(`)
	identRe           = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// classify sorts an eval into stable PromQL, stable PromQL over native
// histograms, an experimental stretch, or a skip.
func classify(file string, e *Eval, histNames map[string]bool, histSeries []labels.Labels) string {
	switch {
	case file == "start_timestamps.test":
		return "skip: start timestamps"
	case experimentalFuncs.MatchString(e.Query):
		return "experimental: functions"
	case extendedSelectors.MatchString(e.Query):
		return "experimental: anchored/smoothed"
	case fillModifiers.MatchString(e.Query):
		return "experimental: fill modifiers"
	case file == "name_label_dropping.test" || file == "type_and_unit.test":
		return "experimental: delayed name removal"
	case file == "native_histograms.test" || e.ExpectsHistograms || touchesHistograms(e, histNames, histSeries):
		return NativeHistograms
	}
	return "stable"
}

// NativeHistograms is the class of the stable cases that involve native
// histograms.
const NativeHistograms = "native histograms"

// touchesHistograms reports whether a query may read a series that holds
// native histograms.
func touchesHistograms(e *Eval, histNames map[string]bool, histSeries []labels.Labels) bool {
	if sels, err := query.Selectors(e.Query); err == nil {
		for _, sel := range sels {
			for _, set := range sel {
				for _, hs := range histSeries {
					if matchesAll(set, hs) {
						return true
					}
				}
			}
		}
	}
	for _, id := range identRe.FindAllString(e.Query, -1) {
		if histNames[id] {
			return true
		}
	}
	return false
}

// runEval runs an eval and, like Prometheus's runner, the checks derived
// from every instant eval: the query with its selectors pinned by @ to the
// eval time, run at other times, and each of them also as a range query
// around its time.
func matchesAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

func runEval(ctx context.Context, eng *query.Engine, e *Eval) error {
	if err := runOne(ctx, eng, e, e.Query, e.At); err != nil {
		return err
	}
	if !e.Instant || e.RangeVector != nil {
		return nil
	}
	if err := rangeMode(ctx, eng, e, e.Query, e.At); err != nil {
		return fmt.Errorf("range mode: %w", err)
	}
	pinned, ok, err := query.PinAt(e.Query, e.At)
	if err != nil || !ok {
		return nil // the original already reported a parse error, or cannot be pinned
	}
	times := []int64{-10 * e.At, 0, e.At / 5, e.At, 10 * e.At}
	if e.At == 0 {
		times = []int64{-1000, 0, 1000}
	}
	for _, at := range times {
		if err := runOne(ctx, eng, e, pinned, at); err != nil {
			return fmt.Errorf("pinned %q at %dms: %w", pinned, at, err)
		}
		if err := rangeMode(ctx, eng, e, pinned, at); err != nil {
			return fmt.Errorf("pinned %q at %dms, range mode: %w", pinned, at, err)
		}
	}
	return nil
}

var usesQueryBounds = regexp.MustCompile(`\b(start|end|range|step)\s*\(\s*\)`)

// rangeMode runs an instant eval as a range query from t-1m to t+1m: it
// must succeed, and its points at t must be the expected ones.
func rangeMode(ctx context.Context, eng *query.Engine, e *Eval, q string, at int64) (err error) {
	if e.Fail || e.String != nil || e.RangeVector != nil || usesQueryBounds.MatchString(e.Query) {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	res, qerr := eng.Range(ctx, "default", q, at-60_000, at+60_000, 60_000)
	if qerr != nil {
		return fmt.Errorf("unexpected error: %v", qerr)
	}
	if e.Ordered {
		return nil
	}
	var got []query.Series
	for _, s := range res.Series {
		for i, p := range s.Points {
			if p.T == at {
				g := query.Series{Metric: s.Metric, Points: []query.Point{p}}
				if h := s.H(i); h != nil {
					g.Histograms = []*histogram.FloatHistogram{h}
				}
				got = append(got, g)
			}
		}
	}
	if e.Scalar != nil {
		if len(got) == 0 || got[0].H(0) != nil || !floatEq(got[0].Points[0].F, *e.Scalar) {
			return fmt.Errorf("got %s at %d, want scalar %v", describe(got), at, *e.Scalar)
		}
		return nil
	}
	return compareVector(got, e.Series, false)
}

func runOne(ctx context.Context, eng *query.Engine, e *Eval, q string, at int64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	var res *query.Result
	var qerr error
	switch {
	case e.RangeVector != nil:
		res, qerr = eng.Instant(ctx, "default", q, e.RangeVector[1])
	case e.Instant:
		res, qerr = eng.Instant(ctx, "default", q, at)
	default:
		res, qerr = eng.Range(ctx, "default", q, e.Start, e.End, e.Step)
	}
	if e.Fail {
		if qerr == nil {
			return fmt.Errorf("expected an error, got none")
		}
		if e.FailMsg != "" && qerr.Error() != e.FailMsg {
			return fmt.Errorf("error %q, want %q", qerr, e.FailMsg)
		}
		if e.FailRe != "" && !regexp.MustCompile(e.FailRe).MatchString(qerr.Error()) {
			return fmt.Errorf("error %q does not match %q", qerr, e.FailRe)
		}
		return nil
	}
	if qerr != nil {
		return fmt.Errorf("unexpected error: %v", qerr)
	}
	if err := checkAnnotations("warn", res.Warnings, e.Warn, e.WarnAny, e.NoWarn); err != nil {
		return err
	}
	if err := checkAnnotations("info", res.Infos, e.Info, e.InfoAny, e.NoInfo); err != nil {
		return err
	}
	switch {
	case e.String != nil:
		if res.Type != query.ValueString || res.String != *e.String {
			return fmt.Errorf("got %s %q, want string %q", res.Type, res.String, *e.String)
		}
		return nil
	case e.Scalar != nil:
		if res.Type != query.ValueScalar && !(!e.Instant && res.Type == query.ValueMatrix) {
			return fmt.Errorf("got %s, want scalar %v", res.Type, *e.Scalar)
		}
		if res.Type == query.ValueScalar {
			if !floatEq(res.Scalar.F, *e.Scalar) {
				return fmt.Errorf("got scalar %v, want %v", res.Scalar.F, *e.Scalar)
			}
			return nil
		}
	}
	if e.RangeVector != nil {
		if res.Type != query.ValueMatrix {
			return fmt.Errorf("got %s, want a range vector", res.Type)
		}
		return compareMatrix(res.Series, e.Series, e.RangeVector[0], e.RangeVector[2])
	}
	if e.Instant {
		if res.Type != query.ValueVector {
			if res.Type == query.ValueScalar && len(e.Series) == 0 {
				return fmt.Errorf("got scalar %v, want an empty vector", res.Scalar.F)
			}
			if res.Type != query.ValueScalar {
				return fmt.Errorf("got %s, want a vector", res.Type)
			}
			return fmt.Errorf("got scalar %v, want a vector", res.Scalar.F)
		}
		return compareVector(res.Series, e.Series, e.Ordered)
	}
	if res.Type != query.ValueMatrix {
		return fmt.Errorf("got %s, want a matrix", res.Type)
	}
	return compareMatrix(res.Series, e.Series, e.Start, e.Step)
}

func checkAnnotations(kind string, got []string, want []Annotation, any, none bool) error {
	if none && len(got) > 0 {
		return fmt.Errorf("unexpected %s annotations: %q", kind, got)
	}
	if any && len(got) == 0 {
		return fmt.Errorf("expected a %s annotation, got none", kind)
	}
	if len(want) == 0 {
		return nil
	}
	if len(got) == 0 {
		return fmt.Errorf("expected %s annotations, got none", kind)
	}
	match := func(a Annotation, g string) bool {
		switch {
		case a.Re != nil:
			return a.Re.MatchString(g)
		case a.Msg != "":
			return strings.TrimSpace(g) == a.Msg
		}
		return true
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return match(w, g) }) {
			return fmt.Errorf("no %s annotation matches %+v; got %q", kind, w.Msg+reString(w.Re), got)
		}
	}
	for _, g := range got {
		if !slices.ContainsFunc(want, func(w Annotation) bool { return match(w, g) }) {
			return fmt.Errorf("unexpected %s annotation %q", kind, g)
		}
	}
	return nil
}

func reString(re *regexp.Regexp) string {
	if re == nil {
		return ""
	}
	return "regex:" + re.String()
}

func compareVector(got []query.Series, want []ExpectedSeries, ordered bool) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d series, want %d: got %s", len(got), len(want), describe(got))
	}
	for i, w := range want {
		j := slices.IndexFunc(got, func(s query.Series) bool { return labels.Equal(s.Metric, w.Labels) })
		if j < 0 {
			return fmt.Errorf("missing series %s; got %s", w.Labels, describe(got))
		}
		if ordered && j != i {
			return fmt.Errorf("series %s at position %d, want %d", w.Labels, j, i)
		}
		if len(w.Values) != 1 || w.Values[0] == nil {
			return fmt.Errorf("bad expectation for %s", w.Labels)
		}
		if err := compareValue(got[j].Points[0], got[j].H(0), w.Values[0]); err != nil {
			return fmt.Errorf("series %s: %w", w.Labels, err)
		}
	}
	return nil
}

// compareValue compares a point with its expectation as Prometheus's
// runner does: floats with a relative tolerance, histograms field by
// field once compacted.
func compareValue(p query.Point, h *histogram.FloatHistogram, w *Value) error {
	switch {
	case w.H == nil && h != nil:
		return fmt.Errorf("got histogram %s, want float %v", h.TestExpression(), w.F)
	case w.H != nil && h == nil:
		return fmt.Errorf("got float %v, want histogram %s", p.F, w.H.TestExpression())
	case w.H != nil:
		if !histogramEq(w.H.Copy().Compact(0), h.Copy().Compact(0), w.HintSet) {
			return fmt.Errorf("got %s, want %s", h.TestExpression(), w.H.TestExpression())
		}
	case !floatEq(p.F, w.F):
		return fmt.Errorf("got %v, want %v", p.F, w.F)
	}
	return nil
}

func compareMatrix(got []query.Series, want []ExpectedSeries, start, step int64) error {
	var wantN int
	for _, w := range want {
		for _, v := range w.Values {
			if v != nil {
				wantN++
				break
			}
		}
	}
	nonEmpty := 0
	for _, g := range got {
		if len(g.Points) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty != wantN {
		return fmt.Errorf("got %d series, want %d: got %s", nonEmpty, wantN, describe(got))
	}
	for _, w := range want {
		j := slices.IndexFunc(got, func(s query.Series) bool { return labels.Equal(s.Metric, w.Labels) })
		var pts []query.Point
		var hs []*histogram.FloatHistogram
		if j >= 0 {
			pts, hs = got[j].Points, got[j].Histograms
		}
		var exp []*Value
		var expT []int64
		for i, v := range w.Values {
			if v != nil {
				exp = append(exp, v)
				expT = append(expT, start+int64(i)*step)
			}
		}
		if len(exp) == 0 {
			continue
		}
		if j < 0 {
			return fmt.Errorf("missing series %s; got %s", w.Labels, describe(got))
		}
		if len(pts) != len(exp) {
			return fmt.Errorf("series %s: got %d points %s, want %d", w.Labels, len(pts), describePoints(&got[j]), len(exp))
		}
		for i := range exp {
			if pts[i].T != expT[i] {
				return fmt.Errorf("series %s point %d: got t=%d, want t=%d", w.Labels, i, pts[i].T, expT[i])
			}
			var h *histogram.FloatHistogram
			if hs != nil {
				h = hs[i]
			}
			if err := compareValue(pts[i], h, exp[i]); err != nil {
				return fmt.Errorf("series %s point %d (t=%d): %w", w.Labels, i, pts[i].T, err)
			}
		}
	}
	return nil
}

func describePoints(s *query.Series) string {
	var b strings.Builder
	for i, p := range s.Points {
		if h := s.H(i); h != nil {
			fmt.Fprintf(&b, "%s@%d ", h.TestExpression(), p.T)
		} else {
			fmt.Fprintf(&b, "%v@%d ", p.F, p.T)
		}
	}
	return b.String()
}

func describe(ss []query.Series) string {
	var b strings.Builder
	for i, s := range ss {
		if i == 8 {
			fmt.Fprintf(&b, " … (%d more)", len(ss)-i)
			break
		}
		if len(s.Points) > 0 && s.H(0) != nil {
			fmt.Fprintf(&b, "%s=%s ", s.Metric, s.H(0).TestExpression())
		} else if len(s.Points) > 0 {
			fmt.Fprintf(&b, "%s=%v ", s.Metric, s.Points[0].F)
		} else {
			fmt.Fprintf(&b, "%s ", s.Metric)
		}
	}
	return b.String()
}

// floatEq compares as Prometheus's test runner does.
func floatEq(a, b float64) bool {
	if storage.IsStaleNaN(a) || storage.IsStaleNaN(b) {
		return storage.IsStaleNaN(a) && storage.IsStaleNaN(b)
	}
	if math.IsNaN(a) && math.IsNaN(b) {
		return true
	}
	if a == b {
		return true
	}
	const minNormal = 2.2250738585072014e-308
	absSum := math.Abs(a) + math.Abs(b)
	diff := math.Abs(a - b)
	if a == 0 || b == 0 || absSum < minNormal {
		return diff < 1e-6*minNormal
	}
	return diff/math.Min(absSum, math.MaxFloat64) < 1e-6
}

// histogramEq compares two compacted histograms as Prometheus's runner
// does (compareNativeHistogram): floats with a tolerance, spans by the
// buckets they name, the counter reset hint only when the script set it.
func histogramEq(exp, got *histogram.FloatHistogram, hintSet bool) bool {
	if exp.Schema != got.Schema || !floatEq(exp.Count, got.Count) || !floatEq(exp.Sum, got.Sum) {
		return false
	}
	if exp.UsesCustomBuckets() && !histogram.CustomBucketBoundsMatch(exp.CustomValues, got.CustomValues) {
		return false
	}
	if exp.ZeroThreshold != got.ZeroThreshold || !floatEq(exp.ZeroCount, got.ZeroCount) {
		return false
	}
	if !spansMatch(exp.NegativeSpans, got.NegativeSpans) || !bucketsMatch(exp.NegativeBuckets, got.NegativeBuckets) {
		return false
	}
	if !spansMatch(exp.PositiveSpans, got.PositiveSpans) || !bucketsMatch(exp.PositiveBuckets, got.PositiveBuckets) {
		return false
	}
	return !hintSet || exp.CounterResetHint == got.CounterResetHint
}

func bucketsMatch(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !floatEq(a[i], b[i]) {
			return false
		}
	}
	return true
}

// spansMatch compares spans, joining empty spans into the next one.
func spansMatch(a, b []histogram.Span) bool {
	norm := func(s []histogram.Span) []histogram.Span {
		var out []histogram.Span
		var off int32
		for _, sp := range s {
			off += sp.Offset
			if sp.Length == 0 {
				continue
			}
			out = append(out, histogram.Span{Offset: off, Length: sp.Length})
			off = 0
		}
		return out
	}
	return slices.Equal(norm(a), norm(b))
}

// engineOptions are the engine's options for a script: every experimental
// feature on, as Prometheus's own runner has them (its scripts assume so).
func engineOptions() *query.Options {
	return &query.Options{MaxSamples: 50_000_000, Features: query.AllFeatures()}
}
