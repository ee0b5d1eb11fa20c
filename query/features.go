package query

import (
	"fmt"
	"slices"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/promql/parser"
)

// Feature names an experimental part of PromQL, as Prometheus's
// --enable-feature names it.
type Feature string

// The experimental PromQL features of Prometheus 3.14 the engine knows.
const (
	// FeatureExperimentalFunctions enables the experimental functions and
	// aggregations (limitk, limit_ratio, sort_by_label, info, ts_of_*, …).
	FeatureExperimentalFunctions Feature = "promql-experimental-functions"
	// FeatureDelayedNameRemoval keeps __name__ until the end of the
	// evaluation instead of dropping it in each function.
	FeatureDelayedNameRemoval Feature = "promql-delayed-name-removal"
	// FeatureExtendedRangeSelectors enables the anchored and smoothed
	// modifiers of selectors.
	FeatureExtendedRangeSelectors Feature = "promql-extended-range-selectors"
	// FeatureBinopFillModifiers enables fill, fill_left and fill_right on
	// binary operations.
	FeatureBinopFillModifiers Feature = "promql-binop-fill-modifiers"
)

// KnownFeatures lists the features the engine knows, sorted.
func KnownFeatures() []Feature {
	return []Feature{FeatureBinopFillModifiers, FeatureDelayedNameRemoval, FeatureExperimentalFunctions, FeatureExtendedRangeSelectors}
}

// Features is a set of enabled features. The zero value enables none.
type Features map[Feature]bool

// Has reports whether f is enabled.
func (fs Features) Has(f Feature) bool { return fs[f] }

// ParseFeatures reads feature names (as --enable-feature lists them, each
// item possibly a comma-separated list). An unknown name is an error that
// lists the known ones.
func ParseFeatures(names ...string) (Features, error) {
	fs := Features{}
	known := KnownFeatures()
	for _, item := range names {
		for n := range strings.SplitSeq(item, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if !slices.Contains(known, Feature(n)) {
				ks := make([]string, len(known))
				for i, k := range known {
					ks[i] = string(k)
				}
				return nil, fmt.Errorf("query: unknown feature %q; known features: %s", n, strings.Join(ks, ", "))
			}
			fs[Feature(n)] = true
		}
	}
	return fs, nil
}

// AllFeatures enables every feature the engine knows, as Prometheus's own
// test runner does for its scripts.
func AllFeatures() Features {
	fs := Features{}
	for _, f := range KnownFeatures() {
		fs[f] = true
	}
	return fs
}

// experimentalFuncs are the functions Prometheus 3.14 marks experimental
// (parser/functions.go), less the duration functions (start, end, step,
// range, min_of, max_of) its duration expressions always allow, and less
// those MetricsQL has under the same name (mad_over_time, sort_by_label,
// sort_by_label_desc), which were answered before the flag existed and
// stay so: with the flag off nothing changes.
var experimentalFuncs = map[string]bool{
	"histogram_quantiles": true, "double_exponential_smoothing": true, "info": true,
	"ts_of_first_over_time": true, "ts_of_max_over_time": true,
	"ts_of_min_over_time": true, "ts_of_last_over_time": true, "start_timestamp": true,
}

// experimentalAggrs are the aggregations Prometheus 3.14 marks
// experimental, less MetricsQL's limitk.
var experimentalAggrs = map[string]bool{"limit_ratio": true}

// vmHistogramQuantiles says whether fe is MetricsQL's
// histogram_quantiles("phi", q1, …, buckets), which needs no feature.
func vmHistogramQuantiles(fe *metricsql.FuncExpr) bool {
	if fe.Name != "histogram_quantiles" || len(fe.Args) == 0 {
		return false
	}
	_, ok := fe.Args[0].(*metricsql.StringExpr)
	return ok
}

// checkFeatures refuses a query that uses an experimental feature fs does
// not enable, with the error Prometheus gives. NB: MetricsQL's limitk,
// sort_by_label(_desc) and mad_over_time are answered either way.
func checkFeatures(q string, e metricsql.Expr, fs Features) error {
	if err := checkExtendedSelectors(q, fs); err != nil {
		return err
	}
	if err := checkFillModifiers(q, fs); err != nil {
		return err
	}
	var msg string
	if !fs.Has(FeatureExperimentalFunctions) {
		walk(e, func(x metricsql.Expr) {
			if msg != "" {
				return
			}
			switch x := x.(type) {
			case *metricsql.FuncExpr:
				if experimentalFuncs[x.Name] && !vmHistogramQuantiles(x) {
					msg = fmt.Sprintf("function %q is not enabled", x.Name)
				}
			case *metricsql.AggrFuncExpr:
				if experimentalAggrs[x.Name] {
					msg = fmt.Sprintf("%s() is experimental and must be enabled with --enable-feature=promql-experimental-functions", x.Name)
				}
			}
		})
	}
	if msg == "" && !fs.Has(FeatureExperimentalFunctions) && promqlAliases.MatchString(q) {
		// Parsed as holt_winters (MetricsQL's name), which stays allowed.
		msg = `function "double_exponential_smoothing" is not enabled`
	}
	if msg == "" {
		return nil
	}
	// Prometheus's parser, with the same features off, tells where.
	p := parser.NewParser(parser.Options{
		EnableExperimentalFunctions: fs.Has(FeatureExperimentalFunctions),
		EnableBinopFillModifiers:    fs.Has(FeatureBinopFillModifiers),
	})
	if _, err := p.ParseExpr(q); err != nil {
		return badData("invalid parameter \"query\": %w", &SyntaxError{Err: err})
	}
	return badData("invalid parameter \"query\": %w", &SyntaxError{Err: fmt.Errorf("parse error: %s", msg)})
}
