package itsm

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/internal/errkind"
	"github.com/emsdb/tsdb/query"
)

// CIs come from the config file (every tenant, changed only there) and
// from the API (a tenant's own, stored under itsm/<tenant>/ci/<name>),
// as escalation policies and rotations do; see settings. A tenant's own
// come first when an alert's CI is looked up by selector, so that a
// tenant can name what the file's broad selectors would catch.
//
// depends_on makes a directed graph without cycles: the config file's
// CIs depend only on each other (checked by Config.Validate), a tenant's
// on its own and the file's (checked by PutCI). Correlation walks it
// upward from an incident's CI to find its parent incident.

func (c *CI) name() string { return c.Name }

// check validates the CI on its own (not its dependencies' existence:
// that needs the others) and fills in its defaults.
func (c *CI) check() error {
	if c.Name == "" {
		return fmt.Errorf("itsm ci: a CI needs a name")
	}
	if !validNoData(c.NoData) {
		return fmt.Errorf("itsm ci %q: no_data %q (keep_open, resolve)", c.Name, c.NoData)
	}
	switch c.Impact {
	case "":
		c.Impact = "medium"
	case "high", "medium", "low":
	default:
		return fmt.Errorf("itsm ci %q: impact %q (high, medium, low)", c.Name, c.Impact)
	}
	c.matchers = nil
	if c.Selector != "" {
		m, err := query.ParseSelector(c.Selector)
		if err != nil {
			return fmt.Errorf("itsm ci %q: selector: %w", c.Name, err)
		}
		c.matchers = m
	}
	seen := map[string]bool{}
	for _, d := range c.DependsOn {
		switch {
		case d == "":
			return fmt.Errorf("itsm ci %q: depends_on: an empty name", c.Name)
		case d == c.Name:
			return fmt.Errorf("itsm ci %q: depends_on: a CI cannot depend on itself", c.Name)
		case seen[d]:
			return fmt.Errorf("itsm ci %q: depends_on: %q twice", c.Name, d)
		}
		seen[d] = true
	}
	return nil
}

func (c *CI) describe() string {
	var parts []string
	if c.Kind != "" {
		parts = append(parts, c.Kind)
	}
	if c.Selector != "" {
		parts = append(parts, "selector "+c.Selector)
	}
	if c.OwnerGroup != "" {
		parts = append(parts, "owner "+c.OwnerGroup)
	}
	parts = append(parts, "impact "+c.Impact)
	if len(c.DependsOn) > 0 {
		parts = append(parts, "depends on "+strings.Join(c.DependsOn, ", "))
	}
	return strings.Join(parts, ", ")
}

// checkGraph checks the config file's CIs as a whole: names used once,
// depends_on naming CIs of the file, no cycle.
func checkGraph(cis []CI) error {
	deps := map[string][]string{}
	for _, c := range cis {
		if _, dup := deps[c.Name]; dup {
			return fmt.Errorf("itsm ci %q: the name is used twice", c.Name)
		}
		deps[c.Name] = c.DependsOn
	}
	for _, c := range cis {
		for _, d := range c.DependsOn {
			if _, ok := deps[d]; !ok {
				return fmt.Errorf("itsm ci %q: depends_on: no CI %q in the config file", c.Name, d)
			}
		}
	}
	if cy := cycle(deps); cy != nil {
		return fmt.Errorf("itsm cis: depends_on makes a cycle: %s", strings.Join(cy, " → "))
	}
	return nil
}

// cycle is a dependency cycle of the graph (a → b → a), nil when there
// is none; names the graph does not hold are left out.
func cycle(deps map[string][]string) []string {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path, found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		state[n] = onPath
		path = append(path, n)
		for _, d := range deps[n] {
			if _, ok := deps[d]; !ok {
				continue
			}
			switch state[d] {
			case onPath:
				found = append(slices.Clone(path[slices.Index(path, d):]), d)
				return true
			case unseen:
				if visit(d) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = done
		return false
	}
	for _, n := range sortedKeys(deps) {
		if state[n] == unseen && visit(n) {
			return found
		}
	}
	return nil
}

// ciFor is the first CI of the tenant (its own by name, then the config
// file's in order) whose selector matches the alert labels; the caller
// holds m.mu.
func (m *Manager) ciFor(tenant string, ls labels.Labels) *CI {
	for _, c := range m.cis.list(tenant) {
		if selects(c.matchers, ls) {
			return c
		}
	}
	return nil
}

// ciNamed is the tenant's CI of that name, its own or the config file's,
// nil for none; the caller holds m.mu.
func (m *Manager) ciNamed(tenant, name string) *CI {
	if name == "" {
		return nil
	}
	return m.cis.get(tenant, name)
}

// upstreamOf are the CIs ci depends on, directly (distance 1) or through
// others; the caller holds m.mu. Names no CI holds end the walk.
func (m *Manager) upstreamOf(tenant, ci string) map[string]int {
	out := map[string]int{}
	frontier := []string{ci}
	for d := 1; len(frontier) > 0; d++ {
		var next []string
		for _, n := range frontier {
			c := m.ciNamed(tenant, n)
			if c == nil {
				continue
			}
			for _, up := range c.DependsOn {
				if _, seen := out[up]; seen || up == ci {
					continue
				}
				out[up] = d
				next = append(next, up)
			}
		}
		frontier = next
	}
	return out
}

// CIView is a CI as GET /api/v1/cis shows it: the CI, the CIs that
// depend on it directly, its open and acknowledged incidents, and what
// is wrong with its dependencies.
type CIView struct {
	*CI
	Dependents []string     `json:"dependents,omitempty"`
	Incidents  []CIIncident `json:"incidents"`
	Warnings   []string     `json:"warnings,omitempty"`
}

// CIIncident is an open or acknowledged incident of a CI, with its place
// in the incident tree.
type CIIncident struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Status   string   `json:"status"`
	Priority string   `json:"priority"`
	Parent   string   `json:"parent,omitempty"`
	Children []string `json:"children,omitempty"`
}

// CIs lists the CIs that apply to a tenant: its own, by name, then the
// config file's, in order, each with its dependents and open incidents.
func (m *Manager) CIs(tenant string) []CIView {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.cis.list(tenant)
	dependents := map[string][]string{}
	for _, c := range list {
		for _, d := range c.DependsOn {
			dependents[d] = append(dependents[d], c.Name)
		}
	}
	open := map[string][]CIIncident{}
	for _, inc := range m.tenantIncidents(tenant) {
		if inc.active() && inc.CI != "" {
			open[inc.CI] = append(open[inc.CI], CIIncident{ID: inc.ID, Title: inc.Title, Status: inc.Status,
				Priority: inc.Priority, Parent: inc.Parent, Children: slices.Clone(inc.Children)})
		}
	}
	out := make([]CIView, 0, len(list))
	for _, c := range list {
		cp := *c
		cp.History = slices.Clone(c.History)
		v := CIView{CI: &cp, Dependents: dependents[c.Name], Incidents: open[c.Name]}
		if v.Incidents == nil {
			v.Incidents = []CIIncident{}
		}
		sort.Slice(v.Incidents, func(i, j int) bool { return v.Incidents[i].ID < v.Incidents[j].ID })
		for _, d := range c.DependsOn {
			if m.ciNamed(tenant, d) == nil {
				v.Warnings = append(v.Warnings, fmt.Sprintf("depends on %q, which is no CI (any more)", d))
			}
		}
		out = append(out, v)
	}
	return out
}

// PutCI creates (create) or replaces a tenant's CI, stored and recorded
// with who. A config file's name, or (create) a taken one, is
// ErrConflict; an invalid CI, one that depends on a CI the tenant does
// not have, or one that would close a cycle of dependencies, is
// ErrInvalid; replacing a missing one is ErrNotFound. Alerts map to it
// from then on.
func (m *Manager) PutCI(tenant, who string, c CI, create bool) (*CI, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.Name == "" || slices.ContainsFunc(m.cis.config, func(x *CI) bool { return x.Name == c.Name }) {
		return m.cis.put(m, tenant, who, c, create) // no name: ErrInvalid; the config file's: ErrConflict
	}
	if err := c.check(); err != nil {
		return nil, errkind.Mark(err, ErrInvalid)
	}
	for _, d := range c.DependsOn {
		if m.ciNamed(tenant, d) == nil {
			return nil, errkind.Mark(fmt.Errorf("itsm ci %q: depends_on: no CI %q (create it first)", c.Name, d), ErrInvalid)
		}
	}
	deps := map[string][]string{}
	for _, x := range m.cis.list(tenant) {
		deps[x.Name] = x.DependsOn
	}
	deps[c.Name] = c.DependsOn
	if cy := cycle(deps); cy != nil {
		return nil, errkind.Mark(fmt.Errorf("itsm ci %q: depends_on makes a cycle: %s", c.Name, strings.Join(cy, " → ")), ErrInvalid)
	}
	return m.cis.put(m, tenant, who, c, create)
}

// DeleteCI removes a tenant's CI. A config file's is ErrConflict, as is
// one that other CIs depend on (change their depends_on first); a
// missing one ErrNotFound. Its incidents keep its name.
func (m *Manager) DeleteCI(tenant, who, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cis.byTenant[tenant][name] != nil {
		var by []string
		for _, x := range m.cis.list(tenant) {
			if slices.Contains(x.DependsOn, name) {
				by = append(by, x.Name)
			}
		}
		if len(by) > 0 {
			return errkind.Mark(fmt.Errorf("CI %q is depended on by %s; change their depends_on first", name, strings.Join(by, ", ")), ErrConflict)
		}
	}
	return m.cis.remove(m, tenant, who, name)
}
