package ruler

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/alerting/rulefmt"
	"github.com/emsdb/tsdb/internal/errkind"
)

// Store keeps rule groups written through the config API.
type Store interface {
	PutKV(key string, value []byte) error
	DeleteKV(key string) error
	ListKV(prefix string) (map[string][]byte, error)
}

const kvPrefix = "rules/"

func kvKey(tenant, ns, group string) string {
	return kvPrefix + url.PathEscape(tenant) + "/" + url.PathEscape(ns) + "/" + url.PathEscape(group)
}

// LoadStored reads every stored group and runs them.
func (r *Ruler) LoadStored(st Store) error {
	all, err := st.ListKV(kvPrefix)
	if err != nil {
		return err
	}
	byTenant := map[string]map[string][]rulefmt.Group{}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts := strings.Split(strings.TrimPrefix(k, kvPrefix), "/")
		if len(parts) != 3 {
			continue
		}
		t, _ := url.PathUnescape(parts[0])
		ns, _ := url.PathUnescape(parts[1])
		g, errs := parseGroup(all[k])
		if len(errs) > 0 {
			r.opts.Logger.Warn("stored rule group does not parse; skipped", "key", k, "err", errs[0])
			continue
		}
		if byTenant[t] == nil {
			byTenant[t] = map[string][]rulefmt.Group{}
		}
		byTenant[t][ns] = append(byTenant[t][ns], *g)
	}
	r.SetAPIGroups(byTenant)
	return nil
}

func parseGroup(b []byte) (*rulefmt.Group, []error) {
	var raw yaml.Node
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, []error{err}
	}
	if len(raw.Content) == 0 || raw.Content[0].Kind != yaml.MappingNode {
		return nil, []error{fmt.Errorf("the body must be one rule group in YAML (name:, rules:)")}
	}
	wrapped, err := yaml.Marshal(map[string]any{"groups": []*yaml.Node{raw.Content[0]}})
	if err != nil {
		return nil, []error{err}
	}
	f, errs := rulefmt.Parse(wrapped)
	if len(errs) > 0 {
		return nil, errs
	}
	if len(f.Groups) != 1 {
		return nil, []error{fmt.Errorf("want one rule group")}
	}
	return &f.Groups[0], nil
}

// ErrNoGroup is returned for a namespace or group that does not exist.
var ErrNoGroup = errors.New("ruler: no such rule group")

// ErrInvalidGroup wraps every reason a group written through the API is
// refused: YAML, rules that do not check, the per-tenant limits.
var ErrInvalidGroup = errors.New("ruler: invalid rule group")

// StoredGroups returns one tenant's groups written through the API, as
// YAML by namespace and group name.
func (r *Ruler) StoredGroups(st Store, tenant string) (map[string]map[string][]byte, error) {
	all, err := st.ListKV(kvPrefix + url.PathEscape(tenant) + "/")
	if err != nil {
		return nil, err
	}
	out := map[string]map[string][]byte{}
	for k, v := range all {
		p := strings.Split(strings.TrimPrefix(k, kvPrefix), "/")
		if len(p) != 3 {
			continue
		}
		ns, _ := url.PathUnescape(p[1])
		g, _ := url.PathUnescape(p[2])
		if out[ns] == nil {
			out[ns] = map[string][]byte{}
		}
		out[ns][g] = v
	}
	return out, nil
}

// PutGroup checks a group (one rule group in YAML), stores it in
// namespace ns of tenant, replacing a group of the same name, and runs
// it. A refused group wraps ErrInvalidGroup and changes nothing.
func (r *Ruler) PutGroup(st Store, tenant, ns string, body []byte) error {
	g, errs := parseGroup(body)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return invalidGroup("%s", strings.Join(msgs, "; "))
	}
	if err := r.checkAPILimits(g, tenant, ns, func() (map[string]map[string][]byte, error) { return r.StoredGroups(st, tenant) }); err != nil {
		return err
	}
	b, _ := yaml.Marshal(g)
	if err := st.PutKV(kvKey(tenant, ns, g.Name), b); err != nil {
		return fmt.Errorf("store rule group: %w", err)
	}
	r.reloadStored(st)
	return nil
}

// DeleteGroups deletes namespace ns of tenant, or only its group when
// group is not empty; ErrNoGroup when there is nothing to delete.
func (r *Ruler) DeleteGroups(st Store, tenant, ns, group string) error {
	all, err := r.StoredGroups(st, tenant)
	if err != nil {
		return err
	}
	var del []string
	for g := range all[ns] {
		if group == "" || g == group {
			del = append(del, g)
		}
	}
	if len(del) == 0 {
		return ErrNoGroup
	}
	for _, g := range del {
		if err := st.DeleteKV(kvKey(tenant, ns, g)); err != nil {
			return fmt.Errorf("delete rule group: %w", err)
		}
	}
	r.reloadStored(st)
	return nil
}

func (r *Ruler) reloadStored(st Store) {
	if err := r.LoadStored(st); err != nil {
		r.opts.Logger.Error("reload stored rule groups", "err", err)
	}
}

func invalidGroup(format string, args ...any) error {
	return errkind.Mark(fmt.Errorf(format, args...), ErrInvalidGroup)
}

// checkAPILimits refuses a group stored through the API that would take
// the tenant over its number of groups, has too many rules, or evaluates
// more often than the minimum interval.
func (r *Ruler) checkAPILimits(g *rulefmt.Group, tenant, ns string, stored func() (map[string]map[string][]byte, error)) error {
	if len(g.Rules) > r.opts.MaxAPIGroupRules {
		return invalidGroup("group %q has %d rules, over the limit of %d rules per group", g.Name, len(g.Rules), r.opts.MaxAPIGroupRules)
	}
	if iv := time.Duration(g.Interval); iv != 0 && iv < r.opts.MinAPIInterval {
		return invalidGroup("group %q: interval %s is shorter than the minimum of %s", g.Name, iv, r.opts.MinAPIInterval)
	}
	all, err := stored()
	if err != nil {
		return err
	}
	n := 0
	for _, groups := range all {
		n += len(groups)
	}
	if _, replaces := all[ns][g.Name]; !replaces && n >= r.opts.MaxAPIGroups {
		return invalidGroup("tenant %s already has %d rule groups, the limit; delete one first", tenant, n)
	}
	return nil
}
