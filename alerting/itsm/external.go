package itsm

import (
	"fmt"
	"sort"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// External is an incident raised by another engine (KPI forecasts)
// rather than by an alert. One incident is open per Key at a time.
type External struct {
	Key     string            // e.g. kpi:orders/predicted
	Kind    string            // e.g. predicted_breach, kpi_breach
	Title   string            //
	Urgency string            // high, medium, low; default medium
	CI      string            // optional: else the first CI whose selector matches Labels
	Labels  map[string]string // for CI selection and receiver routes
	Details map[string]any
	Links   map[string]string
	Causes  []ProbableCause
	Note    string // what changed, for the timeline
}

// ProbableCause is an IT alert that fired shortly before a KPI turned.
type ProbableCause struct {
	Alertname string            `json:"alertname"`
	CI        string            `json:"ci"`
	Labels    map[string]string `json:"labels"`
	FiredAt   time.Time         `json:"fired_at"`
	// Score is 1 for an alert that fired at the turn, falling to 0 at the
	// start of the window.
	Score float64 `json:"score"`
}

type firedAlert struct {
	labels labels.Labels
	ci     string
	at     time.Time
}

// recordFired remembers a firing alert for probable-cause analysis (a
// day, at most 10000 per tenant); the caller holds m.mu.
func (m *Manager) recordFired(tenant string, ls labels.Labels, ci string, at time.Time) {
	r := append(m.fired[tenant], firedAlert{labels: ls, ci: ci, at: at})
	cut := 0
	for cut < len(r) && (at.Sub(r[cut].at) > 24*time.Hour || len(r)-cut > 10000) {
		cut++
	}
	m.fired[tenant] = r[cut:]
}

// ProbableCauses lists the alerts that fired within window before turn on
// the CIs linked to a KPI: those named in cis, those whose selector
// matches the KPI's labels, and alerts with the KPI's service label;
// closest in time first.
func (m *Manager) ProbableCauses(tenant string, kpiLabels map[string]string, cis []string, turn time.Time, window time.Duration) []ProbableCause {
	m.mu.Lock()
	defer m.mu.Unlock()
	linked := map[string]bool{}
	for _, c := range cis {
		linked[c] = true
	}
	ls := labels.FromMap(kpiLabels)
	for _, c := range m.cis.list(tenant) {
		if len(kpiLabels) > 0 && selects(c.matchers, ls) {
			linked[c.Name] = true
		}
	}
	service := kpiLabels["service"]
	best := map[string]ProbableCause{} // one entry per alert, the closest firing
	for _, f := range m.fired[tenant] {
		d := turn.Sub(f.at)
		if d < 0 || d > window {
			continue
		}
		if !linked[f.ci] && (service == "" || f.labels.Get("service") != service) {
			continue
		}
		k := f.labels.String()
		c := ProbableCause{Alertname: f.labels.Get("alertname"), CI: f.ci, Labels: f.labels.Map(), FiredAt: f.at,
			Score: 1 - d.Seconds()/window.Seconds()}
		if old, ok := best[k]; !ok || c.Score > old.Score {
			best[k] = c
		}
	}
	out := make([]ProbableCause, 0, len(best))
	for _, c := range best {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].Alertname < out[j].Alertname
	})
	if len(out) > 10 {
		out = out[:10]
	}
	return out
}

// Raise opens the incident for x.Key or, when one is open, updates it.
// It reports whether the incident is new.
func (m *Manager) Raise(tenant string, x External, at time.Time) (*Incident, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := "ext:" + x.Key
	var inc *Incident
	for _, c := range m.tenantIncidents(tenant) {
		if c.GroupKey == key && (c.Status == StatusOpen || c.Status == StatusAcknowledged) {
			inc = c
		}
	}
	created := inc == nil
	if created {
		ls := labels.FromMap(x.Labels)
		ciName, kind, owner, impact := x.CI, "", "", "medium"
		var propagation []string
		ci := m.ciFor(tenant, ls)
		if x.CI != "" {
			ci = m.ciNamed(tenant, x.CI)
		}
		if ci != nil {
			ciName, kind, owner, impact, propagation = ci.Name, ci.Kind, ci.OwnerGroup, ci.Impact, ci.Propagation
		}
		urgency := x.Urgency
		if urgency == "" {
			urgency = "medium"
		}
		inc = &Incident{ID: m.nextID(tenant, "INC"), Tenant: tenant, Status: StatusOpen, Kind: x.Kind,
			Title: x.Title, Urgency: urgency, Impact: impact, Priority: m.cfg.priority(urgency, impact),
			CI: ciName, CIKind: kind, OwnerGroup: owner, GroupKey: key, Alerts: map[string]*IncidentAlert{}, OpenedAt: at}
		inc.log(at, "tsdb", "opened", fmt.Sprintf("%s: priority %s (urgency %s × impact %s), owner %s", x.Kind, inc.Priority, urgency, impact, owner))
		m.tenantIncidents(tenant)[inc.ID] = inc
		m.propagate(inc, append([]string{owner}, propagation...), at, "opened")
	} else {
		inc.Title = x.Title
		inc.log(at, "tsdb", "updated", x.Note)
	}
	inc.Labels, inc.Details, inc.Links = x.Labels, x.Details, x.Links
	if x.Causes != nil {
		inc.ProbableCauses = x.Causes
	}
	m.save(inc)
	event := "updated"
	if created {
		event = "opened"
	}
	m.emit(event, inc)
	c := *inc
	return &c, created
}

// Clear resolves the open incident for key, if any, and reports whether
// there was one.
func (m *Manager) Clear(tenant, key, reason string, at time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, inc := range m.tenantIncidents(tenant) {
		if inc.GroupKey != "ext:"+key || (inc.Status != StatusOpen && inc.Status != StatusAcknowledged) {
			continue
		}
		inc.Status = StatusResolved
		t := at
		inc.ResolvedAt = &t
		inc.log(at, "tsdb", "resolved", reason)
		m.childrenResolved(inc, "tsdb", at)
		m.save(inc)
		m.emit("resolved", inc)
		return true
	}
	return false
}

// CIOf names the CI an external incident with these labels (and CI, when
// given) would be opened on: the named CI if it is configured, else the
// first whose selector matches the labels; "" when there is none.
func (m *Manager) CIOf(lbls map[string]string, ci string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ci != "" {
		for i := range m.cfg.CIs {
			if m.cfg.CIs[i].Name == ci {
				return ci
			}
		}
		return ""
	}
	ls := labels.FromMap(lbls)
	for _, c := range m.cis.config { // the config file's: KPIs are configured there too
		if selects(c.matchers, ls) {
			return c.Name
		}
	}
	return ""
}
