package itsm

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/internal/errkind"
)

// Origin says where a run-time setting (an on-call rotation, an
// escalation policy) comes from: "config" (the config file's, for every
// tenant, changed only there) or "api" (a tenant's own), and, for the
// API's, who made and changed it and when.
type Origin struct {
	Source  string          `yaml:"-" json:"source,omitempty"`
	History []TimelineEvent `yaml:"-" json:"history,omitempty"`
}

func (o *Origin) origin() *Origin { return o }

// setting is what settings needs of a rotation or a policy.
type setting interface {
	name() string
	// check validates the setting and fills in its defaults.
	check() error
	// describe is the setting in a line, for its history and the log.
	describe() string
	origin() *Origin
}

// settings are one kind of run-time ITSM setting that both the config
// file and the API make, as maintenance windows are: the config file's
// apply to every tenant and change only there; the API's are per tenant,
// stored under itsm/<tenant>/<kind>/<name>, with their history. Its
// methods are called with Manager.mu held.
type settings[T any, P interface {
	*T
	setting
}] struct {
	kind string // the key part: rotation, policy
	what string // for people: on-call rotation, escalation policy
	path string // the API path that changes one, for messages

	config   []P
	byTenant map[string]map[string]P
}

func newSettings[T any, P interface {
	*T
	setting
}](kind, what, path string, config []T) (*settings[T, P], error) {
	s := &settings[T, P]{kind: kind, what: what, path: path, byTenant: map[string]map[string]P{}}
	// NB: a copy, so that marking them "config" leaves the caller's
	// config as it was read (a reload compares it with the file's).
	config = slices.Clone(config)
	seen := map[string]bool{}
	for i := range config {
		p := P(&config[i])
		if err := p.check(); err != nil {
			return nil, err
		}
		if seen[p.name()] {
			return nil, fmt.Errorf("itsm %s %q: the name is used twice", what, p.name())
		}
		seen[p.name()] = true
		p.origin().Source = "config"
		s.config = append(s.config, p)
	}
	return s, nil
}

func (s *settings[T, P]) key(tenant, name string) string {
	return "itsm/" + tenant + "/" + s.kind + "/" + name
}

// load keeps a stored setting (the key's <tenant>/<kind>/<name> split
// off); a stored setting that no longer validates is left out, and said.
func (s *settings[T, P]) load(tenant string, b []byte) error {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	p := P(&v)
	if err := p.check(); err != nil {
		return err
	}
	s.tenant(tenant)[p.name()] = p
	return nil
}

func (s *settings[T, P]) tenant(t string) map[string]P {
	if s.byTenant[t] == nil {
		s.byTenant[t] = map[string]P{}
	}
	return s.byTenant[t]
}

// list is what applies to a tenant: the tenant's own, by name, then the
// config file's, in order. A tenant's own come first: what a tenant set
// at run time is its choice over the file's defaults.
func (s *settings[T, P]) list(tenant string) []P {
	out := make([]P, 0, len(s.config)+len(s.byTenant[tenant]))
	for _, name := range sortedKeys(s.byTenant[tenant]) {
		out = append(out, s.byTenant[tenant][name])
	}
	return append(out, s.config...)
}

// get is a tenant's setting by name, its own or the config file's.
// copies lists the settings that apply to tenant (list's order) as
// copies, history included, that the caller may hand out after releasing
// the Manager's lock.
func (s *settings[T, P]) copies(tenant string) []P {
	out := []P{}
	for _, p := range s.list(tenant) {
		c := P(new(T))
		*c = *p
		c.origin().History = slices.Clone(p.origin().History)
		out = append(out, c)
	}
	return out
}

func (s *settings[T, P]) get(tenant, name string) P {
	if p := s.byTenant[tenant][name]; p != nil {
		return p
	}
	for _, p := range s.config {
		if p.name() == name {
			return p
		}
	}
	return nil
}

// put creates (create) or replaces a tenant's setting, durably, with who
// in its history. A name the config file uses, or (create) one the
// tenant has, is ErrConflict; a setting that does not validate is
// ErrInvalid; replacing a missing one is ErrNotFound.
func (s *settings[T, P]) put(m *Manager, tenant, who string, v T, create bool) (P, error) {
	p := P(&v)
	if n := p.name(); n == "" || strings.ContainsAny(n, "/\n") {
		return nil, errkind.Mark(fmt.Errorf("itsm %s %q: a name is required, without '/' or newline", s.what, n), ErrInvalid)
	}
	*p.origin() = Origin{Source: "api"}
	if err := p.check(); err != nil {
		return nil, errkind.Mark(err, ErrInvalid)
	}
	name := p.name()
	for _, c := range s.config {
		if c.name() == name {
			return nil, errkind.Mark(fmt.Errorf("%s %q is in the config file; change it there", s.what, name), ErrConflict)
		}
	}
	old := s.byTenant[tenant][name]
	switch {
	case create && old != nil:
		return nil, errkind.Mark(fmt.Errorf("%s %q exists; PUT %s/%s changes it", s.what, name, s.path, name), ErrConflict)
	case !create && old == nil:
		return nil, fmt.Errorf("no %s %q: %w", s.what, name, ErrNotFound)
	}
	what := "created"
	o := p.origin()
	if old != nil {
		o.History = append(o.History, old.origin().History...)
		what = "changed"
	}
	o.History = append(o.History, TimelineEvent{At: m.now(), Who: who, What: what, Detail: p.describe()})
	b, _ := json.Marshal(p)
	if err := m.st.PutKV(s.key(tenant, name), b); err != nil {
		return nil, fmt.Errorf("%s %s not saved: %w", s.what, name, err)
	}
	s.tenant(tenant)[name] = p
	m.log.Info("itsm: "+s.what+" "+what, "tenant", tenant, "name", name, "who", who, "detail", p.describe())
	c := *p
	cp := P(&c)
	cp.origin().History = append([]TimelineEvent(nil), o.History...)
	return cp, nil
}

// remove deletes a tenant's setting; a config file's is ErrConflict, a
// missing one ErrNotFound.
func (s *settings[T, P]) remove(m *Manager, tenant, who, name string) error {
	for _, c := range s.config {
		if c.name() == name {
			return errkind.Mark(fmt.Errorf("%s %q is in the config file; remove it there", s.what, name), ErrConflict)
		}
	}
	p := s.byTenant[tenant][name]
	if p == nil {
		return fmt.Errorf("no %s %q: %w", s.what, name, ErrNotFound)
	}
	if err := m.st.DeleteKV(s.key(tenant, name)); err != nil {
		return fmt.Errorf("%s %s not deleted: %w", s.what, name, err)
	}
	delete(s.byTenant[tenant], name)
	m.log.Info("itsm: "+s.what+" deleted", "tenant", tenant, "name", name, "who", who, "detail", p.describe())
	return nil
}

// Delay is a duration written in Prometheus's syntax ("10m", "1h30m") in
// both YAML and JSON, so that the API takes what the config file takes.
type Delay time.Duration

// UnmarshalYAML reads a delay as duration.Duration does.
func (d *Delay) UnmarshalYAML(n *yaml.Node) error {
	var x duration.Duration
	if err := x.UnmarshalYAML(n); err != nil {
		return err
	}
	*d = Delay(x)
	return nil
}

// MarshalYAML writes a delay as duration.String does.
func (d Delay) MarshalYAML() (any, error) { return duration.String(time.Duration(d)), nil }

// MarshalJSON writes a delay as a string ("10m").
func (d Delay) MarshalJSON() ([]byte, error) { return json.Marshal(duration.String(time.Duration(d))) }

// UnmarshalJSON reads a string such as "10m".
func (d *Delay) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a delay is a string such as \"10m\", not %s", b)
	}
	v, err := duration.Parse(s)
	if err != nil {
		return err
	}
	*d = Delay(v)
	return nil
}
