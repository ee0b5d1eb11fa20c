package query

import (
	"regexp"
	"strings"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/promql/parser"
)

// The bounds on a query's text. The MetricsQL parser recurses once per
// nesting level (400,000 parentheses overflow the goroutine stack, which
// kills the process) and expands WITH templates by copying them at every
// use (`WITH (a0=1, a1=a0+a0, …, a26=a25+a25) a26` is 2^26 copies); it can
// be neither interrupted nor told a budget, so a query is measured before
// it gets there.
const (
	// DefaultMaxQueryLength is the default of Options.MaxQueryLength.
	// VictoriaMetrics' -search.maxQueryLen defaults to 16 KiB; Grafana's
	// regular expressions over many hosts can be longer, so we allow more.
	DefaultMaxQueryLength = 256 << 10
	// DefaultMaxDepth is the default of Options.MaxDepth: far more than
	// any hand-written or generated query nests, far less than what
	// exhausts a goroutine's stack in the parser or the evaluator.
	DefaultMaxDepth = 1000
	// DefaultMaxTerms is the default of Options.MaxTerms: 20,000 terms
	// parse in under 0.1 s (or expand, about 15 µs a term), but the
	// parser's time grows faster than linearly (200,000 take seconds).
	// VictoriaMetrics' 16 KiB is about 5,000 terms.
	DefaultMaxTerms = 20_000
)

// parseLimits bounds a query's text; see Options.
type parseLimits struct {
	maxLength, maxDepth, maxTerms int
}

var defaultParseLimits = parseLimits{DefaultMaxQueryLength, DefaultMaxDepth, DefaultMaxTerms}

// Parse parses a PromQL or MetricsQL query, after checking it against the
// default bounds (DefaultMaxQueryLength, DefaultMaxDepth, DefaultMaxTerms).
// PromQL 3 names metricsql spells differently are translated first,
// anchored and smoothed written as markers in their selectors
// (rewriteExtendedSelectors), fill modifiers as markers in their
// operations' label lists (rewriteFillModifiers), and modifiers before a subquery
// parenthesized (rewriteModifiedSubqueries). Its
// errors are *Error of type ErrBadData.
func Parse(q string) (metricsql.Expr, error) {
	return parseBounded(q, defaultParseLimits)
}

// parseQuery parses a query as the engine runs it: PromQL 3 duration
// arithmetic evaluated for the given step and range (ms), within lim.
func parseQuery(q string, step, rng int64, lim parseLimits) (metricsql.Expr, error) {
	// The rewriting recurses too: the text's shape is checked first.
	if err := lim.checkShape(q); err != nil {
		return nil, err
	}
	rewritten, err := rewriteDurations(q, step, rng)
	if err != nil {
		return nil, parseError(q, err)
	}
	return parseRewritten(q, rewritten, lim)
}

func parseBounded(q string, lim parseLimits) (metricsql.Expr, error) {
	return parseRewritten(q, q, lim)
}

// parseRewritten parses q, the query as the user wrote it, from its
// rewritten form.
func parseRewritten(orig, q string, lim parseLimits) (metricsql.Expr, error) {
	if err := lim.check(q); err != nil {
		return nil, err
	}
	q = promqlAliases.ReplaceAllStringFunc(q, func(s string) string {
		if strings.HasPrefix(s, "double_exponential_smoothing") {
			return "holt_winters" + strings.TrimPrefix(s, "double_exponential_smoothing")
		}
		return s
	})
	q = rewriteExtendedSelectors(q)
	q = rewriteFillModifiers(q)
	q = rewriteModifiedSubqueries(q)
	q = rewritePromQLOnly(q)
	e, err := metricsql.Parse(q)
	if err != nil {
		return nil, parseError(orig, err)
	}
	restorePromQLOnly(e)
	return e, nil
}

// promqlParser reads a query that MetricsQL refused, for the error only.
var promqlParser = parser.NewParser(parser.Options{EnableExperimentalFunctions: true, EnableBinopFillModifiers: true})

// parseError is the error for a query that did not parse. MetricsQL is
// the language we parse (a superset of most of PromQL), so a query is
// accepted when metricsql accepts it; only once it has refused does
// Prometheus's own parser read the query, and when that refuses it too,
// its error is the answer, with Prometheus's position and wording
// (`1:6: parse error: unexpected end of input`), which users and tools
// know. A query Prometheus accepts and MetricsQL does not gets
// MetricsQL's error. The query has passed the length and nesting bounds
// before either parser sees it.
func parseError(q string, mqlErr error) error {
	if _, err := promqlParser.ParseExpr(q); err != nil {
		return badData("invalid parameter \"query\": %w", &SyntaxError{Err: err})
	}
	return badData("invalid parameter \"query\": %w", &SyntaxError{Err: mqlErr})
}

// SyntaxError is why a query did not parse, without the API's framing
// (`invalid parameter "query": `): what `tsdb rules check` prints after
// "could not parse expression: ", as promtool does.
type SyntaxError struct {
	Err error
}

func (e *SyntaxError) Error() string { return e.Err.Error() }
func (e *SyntaxError) Unwrap() error { return e.Err }

// ParsePromQL checks q with Prometheus's own parser only, experimental
// functions allowed: what promtool accepts. Its errors are *SyntaxError.
func ParsePromQL(q string) error {
	if _, err := promqlParser.ParseExpr(q); err != nil {
		return &SyntaxError{Err: err}
	}
	return nil
}

var promqlAliases = regexp.MustCompile(`\bdouble_exponential_smoothing\s*\(`)

// check measures q against the limits: its length, how deeply it nests,
// and how many terms it has once its WITH templates are expanded.
func (lim parseLimits) check(q string) error {
	if err := lim.checkShape(q); err != nil {
		return err
	}
	if _, ok := expandedTerms(q, lim.maxTerms); !ok {
		return badData("query has too many terms once its WITH templates are expanded (names, numbers, strings, operators and brackets count one each); the limit is %d (--query.max-terms)", lim.maxTerms)
	}
	return nil
}

// checkShape checks only the length and the nesting: what must hold
// before the text is even rewritten (rewriteDurations recurses too).
func (lim parseLimits) checkShape(q string) error {
	if len(q) > lim.maxLength {
		return badData("query is %d bytes long; the limit is %d (--query.max-length)", len(q), lim.maxLength)
	}
	if d := nesting(q); d > lim.maxDepth {
		return badData("query is nested %d deep; the limit is %d (--query.max-depth)", d, lim.maxDepth)
	}
	return nil
}
