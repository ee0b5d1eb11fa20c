package api

import (
	"math"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/query"
)

// Bounds used when a time parameter is absent, as Prometheus does.
var (
	minTime = time.Unix(math.MinInt64/1000+62135596801, 0).UTC().UnixMilli()
	maxTime = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC().UnixMilli()
)

// args returns the request's parameters: the query string, and for a
// form POST the body too.
func args(ctx *fasthttp.RequestCtx) func(name string) [][]byte {
	return func(name string) [][]byte {
		vals := ctx.QueryArgs().PeekMulti(name)
		if ctx.IsPost() {
			vals = append(vals, ctx.PostArgs().PeekMulti(name)...)
		}
		return vals
	}
}

func arg(ctx *fasthttp.RequestCtx, name string) string {
	vals := args(ctx)(name)
	if len(vals) == 0 {
		return ""
	}
	return string(vals[0])
}

// parseTime parses a Prometheus API time: RFC 3339 or Unix seconds with
// an optional fraction. It returns milliseconds.
func parseTime(s string, def int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || f*1000 < float64(minTime) || f*1000 > float64(maxTime) {
			return 0, badData("time %q is out of range", s)
		}
		return int64(math.Round(f * 1000)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMilli(), nil
	}
	return 0, badData("cannot parse %q to a valid timestamp", s)
}

// timeRange reads start and end.
func timeRange(ctx *fasthttp.RequestCtx) (int64, int64, error) {
	start, err := parseTime(arg(ctx, "start"), minTime)
	if err != nil {
		return 0, 0, badData("invalid parameter \"start\": %v", err)
	}
	end, err := parseTime(arg(ctx, "end"), maxTime)
	if err != nil {
		return 0, 0, badData("invalid parameter \"end\": %v", err)
	}
	if end < start {
		return 0, 0, badData("invalid parameter \"end\": end timestamp must not be before start time")
	}
	return start, end, nil
}

// matchers reads the match[] parameters; at least one is required.
func matchers(ctx *fasthttp.RequestCtx) ([][]*labels.Matcher, error) {
	raw := args(ctx)("match[]")
	if len(raw) == 0 {
		return nil, badData("no match[] parameter provided")
	}
	var out [][]*labels.Matcher
	for _, r := range raw {
		sets, err := query.ParseSelector(string(r))
		if err != nil {
			return nil, err
		}
		out = append(out, sets...)
	}
	return out, nil
}
