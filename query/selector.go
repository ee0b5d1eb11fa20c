package query

import (
	"errors"
	"fmt"

	"github.com/VictoriaMetrics/metricsql"
	"github.com/prometheus/prometheus/model/labels"
)

// ErrBadSelector reports a series selector that does not parse or selects
// everything.
var ErrBadSelector = errors.New("query: bad series selector")

// ParseSelector parses a series selector such as `up{job="x"}` into one
// matcher set per alternative (MetricsQL allows `{a="1" or b="2"}`). Every
// set must contain a matcher that does not match the empty string, as in
// Prometheus, so a selector cannot silently select every series. The
// selector is held to the bounds of Parse first.
func ParseSelector(s string) ([][]*labels.Matcher, error) {
	if err := defaultParseLimits.check(s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSelector, err)
	}
	e, err := metricsql.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadSelector, s, err)
	}
	me, ok := e.(*metricsql.MetricExpr)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not a series selector", ErrBadSelector, s)
	}
	out, err := matchersOf(me)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadSelector, s, err)
	}
	return out, nil
}
