// Package itsm turns firing alerts into ITIL-style incidents: grouped,
// prioritised from urgency × impact, owned by the configuration item's
// group, escalated when not acknowledged, timed against SLA targets, and
// pushed into ticketing systems through a durable outbox.
package itsm

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/query"
)

// Config is the itsm section of the config file. Its durations are in
// Prometheus's syntax (15m, 4h, 3d; package duration).
type Config struct {
	// GroupBy are the alert labels whose values make one incident
	// (default: alertname and the CI).
	GroupBy []string `yaml:"group_by"`
	// ReopenWindow: a group that fires again within it reopens its
	// resolved incident instead of opening a new one. Default 1h.
	ReopenWindow duration.Duration `yaml:"reopen_window"`
	// Urgency maps the alert's severity label to high, medium or low.
	Urgency map[string]string `yaml:"urgency"`
	// Matrix maps "urgency/impact" to a priority (P1…P5); default ITIL.
	Matrix map[string]string `yaml:"priority_matrix"`
	CIs    []CI              `yaml:"cis"`
	// SLA targets per priority.
	SLA map[string]SLATarget `yaml:"sla"`
	// Escalation: per priority, lines to page in turn when the incident is
	// not acknowledged within each line's time.
	Escalation map[string][]EscalationLevel `yaml:"escalation"`
	// EscalationPolicies escalate by CI (service) or owner group, in
	// steps, repeated, until acknowledged; an incident none applies to
	// follows Escalation. The API adds a tenant's own.
	EscalationPolicies []EscalationPolicy `yaml:"escalation_policies"`
	// Rotations are the groups' on-call rotations: a new incident is
	// assigned to its owner group's person on call. The API adds a
	// tenant's own.
	Rotations   []Rotation    `yaml:"rotations"`
	Problems    ProblemRule   `yaml:"problems"`
	Receivers   []Receiver    `yaml:"receivers"`
	Maintenance []Maintenance `yaml:"maintenance"`
	// NoData is what an incident does when an alert goes away because its
	// source stopped reporting (no data, not recovered): keep_open (the
	// default: the alert is marked no_data and the timeline says "source
	// silent since …") or resolve. A CI's no_data, and a rule's no_data
	// annotation, override it.
	NoData string `yaml:"no_data"`
	// Groups are the people of each group (owner, escalation and
	// propagation groups); the API adds and removes members per tenant.
	Groups map[string][]string `yaml:"groups"`
	// Correlation opens an incident whose CI depends on a CI with an
	// open incident as that incident's child.
	Correlation Correlation `yaml:"correlation"`
	// Reports are scheduled SLA reports (the API adds a tenant's own);
	// SMTP is how they are e-mailed.
	Reports []ReportSchedule `yaml:"reports"`
	SMTP    SMTP             `yaml:"smtp"`
}

// Correlation is how incidents of dependent CIs are related (CI
// depends_on): one switch failure is one incident with its servers'
// incidents as children, not six pages.
type Correlation struct {
	// Mode is child (the default: a new incident on a CI that depends,
	// directly or through others, on a CI with an open or acknowledged
	// incident opens as that incident's child) or off.
	Mode string `yaml:"mode"`
	// NotifyChildren sends a child's events to the receivers too, with
	// its parent in the payload; default false: a child opened under its
	// parent is not paged separately.
	NotifyChildren bool `yaml:"notify_children"`
	// Window: an upstream incident that opens after incidents of the
	// CIs that depend on it takes those opened within Window before it
	// as its children. Default 5m.
	Window duration.Duration `yaml:"window"`
	// ResolveChildren is what resolving a parent does to its open
	// children that have no firing alert (resolved, or silent): auto
	// (the default) resolves them with it; offer lists them on the
	// parent's timeline, and the parent's resolve_children action
	// resolves them.
	ResolveChildren string `yaml:"resolve_children"`
}

// The correlation modes and resolve_children choices.
const (
	CorrelationChild     = "child"
	CorrelationOff       = "off"
	ResolveChildrenAuto  = "auto"
	ResolveChildrenOffer = "offer"
)

// CI is a configuration item: what the alert is about. The config
// file's apply to every tenant; the API adds a tenant's own.
type CI struct {
	Name       string `yaml:"name" json:"name"`
	Kind       string `yaml:"kind" json:"kind,omitempty"` // service, application, host, network device
	Selector   string `yaml:"selector" json:"selector,omitempty"`
	OwnerGroup string `yaml:"owner_group" json:"owner_group,omitempty"`
	Impact     string `yaml:"impact" json:"impact,omitempty"` // high, medium, low
	// Propagation are the groups that receive the incident, e.g. owner,
	// team lead, department head; default: the owner group.
	Propagation []string `yaml:"propagation" json:"propagation,omitempty"`
	// NoData overrides Config.NoData for the CI's alerts.
	NoData string `yaml:"no_data" json:"no_data,omitempty"`
	// DependsOn are the CIs this one needs (a server its switch, a
	// service its database): an incident on one of them, or on what
	// they depend on, becomes the parent of this CI's incidents
	// (Correlation). No cycles.
	DependsOn []string `yaml:"depends_on" json:"depends_on,omitempty"`
	Origin    `yaml:"-"`

	matchers [][]*labels.Matcher
}

// SLATarget is the time to acknowledge and to resolve.
type SLATarget struct {
	Acknowledge duration.Duration `yaml:"acknowledge"`
	Resolve     duration.Duration `yaml:"resolve"`
}

// EscalationLevel is one line of escalation.
type EscalationLevel struct {
	After duration.Duration `yaml:"after"`
	Group string            `yaml:"group"`
}

// ProblemRule opens a problem when incidents of one CI and alert recur.
type ProblemRule struct {
	Count  int               `yaml:"count"`  // default 3
	Window duration.Duration `yaml:"window"` // default 24h
}

// Receiver is a ticketing or paging target.
type Receiver struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // pagerduty, servicenow, webhook
	URL  string `yaml:"url"`
	// RoutingKey is PagerDuty's integration key.
	RoutingKey string `yaml:"routing_key"`
	// Secret signs bodies (HMAC-SHA256, X-Tsdb-Signature); never logged.
	Secret     string            `yaml:"secret"`
	Timeout    duration.Duration `yaml:"timeout"`
	Priorities []string          `yaml:"priorities"` // empty: all
	CIs        []string          `yaml:"cis"`        // empty: all
	Events     []string          `yaml:"events"`     // empty: all (opened, reopened, updated, acknowledged, escalated, sla_breached, resolved, closed)
	// Match is a label selector on the incident's alerts (plus ci,
	// owner_group and priority), e.g. {env="prod"}; empty: all.
	Match   string `yaml:"match"`
	matcher [][]*labels.Matcher
	// Template renders the body of a webhook receiver (Go text/template
	// over .Event and .Incident); empty: the incident as JSON.
	Template string `yaml:"template"`
	// Jira: project key, issue type, and transition ids to apply on
	// resolve and close.
	Project     string            `yaml:"project"`
	IssueType   string            `yaml:"issue_type"`
	Transitions map[string]string `yaml:"transitions"`
	Username    string            `yaml:"username"`
	Password    string            `yaml:"password"` // or API token; never logged
	// InboundSecret enables POST /api/v1/itsm/inbound/<name>, the
	// ticketing system's webhook back into tsdb (two-way sync). It is
	// checked as a bearer token or an HMAC-SHA256 signature of the body
	// (X-PagerDuty-Signature v1=…, X-Hub-Signature sha256=…,
	// X-Tsdb-Signature sha256=…). Never logged.
	InboundSecret string `yaml:"inbound_secret"`
	// InboundStatus maps a ticket status (Jira status name, ServiceNow
	// state number) to an action: ack, resolve or close.
	InboundStatus map[string]string `yaml:"inbound_status"`
	// Tenants are the tenants the inbound webhook may act for ("*":
	// any); default [default]. A webhook for another tenant, named by
	// its X-Scope-OrgID or by the ticket reference in a PagerDuty, Jira
	// or ServiceNow body, is refused whole with ErrForbidden (403): the
	// receiver's secret is not a key to every tenant. Without
	// X-Scope-OrgID a generic webhook acts for the first tenant listed.
	// Outbound delivery does not look at it.
	Tenants []string `yaml:"tenants"`
}

// defaultTenant is the tenant of requests that name none (as
// internal/tenancy.Default).
const defaultTenant = "default"

// defaultMatrix is ITIL's 3×3 priority matrix.
var defaultMatrix = map[string]string{
	"high/high": "P1", "high/medium": "P2", "high/low": "P3",
	"medium/high": "P2", "medium/medium": "P3", "medium/low": "P4",
	"low/high": "P3", "low/medium": "P4", "low/low": "P5",
}

// Validate fills in defaults and checks the configuration.
func (c *Config) Validate() error {
	if len(c.GroupBy) == 0 {
		c.GroupBy = []string{"alertname"}
	}
	if c.ReopenWindow == 0 {
		c.ReopenWindow = duration.Duration(time.Hour)
	}
	if c.Urgency == nil {
		c.Urgency = map[string]string{"critical": "high", "page": "high", "warning": "medium", "info": "low"}
	}
	if c.Matrix == nil {
		c.Matrix = defaultMatrix
	}
	for k, p := range c.Matrix {
		if !strings.Contains(k, "/") || !validPriority(p) {
			return fmt.Errorf("itsm priority_matrix: %q: %q (want urgency/impact: P1…P5)", k, p)
		}
	}
	if c.Problems.Count == 0 {
		c.Problems.Count = 3
	}
	if c.Problems.Window == 0 {
		c.Problems.Window = duration.Duration(24 * time.Hour)
	}
	if !validNoData(c.NoData) {
		return fmt.Errorf("itsm no_data: %q (keep_open, resolve)", c.NoData)
	}
	for i := range c.CIs {
		if c.CIs[i].Name == "" {
			return fmt.Errorf("itsm ci %d: name is required", i)
		}
		if err := c.CIs[i].check(); err != nil {
			return err
		}
	}
	if err := checkGraph(c.CIs); err != nil {
		return err
	}
	switch c.Correlation.Mode {
	case "":
		c.Correlation.Mode = CorrelationChild
	case CorrelationChild, CorrelationOff:
	default:
		return fmt.Errorf("itsm correlation: mode %q (child, off)", c.Correlation.Mode)
	}
	switch c.Correlation.ResolveChildren {
	case "":
		c.Correlation.ResolveChildren = ResolveChildrenAuto
	case ResolveChildrenAuto, ResolveChildrenOffer:
	default:
		return fmt.Errorf("itsm correlation: resolve_children %q (auto, offer)", c.Correlation.ResolveChildren)
	}
	if c.Correlation.Window < 0 {
		return fmt.Errorf("itsm correlation: window is negative")
	}
	if c.Correlation.Window == 0 {
		c.Correlation.Window = duration.Duration(5 * time.Minute)
	}
	for i := range c.Maintenance {
		if err := c.Maintenance[i].validate(); err != nil {
			return err
		}
		c.Maintenance[i].Source = "config"
	}
	// Checked again, with their names, when the Manager takes them.
	if _, err := newSettings[ReportSchedule]("report", "report schedule", "", c.Reports); err != nil {
		return err
	}
	for _, r := range c.Reports {
		for _, name := range r.Receivers {
			if !slices.ContainsFunc(c.Receivers, func(x Receiver) bool { return x.Name == name }) {
				return fmt.Errorf("itsm report %s: receiver %s is not configured", r.Name, name)
			}
		}
		if len(r.EmailTo) > 0 && c.SMTP.Addr == "" {
			return fmt.Errorf("itsm report %s: email_to needs smtp: addr", r.Name)
		}
	}
	if _, err := newSettings[EscalationPolicy]("policy", "escalation policy", "", c.EscalationPolicies); err != nil {
		return err
	}
	if _, err := newSettings[Rotation]("rotation", "on-call rotation", "", c.Rotations); err != nil {
		return err
	}
	for p := range c.SLA {
		if !validPriority(p) {
			return fmt.Errorf("itsm sla: %q is not a priority", p)
		}
	}
	for i, r := range c.Receivers {
		switch r.Type {
		case "pagerduty", "servicenow", "webhook", "alertmanager", "jira":
		default:
			return fmt.Errorf("itsm receiver %d: type %q (pagerduty, servicenow, jira, alertmanager, webhook)", i, r.Type)
		}
		if r.Template != "" {
			if _, err := bodyTemplate(r); err != nil {
				return fmt.Errorf("itsm receiver %q: template: %w", r.Name, err)
			}
		}
		if r.Match != "" {
			ms, err := query.ParseSelector(r.Match)
			if err != nil {
				return fmt.Errorf("itsm receiver %q: match: %w", r.Name, err)
			}
			c.Receivers[i].matcher = ms
		}
		if r.Type == "jira" && r.Project == "" {
			return fmt.Errorf("itsm receiver %q: jira needs a project", r.Name)
		}
		if r.URL == "" || r.Name == "" {
			return fmt.Errorf("itsm receiver %d: name and url are required", i)
		}
		if r.Timeout == 0 {
			c.Receivers[i].Timeout = duration.Duration(10 * time.Second)
		}
		if len(r.Tenants) == 0 {
			c.Receivers[i].Tenants = []string{defaultTenant}
		}
		for _, t := range r.Tenants {
			if t == "" || strings.Contains(t, "|") {
				return fmt.Errorf("itsm receiver %q: tenants: %q is not a tenant (or \"*\" for any)", r.Name, t)
			}
		}
	}
	return nil
}

// The no-data states.
const (
	NoDataKeepOpen = "keep_open"
	NoDataResolve  = "resolve"
)

func validNoData(s string) bool { return s == "" || s == NoDataKeepOpen || s == NoDataResolve }

// noDataOf is what a silent alert does: its rule's no_data annotation,
// else its CI's, else the config's, else keep_open.
func (m *Manager) noDataOf(tenant string, annotations, ls labels.Labels) string {
	if s := annotations.Get("no_data"); s == NoDataKeepOpen || s == NoDataResolve {
		return s
	}
	m.mu.Lock()
	ci := m.ciFor(tenant, ls)
	m.mu.Unlock()
	if ci != nil && ci.NoData != "" {
		return ci.NoData
	}
	if m.cfg.NoData != "" {
		return m.cfg.NoData
	}
	return NoDataKeepOpen
}

func validPriority(p string) bool { return len(p) == 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '5' }

// selects reports whether any of the selector's or-sets matches ls.
func selects(sets [][]*labels.Matcher, ls labels.Labels) bool {
	for _, set := range sets {
		ok := true
		for _, m := range set {
			if !m.Matches(ls.Get(m.Name)) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// priority is matrix(urgency, impact).
func (c *Config) priority(urgency, impact string) string {
	if p, ok := c.Matrix[urgency+"/"+impact]; ok {
		return p
	}
	return "P3"
}

func (c *Config) urgencyOf(ls labels.Labels) string {
	if u, ok := c.Urgency[ls.Get("severity")]; ok {
		return u
	}
	return "medium"
}

// groupKey is the incident grouping key of an alert.
func (c *Config) groupKey(ls labels.Labels, ci string) string {
	parts := make([]string, 0, len(c.GroupBy)+1)
	for _, g := range c.GroupBy {
		parts = append(parts, g+"="+ls.Get(g))
	}
	sort.Strings(parts)
	return "ci=" + ci + "," + strings.Join(parts, ",")
}

// FormatDuration shows a duration to people down to its smallest unit:
// 1d 7h 20m, 1m 30s, 1h (zero units are left out).
func FormatDuration(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	if d == 0 {
		return "0s"
	}
	var b []string
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.size; n > 0 {
			b = append(b, fmt.Sprintf("%d%s", n, u.name))
			d -= n * u.size
		}
	}
	return strings.Join(b, " ")
}
