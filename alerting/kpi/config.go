// Package kpi evaluates business KPIs as a first-class kind of rule: each
// KPI's history is forecast over its horizon (package forecast), the
// forecast and the breach probability are written back as ordinary
// series, and a likely breach opens a "predicted breach" incident in the
// ITSM layer before the target is missed, turning into a real breach
// incident if the KPI does cross.
package kpi

import (
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/alerting/forecast"
	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/query"
)

// Definition is one KPI, as configured under kpis: in the config file.
type Definition struct {
	Name   string `yaml:"name" json:"name"`
	Tenant string `yaml:"tenant" json:"tenant"` // default "default"
	// Expr is the KPI, a MetricsQL expression returning one series.
	Expr   string  `yaml:"expr" json:"expr"`
	Target float64 `yaml:"target" json:"target"`
	// Direction: "above" (the KPI must stay above the target, e.g. a
	// completion rate) or "below" (e.g. latency, disk use).
	Direction string        `yaml:"direction" json:"direction"`
	Interval  time.Duration `yaml:"-" json:"interval"` // evaluation interval; default 5m
	Horizon   time.Duration `yaml:"-" json:"horizon"`  // how far ahead; default 24h
	// Step is the resolution of the history the models see; default the
	// interval, coarsened so the history has at most 2000 points.
	Step time.Duration `yaml:"-" json:"step"`
	// History is how far back the models look; default 7d (15d weekly).
	History time.Duration `yaml:"-" json:"history"`
	// Seasonality: none, daily, weekly or auto (default: auto-detected
	// daily or weekly).
	Seasonality string `yaml:"seasonality" json:"seasonality"`
	// Labels are added to every output series and tie the KPI to CIs
	// (owner, service…).
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
	// CIs linked to the KPI, besides those whose selector matches Labels.
	CIs []string `yaml:"cis" json:"cis,omitempty"`
	// ImpactExpr estimates what a breach costs (e.g. failed checkouts ×
	// average order value).
	ImpactExpr string `yaml:"impact_expr" json:"impact_expr,omitempty"`
	// WarnProbability is the breach probability within the horizon that
	// opens a predicted-breach incident; default 0.8.
	WarnProbability float64 `yaml:"warn_probability" json:"warn_probability"`
	// Confirm is how many evaluations in a row must agree before a warning
	// is raised or cancelled; default 2.
	Confirm int `yaml:"confirm" json:"confirm"`
	// WarnAtOnce is the breach probability at or above which a warning is
	// raised without waiting for Confirm evaluations: default 0.99 (or
	// WarnProbability, when higher); from WarnProbability to 1, or -1 for
	// never (every warning waits for Confirm).
	WarnAtOnce float64 `yaml:"warn_at_once" json:"warn_at_once"`
	// Urgency of the predicted-breach incident (default medium); a real
	// breach is high.
	Urgency string `yaml:"urgency" json:"urgency"`
	// CauseWindow is how far before the forecast turned alerts count as
	// probable causes; default 2h.
	CauseWindow time.Duration `yaml:"-" json:"cause_window"`
	// RunbookURL is what to do when the KPI is at risk; its incidents
	// link it.
	RunbookURL string `yaml:"runbook_url" json:"runbook_url,omitempty"`
	// Actions are the suggested actions, in order, its incidents carry.
	Actions []string `yaml:"actions" json:"actions,omitempty"`
	// Deadline ("18:00") makes the KPI one judged once a working day, at
	// that time in the tenant calendar's zone ("orders completed by 18:00
	// each working day"): it breaches only when its value at the deadline
	// is on the wrong side, and the breach probability is that of the
	// next deadline.
	Deadline string `yaml:"deadline" json:"deadline,omitempty"`

	deadline int // 1 + minutes after midnight; 0 without a deadline
}

// deadlineMinutes returns the deadline in minutes after midnight.
func (d *Definition) deadlineMinutes() (int, bool) { return d.deadline - 1, d.deadline > 0 }

// plain is Definition without its methods, for decoding.
type plain Definition

// definitionYAML is a Definition as written in the config file.
type definitionYAML struct {
	plain       `yaml:",inline"`
	Interval    duration.Duration `yaml:"interval"`
	Horizon     duration.Duration `yaml:"horizon"`
	Step        duration.Duration `yaml:"step"`
	History     duration.Duration `yaml:"history"`
	CauseWindow duration.Duration `yaml:"cause_window"`
}

// definitionKeys are the keys a definition may have.
var definitionKeys = yamlKeys(reflect.TypeFor[definitionYAML](), map[string]bool{})

func yamlKeys(t reflect.Type, keys map[string]bool) map[string]bool {
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			yamlKeys(f.Type, keys)
		case name != "" && name != "-":
			keys[name] = true
		}
	}
	return keys
}

// UnmarshalYAML reads a definition strictly (unknown keys are errors)
// with durations in Prometheus's syntax ("15m", "3d", "2w"; package
// duration).
func (d *Definition) UnmarshalYAML(n *yaml.Node) error {
	// NB: n.Decode does not inherit the file decoder's KnownFields, so the
	// keys are checked here. Decoding n itself, not a re-marshalled copy,
	// keeps the lines and columns that errors report.
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !definitionKeys[k.Value] && k.Value != "<<" {
				return fmt.Errorf("kpi: line %d: field %s not found in type kpi.Definition", k.Line, k.Value)
			}
		}
	}
	var raw definitionYAML
	if err := n.Decode(&raw); err != nil {
		return fmt.Errorf("kpi: %w", err)
	}
	*d = Definition(raw.plain)
	d.Interval, d.Horizon, d.Step = time.Duration(raw.Interval), time.Duration(raw.Horizon), time.Duration(raw.Step)
	d.History, d.CauseWindow = time.Duration(raw.History), time.Duration(raw.CauseWindow)
	return nil
}

var nameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_:.-]*$`)

// Validate fills in defaults and checks the definition.
func (d *Definition) Validate() error {
	if !nameRE.MatchString(d.Name) {
		return fmt.Errorf("kpi %q: name must match %s", d.Name, nameRE)
	}
	if d.Tenant == "" {
		d.Tenant = "default"
	}
	if _, err := query.Parse(d.Expr); err != nil {
		return fmt.Errorf("kpi %s: expr: %w", d.Name, err)
	}
	if d.ImpactExpr != "" {
		if _, err := query.Parse(d.ImpactExpr); err != nil {
			return fmt.Errorf("kpi %s: impact_expr: %w", d.Name, err)
		}
	}
	switch d.Direction {
	case "above", "below":
	default:
		return fmt.Errorf("kpi %s: direction %q (above: must stay above the target; below: must stay below)", d.Name, d.Direction)
	}
	switch d.Seasonality {
	case "":
		d.Seasonality = "auto"
	case "none", "daily", "weekly", "auto":
	default:
		return fmt.Errorf("kpi %s: seasonality %q (none, daily, weekly, auto)", d.Name, d.Seasonality)
	}
	if d.Interval == 0 {
		d.Interval = 5 * time.Minute
	}
	if d.Horizon == 0 {
		d.Horizon = 24 * time.Hour
	}
	if d.History == 0 {
		d.History = 7 * 24 * time.Hour
		if d.Seasonality == "weekly" {
			d.History = 15 * 24 * time.Hour
		}
	}
	if d.Step == 0 {
		d.Step = max(d.Interval, (d.History/2000).Truncate(time.Minute)+time.Minute)
	}
	if d.Interval < time.Second || d.Step < time.Second || d.Horizon < d.Step || d.History < 4*d.Step {
		return fmt.Errorf("kpi %s: need interval, step ≥ 1s, horizon ≥ step, history ≥ 4 steps", d.Name)
	}
	if d.History/d.Step > 20000 || d.Horizon/d.Step > 5000 {
		return fmt.Errorf("kpi %s: history/step and horizon/step too fine (at most 20000 and 5000 points)", d.Name)
	}
	if d.WarnProbability == 0 {
		d.WarnProbability = 0.8
	}
	if d.WarnProbability <= 0 || d.WarnProbability >= 1 {
		return fmt.Errorf("kpi %s: warn_probability must be in (0, 1)", d.Name)
	}
	if d.Confirm == 0 {
		d.Confirm = 2
	}
	if d.WarnAtOnce == 0 {
		d.WarnAtOnce = DefaultWarnAtOnce(d.WarnProbability)
	}
	if d.WarnAtOnce != -1 && (d.WarnAtOnce < d.WarnProbability || d.WarnAtOnce > 1) {
		return fmt.Errorf("kpi %s: warn_at_once must be from warn_probability (%g) to 1, or -1 (never)", d.Name, d.WarnProbability)
	}
	switch d.Urgency {
	case "":
		d.Urgency = "medium"
	case "high", "medium", "low":
	default:
		return fmt.Errorf("kpi %s: urgency %q (high, medium, low)", d.Name, d.Urgency)
	}
	if d.CauseWindow == 0 {
		d.CauseWindow = 2 * time.Hour
	}
	if d.RunbookURL != "" {
		if u, err := url.Parse(d.RunbookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("kpi %s: runbook_url %q: an http(s) URL is required", d.Name, d.RunbookURL)
		}
	}
	d.deadline = 0
	if d.Deadline != "" {
		t, err := time.Parse("15:04", d.Deadline)
		if err != nil {
			return fmt.Errorf("kpi %s: deadline %q: want a time of day, HH:MM", d.Name, d.Deadline)
		}
		d.deadline = 1 + t.Hour()*60 + t.Minute()
	}
	for i, a := range d.Actions {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("kpi %s: actions[%d] is empty", d.Name, i)
		}
	}
	return nil
}

func (d *Definition) direction() forecast.Direction {
	if d.Direction == "below" {
		return forecast.Below
	}
	return forecast.Above
}

// wrongSide reports whether v breaches the target.
func (d *Definition) wrongSide(v float64) bool {
	if d.Direction == "below" {
		return v > d.Target
	}
	return v < d.Target
}

// period is the seasonal period in steps for the configured seasonality,
// detected on y for auto; 0 when there is none or y is too short.
func (d *Definition) period(y []float64) int {
	day, week := int(24*time.Hour/d.Step), int(7*24*time.Hour/d.Step)
	var p int
	switch d.Seasonality {
	case "daily":
		p = day
	case "weekly":
		p = week
	case "auto":
		p = forecast.DetectPeriod(y, day, week)
	}
	if p < 2 || 2*p > len(y) {
		return 0
	}
	return p
}

// DefaultWarnAtOnce is warn_at_once when a definition leaves it out, for
// the given warn_probability.
func DefaultWarnAtOnce(warn float64) float64 { return max(0.99, warn) }
