// Package rulefmt reads Prometheus rule files (groups of recording and
// alerting rules) and checks them as strictly as `promtool check rules`.
package rulefmt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/alerting/alerttmpl"
	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/query"
)

// File is one rule file.
type File struct {
	Groups []Group `yaml:"groups"`
}

// Group is a rule group.
type Group struct {
	Name        string            `yaml:"name"`
	Interval    Duration          `yaml:"interval,omitempty"`
	QueryOffset Duration          `yaml:"query_offset,omitempty"`
	Limit       int               `yaml:"limit,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Rules       []Rule            `yaml:"rules"`
}

// Rule is a recording rule (Record set) or an alerting rule (Alert set).
type Rule struct {
	Record        string            `yaml:"record,omitempty"`
	Alert         string            `yaml:"alert,omitempty"`
	Expr          string            `yaml:"expr"`
	For           Duration          `yaml:"for,omitempty"`
	KeepFiringFor Duration          `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels,omitempty"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

// Name is the rule's record or alert name.
func (r *Rule) Name() string {
	if r.Record != "" {
		return r.Record
	}
	return r.Alert
}

// Duration is a Prometheus duration in YAML (5m, 1h30m): the config
// file's type, so that rule files and the config file read the same
// values.
type Duration = duration.Duration

var (
	metricNameRe = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRe  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Error is one problem in a rule file, located as promtool reports it.
type Error struct {
	Group string
	Rule  int // 1-based; 0: the group itself
	Name  string
	Err   error
}

func (e *Error) Error() string {
	if e.Rule == 0 {
		return fmt.Sprintf("group %q: %v", e.Group, e.Err)
	}
	return fmt.Sprintf("group %q, rule %d, %q: %v", e.Group, e.Rule, e.Name, e.Err)
}

// Options says how strictly a rule file is checked.
type Options struct {
	// PromQL requires expressions that Prometheus's own parser accepts,
	// as promtool does; otherwise MetricsQL (what the ruler runs) is
	// accepted too.
	PromQL bool
}

// ParseFile reads and checks a rule file; expressions may be MetricsQL.
func ParseFile(path string) (*File, []error) {
	return ParseFileOptions(path, Options{})
}

// ParseFileOptions reads and checks a rule file as o says.
func ParseFileOptions(path string, o Options) (*File, []error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{err}
	}
	f, errs := ParseOptions(b, o)
	for i, e := range errs {
		errs[i] = fmt.Errorf("%s: %w", path, e)
	}
	return f, errs
}

// Parse reads and checks rule-file content: unknown keys, duplicate
// groups, rules that are neither or both of record and alert, expressions
// that do not parse, bad names and labels, templates that do not parse.
func Parse(content []byte) (*File, []error) {
	return ParseOptions(content, Options{})
}

// ParseOptions is Parse, as strictly as o says.
func ParseOptions(content []byte, o Options) (*File, []error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(content))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, []error{err}
	}
	var errs []error
	seen := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" {
			errs = append(errs, errors.New("group name must not be empty"))
		} else if !utf8.ValidString(g.Name) {
			errs = append(errs, fmt.Errorf("group name %q is not valid UTF-8", g.Name))
		}
		if seen[g.Name] {
			errs = append(errs, fmt.Errorf("%d:%d: groupname: \"%s\" is repeated in the same file", 0, 0, g.Name))
		}
		seen[g.Name] = true
		if g.Interval < 0 || g.QueryOffset < 0 || g.Limit < 0 {
			errs = append(errs, &Error{Group: g.Name, Err: errors.New("interval, query_offset and limit must not be negative")})
		}
		for k := range g.Labels {
			if !labelNameRe.MatchString(k) {
				errs = append(errs, &Error{Group: g.Name, Err: fmt.Errorf("invalid label name: %s", k)})
			}
		}
		for i := range g.Rules {
			for _, err := range g.Rules[i].validate(o) {
				errs = append(errs, &Error{Group: g.Name, Rule: i + 1, Name: g.Rules[i].Name(), Err: err})
			}
		}
	}
	return &f, errs
}

func (r *Rule) validate(o Options) []error {
	var errs []error
	switch {
	case r.Record != "" && r.Alert != "":
		errs = append(errs, errors.New("only one of 'record' and 'alert' must be set"))
	case r.Record == "" && r.Alert == "":
		errs = append(errs, errors.New("one of 'record' or 'alert' must be set"))
	}
	if r.Expr == "" {
		errs = append(errs, errors.New("field 'expr' must be set in rule"))
	} else if err := checkExpr(r.Expr, o); err != nil {
		// The parser's own words, as promtool prints them, not the API's
		// framing.
		if se, ok := errors.AsType[*query.SyntaxError](err); ok {
			err = se
		}
		errs = append(errs, fmt.Errorf("could not parse expression: %v", err))
	}
	if r.Record != "" {
		if len(r.Annotations) > 0 {
			errs = append(errs, errors.New("invalid field 'annotations' in recording rule"))
		}
		if r.For != 0 {
			errs = append(errs, errors.New("invalid field 'for' in recording rule"))
		}
		if r.KeepFiringFor != 0 {
			errs = append(errs, errors.New("invalid field 'keep_firing_for' in recording rule"))
		}
		if !metricNameRe.MatchString(r.Record) {
			errs = append(errs, fmt.Errorf("invalid recording rule name: %s", r.Record))
		}
	}
	for k := range r.Labels {
		if !labelNameRe.MatchString(k) {
			errs = append(errs, fmt.Errorf("invalid label name: %s", k))
		}
		if k == "__name__" && r.Record != "" {
			errs = append(errs, errors.New("invalid recording rule: label __name__ is not allowed"))
		}
	}
	for k := range r.Annotations {
		if !labelNameRe.MatchString(k) {
			errs = append(errs, fmt.Errorf("invalid annotation name: %s", k))
		}
	}
	if r.Alert != "" {
		// As promtool: the templates of alerting rules parse with the
		// functions the ruler expands them with (one table: alerttmpl).
		for _, k := range sortedKeys(r.Labels) {
			if err := alerttmpl.Check("__alert_"+r.Alert, r.Labels[k]); err != nil {
				errs = append(errs, fmt.Errorf("label %q: %w", k, err))
			}
		}
		for _, k := range sortedKeys(r.Annotations) {
			if err := alerttmpl.Check("__alert_"+r.Alert, r.Annotations[k]); err != nil {
				errs = append(errs, fmt.Errorf("annotation %q: %w", k, err))
			}
		}
	}
	return errs
}

// checkExpr parses a rule's expression: as PromQL when o.PromQL, and
// always as the ruler will run it.
func checkExpr(expr string, o Options) error {
	if o.PromQL {
		if err := query.ParsePromQL(expr); err != nil {
			return err
		}
	}
	_, err := query.Parse(expr)
	return err
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
