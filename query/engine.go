package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// Options configures an Engine. A zero field means its default.
type Options struct {
	// LookbackDelta is how far back an instant selector looks for a
	// sample. Default 5m, as Prometheus.
	LookbackDelta time.Duration
	// SubqueryStep is the step of a subquery that names none (Prometheus
	// takes its global evaluation interval). Default 1m.
	SubqueryStep time.Duration
	// MaxSamples caps the samples one query holds in memory at once, as
	// Prometheus' --query.max-samples does: the points read from storage
	// and every point an expression produces, at every step of every
	// subquery, until the expression that consumes them is done. A query
	// or subquery with more steps than this is refused before it runs.
	// Default 50e6.
	MaxSamples int
	// Timeout bounds one query. Default 2m.
	Timeout time.Duration
	// MaxSeries caps the series one query may select. 0: no limit.
	MaxSeries int
	// MaxQueryLength caps the length of a query's text in bytes.
	// Default DefaultMaxQueryLength (256 KiB).
	MaxQueryLength int
	// MaxDepth caps how deeply a query nests parentheses, brackets and
	// braces. Default DefaultMaxDepth (1000).
	MaxDepth int
	// MaxTerms caps the terms of a query (names, numbers, strings,
	// operators, brackets) once its WITH templates are expanded.
	// Default DefaultMaxTerms (20,000).
	MaxTerms int
	// TierMinRange is the shortest span (steps plus window) a selector is
	// read from a downsampled tier for, when the storage keeps tiers and
	// one answers exactly; a selector reaching past the raw samples'
	// retention always is. Default 24h; negative: never.
	TierMinRange time.Duration
	// Features enables Prometheus's experimental PromQL features
	// (--enable-feature). A query that uses one that is off gets the error
	// Prometheus gives. Default none.
	Features Features

	// generalPaths turns aggregateRange and the memo of vector binary
	// operations (binopMemo) off: tests compare their answers with the
	// general path's.
	// answers with the general path's.
	generalPaths bool
}

func (o *Options) ensureDefaults() {
	if o.LookbackDelta <= 0 {
		o.LookbackDelta = 5 * time.Minute
	}
	if o.SubqueryStep <= 0 {
		o.SubqueryStep = time.Minute
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = 50_000_000
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.MaxQueryLength <= 0 {
		o.MaxQueryLength = DefaultMaxQueryLength
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxTerms <= 0 {
		o.MaxTerms = DefaultMaxTerms
	}
	if o.TierMinRange == 0 {
		o.TierMinRange = 24 * time.Hour
	}
}

func (o *Options) parseLimits() parseLimits {
	return parseLimits{maxLength: o.MaxQueryLength, maxDepth: o.MaxDepth, maxTerms: o.MaxTerms}
}

// ErrorType classifies query errors as the Prometheus API does.
type ErrorType string

// The error types.
const (
	ErrBadData   ErrorType = "bad_data"
	ErrExecution ErrorType = "execution"
	ErrTimeout   ErrorType = "timeout"
	ErrCanceled  ErrorType = "canceled"
)

// Error is a query error with its API type.
type Error struct {
	Type ErrorType
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func badData(format string, args ...any) error {
	return &Error{Type: ErrBadData, Err: fmt.Errorf(format, args...)}
}

func execErr(format string, args ...any) error {
	return &Error{Type: ErrExecution, Err: fmt.Errorf(format, args...)}
}

// Engine evaluates PromQL and MetricsQL over a storage.Reader. It is safe
// for concurrent use.
type Engine struct {
	r    storage.Reader
	opts Options
	// slabs holds point slabs (pointSlab points each) that range
	// functions are done with, for the next selectors: a range query over
	// many series reads all their samples first (55 MB over 12,800 series
	// and an hour), and allocating them anew each time kept the collector
	// busy (issue 18's profile: a third of such a query).
	slabs sync.Pool
	// aggregatedRange counts the aggregations aggregateRange answered,
	// for tests.
	aggregatedRange atomic.Int64
	// prepared keeps queries parsed and checked (prepare).
	preparedMu sync.Mutex
	prepared   map[preparedKey]*prepared
}

// NewEngine returns an Engine reading from r.
func NewEngine(r storage.Reader, opts *Options) *Engine {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.ensureDefaults()
	return &Engine{r: r, opts: o, prepared: map[preparedKey]*prepared{}}
}

// Instant evaluates q at ts (ms).
func (e *Engine) Instant(ctx context.Context, tenant, q string, ts int64) (*Result, error) {
	return e.exec(ctx, tenant, q, ts, ts, 0)
}

// Range evaluates q at every step from start to end (ms).
func (e *Engine) Range(ctx context.Context, tenant, q string, start, end, step int64) (*Result, error) {
	if step <= 0 {
		return nil, badData("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	if end < start {
		return nil, badData("end timestamp must not be before start time")
	}
	return e.exec(ctx, tenant, q, start, end, step)
}

// prepared is a query parsed, checked and made ready to evaluate: all
// that exec does before evaluating, which depends only on the query's
// text, step and range (and the engine's options).
type prepared struct {
	expr metricsql.Expr // NB: shared by every evaluation: never changed
	vm   bool
	typ  ValueType
}

type preparedKey struct {
	q         string
	step, rng int64
}

// maxPrepared is how many prepared queries an Engine keeps: a dashboard
// sends the same few dozen again at every refresh.
const maxPrepared = 1024

// prepare parses and checks qs, or returns it as prepared before (a
// dashboard's queries are parsed twice — as PromQL and as MetricsQL —
// and checked, a seventh of a small query's CPU).
func (e *Engine) prepare(qs string, step, rng int64) (*prepared, error) {
	key := preparedKey{qs, step, rng}
	e.preparedMu.Lock()
	p := e.prepared[key]
	e.preparedMu.Unlock()
	if p != nil {
		return p, nil
	}
	expr, err := parseQuery(qs, step, rng, e.opts.parseLimits())
	if err != nil {
		if ferr := checkExtendedSelectors(qs, e.opts.Features); ferr != nil {
			return nil, ferr // Prometheus 3.14 says this first
		}
		if ferr := checkFillModifiers(qs, e.opts.Features); ferr != nil {
			return nil, ferr
		}
		return nil, err
	}
	if err := checkFeatures(qs, expr, e.opts.Features); err != nil {
		return nil, err
	}
	if err := checkExtendedFuncs(expr); err != nil {
		return nil, err
	}
	// A query Prometheus's parser refuses answers as VictoriaMetrics would:
	// its rollups see the sample before their window.
	vm := ParsePromQL(qs) != nil
	if vm && hasRangeMods(expr) {
		return nil, badData("the anchored and smoothed modifiers are PromQL's: a query that is not valid PromQL cannot use them")
	}
	if err := implicitWindows(expr, vm); err != nil {
		return nil, err
	}
	typ, err := checkTypes(expr, vm)
	if err != nil {
		return nil, err
	}
	p = &prepared{expr: expr, vm: vm, typ: typ}
	e.preparedMu.Lock()
	if len(e.prepared) >= maxPrepared {
		for k := range e.prepared { // any one: a map's order is random
			delete(e.prepared, k)
			break
		}
	}
	e.prepared[key] = p
	e.preparedMu.Unlock()
	return p, nil
}

func (e *Engine) exec(ctx context.Context, tenant, qs string, start, end, step int64) (res *Result, err error) {
	p, err := e.prepare(qs, step, end-start)
	if err != nil {
		return nil, err
	}
	expr, vm, typ := p.expr, p.vm, p.typ
	instant := step == 0
	if !instant && typ != ValueScalar && typ != ValueVector {
		return nil, badData("invalid expression type %q for range query, must be Scalar or instant Vector", typeName(typ))
	}
	if !instant && (end-start)/step >= int64(e.opts.MaxSamples) {
		// One series would be over the limit: refuse before allocating.
		return nil, execErr("query would evaluate %d steps, more than the %d samples a query may hold (--query.max-samples); use a larger step",
			(end-start)/step+1, e.opts.MaxSamples)
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	q, err := e.r.Querier(ctx, tenant, math.MinInt64, math.MaxInt64)
	if err != nil {
		return nil, &Error{Type: ErrExecution, Err: err}
	}
	defer q.Close()
	ev := &evaluator{
		ctx:        ctx,
		q:          q,
		slabs:      &e.slabs,
		start:      start,
		end:        end,
		interval:   step,
		lookback:   e.opts.LookbackDelta.Milliseconds(),
		subStep:    e.opts.SubqueryStep.Milliseconds(),
		maxSamples: e.opts.MaxSamples,
		maxSeries:  e.opts.MaxSeries,
		qStart:     start,
		qEnd:       end,
		vm:         vm,
		// The mark is a label: a query Prometheus's parser refuses is
		// MetricsQL, which has no such feature.
		delayNameRemoval: e.opts.Features.Has(FeatureDelayedNameRemoval) && !vm,
		generalPaths:     e.opts.generalPaths,
		aggregatedRange:  &e.aggregatedRange,
	}
	if tq, ok := q.(storage.TierQuerier); ok && len(tq.Tiers()) > 0 && e.opts.TierMinRange > 0 {
		ev.tq, ev.tierMinRange = tq, e.opts.TierMinRange.Milliseconds()
	}
	if instant {
		ev.interval = 1
		ev.instant = true
	}
	ev.statsSelectors = histogramStatsSelectors(expr)
	defer func() {
		if r := recover(); r != nil {
			if ee, ok := r.(evalPanic); ok {
				res, err = nil, ee.err
				return
			}
			panic(r)
		}
	}()
	res = &Result{}
	switch typ {
	case ValueString:
		res.Type, res.String = ValueString, expr.(*metricsql.StringExpr).S
		res.Scalar.T = start
	case ValueMatrix:
		m := ev.rangeVectorAt(expr.(*metricsql.RollupExpr))
		if ev.delayNameRemoval {
			m = ev.removeMarkedNames(m)
		}
		if evalDone != nil {
			evalDone(ev, m)
		}
		res.Type, res.Series = ValueMatrix, m
	default:
		m := ev.eval(expr)
		if ev.delayNameRemoval {
			m = ev.removeMarkedNames(m)
		}
		if evalDone != nil {
			evalDone(ev, m)
		}
		if ev.vm && typ != ValueScalar {
			// VictoriaMetrics answers no NaN.
			m = dropNaNs(m)
		}
		switch {
		case typ == ValueScalar && instant:
			res.Type = ValueScalar
			res.Scalar = Point{T: start, F: math.NaN()}
			if len(m) > 0 && len(m[0].Points) > 0 {
				res.Scalar = m[0].Points[0]
			}
		case instant:
			res.Type = ValueVector
			res.Series = make([]Series, 0, len(m))
			for _, s := range m {
				if len(s.Points) > 0 {
					o := Series{Metric: s.Metric, Points: s.Points[:1]}
					if s.Histograms != nil {
						o.Histograms = s.Histograms[:1]
					}
					res.Series = append(res.Series, o)
				}
			}
			orderInstant(expr, res.Series)
		default:
			res.Type = ValueMatrix
			res.Series = make([]Series, 0, len(m))
			for _, s := range m {
				if len(s.Points) > 0 {
					res.Series = append(res.Series, s)
				}
			}
			sortSeries(res.Series)
		}
	}
	if !instant {
		walk(expr, func(x metricsql.Expr) {
			if fe, ok := x.(*metricsql.FuncExpr); ok && strings.HasPrefix(fe.Name, "sort") {
				ev.warn("PromQL warning: sort is ineffective for range queries since results are always ordered by labels")
			}
		})
	}
	res.Warnings, res.Infos = ev.warnings, ev.infos
	res.Tier, res.SamplesRead = tierName(ev.tiersUsed), ev.samplesRead
	if err := ctx.Err(); err != nil {
		return nil, ctxError(err)
	}
	return res, nil
}

// dropNaNs removes the float points whose value is NaN.
func dropNaNs(m Matrix) Matrix {
	for i := range m {
		s := &m[i]
		if !slices.ContainsFunc(s.Points, func(p Point) bool { return math.IsNaN(p.F) }) {
			continue
		}
		var pts []Point
		var hs []*histogram.FloatHistogram
		for j, p := range s.Points {
			if s.H(j) == nil && math.IsNaN(p.F) {
				continue
			}
			pts = append(pts, p)
			if s.Histograms != nil {
				hs = append(hs, s.Histograms[j])
			}
		}
		s.Points, s.Histograms = pts, hs
	}
	return m
}

func ctxError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Type: ErrTimeout, Err: errors.New("query timed out in query execution")}
	}
	return &Error{Type: ErrCanceled, Err: errors.New("query was canceled in query execution")}
}

// orderInstant orders an instant vector as Prometheus does: by value for
// sort and sort_desc, by the given labels for sort_by_label, as computed
// for topk and bottomk, and by labels otherwise.
func orderInstant(e metricsql.Expr, ss []Series) {
	nanLast := func(a, b float64, desc bool) int {
		switch {
		case math.IsNaN(a) && math.IsNaN(b):
			return 0
		case math.IsNaN(a):
			return 1
		case math.IsNaN(b):
			return -1
		case a < b:
			if desc {
				return 1
			}
			return -1
		case a > b:
			if desc {
				return -1
			}
			return 1
		}
		return 0
	}
	switch e := e.(type) {
	case *metricsql.AggrFuncExpr:
		if e.Name == "topk" || e.Name == "bottomk" {
			return
		}
	case *metricsql.FuncExpr:
		switch e.Name {
		case "sort", "sort_desc":
			desc := e.Name == "sort_desc"
			slices.SortStableFunc(ss, func(a, b Series) int { return nanLast(a.Points[0].F, b.Points[0].F, desc) })
			return
		case "sort_by_label", "sort_by_label_desc", "sort_by_label_numeric", "sort_by_label_numeric_desc":
			var names []string
			for _, a := range e.Args[1:] {
				if s, ok := a.(*metricsql.StringExpr); ok {
					names = append(names, s.S)
				}
			}
			desc := e.Name == "sort_by_label_desc" || e.Name == "sort_by_label_numeric_desc"
			slices.SortStableFunc(ss, func(a, b Series) int {
				c := 0
				for _, n := range names {
					if c = naturalCompare(a.Metric.Get(n), b.Metric.Get(n)); c != 0 {
						break
					}
				}
				if c == 0 {
					c = labels.Compare(a.Metric, b.Metric)
				}
				if desc {
					return -c
				}
				return c
			})
			return
		}
	}
	sortSeries(ss)
}

// naturalCompare orders strings with embedded numbers by their value
// ("a2" < "a10").
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		ad, bd := a[0] >= '0' && a[0] <= '9', b[0] >= '0' && b[0] <= '9'
		if ad && bd {
			i, j := 0, 0
			for i < len(a) && a[i] >= '0' && a[i] <= '9' {
				i++
			}
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if len(na) != len(nb) {
				return len(na) - len(nb)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func sortSeries(ss []Series) {
	slices.SortFunc(ss, func(a, b Series) int { return labels.Compare(a.Metric, b.Metric) })
}

func typeName(t ValueType) string {
	switch t {
	case ValueMatrix:
		return "range vector"
	case ValueVector:
		return "instant vector"
	}
	return string(t)
}

// evalDone, when set (by tests), sees the evaluator and the matrix it
// returned, before the result is made from it.
var evalDone func(ev *evaluator, m Matrix)

// evalPanic carries an error out of the recursive evaluation.
type evalPanic struct{ err error }

type evaluator struct {
	ctx context.Context
	q   storage.Querier
	// slabs are the engine's spare point slabs (nil in tests); collect,
	// when set, gathers the full slabs a selection takes from or adds to
	// them, so that its consumer can give them back (recycle).
	slabs                *sync.Pool
	collect              *[][]Point
	start, end, interval int64
	lookback, subStep    int64
	// samples is how many points the query holds now: those read from
	// storage and those the expressions produced, until the expression
	// that consumes them releases them (Prometheus' currentSamples).
	maxSamples, samples int
	maxSeries, series   int
	// credit is the work left before the context is looked at again.
	credit       int
	qStart, qEnd int64 // of the whole query: start() and end()
	instant      bool
	// vm is set for a query Prometheus's parser refuses: its rollups
	// answer as VictoriaMetrics's (see vmRollupOfQuery).
	vm              bool
	warnings, infos []string
	// statsSelectors are the selectors whose histograms only matter by
	// their count and sum (see histogramStatsSelectors).
	statsSelectors map[*metricsql.MetricExpr]bool
	// generalPaths: Options.generalPaths.
	generalPaths    bool
	aggregatedRange *atomic.Int64 // the engine's
	// hbuf is scratch for the windows of series holding histograms.
	hbuf []hpoint
	// tq reads downsampled tiers (nil: none); see tier.go.
	tq           storage.TierQuerier
	tierMinRange int64
	// tiersUsed names the tiers that answered a selector ("raw" for raw
	// samples); samplesRead counts samples and buckets read.
	tiersUsed   map[string]bool
	samplesRead int64
	// delayNameRemoval marks series whose name is to be dropped instead
	// of dropping it (see name_removal.go).
	delayNameRemoval bool
}

// join takes back the state of a sub-evaluator (a subquery, an @).
func (ev *evaluator) join(sub *evaluator) {
	ev.samples, ev.series, ev.credit, ev.warnings, ev.infos = sub.samples, sub.series, sub.credit, sub.warnings, sub.infos
	ev.tiersUsed, ev.samplesRead = sub.tiersUsed, sub.samplesRead
}

func (ev *evaluator) fail(err error) {
	panic(evalPanic{err})
}

func (ev *evaluator) failf(format string, args ...any) {
	ev.fail(execErr(format, args...))
}

func (ev *evaluator) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(ev.warnings, msg) {
		ev.warnings = append(ev.warnings, msg)
	}
}

func (ev *evaluator) info(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(ev.infos, msg) {
		ev.infos = append(ev.infos, msg)
	}
}

func (ev *evaluator) checkCtx() {
	if err := ev.ctx.Err(); err != nil {
		ev.fail(ctxError(err))
	}
}

// ctxCheckEvery is the work (points and steps visited, roughly) between
// two looks at the context: a few milliseconds at most, so a deadline is
// kept within that.
const ctxCheckEvery = 1 << 12

// spend accounts for n units of work and looks at the context when the
// credit is used up. Every loop whose length depends on the data or on
// the steps calls it.
func (ev *evaluator) spend(n int) {
	ev.credit -= n
	if ev.credit < 0 {
		ev.credit = ctxCheckEvery
		ev.checkCtx()
	}
}

// addSamples accounts for n points the query now holds, failing as
// Prometheus does beyond the limit. Call it before allocating them where
// their number is known.
func (ev *evaluator) addSamples(n int) {
	ev.samples += n
	if ev.samples > ev.maxSamples {
		ev.tooManySamples()
	}
}

func (ev *evaluator) tooManySamples() {
	ev.fail(execErr("query processing would load too many samples into memory in query execution"))
}

// release accounts for the points of m, which the caller is done with.
func (ev *evaluator) release(ms ...Matrix) {
	for _, m := range ms {
		for _, s := range m {
			ev.samples -= len(s.Points)
		}
	}
}

// checkSteps refuses a (sub)evaluation whose steps alone are more points
// than the query may hold, before anything is allocated for them.
func (ev *evaluator) checkSteps(what string) {
	if steps := (ev.end - ev.start) / ev.interval; steps >= int64(ev.maxSamples) {
		ev.failf("%s would evaluate %d steps, more than the %d samples a query may hold (--query.max-samples); use a larger step",
			what, steps+1, ev.maxSamples)
	}
}

// numSteps is the number of evaluation steps.
func (ev *evaluator) numSteps() int { return int((ev.end-ev.start)/ev.interval) + 1 }

// stepTime is the time of step k.
func (ev *evaluator) stepTime(k int) int64 { return ev.start + int64(k)*ev.interval }

// eval evaluates a scalar or instant-vector expression over all steps.
// A scalar is a Matrix of one unlabelled series with a point at every step.
func (ev *evaluator) eval(e metricsql.Expr) Matrix {
	ev.checkCtx()
	switch e := e.(type) {
	case *metricsql.NumberExpr:
		return ev.constant(e.N)
	case *metricsql.DurationExpr:
		return ev.constant(float64(e.Duration(ev.interval)) / 1000)
	case *metricsql.MetricExpr:
		if ev.vm {
			return ev.vmSelector(e)
		}
		return ev.vectorSelector(e, 0, nil, false)
	case *metricsql.RollupExpr:
		if e.Window != nil || e.ForSubquery() {
			ev.failf("unexpected range vector")
		}
		return ev.evalOffsetAt(e)
	case *metricsql.FuncExpr:
		return ev.call(e)
	case *metricsql.AggrFuncExpr:
		m := ev.aggregate(e)
		if e.Limit > 0 && len(m) > e.Limit {
			// MetricsQL's `limit N`: at most N groups, with all the
			// series each makes (topk, quantiles, histogram make
			// several). VictoriaMetrics keeps the first it meets, in no
			// promised order; these are the first by their labels, so
			// an answer does not change from one run to the next.
			without := strings.EqualFold(e.Modifier.Op, "without")
			key := func(s Series) labels.Labels { return groupLabels(s.Metric, e.Modifier.Args, without) }
			slices.SortFunc(m, func(a, b Series) int {
				if c := labels.Compare(key(a), key(b)); c != 0 {
					return c
				}
				return labels.Compare(a.Metric, b.Metric)
			})
			groups, n := 0, 0
			for i := range m {
				if i == 0 || !labels.Equal(key(m[i]), key(m[i-1])) {
					if groups++; groups > e.Limit {
						break
					}
				}
				n++
			}
			m = m[:n]
		}
		return m
	case *metricsql.BinaryOpExpr:
		return ev.binary(e)
	case *metricsql.StringExpr:
		ev.fail(badData("unexpected string literal %q", e.S))
	}
	ev.fail(badData("unsupported expression %s", e.AppendString(nil)))
	return nil
}

func (ev *evaluator) constant(v float64) Matrix {
	n := ev.numSteps()
	ev.addSamples(n)
	pts := make([]Point, n)
	for k := range pts {
		if k&(ctxCheckEvery-1) == 0 {
			ev.spend(ctxCheckEvery)
		}
		pts[k] = Point{T: ev.stepTime(k), F: v}
	}
	return Matrix{{Metric: labels.EmptyLabels(), Points: pts}}
}

// atTime resolves an @ modifier to milliseconds.
func (ev *evaluator) atTime(at metricsql.Expr) *int64 {
	if at == nil {
		return nil
	}
	var t int64
	switch a := at.(type) {
	case *metricsql.NumberExpr:
		if math.IsNaN(a.N) || math.IsInf(a.N, 0) || math.Abs(a.N) > 9.2e15 {
			ev.fail(badData("timestamp out of bounds for @ modifier: %v", a.N))
		}
		t = int64(math.Round(a.N * 1000))
	case *metricsql.DurationExpr:
		t = a.Duration(0)
	case *metricsql.FuncExpr:
		switch a.Name {
		case "start":
			t = ev.qStart
		case "end":
			t = ev.qEnd
		default:
			ev.fail(badData("unsupported @ modifier %s", at.AppendString(nil)))
		}
	default:
		ev.fail(badData("unsupported @ modifier %s", at.AppendString(nil)))
	}
	return &t
}

func (ev *evaluator) offsetOf(d *metricsql.DurationExpr) int64 {
	if d == nil {
		return 0
	}
	return d.Duration(ev.windowStep())
}

// evalOffsetAt evaluates `expr offset d @ t` without a range.
func (ev *evaluator) evalOffsetAt(re *metricsql.RollupExpr) Matrix {
	off := ev.offsetOf(re.Offset)
	at := ev.atTime(re.At)
	if me, ok := re.Expr.(*metricsql.MetricExpr); ok {
		if ev.vm {
			return ev.vmSelector(re)
		}
		return ev.vectorSelector(me, off, at, false)
	}
	// An expression with @ (offset applies to selectors only in PromQL).
	if at == nil && off == 0 {
		return ev.eval(re.Expr)
	}
	sub := *ev
	if at != nil {
		sub.start, sub.end, sub.interval = *at, *at, 1
	}
	sub.start -= off
	sub.end -= off
	// VictoriaMetrics evaluates `expr offset d` as the subquery
	// `default_rollup((expr)[:step] offset d)`, on times aligned to the
	// step: in an instant query (step 5m), expr at the last multiple of
	// five minutes at or before t − d.
	aligned := ev.vm && ev.instant && at == nil
	if aligned {
		t := sub.start - (sub.start%instantStep+instantStep)%instantStep
		sub.start, sub.end = t, t
	}
	m := sub.eval(re.Expr)
	ev.join(&sub)
	// Map the sub-evaluation's points back onto our steps.
	n := ev.numSteps()
	out := make(Matrix, 0, len(m))
	for _, s := range m {
		ev.spend(1 + len(s.Points))
		o := Series{Metric: s.Metric}
		c := 0
		for k := range n {
			if k&(ctxCheckEvery-1) == 0 {
				ev.spend(ctxCheckEvery)
			}
			want := ev.stepTime(k) - off
			if at != nil {
				want, c = *at, 0
			}
			if aligned {
				want, c = sub.start, 0
			}
			if p, ok := pointAt(s.Points, &c, want); ok {
				ev.addSamples(1)
				o.add(Point{T: ev.stepTime(k), F: p.F}, s.H(c))
			}
		}
		out = append(out, o)
	}
	ev.release(m)
	return out
}

func matchersOf(me *metricsql.MetricExpr) ([][]*labels.Matcher, error) {
	var out [][]*labels.Matcher
	for _, lfs := range me.LabelFilterss {
		set := make([]*labels.Matcher, 0, len(lfs))
		nonEmpty := false
		for _, lf := range lfs {
			t := labels.MatchEqual
			switch {
			case lf.IsRegexp && lf.IsNegative:
				t = labels.MatchNotRegexp
			case lf.IsRegexp:
				t = labels.MatchRegexp
			case lf.IsNegative:
				t = labels.MatchNotEqual
			}
			m, err := labels.NewMatcher(t, lf.Label, lf.Value)
			if err != nil {
				return nil, badData("invalid matcher %s: %v", lf.AppendString(nil), err)
			}
			nonEmpty = nonEmpty || !m.Matches("")
			set = append(set, m)
		}
		if !nonEmpty {
			return nil, badData("vector selector must contain at least one non-empty matcher")
		}
		out = append(out, set)
	}
	if len(out) == 0 {
		return nil, badData("vector selector must contain at least one non-empty matcher")
	}
	return out, nil
}

// pointSlab is how many points selectSeries allocates at once.
const pointSlab = 4096

// selectSeries reads the raw points of matching series in [mint, maxt].
func (ev *evaluator) selectSeries(me *metricsql.MetricExpr, mint, maxt int64, dropStale bool) []Series {
	return ev.selectSeriesLast(me, mint, maxt, dropStale, false)
}

// selectSeriesLast is selectSeries; with last, a series may hold only its
// newest sample in [mint, maxt] (when storage can tell it without reading
// the others: storage.LastSampler), which is all an instant selector at
// one step looks at.
func (ev *evaluator) selectSeriesLast(me *metricsql.MetricExpr, mint, maxt int64, dropStale, last bool) []Series {
	sets, err := matchersOf(me)
	if err != nil {
		ev.fail(err)
	}
	ev.usedTier("raw")
	var out []Series
	seen := map[string]bool{}
	var it storage.Iterator
	// hint sizes each series' points as the last one's: the series of a
	// selector are mostly alike, and growing them by append was the
	// query's largest allocation (issue 18's profile).
	hint := 0
	// Points are carved from slabs shared by the series (capacity capped,
	// so an append past the hint moves only that series): one allocation
	// per series was a third of a rate query's (issue 18).
	var slab []Point
	var tsBuf []int64 // a series' samples, before they become points
	var vsBuf []float64
	left := -1 // series still to read, when the set says
	points := func(n int) []Point {
		if n == 0 || n > pointSlab/4 {
			return make([]Point, 0, n)
		}
		if len(slab)+n > cap(slab) {
			size := pointSlab
			if left >= 0 {
				size = min(size, max(n, n*left))
			}
			slab = ev.newSlab(size)
		}
		k := len(slab)
		slab = slab[:k+n]
		return slab[k : k : k+n]
	}
	// add ends a series: counted of its points are spent already.
	add := func(ls labels.Labels, pts []Point, hs []*histogram.FloatHistogram, counted int) {
		ev.spend(1 + len(pts) - counted)
		ev.addSamples(len(pts) - counted)
		ev.samplesRead += int64(len(pts))
		if ev.series++; ev.maxSeries > 0 && ev.series > ev.maxSeries {
			ev.failf("the query selects more than %d series (--query.max-series); narrow its selectors", ev.maxSeries)
		}
		out = append(out, Series{Metric: ls, Points: pts, Histograms: hs})
		hint = len(pts)
	}
	for _, ms := range sets {
		ss := ev.q.Select(ev.ctx, &storage.SelectHints{Start: mint, End: maxt, Newest: last}, ms...)
		left = -1
		if l, ok := ss.(interface{ Len() int }); ok && l.Len() >= 0 { // a wrapper says -1 for unknown
			left = l.Len()
			if out == nil {
				out = make([]Series, 0, left)
			}
		}
		for ss.Next() {
			left--
			s := ss.At()
			ls := s.Labels()
			if len(sets) > 1 {
				k := ls.String()
				if seen[k] {
					continue
				}
				seen[k] = true
			}
			if last {
				if lsr, ok := s.(storage.LastSampler); ok {
					if t, v, found, known := lsr.LastFloat(mint, maxt); known {
						pts := points(1)
						if found && (!dropStale || !storage.IsStaleNaN(v)) {
							pts = append(pts, Point{T: t, F: v})
						}
						add(ls, pts, nil, 0)
						continue
					}
				}
			}
			it = s.Iterator(it)
			hit, _ := it.(storage.HistogramIterator)
			stats := ev.statsSelectors[me]
			var prevH *histogram.FloatHistogram
			pts := points(hint)
			var hs []*histogram.FloatHistogram // beside pts once a histogram came
			counted := 0                       // of pts, against the limit; a series may be long
			fr, batch := it.(storage.FloatRangeIterator)
			if batch && hit == nil {
				// Floats only: every sample at once, then the points.
				var err error
				if tsBuf, vsBuf, err = fr.AppendFloats(mint, maxt, tsBuf[:0], vsBuf[:0]); err != nil {
					ev.fail(execErr("read series %s: %v", ls, err))
				}
				if cap(pts) < len(tsBuf) {
					pts = points(len(tsBuf))
				}
				for i, t := range tsBuf {
					if v := vsBuf[i]; !dropStale || !storage.IsStaleNaN(v) {
						pts = append(pts, Point{T: t, F: v})
					}
					if len(pts)-counted == ctxCheckEvery {
						ev.spend(ctxCheckEvery)
						ev.addSamples(ctxCheckEvery)
						counted = len(pts)
					}
				}
			} else if it.SeekTo(mint) {
				for {
					t, v := it.At()
					if t > maxt {
						break
					}
					var h *histogram.FloatHistogram
					if hit != nil {
						h = hit.AtHistogram()
					}
					if h != nil {
						if h.CounterResetHint == histogram.CounterReset {
							// NB: Prometheus 3.14 never reads a reset hint back
							// from its storage (prometheus#15346): the sample
							// after a reset reads as unknown, and the reset is
							// found by comparing it with the one before.
							h.CounterResetHint = histogram.UnknownCounterReset
						}
						if stats && !storage.IsStaleHistogram(h) {
							prevH = deriveResetHint(h, prevH)
						}
						if !dropStale || !storage.IsStaleHistogram(h) {
							if hs == nil {
								hs = make([]*histogram.FloatHistogram, len(pts), cap(pts))
							}
							pts = append(pts, Point{T: t})
							hs = append(hs, h)
						}
					} else if !dropStale || !storage.IsStaleNaN(v) {
						pts = append(pts, Point{T: t, F: v})
						if hs != nil {
							hs = append(hs, nil)
						}
						if len(pts)-counted == ctxCheckEvery {
							ev.spend(ctxCheckEvery)
							ev.addSamples(ctxCheckEvery)
							counted = len(pts)
						}
					}
					if !it.Next() {
						break
					}
				}
			}
			if err := it.Err(); err != nil {
				ev.fail(execErr("read series %s: %v", ls, err))
			}
			add(ls, pts, hs, counted)
		}
		if err := ss.Err(); err != nil {
			ev.fail(execErr("select: %w", err)) // %w: the API maps storage.ErrUnavailable to 503
		}
	}
	if len(sets) > 1 {
		sortSeries(out)
	}
	return out
}

// newSlab returns an empty slab of size points: a spare one when it is a
// full slab and the engine has one.
func (ev *evaluator) newSlab(size int) []Point {
	if size != pointSlab || ev.slabs == nil {
		return make([]Point, 0, size)
	}
	var slab []Point
	if p, ok := ev.slabs.Get().(*[]Point); ok {
		slab = (*p)[:0]
	} else {
		slab = make([]Point, 0, pointSlab)
	}
	if ev.collect != nil {
		*ev.collect = append(*ev.collect, slab)
	}
	return slab
}

// recycle gives full slabs back to the engine; nothing may refer to their
// points any more.
func (ev *evaluator) recycle(slabs [][]Point) {
	if ev.slabs == nil {
		return
	}
	for _, s := range slabs {
		s = s[:0]
		ev.slabs.Put(&s)
	}
}

// refTime is the time a selector reads at for step k.
func (ev *evaluator) refTime(k int, off int64, at *int64) int64 {
	if at != nil {
		return *at - off
	}
	return ev.stepTime(k) - off
}

// vectorSelector evaluates an instant selector: at each step the newest
// sample in (t - lookback, t], unless it is a stale marker. With
// timestamps, the value is the sample's timestamp in seconds.
func (ev *evaluator) vectorSelector(me *metricsql.MetricExpr, off int64, at *int64, timestamps bool) Matrix {
	if !timestamps && rangeModOf(me) == modSmoothed {
		return ev.smoothedSelector(me, off, at)
	}
	if m, ok := ev.vectorFromTier(me, off, at, timestamps); ok {
		return m
	}
	n := ev.numSteps()
	lo, hi := ev.refTime(0, off, at), ev.refTime(n-1, off, at)
	// At one step only the newest sample in the window counts.
	raw := ev.selectSeriesLast(me, lo-ev.lookback+1, hi, false, n == 1)
	out := make(Matrix, 0, len(raw))
	for _, s := range raw {
		ev.spend(1 + len(s.Points))
		o := Series{Metric: s.Metric, Points: make([]Point, 0, min(n, len(s.Points)))}
		j := -1
		for k := range n {
			if k&(ctxCheckEvery-1) == 0 {
				ev.spend(ctxCheckEvery)
			}
			ref := ev.refTime(k, off, at)
			for j+1 < len(s.Points) && s.Points[j+1].T <= ref {
				j++
			}
			if j < 0 || s.Points[j].T <= ref-ev.lookback || isStale(s.Points[j], s.H(j)) {
				continue
			}
			h := s.H(j)
			p := Point{T: ev.stepTime(k), F: s.Points[j].F}
			if timestamps {
				p.F, h = float64(s.Points[j].T)/1000, nil
			}
			ev.addSamples(1)
			o.add(p, h)
		}
		out = append(out, o)
	}
	ev.release(raw)
	return out
}

// rangeArg is a range vector argument: raw points per series, and how each
// step's window is placed.
type rangeArg struct {
	series   []Series
	slabs    [][]Point // the full slabs series' points are in (newSlab)
	rng, off int64
	at       *int64
	selector bool // a matrix selector, not a subquery
	// mod is the selector's anchored or smoothed modifier; its windows
	// reach before further back, and after past their end, by the
	// lookback delta (extended_selectors.go).
	mod           rangeMod
	before, after int64
}

// window returns the points of s in (ref - rng, ref], widened by before
// and after, starting the search at *lo (windows only move forward).
func (ra *rangeArg) window(pts []Point, ref int64, lo, hi *int) []Point {
	for *lo < len(pts) && pts[*lo].T <= ref-ra.rng-ra.before {
		*lo++
	}
	if *hi < *lo {
		*hi = *lo
	}
	for *hi < len(pts) && pts[*hi].T <= ref+ra.after {
		*hi++
	}
	return pts[*lo:*hi]
}

// matrixArg evaluates a range selector or subquery for all steps.
func (ev *evaluator) matrixArg(e metricsql.Expr) *rangeArg {
	re, ok := e.(*metricsql.RollupExpr)
	if !ok || (re.Window == nil && !re.ForSubquery()) {
		ev.fail(badData("expected type range vector, got %s", typeName(mustType(e))))
	}
	ra := &rangeArg{off: ev.offsetOf(re.Offset), at: ev.atTime(re.At)}
	if re.Window != nil {
		ra.rng = re.Window.Duration(ev.windowStep())
	}
	if ra.rng <= 0 && !re.ForSubquery() {
		ev.fail(badData("range must be positive"))
	}
	n := ev.numSteps()
	lo, hi := ev.refTime(0, ra.off, ra.at), ev.refTime(n-1, ra.off, ra.at)
	if !re.ForSubquery() {
		me, ok := re.Expr.(*metricsql.MetricExpr)
		if !ok {
			ev.fail(badData("ranges only allowed for vector selectors"))
		}
		ra.selector = true
		if ra.mod = rangeModOf(me); ra.mod != modNone {
			ra.before = ev.lookback
			if ra.mod == modSmoothed {
				ra.after = ev.lookback
			}
		}
		ev.collect = &ra.slabs
		ra.series = ev.selectSeries(me, lo-ra.rng-ra.before+1, hi+ra.after, true)
		ev.collect = nil
		return ra
	}
	step := ev.subStep
	if re.Step != nil {
		step = re.Step.Duration(ev.windowStep())
	}
	if step <= 0 {
		ev.fail(badData("subquery step must be positive"))
	}
	sub := *ev
	sub.interval = step
	first := lo - ra.rng
	sub.start = step * (first / step)
	if sub.start <= first {
		sub.start += step
	}
	sub.end = hi
	if sub.end < sub.start {
		return ra
	}
	sub.checkSteps("subquery " + string(re.AppendString(nil)))
	m := sub.eval(re.Expr)
	ev.join(&sub)
	// As Prometheus: a subquery may miss the sample of a counter reset or
	// return it at several steps, so the reset hints of its histograms
	// are forgotten (the histograms are compared instead).
	for i := range m {
		for j, h := range m[i].Histograms {
			if h != nil && (h.CounterResetHint == histogram.CounterReset || h.CounterResetHint == histogram.NotCounterReset) {
				c := *h
				c.CounterResetHint = histogram.UnknownCounterReset
				m[i].Histograms[j] = &c
			}
		}
	}
	ra.series = m
	return ra
}

// rangeVectorAt is an instant query whose result is a range vector.
func (ev *evaluator) rangeVectorAt(re *metricsql.RollupExpr) Matrix {
	ra := ev.matrixArg(re)
	ref := ev.refTime(0, ra.off, ra.at)
	var out Matrix
	for _, s := range ra.series {
		ev.spend(1 + len(s.Points))
		lo, hi := 0, 0
		w := ra.window(s.Points, ref, &lo, &hi)
		if ra.mod != modNone {
			if s.Histograms != nil && hasHistograms(s.Histograms[lo:hi]) {
				ev.failf("%s modifier is not supported with histograms", ra.mod)
			}
			if w = extendFloats(w, ref-ra.rng, ref, ra.mod == modSmoothed); len(w) > 0 {
				ev.addSamples(len(w))
				out = append(out, Series{Metric: s.Metric, Points: w})
			}
			continue
		}
		if len(w) > 0 {
			ev.addSamples(len(w))
			o := Series{Metric: s.Metric, Points: slices.Clone(w)}
			if s.Histograms != nil {
				o.Histograms = slices.Clone(s.Histograms[lo:hi])
			}
			out = append(out, o)
		}
	}
	ev.release(ra.series)
	sortSeries(out)
	return out
}

// outMatrix gathers per-step output vectors into series by label set.
type outMatrix struct {
	ev *evaluator
	// first is the index of the series of each labels hash; more holds
	// the others of a hash two label sets share (a slice per hash was an
	// allocation per output series).
	first map[uint64]int
	more  map[uint64][]int
	m     Matrix
	// next is the series after the one last added: the steps of a range
	// mostly bring the same series in the same order, so add tries it
	// before hashing the labels (a hash and a map lookup per point were a
	// fifth of a range binary operation's time).
	next int
}

func newOutMatrix(ev *evaluator) *outMatrix { return newOutMatrixSized(ev, 0) }

// newOutMatrixSized is newOutMatrix with room for n output series.
func newOutMatrixSized(ev *evaluator, n int) *outMatrix {
	return &outMatrix{ev: ev, first: make(map[uint64]int, n), m: make(Matrix, 0, n)}
}

// find is the index of the output series labelled ls (hash h), or -1.
func (o *outMatrix) find(h uint64, ls labels.Labels) int {
	j, ok := o.first[h]
	if !ok {
		return -1
	}
	if labels.Equal(o.m[j].Metric, ls) {
		return j
	}
	for _, j := range o.more[h] {
		if labels.Equal(o.m[j].Metric, ls) {
			return j
		}
	}
	return -1
}

// insert adds an output series labelled ls (hash h) and returns its index.
func (o *outMatrix) insert(h uint64, ls labels.Labels) int {
	i := len(o.m)
	if _, ok := o.first[h]; ok {
		if o.more == nil {
			o.more = map[uint64][]int{}
		}
		o.more[h] = append(o.more[h], i)
	} else {
		o.first[h] = i
	}
	o.m = append(o.m, Series{Metric: ls})
	return i
}

// slot is the index of the output series labelled ls, added if new.
func (o *outMatrix) slot(ls labels.Labels) int {
	h := ls.Hash()
	if j := o.find(h, ls); j >= 0 {
		return j
	}
	return o.insert(h, ls)
}

func (o *outMatrix) add(ls labels.Labels, t int64, v float64, fh *histogram.FloatHistogram) {
	i := o.next
	if i >= len(o.m) {
		i = 0
	}
	if i >= len(o.m) || !labels.Equal(o.m[i].Metric, ls) {
		i = o.slot(ls)
	}
	o.next = i + 1
	if pts := o.m[i].Points; len(pts) > 0 && pts[len(pts)-1].T == t {
		o.ev.failf("vector cannot contain metrics with the same labelset")
	}
	o.ev.addSamples(1)
	o.m[i].add(Point{T: t, F: v}, fh)
}

// rangeEval runs f at every step over the instant vectors of args (a
// scalar argument is a one-sample vector) and gathers the outputs. It
// consumes args: their points are released.
func (ev *evaluator) rangeEval(f func(k int, ts int64, args []Vector) Vector, args ...Matrix) Matrix {
	n := ev.numSteps()
	cursors := make([][]int, len(args))
	width, most := 1, 0
	vecs := make([]Vector, len(args))
	for i, m := range args {
		cursors[i] = make([]int, len(m))
		width += len(m)
		most = max(most, len(m))
		vecs[i] = make(Vector, 0, len(m))
	}
	out := newOutMatrixSized(ev, most)
	for k := range n {
		// f's work at a step grows with its vectors' lengths.
		ev.spend(width)
		ts := ev.stepTime(k)
		for i, m := range args {
			v := vecs[i][:0]
			for j := range m {
				if p, ok := pointAt(m[j].Points, &cursors[i][j], ts); ok {
					v = append(v, Sample{Metric: m[j].Metric, T: ts, F: p.F, H: m[j].H(cursors[i][j])})
				}
			}
			vecs[i] = v
		}
		for _, s := range f(k, ts, vecs) {
			out.add(s.Metric, ts, s.F, s.H)
		}
	}
	ev.release(args...)
	return out.m
}

// pointAt moves cursor c through pts (in time order) to step time ts and
// returns the point there, if pts has one at ts.
func pointAt(pts []Point, c *int, ts int64) (Point, bool) {
	for *c < len(pts) && pts[*c].T < ts {
		*c++
	}
	if *c < len(pts) && pts[*c].T == ts {
		return pts[*c], true
	}
	return Point{}, false
}

// isStale reports whether a point (with its histogram h, nil for a
// float) is a stale marker.
func isStale(p Point, h *histogram.FloatHistogram) bool {
	if h != nil {
		return storage.IsStaleHistogram(h)
	}
	return storage.IsStaleNaN(p.F)
}

// rangeEvalSeries is rangeEval for one matrix argument, telling f which
// series each sample of the step's vector comes from. It consumes m.
func (ev *evaluator) rangeEvalSeries(f func(k int, ts int64, in Vector, idx []int) Vector, m Matrix) Matrix {
	n := ev.numSteps()
	cursors := make([]int, len(m))
	var v Vector
	var idx []int
	out := newOutMatrix(ev)
	for k := range n {
		ev.spend(1 + len(m))
		ts := ev.stepTime(k)
		v, idx = v[:0], idx[:0]
		for j := range m {
			if p, ok := pointAt(m[j].Points, &cursors[j], ts); ok {
				v = append(v, Sample{Metric: m[j].Metric, T: ts, F: p.F, H: m[j].H(cursors[j])})
				idx = append(idx, j)
			}
		}
		for _, s := range f(k, ts, v, idx) {
			out.add(s.Metric, ts, s.F, s.H)
		}
	}
	ev.release(m)
	return out.m
}

// scalarAt returns a scalar argument's value at step k.
func scalarAt(m Matrix, k int) float64 {
	if len(m) == 0 || k >= len(m[0].Points) {
		return math.NaN()
	}
	return m[0].Points[k].F
}

// timeDependent are the functions whose value depends on the evaluation
// time or on sample timestamps.
var timeDependent = map[string]bool{
	"time": true, "timestamp": true, "minute": true, "hour": true, "day_of_week": true,
	"day_of_month": true, "day_of_year": true, "days_in_month": true, "month": true, "year": true,
	"predict_linear": true, "start": true, "end": true, "range": true, "step": true,
}

// PinAt rewrites an instant query so that every selector and subquery
// without an @ modifier reads at t (ms); selectors inside a subquery are
// left alone. ok is false when the query's value
// depends on the evaluation time, so pinning would change it. Prometheus's
// test runner checks every instant query this way.
func PinAt(q string, t int64) (pinned string, ok bool, err error) {
	e, err := parseQuery(q, 0, 0, defaultParseLimits)
	if err != nil {
		return "", false, err
	}
	dependent := false
	walk(e, func(x metricsql.Expr) {
		if fe, isFn := x.(*metricsql.FuncExpr); isFn && timeDependent[fe.Name] {
			dependent = true
		}
	})
	if dependent {
		return "", false, nil
	}
	at := &metricsql.NumberExpr{N: float64(t) / 1000}
	var pin func(x metricsql.Expr) metricsql.Expr
	pin = func(x metricsql.Expr) metricsql.Expr {
		switch x := x.(type) {
		case *metricsql.MetricExpr:
			return &metricsql.RollupExpr{Expr: x, At: at}
		case *metricsql.RollupExpr:
			if x.At != nil {
				return x
			}
			// A subquery gets @ as a whole; its selectors keep reading
			// at its steps.
			c := *x
			c.At = at
			return &c
		case *metricsql.FuncExpr:
			c := *x
			c.Args = make([]metricsql.Expr, len(x.Args))
			for i, a := range x.Args {
				c.Args[i] = pin(a)
			}
			return &c
		case *metricsql.AggrFuncExpr:
			c := *x
			c.Args = make([]metricsql.Expr, len(x.Args))
			for i, a := range x.Args {
				c.Args[i] = pin(a)
			}
			return &c
		case *metricsql.BinaryOpExpr:
			c := *x
			c.Left, c.Right = pin(x.Left), pin(x.Right)
			return &c
		}
		return x
	}
	pinned = string(pin(e).AppendString(nil))
	if promqlAliases.MatchString(q) && !strings.Contains(q, "holt_winters") {
		// Parsed as MetricsQL's holt_winters, which keeps the metric name
		// and is not PromQL: print PromQL's name back.
		pinned = strings.ReplaceAll(pinned, "holt_winters(", "double_exponential_smoothing(")
	}
	return pinned, true, nil
}

// Selectors returns the matcher sets of every series selector in q (one
// list per selector, one set per or-alternative).
func Selectors(q string) ([][][]*labels.Matcher, error) {
	e, err := parseQuery(q, 0, 0, defaultParseLimits)
	if err != nil {
		return nil, err
	}
	var out [][][]*labels.Matcher
	walk(e, func(x metricsql.Expr) {
		if me, ok := x.(*metricsql.MetricExpr); ok {
			if sets, err := matchersOf(me); err == nil {
				out = append(out, sets)
			}
		}
	})
	return out, nil
}
