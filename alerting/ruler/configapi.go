package ruler

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/alerting/rulefmt"
	"github.com/emsdb/tsdb/internal/tenancy"
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

// ConfigHandler serves the Mimir-style ruler configuration API that
// Grafana's alerting UI uses to edit rule groups:
//
//	GET    /config/v1/rules                     all namespaces (YAML)
//	GET    /config/v1/rules/{namespace}         one namespace
//	GET    /config/v1/rules/{namespace}/{group} one group
//	POST   /config/v1/rules/{namespace}         create or replace a group (YAML body)
//	DELETE /config/v1/rules/{namespace}[/{group}]
//
// path is the part after /config/v1/rules.
func (r *Ruler) ConfigHandler(ctx *fasthttp.RequestCtx, st Store, path string) {
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		ctx.Error(err.Error()+"\n", fasthttp.StatusBadRequest)
		return
	}
	var parts []string
	for _, p := range strings.Split(strings.Trim(path, "/"), "/") {
		if p == "" {
			continue
		}
		u, err := url.PathUnescape(p)
		if err != nil || !utf8.ValidString(u) {
			ctx.Error("bad path: namespaces and group names are escaped UTF-8\n", fasthttp.StatusBadRequest)
			return
		}
		parts = append(parts, u)
	}
	if len(parts) > 2 {
		ctx.Error("not found\n", fasthttp.StatusNotFound)
		return
	}
	stored := func() (map[string]map[string][]byte, error) {
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
	reload := func() {
		if err := r.LoadStored(st); err != nil {
			r.opts.Logger.Error("reload stored rule groups", "err", err)
		}
	}
	switch {
	case ctx.IsGet():
		all, err := stored()
		if err != nil {
			ctx.Error(err.Error()+"\n", fasthttp.StatusInternalServerError)
			return
		}
		ctx.SetContentType("application/yaml")
		switch len(parts) {
		case 0, 1:
			out := map[string][]*yaml.Node{}
			for ns, groups := range all {
				if len(parts) == 1 && ns != parts[0] {
					continue
				}
				names := make([]string, 0, len(groups))
				for g := range groups {
					names = append(names, g)
				}
				sort.Strings(names)
				for _, g := range names {
					var n yaml.Node
					if yaml.Unmarshal(groups[g], &n) == nil && len(n.Content) > 0 {
						out[ns] = append(out[ns], n.Content[0])
					}
				}
			}
			if len(parts) == 1 && len(out) == 0 {
				ctx.Error("no rule groups found\n", fasthttp.StatusNotFound)
				return
			}
			b, _ := yaml.Marshal(out)
			ctx.SetBody(b)
		case 2:
			g, ok := all[parts[0]][parts[1]]
			if !ok {
				ctx.Error("group does not exist\n", fasthttp.StatusNotFound)
				return
			}
			ctx.SetBody(g)
		}
	case ctx.IsPost() && len(parts) == 1:
		g, errs := parseGroup(ctx.PostBody())
		if len(errs) > 0 {
			msgs := make([]string, len(errs))
			for i, e := range errs {
				msgs[i] = e.Error()
			}
			ctx.Error(strings.Join(msgs, "; ")+"\n", fasthttp.StatusBadRequest)
			return
		}
		if err := r.checkAPILimits(g, tenant, parts[0], stored); err != nil {
			ctx.Error(err.Error()+"\n", fasthttp.StatusBadRequest)
			return
		}
		b, _ := yaml.Marshal(g)
		if err := st.PutKV(kvKey(tenant, parts[0], g.Name), b); err != nil {
			ctx.Error(err.Error()+"\n", fasthttp.StatusInternalServerError)
			return
		}
		reload()
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"success","data":null}` + "\n")
	case ctx.IsDelete() && len(parts) >= 1:
		all, err := stored()
		if err != nil {
			ctx.Error(err.Error()+"\n", fasthttp.StatusInternalServerError)
			return
		}
		var del []string
		for g := range all[parts[0]] {
			if len(parts) == 1 || g == parts[1] {
				del = append(del, g)
			}
		}
		if len(del) == 0 {
			ctx.Error("group does not exist\n", fasthttp.StatusNotFound)
			return
		}
		for _, g := range del {
			if err := st.DeleteKV(kvKey(tenant, parts[0], g)); err != nil {
				ctx.Error(err.Error()+"\n", fasthttp.StatusInternalServerError)
				return
			}
		}
		reload()
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"success","data":null}` + "\n")
	default:
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed)
	}
}

// checkAPILimits refuses a group stored through the API that would take
// the tenant over its number of groups, has too many rules, or evaluates
// more often than the minimum interval.
func (r *Ruler) checkAPILimits(g *rulefmt.Group, tenant, ns string, stored func() (map[string]map[string][]byte, error)) error {
	if len(g.Rules) > r.opts.MaxAPIGroupRules {
		return fmt.Errorf("group %q has %d rules, over the limit of %d rules per group", g.Name, len(g.Rules), r.opts.MaxAPIGroupRules)
	}
	if iv := time.Duration(g.Interval); iv != 0 && iv < r.opts.MinAPIInterval {
		return fmt.Errorf("group %q: interval %s is shorter than the minimum of %s", g.Name, iv, r.opts.MinAPIInterval)
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
		return fmt.Errorf("tenant %s already has %d rule groups, the limit; delete one first", tenant, n)
	}
	return nil
}
