package promqltest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
)

// Value is one value of a series line: a float or a native histogram.
type Value struct {
	F float64
	H *histogram.FloatHistogram
	// HintSet tells that the script named the histogram's counter reset
	// hint (counter_reset_hint:…); only then does a comparison check it.
	HintSet bool
}

// parseHistogramItem expands a histogram item of a series line:
// {{desc}}, {{desc}}xN (N+1 copies), {{a}}+{{b}}xN and {{a}}-{{b}}xN
// (a, then b added or subtracted N times), as Prometheus's series
// notation does.
func parseHistogramItem(it string) ([]*Value, error) {
	end := strings.Index(it, "}}")
	if end < 0 {
		return nil, fmt.Errorf("unterminated histogram %q", it)
	}
	base, baseSet, err := parseHistogramDesc(it[2:end])
	if err != nil {
		return nil, err
	}
	rest := it[end+2:]
	if rest == "" {
		return []*Value{{H: base, HintSet: baseSet}}, nil
	}
	if n, ok := strings.CutPrefix(rest, "x"); ok {
		k, err := strconv.Atoi(n)
		if err != nil || k < 0 {
			return nil, fmt.Errorf("bad histogram repetition %q", it)
		}
		out := make([]*Value, 0, k+1)
		for range k + 1 {
			out = append(out, &Value{H: base.Copy(), HintSet: baseSet})
		}
		return out, nil
	}
	if len(rest) < 4 || (rest[0] != '+' && rest[0] != '-') || !strings.HasPrefix(rest[1:], "{{") {
		return nil, fmt.Errorf("bad histogram item %q", it)
	}
	sub := rest[0] == '-'
	end2 := strings.Index(rest, "}}")
	if end2 < 0 {
		return nil, fmt.Errorf("unterminated histogram %q", it)
	}
	inc, incSet, err := parseHistogramDesc(rest[3:end2])
	if err != nil {
		return nil, err
	}
	n, ok := strings.CutPrefix(rest[end2+2:], "x")
	if !ok {
		return nil, fmt.Errorf("bad histogram series %q: want {{a}}+{{b}}xN", it)
	}
	k, err := strconv.Atoi(n)
	if err != nil || k < 0 {
		return nil, fmt.Errorf("bad histogram repetition %q", it)
	}
	// As Prometheus: every value carries the hint flag of the increment.
	out := make([]*Value, 0, k+1)
	out = append(out, &Value{H: base, HintSet: incSet})
	cur := base
	for range k {
		if cur.Schema > inc.Schema {
			return nil, fmt.Errorf("error combining histograms: cannot merge from schema %d to %d", inc.Schema, cur.Schema)
		}
		var next *histogram.FloatHistogram
		if sub {
			next, _, _, err = cur.Copy().Sub(inc)
		} else {
			next, _, _, err = cur.Copy().Add(inc)
		}
		if err != nil {
			return nil, fmt.Errorf("histogram series %q: %w", it, err)
		}
		cur = next
		out = append(out, &Value{H: cur, HintSet: incSet})
	}
	return out, nil
}

// parseHistogramDesc parses the inside of {{…}}: key:value pairs
// separated by blanks, where a value is a number, a [list of numbers] or
// a counter reset hint. It reports whether counter_reset_hint was given.
func parseHistogramDesc(s string) (*histogram.FloatHistogram, bool, error) {
	h := &histogram.FloatHistogram{}
	hintSet := false
	var offset, nOffset int32
	var pos, neg []float64
	seen := map[string]bool{}
	s = strings.TrimSpace(s)
	for s != "" {
		key, rest, ok := strings.Cut(s, ":")
		if !ok {
			return nil, false, fmt.Errorf("bad histogram description %q", s)
		}
		key = strings.TrimSpace(key)
		if seen[key] {
			return nil, false, fmt.Errorf("duplicate key %q in histogram", key)
		}
		seen[key] = true
		rest = strings.TrimLeft(rest, " ")
		var val string
		if strings.HasPrefix(rest, "[") {
			j := strings.IndexByte(rest, ']')
			if j < 0 {
				return nil, false, fmt.Errorf("unterminated list in %q", s)
			}
			val, s = rest[:j+1], strings.TrimSpace(rest[j+1:])
		} else {
			j := strings.IndexAny(rest, " \t")
			if j < 0 {
				j = len(rest)
			}
			val, s = rest[:j], strings.TrimSpace(rest[j:])
		}
		var err error
		switch key {
		case "schema":
			var v int64
			v, err = strconv.ParseInt(val, 10, 32)
			h.Schema = int32(v)
		case "sum":
			h.Sum, err = parseNumber(val)
		case "count":
			h.Count, err = parseNumber(val)
		case "z_bucket":
			h.ZeroCount, err = parseNumber(val)
		case "z_bucket_w":
			h.ZeroThreshold, err = parseNumber(val)
		case "offset":
			var v int64
			v, err = strconv.ParseInt(val, 10, 32)
			offset = int32(v)
		case "n_offset":
			var v int64
			v, err = strconv.ParseInt(val, 10, 32)
			nOffset = int32(v)
		case "buckets":
			pos, err = parseFloatList(val)
		case "n_buckets":
			neg, err = parseFloatList(val)
		case "custom_values":
			h.CustomValues, err = parseFloatList(val)
		case "counter_reset_hint":
			hintSet = true
			switch val {
			case "unknown":
				h.CounterResetHint = histogram.UnknownCounterReset
			case "reset":
				h.CounterResetHint = histogram.CounterReset
			case "not_reset":
				h.CounterResetHint = histogram.NotCounterReset
			case "gauge":
				h.CounterResetHint = histogram.GaugeType
			default:
				err = fmt.Errorf("unknown counter reset hint %q", val)
			}
		default:
			err = fmt.Errorf("unknown key %q", key)
		}
		if err != nil {
			return nil, false, fmt.Errorf("histogram %s: %w", key, err)
		}
	}
	if len(pos) > 0 {
		h.PositiveBuckets = pos
		h.PositiveSpans = []histogram.Span{{Offset: offset, Length: uint32(len(pos))}}
	}
	if len(neg) > 0 {
		h.NegativeBuckets = neg
		h.NegativeSpans = []histogram.Span{{Offset: nOffset, Length: uint32(len(neg))}}
	}
	return h, hintSet, nil
}

func parseFloatList(s string) ([]float64, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	var out []float64
	for _, f := range strings.Fields(s) {
		v, err := parseNumber(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
