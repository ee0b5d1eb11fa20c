package ruler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"

	"github.com/emsdb/tsdb/query"
)

// tmplSample is what query() returns to templates.
type tmplSample struct {
	Labels map[string]string
	Value  float64
}

// expand renders a label or annotation template with Prometheus's
// variables ($labels, $value, $externalLabels) and functions.
func (r *Ruler) expand(ctx context.Context, tenant, name, text string, ls labels.Labels, value float64, ts int64) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	data := struct {
		Labels         map[string]string
		ExternalLabels map[string]string
		Value          float64
	}{Labels: ls.Map(), ExternalLabels: r.opts.ExternalLabels, Value: value}
	funcs := template.FuncMap{
		"query": func(q string) ([]tmplSample, error) {
			res, err := r.eng.Instant(ctx, tenant, q, ts)
			if err != nil {
				return nil, err
			}
			switch res.Type {
			case query.ValueScalar:
				return []tmplSample{{Labels: map[string]string{}, Value: res.Scalar.F}}, nil
			case query.ValueVector:
				out := make([]tmplSample, 0, len(res.Series))
				for _, s := range res.Series {
					out = append(out, tmplSample{Labels: s.Metric.Map(), Value: s.Points[0].F})
				}
				return out, nil
			}
			return nil, fmt.Errorf("query %q: a %s result cannot be used in a template", q, res.Type)
		},
		"first": func(v []tmplSample) (tmplSample, error) {
			if len(v) > 0 {
				return v[0], nil
			}
			return tmplSample{}, errors.New("first() called on vector with no elements")
		},
		"label":    func(l string, s tmplSample) string { return s.Labels[l] },
		"value":    func(s tmplSample) float64 { return s.Value },
		"strvalue": func(s tmplSample) string { return s.Labels["__value__"] },
		"args": func(args ...any) map[string]any {
			m := map[string]any{}
			for i, a := range args {
				m["arg"+strconv.Itoa(i)] = a
			}
			return m
		},
		"reReplaceAll": func(pattern, repl, text string) (string, error) {
			re, err := regexp.Compile(pattern)
			if err != nil {
				return "", err
			}
			return re.ReplaceAllString(text, repl), nil
		},
		"match":   regexp.MatchString,
		"title":   cases.Title(language.AmericanEnglish, cases.NoLower).String,
		"toUpper": strings.ToUpper,
		"toLower": strings.ToLower,
		"sortByLabel": func(l string, v []tmplSample) []tmplSample {
			out := append([]tmplSample(nil), v...)
			sort.SliceStable(out, func(i, j int) bool { return out[i].Labels[l] < out[j].Labels[l] })
			return out
		},
		"humanize":           humanize,
		"humanize1024":       humanize1024,
		"humanizeDuration":   humanizeDuration,
		"humanizePercentage": func(v any) (string, error) { f, err := toFloat(v); return fmt.Sprintf("%.4g%%", f*100), err },
		"humanizeTimestamp": func(v any) (string, error) {
			f, err := toFloat(v)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Sprintf("%.4g", f), err
			}
			return time.Unix(0, int64(f*1e9)).UTC().String(), nil
		},
		"toTime": func(v any) (time.Time, error) {
			f, err := toFloat(v)
			return time.Unix(0, int64(f*1e9)).UTC(), err
		},
		"externalURL": func() string { return r.opts.ExternalURL },
		"pathPrefix":  func() string { return "" },
		"safeHtml":    func(s string) string { return s },
		"stripPort": func(s string) string {
			if i := strings.LastIndex(s, ":"); i > 0 && !strings.Contains(s[i:], "]") {
				return s[:i]
			}
			return s
		},
		"stripDomain": func(s string) string {
			if i := strings.IndexByte(s, '.'); i > 0 {
				if j := strings.LastIndex(s, ":"); j > i {
					return s[:i] + s[j:]
				}
				return s[:i]
			}
			return s
		},
		"parseDuration": func(s string) (float64, error) {
			// As Prometheus's template: its duration syntax, negative too.
			d, err := model.ParseDurationAllowNegative(s)
			return time.Duration(d).Seconds(), err
		},
		"urlQueryEscape": func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "%", "%25"), " ", "%20") },
		"now":            func() float64 { return float64(ts) / 1000 },
	}
	t, err := template.New(name).Option("missingkey=zero").Funcs(funcs).Parse(
		"{{$labels := .Labels}}{{$value := .Value}}{{$externalLabels := .ExternalLabels}}" + text)
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return buf.String(), nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case string:
		return strconv.ParseFloat(x, 64)
	case tmplSample:
		return x.Value, nil
	}
	return 0, fmt.Errorf("cannot convert %v to a number", v)
}

// humanize formats with SI prefixes, as Prometheus's humanize.
func humanize(v any) (string, error) {
	f, err := toFloat(v)
	if err != nil {
		return "", err
	}
	if f == 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprintf("%.4g", f), nil
	}
	if math.Abs(f) >= 1 {
		prefix := ""
		for _, p := range []string{"k", "M", "G", "T", "P", "E", "Z", "Y"} {
			if math.Abs(f) < 1000 {
				break
			}
			prefix = p
			f /= 1000
		}
		return fmt.Sprintf("%.4g%s", f, prefix), nil
	}
	prefix := ""
	for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
		if math.Abs(f) >= 1 {
			break
		}
		prefix = p
		f *= 1000
	}
	return fmt.Sprintf("%.4g%s", f, prefix), nil
}

func humanize1024(v any) (string, error) {
	f, err := toFloat(v)
	if err != nil {
		return "", err
	}
	if math.Abs(f) <= 1 || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprintf("%.4g", f), nil
	}
	prefix := ""
	for _, p := range []string{"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"} {
		if math.Abs(f) < 1024 {
			break
		}
		prefix = p
		f /= 1024
	}
	return fmt.Sprintf("%.4g%s", f, prefix), nil
}

// humanizeDuration formats seconds as 1d 2h 3m 4s, as Prometheus does.
func humanizeDuration(v any) (string, error) {
	f, err := toFloat(v)
	if err != nil {
		return "", err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Sprintf("%.4g", f), nil
	}
	if f == 0 {
		return "0s", nil
	}
	if math.Abs(f) < 1 {
		prefix := ""
		for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
			if math.Abs(f) >= 1 {
				break
			}
			prefix = p
			f *= 1000
		}
		return fmt.Sprintf("%.4g%ss", f, prefix), nil
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	secs := int64(f) % 60
	mins := (int64(f) / 60) % 60
	hours := (int64(f) / 3600) % 24
	days := int64(f) / 86400
	switch {
	case days != 0:
		return fmt.Sprintf("%s%dd %dh %dm %ds", sign, days, hours, mins, secs), nil
	case hours != 0:
		return fmt.Sprintf("%s%dh %dm %ds", sign, hours, mins, secs), nil
	case mins != 0:
		return fmt.Sprintf("%s%dm %ds", sign, mins, secs), nil
	}
	return fmt.Sprintf("%s%.4gs", sign, f), nil
}
