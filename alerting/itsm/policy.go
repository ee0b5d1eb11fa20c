package itsm

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emsdb/tsdb/internal/duration"
)

// EscalationPolicy pages in steps while an incident stays
// unacknowledged. An incident follows the policy of its CI (service), else
// of its owner group, else the priority's escalation: lines.
type EscalationPolicy struct {
	Name string `yaml:"name" json:"name"`
	// CIs and Groups are the CIs and owner groups whose incidents follow
	// the policy; a CI's policy comes before its owner group's.
	CIs    []string `yaml:"cis" json:"cis,omitempty"`
	Groups []string `yaml:"groups" json:"groups,omitempty"`
	// Steps in order of After, each counted from the incident's opening
	// (or reopening), as escalation: lines are.
	Steps []EscalationStep `yaml:"steps" json:"steps"`
	// Repeat runs the steps that many more times; each round starts
	// RepeatAfter after the previous round's last step.
	Repeat      int   `yaml:"repeat" json:"repeat,omitempty"`
	RepeatAfter Delay `yaml:"repeat_after" json:"repeat_after,omitzero"`
	Origin      `yaml:"-"`
}

// EscalationStep notifies one target After the incident opened: a group
// (its members), a person, or the person on call for a group at the time
// of the step (OnCall).
type EscalationStep struct {
	After  Delay  `yaml:"after" json:"after"`
	Group  string `yaml:"group" json:"group,omitempty"`
	Person string `yaml:"person" json:"person,omitempty"`
	OnCall string `yaml:"oncall" json:"oncall,omitempty"`
}

// EscalationState is the last step of a policy that fired on an incident,
// and when the next one is due.
type EscalationState struct {
	Policy string    `json:"policy"`
	Step   int       `json:"step"`  // from 1
	Round  int       `json:"round"` // from 1
	Target string    `json:"target"`
	People []string  `json:"notified"`
	At     time.Time `json:"at"`
}

// maxSteps and maxRepeat bound what one incident can page: a policy is
// for people, and a typo (repeat: 100000, repeat_after: 1s) should not
// flood them or the incident's timeline.
const (
	maxSteps  = 20
	maxRepeat = 100
)

func (p *EscalationPolicy) name() string { return p.Name }

func (p *EscalationPolicy) check() error {
	if p.Name == "" {
		return fmt.Errorf("itsm escalation policy: a policy needs a name")
	}
	if len(p.Steps) == 0 {
		return fmt.Errorf("itsm escalation policy %q: steps: at least one", p.Name)
	}
	for i, s := range p.Steps {
		n := 0
		for _, x := range []string{s.Group, s.Person, s.OnCall} {
			if x != "" {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("itsm escalation policy %q: step %d: name one of group, person or oncall", p.Name, i+1)
		}
		if s.After < 0 {
			return fmt.Errorf("itsm escalation policy %q: step %d: after is negative", p.Name, i+1)
		}
		if i > 0 && s.After < p.Steps[i-1].After {
			return fmt.Errorf("itsm escalation policy %q: step %d: after %s is before step %d's %s (each counts from the opening)",
				p.Name, i+1, duration.String(time.Duration(s.After)), i, duration.String(time.Duration(p.Steps[i-1].After)))
		}
	}
	if len(p.Steps) > maxSteps {
		return fmt.Errorf("itsm escalation policy %q: %d steps; at most %d", p.Name, len(p.Steps), maxSteps)
	}
	if p.Repeat < 0 || p.Repeat > maxRepeat {
		return fmt.Errorf("itsm escalation policy %q: repeat %d; from 0 to %d", p.Name, p.Repeat, maxRepeat)
	}
	if p.Repeat > 0 && p.RepeatAfter <= 0 {
		return fmt.Errorf("itsm escalation policy %q: repeat needs repeat_after (the wait after the last step before the first again)", p.Name)
	}
	return nil
}

func (p *EscalationPolicy) describe() string {
	var parts []string
	for _, s := range p.Steps {
		parts = append(parts, fmt.Sprintf("%s %s", FormatDuration(time.Duration(s.After)), s.target()))
	}
	out := strings.Join(parts, ", ")
	if p.Repeat > 0 {
		out += fmt.Sprintf(", repeat %d× after %s", p.Repeat, FormatDuration(time.Duration(p.RepeatAfter)))
	}
	var on []string
	for _, c := range p.CIs {
		on = append(on, "ci "+c)
	}
	for _, g := range p.Groups {
		on = append(on, "group "+g)
	}
	if len(on) > 0 {
		out = strings.Join(on, ", ") + ": " + out
	}
	return out
}

// target says a step's target: "group dba", "person kim", "on-call of dba".
func (s EscalationStep) target() string {
	switch {
	case s.Group != "":
		return "group " + s.Group
	case s.Person != "":
		return "person " + s.Person
	}
	return "on-call of " + s.OnCall
}

// steps is how many steps fire in all, rounds included.
func (p *EscalationPolicy) steps() int { return len(p.Steps) * (p.Repeat + 1) }

// due is when step i (counted over the rounds) fires, from start.
func (p *EscalationPolicy) due(start time.Time, i int) time.Time {
	n := len(p.Steps)
	round := time.Duration(p.Steps[n-1].After) + time.Duration(p.RepeatAfter)
	return start.Add(time.Duration(i/n)*round + time.Duration(p.Steps[i%n].After))
}

// policyFor is the policy an incident on ci owned by group follows: the
// first (a tenant's own, then the config file's) naming the CI, else the
// first naming the group; nil for none. The caller holds m.mu.
func (m *Manager) policyFor(tenant, ci, group string) *EscalationPolicy {
	ps := m.policies.list(tenant)
	if ci != "" {
		for _, p := range ps {
			if slices.Contains(p.CIs, ci) {
				return p
			}
		}
	}
	if group != "" {
		for _, p := range ps {
			if slices.Contains(p.Groups, group) {
				return p
			}
		}
	}
	return nil
}

// policyNameFor is the name of the policy the incident's CI and owner
// group call for ("" for none); the caller holds m.mu.
func (m *Manager) policyNameFor(inc *Incident) string {
	if p := m.policyFor(inc.Tenant, inc.CI, inc.OwnerGroup); p != nil {
		return p.Name
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// pickPolicy sets the policy an incident follows from now on (at), from
// its CI and owner group; the caller holds m.mu.
func (m *Manager) pickPolicy(inc *Incident, at time.Time) {
	inc.EscalationPolicy, inc.EscalationSince = m.policyNameFor(inc), at
}

// escalationStart is when the incident's escalation clock started.
func (inc *Incident) escalationStart() time.Time {
	if inc.EscalationSince.IsZero() {
		return inc.OpenedAt
	}
	return inc.EscalationSince
}

// policyTick fires the steps of the incident's policy that are due at
// now; it reports whether any fired. The caller holds m.mu.
func (m *Manager) policyTick(inc *Incident, p *EscalationPolicy, now time.Time) bool {
	fired := false
	for inc.EscalationLevel < p.steps() && !now.Before(p.due(inc.escalationStart(), inc.EscalationLevel)) {
		s := p.Steps[inc.EscalationLevel%len(p.Steps)]
		m.fireStep(inc, p, "tsdb", "not acknowledged after "+FormatDuration(time.Duration(s.After)), now)
		m.emit("escalated", inc)
		fired = true
	}
	return fired
}

// fireStep notifies the target of the incident's next policy step, on
// the timeline (the caller sends the escalated event to the receivers),
// and moves on to the step after it. The caller holds m.mu.
func (m *Manager) fireStep(inc *Incident, p *EscalationPolicy, who, why string, now time.Time) {
	i := inc.EscalationLevel
	s := p.Steps[i%len(p.Steps)]
	var people []string
	key, label := "", ""
	switch {
	case s.Group != "":
		key, label = s.Group, s.Group
		people = append(people, m.members(inc.Tenant, s.Group)...)
	case s.Person != "":
		key, label = "person:"+s.Person, s.Person
		people = []string{s.Person}
	default:
		key = "oncall:" + s.OnCall
		if person, r, ok := m.onCallLocked(inc.Tenant, s.OnCall, now); ok {
			label = person
			people = []string{person}
			why += fmt.Sprintf(" (%s is on call for %s, rotation %s)", person, s.OnCall, r.Name)
		} else {
			// Nobody to ask: the group's members rather than no one.
			label = s.OnCall
			people = append(people, m.members(inc.Tenant, s.OnCall)...)
			inc.warn(fmt.Sprintf("group %s has no on-call rotation: its escalation step went to its members", s.OnCall))
		}
	}
	if len(people) == 0 {
		inc.warn(fmt.Sprintf("escalation policy %s step %d: %s has nobody to notify", p.Name, i%len(p.Steps)+1, s.target()))
	}
	inc.EscalationLevel++
	inc.EscalatedTo = append(inc.EscalatedTo, label)
	if inc.Recipients == nil {
		inc.Recipients = map[string][]string{}
	}
	if _, ok := inc.Recipients[key]; !ok {
		inc.PropagatedTo = append(inc.PropagatedTo, key)
	}
	inc.Recipients[key] = people
	step := fmt.Sprintf("policy %s step %d/%d", p.Name, i%len(p.Steps)+1, len(p.Steps))
	if p.Repeat > 0 {
		step += fmt.Sprintf(" (round %d of %d)", i/len(p.Steps)+1, p.Repeat+1)
	}
	inc.log(now, who, "escalated", fmt.Sprintf("%s: %s: notified %s (%s)", step, why, s.target(), strings.Join(people, ", ")))
	inc.Escalation = &EscalationState{Policy: p.Name, Step: i%len(p.Steps) + 1, Round: i/len(p.Steps) + 1,
		Target: s.target(), People: people, At: now}
}

// refreshEscalation sets when the incident's next policy step is due (nil
// when none is: no policy, acknowledged, or past the last step); the
// caller holds m.mu.
func (m *Manager) refreshEscalation(inc *Incident) {
	inc.NextEscalationAt = nil
	if inc.EscalationPolicy == "" || inc.Status != StatusOpen || m.followedParent(inc) != nil {
		return
	}
	if p := m.policies.get(inc.Tenant, inc.EscalationPolicy); p != nil && inc.EscalationLevel < p.steps() {
		t := p.due(inc.escalationStart(), inc.EscalationLevel)
		inc.NextEscalationAt = &t
	}
}

// Policies lists the escalation policies that apply to a tenant: its
// own, by name, then the config file's.
func (m *Manager) Policies(tenant string) []*EscalationPolicy {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.policies.copies(tenant)
}

// PutPolicy creates (create) or replaces a tenant's escalation policy,
// stored and recorded with who; errors as PutRotation's. Incidents
// already following a policy of that name follow the new steps.
func (m *Manager) PutPolicy(tenant, who string, p EscalationPolicy, create bool) (*EscalationPolicy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.policies.put(m, tenant, who, p, create)
}

// DeletePolicy removes a tenant's escalation policy; incidents that
// followed it escalate no further by it.
func (m *Manager) DeletePolicy(tenant, who, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.policies.remove(m, tenant, who, name)
}
