package itsm

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/emsdb/tsdb/internal/errkind"
)

// Correlation: an incident on a CI that depends (depends_on, directly or
// through others) on a CI with an open or acknowledged incident opens as
// that incident's child, under the nearest such CI's incident. A child
//
//   - is not sent to the receivers (Quiet) unless notify_children is on;
//   - does not escalate or breach its SLA on its own while its parent is
//     open or acknowledged (its SLA says whom it follows), and is
//     acknowledged with its parent;
//   - when its parent resolves, is resolved with it if none of its alerts
//     fires (resolve_children auto; offer: the parent's resolve_children
//     action does it), else goes on on its own: its SLA clocks and
//     escalation count from then, and a quiet one is paged then.
//
// An upstream incident that opens after incidents of CIs depending on it
// takes those opened within the window before it as its children; one
// whose opening had not been sent yet (the events of one evaluation wait
// a second, see emit) goes quiet, one already paged learns of its parent
// in an updated event. Every step is on both incidents' timelines.

// active reports whether the incident is open or acknowledged.
func (inc *Incident) active() bool {
	return inc.Status == StatusOpen || inc.Status == StatusAcknowledged
}

// firing reports whether any of the incident's alerts fires.
func (inc *Incident) firing() bool {
	for _, a := range inc.Alerts {
		if a.State == "firing" {
			return true
		}
	}
	return false
}

// clockStart is when the incident's SLA clocks started: its opening, or
// when it went on on its own after its parent resolved.
func (inc *Incident) clockStart() time.Time {
	if inc.SLAFrom != nil {
		return *inc.SLAFrom
	}
	return inc.OpenedAt
}

// followedParent is the incident's parent while the incident follows it
// (the parent is open or acknowledged), else nil; the caller holds m.mu.
func (m *Manager) followedParent(inc *Incident) *Incident {
	if inc.Parent == "" {
		return nil
	}
	if p := m.tenantIncidents(inc.Tenant)[inc.Parent]; p != nil && p.active() {
		return p
	}
	return nil
}

// adoptLocked makes a new incident the child of the open or acknowledged
// incident of the nearest CI its CI depends on, if there is one and
// correlation is on; the caller holds m.mu.
func (m *Manager) adoptLocked(inc *Incident, at time.Time) {
	if m.cfg.Correlation.Mode != CorrelationChild || inc.CI == "" {
		return
	}
	up := m.upstreamOf(inc.Tenant, inc.CI)
	if len(up) == 0 {
		return
	}
	var parent *Incident
	for _, x := range m.tenantIncidents(inc.Tenant) {
		d, ok := up[x.CI]
		if !ok || x == inc || !x.active() {
			continue
		}
		if parent == nil || d < up[parent.CI] || (d == up[parent.CI] && earlier(x, parent)) {
			parent = x
		}
	}
	if parent == nil {
		return
	}
	m.link(parent, inc, at, "opened under it")
	inc.Quiet = !m.cfg.Correlation.NotifyChildren
	if inc.Quiet {
		inc.log(at, "tsdb", "not paged", "a child is not sent to the receivers (correlation notify_children: false)")
	}
	if parent.Status == StatusAcknowledged {
		inc.Status, inc.AcknowledgedAt = StatusAcknowledged, &at
		inc.log(at, "tsdb", "acknowledged", "with its parent "+parent.ID)
	}
	m.save(parent)
}

// earlier orders incidents by opening, then id.
func earlier(a, b *Incident) bool {
	if !a.OpenedAt.Equal(b.OpenedAt) {
		return a.OpenedAt.Before(b.OpenedAt)
	}
	return a.ID < b.ID
}

// link records child as parent's child on both; the caller holds m.mu
// and saves both.
func (m *Manager) link(parent, child *Incident, at time.Time, how string) {
	child.Parent = parent.ID
	if !contains(parent.Children, child.ID) {
		parent.Children = append(parent.Children, child.ID)
	}
	child.log(at, "tsdb", "child of", fmt.Sprintf("%s (%s): CI %s depends on %s; %s", parent.ID, parent.Title, child.CI, parent.CI, how))
	parent.log(at, "tsdb", "child added", fmt.Sprintf("%s (%s): CI %s depends on %s", child.ID, child.Title, child.CI, parent.CI))
}

// attachLocked makes the incidents of CIs depending on p's CI, opened
// within the correlation window before p and without a parent, p's
// children; the caller holds m.mu and saves p.
func (m *Manager) attachLocked(p *Incident, at time.Time) {
	if m.cfg.Correlation.Mode != CorrelationChild || p.CI == "" {
		return
	}
	var late []*Incident
	for _, x := range m.tenantIncidents(p.Tenant) {
		if x == p || x.Parent != "" || !x.active() || x.CI == "" || x.CI == p.CI ||
			at.Sub(x.OpenedAt) > time.Duration(m.cfg.Correlation.Window) {
			continue
		}
		if _, ok := m.upstreamOf(p.Tenant, x.CI)[p.CI]; ok {
			late = append(late, x)
		}
	}
	sort.Slice(late, func(i, j int) bool { return earlier(late[i], late[j]) })
	for _, x := range late {
		m.link(p, x, at, "attached: the upstream incident opened after this one")
		k := x.Tenant + "/" + x.ID
		if pe := m.coalesce[k]; pe != nil && pe.event == "opened" && !m.cfg.Correlation.NotifyChildren {
			// Its opening waits to be sent: it never will be.
			delete(m.coalesce, k)
			pe.timer.Stop()
			x.Quiet = true
			x.log(at, "tsdb", "not paged", "its opening had not been sent yet; a child is not sent to the receivers")
			m.save(x)
			continue
		}
		m.save(x)
		m.emit("updated", x) // a ticket already made learns of its parent
	}
}

// childrenResolved acts on a parent's open children when the parent
// resolves (at, by who): those without a firing alert are resolved with
// it (resolve_children auto) or offered (offer); those still firing go
// on on their own. The caller holds m.mu and saves p.
func (m *Manager) childrenResolved(p *Incident, who string, at time.Time) {
	var offer []string
	for _, id := range p.Children {
		c := m.tenantIncidents(p.Tenant)[id]
		switch {
		case c == nil || !c.active():
		case c.firing():
			m.detach(c, p, at)
		case m.cfg.Correlation.ResolveChildren == ResolveChildrenAuto:
			m.resolveChild(c, p, who, at)
		default:
			offer = append(offer, id)
		}
	}
	if len(offer) > 0 {
		p.log(at, "tsdb", "children to resolve", strings.Join(offer, ", ")+
			" have no firing alert; the resolve_children action resolves them")
	}
}

// resolveChild resolves a child with its parent p, and its own children
// in turn; the caller holds m.mu.
func (m *Manager) resolveChild(c, p *Incident, who string, at time.Time) {
	c.Status, c.ResolvedAt = StatusResolved, &at
	c.log(at, who, "resolved", "with its parent "+p.ID+" (no alert of its own fires)")
	m.childrenResolved(c, who, at)
	m.save(c)
	m.emit("resolved", c)
}

// detach lets a child whose parent p resolved while its alerts still
// fire go on on its own from at: its SLA clocks and escalation count from
// then, and a quiet one is paged now, to its groups. The caller holds
// m.mu.
func (m *Manager) detach(c, p *Incident, at time.Time) {
	c.SLAFrom = &at
	c.EscalationLevel, c.Escalation = 0, nil
	m.pickPolicy(c, at)
	c.log(at, "tsdb", "on its own", fmt.Sprintf("parent %s resolved while its alerts still fire: its SLA clocks and escalation count from now", p.ID))
	event := "updated"
	if c.Quiet {
		c.Quiet = false
		groups := []string{c.OwnerGroup}
		if ci := m.ciNamed(c.Tenant, c.CI); ci != nil {
			groups = append(groups, ci.Propagation...)
		}
		m.propagate(c, groups, at, "on its own")
		event = "opened"
	}
	m.save(c)
	m.emit(event, c)
}

// resolveChildren is the parent's resolve_children action: its open
// children without a firing alert are resolved; the caller holds m.mu.
func (m *Manager) resolveChildren(p *Incident, who string, at time.Time) error {
	var done []string
	for _, id := range p.Children {
		if c := m.tenantIncidents(p.Tenant)[id]; c != nil && c.active() && !c.firing() {
			m.resolveChild(c, p, who, at)
			done = append(done, id)
		}
	}
	if len(done) == 0 {
		return errkind.Mark(fmt.Errorf("incident %s has no open child without a firing alert", p.ID), ErrInvalid)
	}
	p.log(at, who, "resolved children", strings.Join(done, ", "))
	return nil
}

// ackChildren acknowledges a parent's open children with it, and theirs;
// the caller holds m.mu.
func (m *Manager) ackChildren(p *Incident, who string, at time.Time) {
	for _, id := range p.Children {
		c := m.tenantIncidents(p.Tenant)[id]
		if c == nil || c.Status != StatusOpen {
			continue
		}
		c.Status, c.AcknowledgedAt = StatusAcknowledged, &at
		c.log(at, who, "acknowledged", "with its parent "+p.ID)
		m.ackChildren(c, who, at)
		m.save(c)
		m.emit("acknowledged", c)
	}
}
