package itsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A group's members start from the config's groups: section; the API adds
// and removes members per tenant, stored under itsm/<tenant>/group/<name>.

func groupKey(tenant, group string) string { return "itsm/" + tenant + "/group/" + group }

// members returns a group's members for a tenant; the caller holds m.mu.
func (m *Manager) members(tenant, group string) []string {
	if g, ok := m.groups[tenant][group]; ok {
		return g
	}
	return m.cfg.Groups[group]
}

// knownGroups are the groups the configuration names anywhere.
func (m *Manager) knownGroups() map[string]bool {
	out := map[string]bool{}
	for g := range m.cfg.Groups {
		out[g] = true
	}
	for _, ci := range m.cfg.CIs {
		if ci.OwnerGroup != "" {
			out[ci.OwnerGroup] = true
		}
		for _, g := range ci.Propagation {
			out[g] = true
		}
	}
	for _, levels := range m.cfg.Escalation {
		for _, lv := range levels {
			out[lv.Group] = true
		}
	}
	for _, p := range m.cfg.EscalationPolicies {
		for _, st := range p.Steps {
			if st.Group != "" {
				out[st.Group] = true
			}
		}
	}
	return out
}

// Groups lists every group with its members for a tenant.
func (m *Manager) Groups(tenant string) map[string][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := m.knownGroups()
	for g := range m.groups[tenant] {
		names[g] = true
	}
	out := map[string][]string{}
	for g := range names {
		out[g] = append([]string{}, m.members(tenant, g)...)
	}
	return out
}

// SetMember adds (add) or removes a member of a group for a tenant.
func (m *Manager) SetMember(tenant, group, member string, add bool) ([]string, error) {
	if group == "" || member == "" || strings.ContainsAny(group, "/\n") {
		return nil, errors.New("a group name (no '/') and a member are required")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := append([]string{}, m.members(tenant, group)...)
	has := contains(cur, member)
	switch {
	case add && has, !add && !has:
		return cur, nil
	case add:
		cur = append(cur, member)
	default:
		out := cur[:0]
		for _, x := range cur {
			if x != member {
				out = append(out, x)
			}
		}
		cur = out
	}
	b, _ := json.Marshal(cur)
	if err := m.st.PutKV(groupKey(tenant, group), b); err != nil {
		return nil, fmt.Errorf("group %s not saved: %w", group, err)
	}
	if m.groups[tenant] == nil {
		m.groups[tenant] = map[string][]string{}
	}
	m.groups[tenant][group] = cur
	verb := "removed from"
	if add {
		verb = "added to"
	}
	m.log.Info("itsm: group membership changed", "tenant", tenant, "member", member, "change", verb, "group", group)
	return append([]string{}, cur...), nil
}

// propagate records the groups (and their members now) that receive the
// incident; the caller holds m.mu.
func (m *Manager) propagate(inc *Incident, groups []string, at time.Time, why string) {
	if inc.Recipients == nil {
		inc.Recipients = map[string][]string{}
	}
	var parts []string
	for _, g := range groups {
		if g == "" {
			continue
		}
		if _, done := inc.Recipients[g]; done {
			continue
		}
		ms := append([]string{}, m.members(inc.Tenant, g)...)
		if len(ms) == 0 {
			inc.warn(fmt.Sprintf("group %s has no members: nobody received the incident through it", g))
		}
		inc.Recipients[g] = ms
		inc.PropagatedTo = append(inc.PropagatedTo, g)
		parts = append(parts, fmt.Sprintf("%s (%s)", g, strings.Join(ms, ", ")))
	}
	if len(parts) > 0 {
		inc.log(at, "tsdb", "propagated", why+": "+strings.Join(parts, "; "))
	}
}
