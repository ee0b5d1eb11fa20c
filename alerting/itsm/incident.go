package itsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/alerting/alert"
	"github.com/emsdb/tsdb/internal/errkind"
)

// Store keeps incidents, problems and the outbox durably.
type Store interface {
	PutKV(key string, value []byte) error
	DeleteKV(key string) error
	ListKV(prefix string) (map[string][]byte, error)
}

// Incident statuses.
const (
	StatusOpen         = "open"
	StatusAcknowledged = "acknowledged"
	StatusResolved     = "resolved"
	StatusClosed       = "closed"
)

// Incident is one ITIL incident.
type Incident struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	Title  string `json:"title"`
	// Kind is empty for alert incidents, else what raised it (e.g.
	// predicted_breach, kpi_breach).
	Kind            string                    `json:"kind,omitempty"`
	Status          string                    `json:"status"`
	Priority        string                    `json:"priority"`
	Urgency         string                    `json:"urgency"`
	Impact          string                    `json:"impact"`
	PriorityReason  string                    `json:"priority_reason,omitempty"`
	CI              string                    `json:"ci"`
	CIKind          string                    `json:"ci_kind,omitempty"`
	OwnerGroup      string                    `json:"owner_group"`
	Assignee        string                    `json:"assignee,omitempty"`
	GroupKey        string                    `json:"group_key"`
	Alerts          map[string]*IncidentAlert `json:"alerts"`
	OpenedAt        time.Time                 `json:"opened_at"`
	AcknowledgedAt  *time.Time                `json:"acknowledged_at"`
	ResolvedAt      *time.Time                `json:"resolved_at"`
	ClosedAt        *time.Time                `json:"closed_at,omitempty"`
	EscalationLevel int                       `json:"escalation_level"`
	EscalatedTo     []string                  `json:"escalated_to,omitempty"`
	// EscalationPolicy is the policy the incident follows (empty: its
	// priority's escalation lines), counted from EscalationSince (its
	// opening or reopening); Escalation is the policy's last step that
	// fired, NextEscalationAt when the next is due.
	EscalationPolicy string           `json:"escalation_policy,omitempty"`
	EscalationSince  time.Time        `json:"escalation_since,omitzero"`
	Escalation       *EscalationState `json:"escalation,omitempty"`
	NextEscalationAt *time.Time       `json:"next_escalation_at,omitempty"`
	// PropagatedTo are the groups that received the incident, in order;
	// Recipients their members at that time.
	PropagatedTo  []string            `json:"propagated_to,omitempty"`
	Recipients    map[string][]string `json:"recipients,omitempty"`
	ChangeRequest string              `json:"change_request,omitempty"` // the latest linked
	// Changes are the linked change requests; each is closed on its own,
	// independently of the incident.
	Changes   []ChangeLink `json:"changes,omitempty"`
	Reopened  int          `json:"reopened"`
	Flapping  bool         `json:"flapping"`
	ProblemID string       `json:"problem_id,omitempty"`
	SLA       SLAStatus    `json:"sla"`
	// Labels, Details, Links and ProbableCauses are set by whatever raised
	// a non-alert incident (a KPI forecast: ETA, probability, model,
	// impact, chart link).
	Labels         map[string]string `json:"labels,omitempty"`
	Details        map[string]any    `json:"details,omitempty"`
	Links          map[string]string `json:"links,omitempty"`
	ProbableCauses []ProbableCause   `json:"probable_causes,omitempty"`
	Timeline       []TimelineEvent   `json:"timeline"`
	// RootCause, Resolution and Prevention are what the operator who
	// resolved or closed the incident recorded (Closure); closing keeps
	// what resolving said unless it says otherwise.
	RootCause  string `json:"root_cause,omitempty"`
	Resolution string `json:"resolution,omitempty"`
	Prevention string `json:"prevention,omitempty"`
	// Warnings are what is wrong with the configuration the incident
	// relies on: an unknown CI, a group without members.
	Warnings []string `json:"warnings,omitempty"`
	// Parent is the incident of a CI this one's CI depends on, of which
	// it is a child (Correlation); Children are this one's.
	Parent   string   `json:"parent,omitempty"`
	Children []string `json:"children,omitempty"`
	// Quiet: the incident's events are not sent to the receivers (a
	// child with notify_children off), until it goes on on its own.
	Quiet bool `json:"quiet,omitempty"`
	// SLAFrom is when the SLA clocks started, if not at the opening: a
	// child whose parent resolved while its alerts still fired.
	SLAFrom *time.Time `json:"sla_from,omitempty"`
	// Pending is the event (opened, reopened, updated) waiting
	// coalesceWindow to be sent, kept with the incident so that it is
	// sent after a crash or by the next leader if the window never ended
	// here.
	Pending string `json:"pending_event,omitempty"`
}

// ChangeLink is a change request linked to an incident.
type ChangeLink struct {
	ID       string     `json:"id"`
	Status   string     `json:"status"` // open, closed
	LinkedAt time.Time  `json:"linked_at"`
	ClosedAt *time.Time `json:"closed_at,omitempty"`
}

// IncidentAlert is an alert attached to an incident.
type IncidentAlert struct {
	Labels  map[string]string `json:"labels"`
	State   string            `json:"state"` // firing, no_data (its source is silent), resolved
	Since   time.Time         `json:"since"`
	Changes []time.Time       `json:"changes,omitempty"` // state changes, for flapping
}

// SLAStatus is the incident's clocks against its priority's targets.
type SLAStatus struct {
	AcknowledgeTarget   float64 `json:"acknowledge_target_seconds"`
	ResolveTarget       float64 `json:"resolve_target_seconds"`
	ElapsedSeconds      float64 `json:"elapsed_seconds"`
	Elapsed             string  `json:"elapsed"`
	AcknowledgeBreached bool    `json:"acknowledge_breached"`
	ResolveBreached     bool    `json:"resolve_breached"`
	// Follows is the parent whose clocks a child follows: it does not
	// breach on its own while the parent is open or acknowledged.
	Follows string `json:"follows,omitempty"`
}

// TimelineEvent is one entry of the audit timeline.
type TimelineEvent struct {
	At     time.Time `json:"at"`
	Who    string    `json:"who"`
	What   string    `json:"what"`
	Detail string    `json:"detail,omitempty"`
}

// Problem links recurring incidents of one CI and alert.
type Problem struct {
	ID        string          `json:"id"`
	Tenant    string          `json:"tenant"`
	Title     string          `json:"title,omitempty"`
	Status    string          `json:"status"` // registered, root_cause_identified, workaround, solution, verified, closed
	CI        string          `json:"ci"`
	Alertname string          `json:"alertname"`
	Incidents []string        `json:"incidents"`
	OpenedAt  time.Time       `json:"opened_at"`
	Timeline  []TimelineEvent `json:"timeline"`
}

// Manager runs the ITSM layer.
type Manager struct {
	cfg    Config
	st     Store
	log    *slog.Logger
	now    func() time.Time
	outbox *Outbox

	mu         sync.Mutex
	incidents  map[string]map[string]*Incident // tenant -> id
	problems   map[string]map[string]*Problem
	seq        map[string]int
	suppressed map[string][]Suppressed        // tenant -> newest last
	groups     map[string]map[string][]string // tenant -> group -> members, set by the API
	fired      map[string][]firedAlert        // tenant -> recent firing alerts, oldest first
	// held are the firing alerts a maintenance window suppressed, per
	// tenant and alert: when no window covers one any more, Tick opens
	// its incident (as Alertmanager and Zabbix do at a window's end).
	held map[string]map[string]*heldAlert
	// windows are the maintenance windows made through the API, per
	// tenant and name (the config file's are in cfg, for every tenant).
	windows map[string]map[string]*Maintenance
	// coalesce are the events waiting coalesceWindow, per tenant/incident.
	coalesce map[string]*pendingEvent
	// rotations and policies: the config file's and each tenant's own.
	rotations *settings[Rotation, *Rotation]
	policies  *settings[EscalationPolicy, *EscalationPolicy]
	reports   *settings[ReportSchedule, *ReportSchedule]
	// What the report schedules sent last, and are sending, by
	// tenant/name; bg waits for their deliveries.
	reportSent  map[string]time.Time
	reportErr   map[string]string
	reportRetry map[string]time.Time
	sending     map[string]bool
	bg          sync.WaitGroup
	// cis: the config file's and each tenant's own.
	cis *settings[CI, *CI]
}

// New loads the stored state and starts delivering the outbox.
func New(cfg Config, st Store, log *slog.Logger, now func() time.Time) (*Manager, error) {
	m, err := NewPaused(cfg, st, log, now)
	if err != nil {
		return nil, err
	}
	if err := m.Resume(); err != nil {
		return nil, err
	}
	for _, w := range m.configWarnings() {
		m.log.Warn("itsm: " + w)
	}
	return m, nil
}

// NewPaused returns a Manager that has loaded nothing and delivers
// nothing until Resume: a cluster node that does not lead. Until then it
// must not be handed alerts, ticked, or asked through the API.
func NewPaused(cfg Config, st Store, log *slog.Logger, now func() time.Time) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	m := &Manager{cfg: cfg, st: st, log: log, now: now}
	// The Manager's own copy: the settings keep pointers into it.
	m.cfg.CIs = slices.Clone(cfg.CIs)
	if err := m.reset(); err != nil {
		return nil, err
	}
	m.outbox = newOutbox(cfg.Receivers, st, log)
	return m, nil
}

// reset empties the state and makes the settings the config's; the
// caller holds m.mu or owns m.
func (m *Manager) reset() error {
	m.incidents, m.problems, m.seq = map[string]map[string]*Incident{}, map[string]map[string]*Problem{}, map[string]int{}
	m.suppressed, m.groups = map[string][]Suppressed{}, map[string]map[string][]string{}
	m.fired, m.held = map[string][]firedAlert{}, map[string]map[string]*heldAlert{}
	m.windows, m.coalesce = map[string]map[string]*Maintenance{}, map[string]*pendingEvent{}
	var err error
	if m.cis, err = newSettings[CI]("ci", "CI", "/api/v1/cis", m.cfg.CIs); err != nil {
		return err
	}
	if m.rotations, err = newSettings[Rotation]("rotation", "on-call rotation", "/api/v1/rotations", m.cfg.Rotations); err != nil {
		return err
	}
	m.reportSent, m.reportErr, m.sending, m.reportRetry = map[string]time.Time{}, map[string]string{}, map[string]bool{}, map[string]time.Time{}
	if m.reports, err = newSettings[ReportSchedule]("report", "report schedule", "/api/v1/reports/schedules", m.cfg.Reports); err != nil {
		return err
	}
	if m.policies, err = newSettings[EscalationPolicy]("policy", "escalation policy", "/api/v1/escalation_policies", m.cfg.EscalationPolicies); err != nil {
		return err
	}
	return nil
}

// Resume loads the stored state (dropping what the Manager held) and
// starts delivering the outbox: a cluster node that becomes the leader
// continues from the state the last leader stored.
func (m *Manager) Resume() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outbox.close()
	if err := m.reset(); err != nil {
		return err
	}
	all, err := m.st.ListKV("itsm/")
	if err != nil {
		return err
	}
	m.loadLocked(all)
	if err := m.outbox.open(); err != nil {
		return err
	}
	m.sendPendingLocked()
	return nil
}

// Pause sends the events that wait to be coalesced to the outbox, then
// stops delivering it (what is undelivered stays stored, for the next
// Resume, here or on the next leader).
func (m *Manager) Pause() { m.Close() }

// loadLocked takes the stored state; the caller holds m.mu.
func (m *Manager) loadLocked(all map[string][]byte) {
	for k, v := range all {
		switch {
		case strings.Contains(k, "/incident/"):
			var inc Incident
			if json.Unmarshal(v, &inc) == nil {
				m.tenantIncidents(inc.Tenant)[inc.ID] = &inc
				m.bumpSeq(inc.Tenant, inc.ID)
			}
		case strings.Contains(k, "/suppressed/"):
			var sp Suppressed
			if json.Unmarshal(v, &sp) == nil {
				t := strings.SplitN(strings.TrimPrefix(k, "itsm/"), "/", 2)[0]
				m.suppressed[t] = append(m.suppressed[t], sp)
			}
		case strings.Contains(k, "/group/"):
			var ms []string
			parts := strings.SplitN(strings.TrimPrefix(k, "itsm/"), "/group/", 2)
			if json.Unmarshal(v, &ms) == nil && len(parts) == 2 {
				if m.groups[parts[0]] == nil {
					m.groups[parts[0]] = map[string][]string{}
				}
				m.groups[parts[0]][parts[1]] = ms
			}
		case strings.Contains(k, "/maintenance/"):
			var w Maintenance
			parts := strings.SplitN(strings.TrimPrefix(k, "itsm/"), "/maintenance/", 2)
			if json.Unmarshal(v, &w) == nil && len(parts) == 2 {
				if err := w.validate(); err != nil {
					m.log.Warn("itsm: stored maintenance window ignored", "key", k, "err", err)
					continue
				}
				if m.windows[parts[0]] == nil {
					m.windows[parts[0]] = map[string]*Maintenance{}
				}
				m.windows[parts[0]][w.Name] = &w
			}
		case strings.Contains(k, "/reportstate/"):
			m.loadReportState(k, v)
		case strings.Contains(k, "/rotation/"), strings.Contains(k, "/policy/"), strings.Contains(k, "/ci/"), strings.Contains(k, "/report/"):
			set := m.rotations.load
			switch {
			case strings.Contains(k, "/policy/"):
				set = m.policies.load
			case strings.Contains(k, "/ci/"):
				set = m.cis.load
			case strings.Contains(k, "/report/"):
				set = m.reports.load
			}
			t := strings.SplitN(strings.TrimPrefix(k, "itsm/"), "/", 2)[0]
			if err := set(t, v); err != nil {
				m.log.Warn("itsm: stored setting ignored", "key", k, "err", err)
			}
		case strings.Contains(k, "/held/"):
			var h heldAlert
			if json.Unmarshal(v, &h) == nil {
				m.holdLocked(h.Tenant, &h)
			}
		case strings.Contains(k, "/problem/"):
			var p Problem
			if json.Unmarshal(v, &p) == nil {
				m.tenantProblems(p.Tenant)[p.ID] = &p
				m.bumpSeq(p.Tenant, p.ID)
			}
		}
	}
}

// configWarnings are the configuration's loose ends: groups that the CIs
// or escalation name without members, CIs without an owner group.
func (m *Manager) configWarnings() []string {
	var out []string
	for _, ci := range m.cfg.CIs {
		if ci.OwnerGroup == "" {
			out = append(out, fmt.Sprintf("ci %s has no owner_group", ci.Name))
		}
	}
	groups := m.knownGroups()
	for _, g := range sortedKeys(groups) {
		if len(m.cfg.Groups[g]) == 0 {
			out = append(out, fmt.Sprintf("group %s has no members (groups: in the config, or POST /api/v1/groups/%s/members)", g, g))
		}
	}
	return out
}

// listMarker is a step's list marker: "- ", "* ", "1. ", "2) ".
var listMarker = regexp.MustCompile(`^\s*(?:[-*•]|\d+[.)])\s+`)

// runbookOf carries an alerting rule's runbook onto its incident, as a
// KPI's are: the annotation runbook_url (Prometheus's convention) as
// links.runbook, and the annotation actions, one step a line, as
// details.suggested_actions; the first alert that has them wins.
func runbookOf(inc *Incident, ann labels.Labels) {
	if u := ann.Get("runbook_url"); u != "" && inc.Links["runbook"] == "" {
		if inc.Links == nil {
			inc.Links = map[string]string{}
		}
		inc.Links["runbook"] = u
	}
	if a := strings.TrimSpace(ann.Get("actions")); a != "" && inc.Details["suggested_actions"] == nil {
		var steps []string
		for _, l := range strings.Split(a, "\n") {
			if l = strings.TrimSpace(listMarker.ReplaceAllString(l, "")); l != "" {
				steps = append(steps, l)
			}
		}
		if inc.Details == nil {
			inc.Details = map[string]any{}
		}
		inc.Details["suggested_actions"] = steps
	}
}

// warn records a configuration problem on the incident, once; the caller
// holds m.mu.
func (inc *Incident) warn(w string) {
	if !contains(inc.Warnings, w) {
		inc.Warnings = append(inc.Warnings, w)
	}
}

// Close stops deliveries (what is undelivered stays in the outbox).
func (m *Manager) Close() {
	m.mu.Lock()
	for k := range m.coalesce {
		m.flushLocked(k)
	}
	m.mu.Unlock()
	m.bg.Wait()
	m.outbox.close()
}

// coalesceWindow is how long an incident's opened, reopened and updated
// events wait for more of the same before one is sent: the alerts of one
// rule evaluation that join one incident make one "opened", not an
// "opened" and an "updated" in the same second (two PagerDuty triggers).
var coalesceWindow = time.Second

type pendingEvent struct {
	event string
	timer *time.Timer
}

// emit sends an incident event to the receivers (except skip); opened,
// reopened and updated wait coalesceWindow and go as one, with the
// incident as it is then; any other event sends what waits first, in
// order. The caller holds m.mu.
func (m *Manager) emit(event string, inc *Incident, skip ...string) {
	if inc.Quiet {
		return
	}
	k := inc.Tenant + "/" + inc.ID
	if (event == "opened" || event == "reopened" || event == "updated") && len(skip) == 0 && coalesceWindow > 0 {
		if p := m.coalesce[k]; p != nil {
			if rank[event] > rank[p.event] {
				p.event = event
				inc.Pending = event
				m.save(inc)
			}
			return
		}
		p := &pendingEvent{event: event}
		m.coalesce[k] = p
		inc.Pending = event
		m.save(inc)
		p.timer = time.AfterFunc(coalesceWindow, func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.coalesce[k] == p {
				m.flushLocked(k)
			}
		})
		return
	}
	m.flushLocked(k)
	m.outbox.enqueue(event, inc, skip...)
}

var rank = map[string]int{"updated": 1, "reopened": 2, "opened": 3}

// flushLocked sends an incident's waiting event; the caller holds m.mu.
func (m *Manager) flushLocked(k string) {
	p := m.coalesce[k]
	if p == nil {
		return
	}
	delete(m.coalesce, k)
	p.timer.Stop()
	i := strings.LastIndexByte(k, '/')
	tenant, id := k[:i], k[i+1:]
	if inc := m.tenantIncidents(tenant)[id]; inc != nil {
		if !inc.Quiet {
			m.outbox.enqueue(p.event, inc)
		}
		inc.Pending = ""
		m.save(inc)
	}
}

// sendPendingLocked sends the events loaded incidents still wait to send:
// their coalescing window ended with the process (a crash) or the
// leader that held it. The caller holds m.mu; the outbox is open.
func (m *Manager) sendPendingLocked() {
	for _, incs := range m.incidents {
		for _, inc := range incs {
			if inc.Pending == "" {
				continue
			}
			if !inc.Quiet {
				m.outbox.enqueue(inc.Pending, inc)
			}
			m.log.Info("itsm: an event left waiting to be coalesced is sent now", "incident", inc.ID, "event", inc.Pending)
			inc.Pending = ""
			m.save(inc)
		}
	}
}

func (m *Manager) tenantIncidents(t string) map[string]*Incident {
	if m.incidents[t] == nil {
		m.incidents[t] = map[string]*Incident{}
	}
	return m.incidents[t]
}

func (m *Manager) tenantProblems(t string) map[string]*Problem {
	if m.problems[t] == nil {
		m.problems[t] = map[string]*Problem{}
	}
	return m.problems[t]
}

// bumpSeq keeps numbering past loaded ids; INC and PRB count apart.
func (m *Manager) bumpSeq(tenant, id string) {
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		k := tenant + "/" + id[:i]
		if n, err := strconv.Atoi(id[i+1:]); err == nil && n > m.seq[k] {
			m.seq[k] = n
		}
	}
}

func (m *Manager) nextID(tenant, prefix string) string {
	k := tenant + "/" + prefix
	m.seq[k]++
	return fmt.Sprintf("%s-%06d", prefix, m.seq[k])
}

// save writes an incident durably; the caller holds m.mu.
func (m *Manager) save(inc *Incident) {
	m.refreshSLA(inc, m.now())
	b, _ := json.Marshal(inc)
	if err := m.st.PutKV("itsm/"+inc.Tenant+"/incident/"+inc.ID, b); err != nil {
		m.log.Error("itsm: incident not saved", "id", inc.ID, "err", err)
	}
}

func (m *Manager) saveProblem(p *Problem) {
	b, _ := json.Marshal(p)
	if err := m.st.PutKV("itsm/"+p.Tenant+"/problem/"+p.ID, b); err != nil {
		m.log.Error("itsm: problem not saved", "id", p.ID, "err", err)
	}
}

func (inc *Incident) log(at time.Time, who, what, detail string) {
	inc.Timeline = append(inc.Timeline, TimelineEvent{At: at, Who: who, What: what, Detail: detail})
}

// HandleAlert is the ruler's event stream: firing alerts open or join
// incidents, resolved ones resolve them when all their alerts are.
func (m *Manager) HandleAlert(e alert.Event) {
	tenant := e.Tenant
	if tenant == "" {
		tenant = "default"
	}
	switch {
	case e.To == alert.StateFiring:
		m.alertFiring(tenant, e.Alert, e.At)
	case e.From == alert.StateFiring && e.To == alert.StateInactive && e.NoData &&
		m.noDataOf(tenant, e.Alert.Annotations, e.Alert.Labels) == NoDataKeepOpen:
		m.alertSilent(tenant, e.Alert, e.At)
	case e.From == alert.StateFiring && e.To == alert.StateInactive:
		why := ""
		if e.NoData {
			why = "no data (no_data: resolve)"
		}
		m.alertResolved(tenant, e.Alert, e.At, why)
	case e.From == alert.StateInactive && e.To == alert.StateInactive:
		m.alertResolved(tenant, e.Alert, e.At, "its source reports again")
	}
}

// alertSilent marks an alert whose source stopped reporting: its incident
// stays open and says since when the source is silent.
func (m *Manager) alertSilent(tenant string, a *alert.Alert, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	akey := a.Labels.String()
	m.release(tenant, akey)
	for _, inc := range m.tenantIncidents(tenant) {
		al := inc.Alerts[akey]
		if al == nil || al.State != "firing" {
			continue
		}
		al.State, al.Since = "no_data", at
		al.Changes = append(al.Changes, at)
		inc.log(at, "tsdb", "source silent", fmt.Sprintf("source silent since %s (no data, not recovered): %s",
			at.UTC().Format(time.RFC3339), akey))
		m.save(inc)
		m.emit("updated", inc)
	}
}

func (m *Manager) alertFiring(tenant string, a *alert.Alert, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fireLocked(tenant, a, at, true)
}

// fireLocked opens or joins the alert's incident, unless a maintenance
// window covers it (check) and holds it; the caller holds m.mu.
func (m *Manager) fireLocked(tenant string, a *alert.Alert, at time.Time, check bool) {
	ci := m.ciFor(tenant, a.Labels)
	ciName, kind, owner, impact := a.Labels.Get("instance"), "", "", "medium"
	var propagation []string
	if ci != nil {
		ciName, kind, owner, impact, propagation = ci.Name, ci.Kind, ci.OwnerGroup, ci.Impact, ci.Propagation
	}
	if check {
		m.recordFired(tenant, a.Labels, ciName, at)
		if w := m.windowFor(tenant, a.Labels, ciName, at); w != nil {
			sp := Suppressed{Window: w.Name, At: at, Labels: a.Labels.Map()}
			m.suppressed[tenant] = append(m.suppressed[tenant], sp)
			b, _ := json.Marshal(sp)
			_ = m.st.PutKV(fmt.Sprintf("itsm/%s/suppressed/%020d", tenant, at.UnixNano()), b)
			m.log.Info("itsm: alert suppressed by maintenance window", "window", w.Name, "alert", a.Labels.String())
			m.hold(tenant, a, w.Name, at)
			return
		}
	}
	key := m.cfg.groupKey(a.Labels, ciName)
	akey := a.Labels.String()
	var inc *Incident
	for _, x := range m.tenantIncidents(tenant) {
		if x.GroupKey != key || x.Status == StatusClosed {
			continue
		}
		if x.Status == StatusResolved && (x.ResolvedAt == nil || at.Sub(*x.ResolvedAt) > time.Duration(m.cfg.ReopenWindow)) {
			continue
		}
		if inc == nil || x.OpenedAt.After(inc.OpenedAt) {
			inc = x
		}
	}
	if inc != nil && inc.Status != StatusResolved {
		if al := inc.Alerts[akey]; al != nil && al.State == "firing" {
			// Firing already: a new leader (or a restarted node) that
			// restored the alert's `for` state tells it again. Nothing
			// changed, nothing to send.
			return
		}
	}
	event := "updated"
	switch {
	case inc == nil:
		urgency := m.cfg.urgencyOf(a.Labels)
		inc = &Incident{ID: m.nextID(tenant, "INC"), Tenant: tenant, Status: StatusOpen,
			Title: a.Labels.Get("alertname") + " on " + ciName, Urgency: urgency, Impact: impact,
			Priority: m.cfg.priority(urgency, impact), CI: ciName, CIKind: kind, OwnerGroup: owner,
			GroupKey: key, Alerts: map[string]*IncidentAlert{}, OpenedAt: at}
		if s := a.Annotations.Get("summary"); s != "" {
			inc.Title = s
		}
		inc.log(at, "tsdb", "opened", fmt.Sprintf("priority %s (urgency %s × impact %s), owner %s", inc.Priority, urgency, impact, owner))
		m.tenantIncidents(tenant)[inc.ID] = inc
		if ci == nil {
			inc.warn(fmt.Sprintf("no configured CI matches the alert (CI %q taken from its instance label; no owner group)", ciName))
		}
		m.adoptLocked(inc, at)
		if !inc.Quiet {
			m.propagate(inc, append([]string{owner}, propagation...), at, "opened")
		}
		m.pickPolicy(inc, at)
		m.assignOnCall(inc, at)
		m.checkProblem(tenant, inc, a.Labels.Get("alertname"), at)
		m.attachLocked(inc, at)
		event = "opened"
	case inc.Status == StatusResolved:
		inc.Status, inc.ResolvedAt, inc.AcknowledgedAt = StatusOpen, nil, nil
		inc.Reopened++
		inc.EscalationLevel, inc.Escalation = 0, nil
		m.pickPolicy(inc, at)
		inc.log(at, "tsdb", "reopened", "the alert fired again within the reopen window")
		if inc.Quiet && m.followedParent(inc) == nil {
			// Its parent is over: it is paged as itself now.
			inc.Quiet, inc.SLAFrom = false, &at
		}
		event = "reopened"
	}
	al := inc.Alerts[akey]
	if al == nil {
		al = &IncidentAlert{Labels: a.Labels.Map()}
		inc.Alerts[akey] = al
		retitle(inc, a.Labels.Get("alertname"))
		runbookOf(inc, a.Annotations)
	}
	al.State, al.Since = "firing", at
	al.Changes = append(al.Changes, at)
	// Flapping: 4 state changes within an hour stay one incident.
	recent := 0
	for _, c := range al.Changes {
		if at.Sub(c) <= time.Hour {
			recent++
		}
	}
	if recent >= 4 && !inc.Flapping {
		inc.Flapping = true
		inc.log(at, "tsdb", "flapping", a.Labels.Get("alertname")+" changes state often")
	}
	inc.log(at, "tsdb", "alert firing", akey)
	m.save(inc)
	m.emit(event, inc)
}

// alertResolved resolves an alert (why, when set, says more than that
// its condition cleared) and the incidents all of whose alerts are.
func (m *Manager) alertResolved(tenant string, a *alert.Alert, at time.Time, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	akey := a.Labels.String()
	m.release(tenant, akey)
	for _, inc := range m.tenantIncidents(tenant) {
		al := inc.Alerts[akey]
		if al == nil || (al.State != "firing" && al.State != "no_data") {
			continue
		}
		al.State, al.Since = "resolved", at
		al.Changes = append(al.Changes, at)
		detail := akey
		if why != "" {
			detail += ": " + why
		}
		inc.log(at, "tsdb", "alert resolved", detail)
		all := true
		for _, x := range inc.Alerts {
			all = all && x.State == "resolved"
		}
		if all && (inc.Status == StatusOpen || inc.Status == StatusAcknowledged) {
			inc.Status = StatusResolved
			t := at
			inc.ResolvedAt = &t
			inc.log(at, "tsdb", "resolved", "all alerts resolved")
			m.childrenResolved(inc, "tsdb", at)
			m.save(inc)
			m.emit("resolved", inc)
			continue
		}
		m.save(inc)
	}
}

// retitle names how many instances an alert incident covers once its
// alerts are on more than one ("HighLatency on checkout: 3 instances (a,
// b, c)"), instead of the first alert's summary naming one of them.
func retitle(inc *Incident, alertname string) {
	var insts []string
	for _, al := range inc.Alerts {
		if i := al.Labels["instance"]; i != "" && !contains(insts, i) {
			insts = append(insts, i)
		}
	}
	if len(insts) < 2 {
		return
	}
	sort.Strings(insts)
	list := strings.Join(insts, ", ")
	if len(insts) > 3 {
		list = strings.Join(insts[:3], ", ") + ", …"
	}
	inc.Title = fmt.Sprintf("%s on %s: %d instances (%s)", alertname, inc.CI, len(insts), list)
}

// checkProblem opens a problem when incidents of one CI and alert recur
// Problems.Count times within Problems.Window; the caller holds m.mu.
func (m *Manager) checkProblem(tenant string, inc *Incident, alertname string, at time.Time) {
	var same []*Incident
	for _, x := range m.tenantIncidents(tenant) {
		if x.CI == inc.CI && strings.HasPrefix(x.GroupKey, inc.GroupKey) && at.Sub(x.OpenedAt) <= time.Duration(m.cfg.Problems.Window) {
			same = append(same, x)
		}
	}
	if len(same) < m.cfg.Problems.Count {
		return
	}
	var p *Problem
	for _, x := range m.tenantProblems(tenant) {
		if x.CI == inc.CI && x.Alertname == alertname && x.Status != "closed" {
			p = x
		}
	}
	if p == nil {
		p = &Problem{ID: m.nextID(tenant, "PRB"), Tenant: tenant, Status: "registered", CI: inc.CI, Alertname: alertname, OpenedAt: at}
		p.Timeline = append(p.Timeline, TimelineEvent{At: at, Who: "tsdb", What: "registered",
			Detail: fmt.Sprintf("%d incidents within %s", len(same), FormatDuration(time.Duration(m.cfg.Problems.Window)))})
	}
	sort.Slice(same, func(i, j int) bool { return same[i].OpenedAt.Before(same[j].OpenedAt) })
	p.Incidents = p.Incidents[:0]
	for _, x := range same {
		p.Incidents = append(p.Incidents, x.ID)
		if x.ProblemID == "" {
			x.ProblemID = p.ID
			x.log(at, "tsdb", "linked to problem", p.ID)
			if x != inc {
				m.save(x)
			}
		}
	}
	m.tenantProblems(tenant)[p.ID] = p
	m.saveProblem(p)
}

// refreshSLA recomputes the SLA clocks at now.
func (m *Manager) refreshSLA(inc *Incident, now time.Time) {
	t := m.cfg.SLA[inc.Priority]
	end := now
	if inc.ResolvedAt != nil {
		end = *inc.ResolvedAt
	}
	inc.SLA.AcknowledgeTarget, inc.SLA.ResolveTarget = time.Duration(t.Acknowledge).Seconds(), time.Duration(t.Resolve).Seconds()
	inc.SLA.Follows = ""
	if p := m.followedParent(inc); p != nil {
		inc.SLA.Follows = p.ID
	}
	el := end.Sub(inc.clockStart())
	inc.SLA.ElapsedSeconds, inc.SLA.Elapsed = el.Seconds(), FormatDuration(el)
	m.refreshEscalation(inc)
}

// Tick runs escalations and SLA checks at now; call it every few seconds.
func (m *Manager) Tick() {
	now := m.now()
	m.tick(now)
	m.sendDue(now)
}

// tick escalates, checks SLAs and ends maintenance windows.
func (m *Manager) tick(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.windowsEnded(now)
	for _, byID := range m.incidents {
		for _, inc := range byID {
			if !inc.active() || m.followedParent(inc) != nil {
				// A child following its parent neither escalates nor
				// breaches on its own.
				continue
			}
			changed := false
			switch {
			case inc.Status != StatusOpen:
				// Acknowledged: escalation stops.
			case inc.EscalationPolicy != "":
				if p := m.policies.get(inc.Tenant, inc.EscalationPolicy); p != nil {
					changed = m.policyTick(inc, p, now)
				}
			default:
				levels := m.cfg.Escalation[inc.Priority]
				for inc.EscalationLevel < len(levels) && now.Sub(inc.clockStart()) >= time.Duration(levels[inc.EscalationLevel].After) {
					lv := levels[inc.EscalationLevel]
					inc.EscalationLevel++
					inc.EscalatedTo = append(inc.EscalatedTo, lv.Group)
					inc.log(now, "tsdb", "escalated", fmt.Sprintf("not acknowledged after %s: paged %s", FormatDuration(time.Duration(lv.After)), lv.Group))
					m.propagate(inc, []string{lv.Group}, now, "escalated")
					m.emit("escalated", inc)
					changed = true
				}
			}
			t := m.cfg.SLA[inc.Priority]
			if t.Acknowledge > 0 && inc.AcknowledgedAt == nil && !inc.SLA.AcknowledgeBreached && now.Sub(inc.clockStart()) > time.Duration(t.Acknowledge) {
				inc.SLA.AcknowledgeBreached = true
				inc.log(now, "tsdb", "sla breached", "time to acknowledge over "+FormatDuration(time.Duration(t.Acknowledge)))
				m.emit("sla_breached", inc)
				changed = true
			}
			if t.Resolve > 0 && !inc.SLA.ResolveBreached && now.Sub(inc.clockStart()) > time.Duration(t.Resolve) {
				inc.SLA.ResolveBreached = true
				inc.log(now, "tsdb", "sla breached", "time to resolve over "+FormatDuration(time.Duration(t.Resolve)))
				m.emit("sla_breached", inc)
				changed = true
			}
			if changed {
				m.save(inc)
			}
		}
	}
}

// Closure is the cause an operator gives when resolving or closing an
// incident: what caused it, what fixed it, what keeps it from happening
// again. Empty fields leave the incident's as they are.
type Closure struct {
	RootCause  string
	Resolution string
	Prevention string
}

func (c Closure) empty() bool { return c == Closure{} }

// apply keeps the given fields on the incident and says them for the
// timeline ("root cause: …; resolution: …").
func (c Closure) apply(inc *Incident) string {
	var parts []string
	for _, f := range []struct {
		name     string
		from, to *string
	}{{"root cause", &c.RootCause, &inc.RootCause}, {"resolution", &c.Resolution, &inc.Resolution}, {"prevention", &c.Prevention, &inc.Prevention}} {
		if *f.from != "" {
			*f.to = *f.from
			parts = append(parts, f.name+": "+*f.from)
		}
	}
	return strings.Join(parts, "; ")
}

// ErrNotFound reports an unknown incident or problem.
var ErrNotFound = errors.New("itsm: not found")

// Action applies an operator's action: ack, resolve, close, assign
// (arg: assignee), comment (arg: text), priority (arg: P1…P5, reason),
// change (arg: change request id).
func (m *Manager) Action(tenant, id, action, who, arg, reason string) (*Incident, error) {
	return m.action("", tenant, id, action, who, arg, reason, Closure{})
}

// Finish resolves (action resolve) or closes (close) an incident with its
// cause, kept on the incident; text is the timeline's comment. A cause on
// another action is ErrInvalid.
func (m *Manager) Finish(tenant, id, action, who, text string, c Closure) (*Incident, error) {
	if action != "resolve" && action != "close" && !c.empty() {
		return nil, errkind.Mark(fmt.Errorf("root_cause, resolution and prevention go with resolve or close, not %s", action), ErrInvalid)
	}
	return m.action("", tenant, id, action, who, text, "", c)
}

// action applies an action that came from origin ("" for the API, else
// a receiver, which is not sent the resulting event back).
func (m *Manager) action(origin, tenant, id, action, who, arg, reason string, cause Closure) (*Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inc := m.tenantIncidents(tenant)[id]
	if inc == nil {
		return nil, ErrNotFound
	}
	now := m.now()
	event := "updated"
	switch action {
	case "ack":
		if inc.Status != StatusOpen {
			return nil, fmt.Errorf("incident %s is %s, not open", id, inc.Status)
		}
		inc.Status = StatusAcknowledged
		inc.AcknowledgedAt = &now
		inc.log(now, who, "acknowledged", "")
		event = "acknowledged"
	case "resolve":
		if inc.Status != StatusOpen && inc.Status != StatusAcknowledged {
			return nil, fmt.Errorf("incident %s is %s", id, inc.Status)
		}
		inc.Status = StatusResolved
		inc.ResolvedAt = &now
		inc.log(now, who, "resolved", joinDetail(arg, cause.apply(inc)))
		event = "resolved"
	case "close":
		if inc.Status != StatusResolved {
			return nil, fmt.Errorf("incident %s must be resolved before it is closed", id)
		}
		inc.Status = StatusClosed
		inc.ClosedAt = &now
		inc.log(now, who, "closed", joinDetail(arg, cause.apply(inc)))
		event = "closed"
	case "assign":
		if arg == "" {
			return nil, errors.New("assign needs an assignee")
		}
		inc.Assignee = arg
		inc.log(now, who, "assigned", arg)
	case "comment":
		if arg == "" {
			return nil, errors.New("comment needs text")
		}
		inc.log(now, who, "comment", arg)
	case "priority":
		if !validPriority(arg) || reason == "" {
			return nil, errors.New("priority needs P1…P5 and a reason")
		}
		inc.log(now, who, "priority changed", fmt.Sprintf("%s → %s: %s", inc.Priority, arg, reason))
		inc.Priority, inc.PriorityReason = arg, reason
	case "change":
		if arg == "" {
			return nil, errors.New("change needs a change request id")
		}
		for _, c := range inc.Changes {
			if c.ID == arg {
				return nil, fmt.Errorf("change request %s is already linked", arg)
			}
		}
		inc.ChangeRequest = arg
		inc.Changes = append(inc.Changes, ChangeLink{ID: arg, Status: "open", LinkedAt: now})
		inc.log(now, who, "linked change request", arg)
	case "escalate":
		// arg: the group to page; default the next step of the incident's
		// policy, else the next line of the priority's escalation.
		group := arg
		levels := m.cfg.Escalation[inc.Priority]
		if p := m.policies.get(tenant, inc.EscalationPolicy); p != nil && group == "" && inc.EscalationPolicy != "" {
			if inc.Status != StatusOpen && inc.Status != StatusAcknowledged {
				return nil, fmt.Errorf("incident %s is %s", id, inc.Status)
			}
			if inc.EscalationLevel >= p.steps() {
				return nil, errkind.Mark(fmt.Errorf("incident %s is past the last step of escalation policy %s; name a group", id, p.Name), ErrInvalid)
			}
			why := "escalated by hand"
			if reason != "" {
				why += " (" + reason + ")"
			}
			m.fireStep(inc, p, who, why, now)
			event = "escalated"
			break
		}
		if group == "" {
			if inc.EscalationLevel >= len(levels) {
				return nil, errkind.Mark(fmt.Errorf("incident %s is past the last escalation line of %s; name a group", id, inc.Priority), ErrInvalid)
			}
			group = levels[inc.EscalationLevel].Group
		}
		if inc.Status != StatusOpen && inc.Status != StatusAcknowledged {
			return nil, fmt.Errorf("incident %s is %s", id, inc.Status)
		}
		inc.EscalationLevel++
		inc.EscalatedTo = append(inc.EscalatedTo, group)
		inc.log(now, who, "escalated", strings.TrimSpace("paged "+group+" by hand "+reason))
		m.propagate(inc, []string{group}, now, "escalated")
		event = "escalated"
	case "reassign":
		if arg == "" {
			return nil, errors.New("reassign needs an owner_group")
		}
		if arg == inc.OwnerGroup {
			return nil, fmt.Errorf("incident %s is already owned by %s", id, arg)
		}
		inc.log(now, who, "reassigned", strings.TrimSpace(fmt.Sprintf("owner group %s → %s %s", inc.OwnerGroup, arg, reason)))
		inc.OwnerGroup, inc.Assignee = arg, ""
		m.propagate(inc, []string{arg}, now, "reassigned")
		if old := inc.EscalationPolicy; m.policyNameFor(inc) != old {
			m.pickPolicy(inc, now)
			inc.EscalationLevel, inc.Escalation = 0, nil
			inc.log(now, "tsdb", "escalation policy", fmt.Sprintf("%s → %s, from now", orNone(old), orNone(inc.EscalationPolicy)))
		}
		m.assignOnCall(inc, now)
	case "problem":
		p := m.tenantProblems(tenant)[arg]
		if p == nil {
			return nil, fmt.Errorf("no problem %q: %w", arg, ErrNotFound)
		}
		if inc.ProblemID == arg {
			return nil, fmt.Errorf("incident %s is already linked to %s", id, arg)
		}
		inc.ProblemID = arg
		if !contains(p.Incidents, id) {
			p.Incidents = append(p.Incidents, id)
		}
		p.Timeline = append(p.Timeline, TimelineEvent{At: now, Who: who, What: "linked incident", Detail: id})
		m.saveProblem(p)
		inc.log(now, who, "linked to problem", arg)
	case "resolve_children":
		if err := m.resolveChildren(inc, who, now); err != nil {
			return nil, err
		}
	case "change_close":
		i := slices.IndexFunc(inc.Changes, func(c ChangeLink) bool { return c.ID == arg })
		if i < 0 {
			return nil, fmt.Errorf("no change request %q linked to %s", arg, id)
		}
		if inc.Changes[i].Status == "closed" {
			return nil, fmt.Errorf("change request %s is already closed", arg)
		}
		inc.Changes[i].Status, inc.Changes[i].ClosedAt = "closed", &now
		inc.log(now, who, "closed change request", arg)
	default:
		return nil, fmt.Errorf("unknown action %q", action)
	}
	if origin != "" {
		e := &inc.Timeline[len(inc.Timeline)-1]
		e.Detail = strings.TrimSpace(e.Detail + " (via " + origin + ")")
	}
	switch event {
	case "acknowledged":
		m.ackChildren(inc, who, now)
	case "resolved":
		m.childrenResolved(inc, who, now)
	}
	m.save(inc)
	m.emit(event, inc, origin)
	c := *inc
	return &c, nil
}

func joinDetail(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + " (" + b + ")"
}

// NewIncident is what an operator gives for a manual incident; only
// Title is required.
type NewIncident struct {
	Title    string
	Priority string // P1…P5; empty: matrix(urgency, impact)
	Urgency  string // high, medium, low; default medium
	Impact   string // high, medium, low; default the CI's, else medium
	CI       string
	// OwnerGroup defaults to the CI's.
	OwnerGroup string
}

// Create opens a manual incident (see CreateIncident).
func (m *Manager) Create(tenant, title, who, priority, ci, owner string) (*Incident, error) {
	return m.CreateIncident(tenant, who, NewIncident{Title: title, Priority: priority, CI: ci, OwnerGroup: owner})
}

func validLevel(s string) bool { return s == "high" || s == "medium" || s == "low" }

// CreateIncident opens a manual incident. A configured CI lends its kind,
// impact, owner group and propagation groups, as an alert on it would; the
// priority follows from urgency × impact unless the operator set one. An
// unknown CI or an owner group without members is accepted, and said on
// the incident (Warnings). A bad priority, urgency or impact is ErrInvalid.
func (m *Manager) CreateIncident(tenant, who string, n NewIncident) (*Incident, error) {
	if n.Title == "" {
		return nil, errkind.Mark(errors.New("an incident needs a title"), ErrInvalid)
	}
	if n.Priority != "" && !validPriority(n.Priority) {
		return nil, errkind.Mark(fmt.Errorf("priority %q: want P1…P5", n.Priority), ErrInvalid)
	}
	if (n.Urgency != "" && !validLevel(n.Urgency)) || (n.Impact != "" && !validLevel(n.Impact)) {
		return nil, errkind.Mark(fmt.Errorf("urgency %q, impact %q: want high, medium or low", n.Urgency, n.Impact), ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	impact, kind, owner, known := "medium", "", n.OwnerGroup, false
	var propagation []string
	if c := m.ciNamed(tenant, n.CI); c != nil {
		impact, kind, propagation, known = c.Impact, c.Kind, c.Propagation, true
		if owner == "" {
			owner = c.OwnerGroup
		}
	}
	if n.Impact != "" {
		impact = n.Impact
	}
	urgency := n.Urgency
	if urgency == "" {
		urgency = "medium"
	}
	priority, how := n.Priority, "manual incident"
	if priority == "" {
		priority = m.cfg.priority(urgency, impact)
		how += " (priority from urgency " + urgency + " × impact " + impact + ")"
	}
	now := m.now()
	inc := &Incident{ID: m.nextID(tenant, "INC"), Tenant: tenant, Title: n.Title, Status: StatusOpen, Priority: priority,
		Urgency: urgency, Impact: impact, CI: n.CI, CIKind: kind, OwnerGroup: owner, GroupKey: "manual:" + strconv.FormatInt(now.UnixNano(), 10),
		Alerts: map[string]*IncidentAlert{}, OpenedAt: now}
	if n.CI != "" && !known {
		inc.warn(fmt.Sprintf("CI %q is not configured (no kind, impact or owner group from it)", n.CI))
	}
	if owner == "" {
		inc.warn("no owner group")
	}
	inc.log(now, who, "opened", how)
	m.tenantIncidents(tenant)[inc.ID] = inc
	m.adoptLocked(inc, now)
	if !inc.Quiet {
		m.propagate(inc, append([]string{owner}, propagation...), now, "opened")
	}
	m.pickPolicy(inc, now)
	m.assignOnCall(inc, now)
	m.attachLocked(inc, now)
	m.save(inc)
	m.emit("opened", inc)
	c := *inc
	return &c, nil
}

// Incidents lists a tenant's incidents, newest first, filtered.
func (m *Manager) Incidents(tenant, status, priority, ci string, since time.Time) []*Incident {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Incident
	now := m.now()
	for _, inc := range m.tenantIncidents(tenant) {
		if (status != "" && inc.Status != status) || (priority != "" && inc.Priority != priority) ||
			(ci != "" && inc.CI != ci) || inc.OpenedAt.Before(since) {
			continue
		}
		m.refreshSLA(inc, now)
		c := *inc
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OpenedAt.After(out[j].OpenedAt) })
	return out
}

// Incident returns one incident.
func (m *Manager) Incident(tenant, id string) (*Incident, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inc := m.tenantIncidents(tenant)[id]
	if inc == nil {
		return nil, false
	}
	m.refreshSLA(inc, m.now())
	c := *inc
	return &c, true
}

// RegisterProblem registers a problem by hand, for a CI and optionally an
// alert name, and links the given incidents to it. An unknown incident is
// ErrNotFound; a problem needs a title or a CI (ErrInvalid).
func (m *Manager) RegisterProblem(tenant, who, title, ci, alertname string, incidents []string) (*Problem, error) {
	if title == "" && ci == "" {
		return nil, errkind.Mark(errors.New("a problem needs a title or a ci"), ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range incidents {
		if m.tenantIncidents(tenant)[id] == nil {
			return nil, fmt.Errorf("no incident %s: %w", id, ErrNotFound)
		}
	}
	now := m.now()
	p := &Problem{ID: m.nextID(tenant, "PRB"), Tenant: tenant, Title: title, Status: "registered", CI: ci, Alertname: alertname,
		Incidents: []string{}, OpenedAt: now}
	p.Timeline = append(p.Timeline, TimelineEvent{At: now, Who: who, What: "registered", Detail: "by hand"})
	for _, id := range incidents {
		inc := m.tenantIncidents(tenant)[id]
		if !contains(p.Incidents, id) {
			p.Incidents = append(p.Incidents, id)
		}
		inc.ProblemID = p.ID
		inc.log(now, who, "linked to problem", p.ID)
		m.save(inc)
	}
	m.tenantProblems(tenant)[p.ID] = p
	m.saveProblem(p)
	m.log.Info("itsm: problem registered", "tenant", tenant, "id", p.ID, "who", who)
	c := *p
	return &c, nil
}

// Problems lists a tenant's problems.
func (m *Manager) Problems(tenant string) []*Problem {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*Problem{} // an empty list, not null, in JSON
	for _, p := range m.tenantProblems(tenant) {
		c := *p
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OpenedAt.Before(out[j].OpenedAt) })
	return out
}

// Suppressed lists what maintenance windows kept quiet, per tenant.
func (m *Manager) Suppressed(tenant string) []Suppressed {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Suppressed{}, m.suppressed[tenant]...)
}

// problemSteps is the problem lifecycle, in order.
var problemSteps = map[string]string{
	"root_cause": "root_cause_identified", "workaround": "workaround", "solution": "solution",
	"verify": "verified", "close": "closed",
}

// ProblemAction moves a problem along registered → root cause identified →
// workaround/solution → verified → closed.
func (m *Manager) ProblemAction(tenant, id, action, who, text string) (*Problem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.tenantProblems(tenant)[id]
	if p == nil {
		return nil, ErrNotFound
	}
	to, ok := problemSteps[action]
	if !ok {
		return nil, fmt.Errorf("unknown problem action %q", action)
	}
	if p.Status == "closed" {
		return nil, fmt.Errorf("problem %s is closed", id)
	}
	if to == "verified" && p.Status != "workaround" && p.Status != "solution" {
		return nil, fmt.Errorf("problem %s needs a workaround or solution before it is verified", id)
	}
	p.Status = to
	p.Timeline = append(p.Timeline, TimelineEvent{At: m.now(), Who: who, What: to, Detail: text})
	m.saveProblem(p)
	c := *p
	return &c, nil
}
