package web

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/query"
)

// rules serves /api/v1/rules, /api/v1/alerts, the alert history and the
// ruler config API.
type rules struct {
	ruler  *ruler.Ruler
	store  ruler.Store
	engine query.Evaluator
	now    func() time.Time
}

// on is f, or nil (no route) without a ruler.
func (h *rules) on(f Handler) Handler {
	if h.ruler == nil {
		return nil
	}
	return f
}

type apiAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    *time.Time        `json:"activeAt,omitempty"`
	KeepFiring  *time.Time        `json:"keepFiringSince,omitempty"`
	Value       string            `json:"value"`
}

func alertJSON(a *ruler.Alert) apiAlert {
	x := apiAlert{Labels: a.Labels.Map(), Annotations: a.Annotations.Map(), State: string(a.State),
		Value: strconv.FormatFloat(a.Value, 'e', -1, 64)}
	if math.IsNaN(a.Value) {
		x.Value = "NaN"
	}
	if !a.ActiveAt.IsZero() {
		t := a.ActiveAt.UTC()
		x.ActiveAt = &t
	}
	if !a.KeepFiringSince.IsZero() {
		t := a.KeepFiringSince.UTC()
		x.KeepFiring = &t
	}
	return x
}

// alerts serves /api/v1/alerts in Prometheus's shape.
func (h *rules) alerts(r *Request) (any, error) {
	tenant, err := r.Tenant()
	if err != nil {
		return nil, err
	}
	alerts := []apiAlert{}
	for _, a := range h.ruler.TenantAlerts(tenant) {
		alerts = append(alerts, alertJSON(a))
	}
	return map[string]any{"alerts": alerts}, nil
}

type apiRule struct {
	State          string            `json:"state,omitempty"`
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	Duration       float64           `json:"duration,omitempty"`
	KeepFiringFor  float64           `json:"keepFiringFor,omitempty"`
	Labels         map[string]string `json:"labels"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Alerts         []apiAlert        `json:"alerts,omitempty"`
	Health         string            `json:"health"`
	LastError      string            `json:"lastError,omitempty"`
	Type           string            `json:"type"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
	EvaluationTime float64           `json:"evaluationTime"`
}

type apiGroup struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []apiRule `json:"rules"`
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	LastEvaluation time.Time `json:"lastEvaluation"`
	EvaluationTime float64   `json:"evaluationTime"`
}

// rulesList serves /api/v1/rules with the type, rule_name[],
// rule_group[] and file[] filters.
func (h *rules) rulesList(r *Request) (any, error) {
	tenant, err := r.Tenant()
	if err != nil {
		return nil, err
	}
	typ := r.Arg("type")
	if typ != "" && typ != "alert" && typ != "record" {
		return nil, badData("invalid parameter \"type\": must be alert or record")
	}
	names, groupsF, files := r.Args("rule_name[]"), r.Args("rule_group[]"), r.Args("file[]")
	out := []apiGroup{}
	for _, g := range h.ruler.Status(tenant) {
		if (len(groupsF) > 0 && !slices.Contains(groupsF, g.Name)) || (len(files) > 0 && !slices.Contains(files, g.File)) {
			continue
		}
		ag := apiGroup{Name: g.Name, File: g.File, Interval: g.Interval.Seconds(), Limit: g.Limit,
			LastEvaluation: g.LastEvaluation.UTC(), EvaluationTime: g.EvaluationTime.Seconds(), Rules: []apiRule{}}
		for _, rl := range g.Rules {
			if (typ == "alert" && rl.Kind != "alerting") || (typ == "record" && rl.Kind != "recording") {
				continue
			}
			if len(names) > 0 && !slices.Contains(names, rl.Def.Name()) {
				continue
			}
			ar := apiRule{Name: rl.Def.Name(), Query: rl.Def.Expr, Labels: rl.Def.Labels, Health: rl.Health,
				LastError: rl.LastError, LastEvaluation: rl.LastEvaluation.UTC(), EvaluationTime: rl.EvaluationTime.Seconds()}
			if ar.Labels == nil {
				ar.Labels = map[string]string{}
			}
			if rl.Kind == "alerting" {
				ar.Type = "alerting"
				ar.Duration = time.Duration(rl.Def.For).Seconds()
				ar.KeepFiringFor = time.Duration(rl.Def.KeepFiringFor).Seconds()
				ar.Annotations = rl.Def.Annotations
				ar.State = string(ruler.StateInactive)
				ar.Alerts = []apiAlert{}
				for _, a := range rl.Alerts {
					ar.Alerts = append(ar.Alerts, alertJSON(a))
					if a.State == ruler.StateFiring || ar.State == string(ruler.StateInactive) {
						ar.State = string(a.State)
					}
				}
			} else {
				ar.Type = "recording"
			}
			ag.Rules = append(ag.Rules, ar)
		}
		if len(ag.Rules) > 0 || (len(names) == 0 && typ == "") {
			out = append(out, ag)
		}
	}
	return map[string]any{"groups": out}, nil
}

// alertHistory serves /api/v1/alerts/history?start=&end=[&alertname=]:
// every alert transition in the range, oldest first, read back from the
// ALERTS_TRANSITIONS series (so it survives restarts).
func (h *rules) alertHistory(r *Request) (any, error) {
	tenant, err := r.Tenant()
	if err != nil {
		return nil, err
	}
	now := h.now()
	start, err1 := parseWhen(r.Arg("start"), now.Add(-24*time.Hour))
	end, err2 := parseWhen(r.Arg("end"), now)
	if err1 != nil || err2 != nil || end.Before(start) {
		return nil, badData("start and end must be times (Unix seconds or RFC 3339), start not after end")
	}
	sel := "ALERTS_TRANSITIONS"
	if n := r.Arg("alertname"); n != "" {
		sel = fmt.Sprintf(`ALERTS_TRANSITIONS{alertname=%q}`, n)
	}
	q := fmt.Sprintf("%s[%dms]", sel, max(1, end.Sub(start).Milliseconds()+1))
	c, cancel := requestContext(r, 2*time.Minute)
	defer cancel()
	res, err := h.engine.Instant(c, tenant, q, end.UnixMilli())
	if err != nil {
		return nil, &apiError{typ: errExecution, err: err}
	}
	type transition struct {
		Time   time.Time         `json:"time"`
		From   string            `json:"from"`
		To     string            `json:"to"`
		Labels map[string]string `json:"labels"`
	}
	out := []transition{}
	for _, s := range res.Series {
		m := s.Metric.Map()
		from, to := m["transition_from"], m["transition_to"]
		delete(m, "__name__")
		delete(m, "transition_from")
		delete(m, "transition_to")
		for _, p := range s.Points {
			if p.T >= start.UnixMilli() {
				out = append(out, transition{Time: time.UnixMilli(p.T).UTC(), From: from, To: to, Labels: m})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return map[string]any{"transitions": out}, nil
}

// parseWhen parses Unix seconds (with a fraction) or RFC 3339; "" is def.
func parseWhen(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.UnixMilli(int64(f * 1000)), nil
	}
	return time.Parse(time.RFC3339, s)
}

// The Mimir-style ruler configuration API that Grafana's alerting UI uses
// to edit rule groups (also under /prometheus, where Mimir serves it):
//
//	GET    /config/v1/rules                     all namespaces (YAML)
//	GET    /config/v1/rules/{namespace}         one namespace
//	GET    /config/v1/rules/{namespace}/{group} one group
//	POST   /config/v1/rules/{namespace}         create or replace a group (YAML body)
//	DELETE /config/v1/rules/{namespace}[/{group}]
//
// Errors are plain text, as Mimir answers them.

// configNames returns the tenant, namespace and group of the request,
// the names unescaped.
func configNames(r *Request) (string, string, string, error) {
	tenant, err := r.Tenant()
	if err != nil {
		return "", "", "", err
	}
	var out [2]string
	for i, name := range []string{"namespace", "group"} {
		u, err := url.PathUnescape(r.Param(name))
		if err != nil || !utf8.ValidString(u) {
			return "", "", "", badData("bad path: namespaces and group names are escaped UTF-8")
		}
		out[i] = u
	}
	return tenant, out[0], out[1], nil
}

// configGet serves the three GETs.
func (h *rules) configGet(r *Request) (any, error) {
	tenant, ns, group, err := configNames(r)
	if err != nil {
		return nil, err
	}
	all, err := h.ruler.StoredGroups(h.store, tenant)
	if err != nil {
		return nil, err
	}
	if group != "" {
		g, ok := all[ns][group]
		if !ok {
			return nil, notFound("group does not exist")
		}
		return body{contentType: "application/yaml", b: g}, nil
	}
	out := map[string][]*yaml.Node{}
	for name, groups := range all {
		if ns != "" && name != ns {
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
				out[name] = append(out[name], n.Content[0])
			}
		}
	}
	if ns != "" && len(out) == 0 {
		return nil, notFound("no rule groups found")
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return nil, err
	}
	return body{contentType: "application/yaml", b: b}, nil
}

// configPost serves POST /config/v1/rules/{namespace}.
func (h *rules) configPost(r *Request) (any, error) {
	tenant, ns, _, err := configNames(r)
	if err != nil {
		return nil, err
	}
	if err := h.ruler.PutGroup(h.store, tenant, ns, r.Body()); err != nil {
		return nil, err
	}
	return withStatus{code: 202}, nil
}

// configDelete serves DELETE /config/v1/rules/{namespace}[/{group}].
func (h *rules) configDelete(r *Request) (any, error) {
	tenant, ns, group, err := configNames(r)
	if err != nil {
		return nil, err
	}
	if err := h.ruler.DeleteGroups(h.store, tenant, ns, group); err != nil {
		if errors.Is(err, ruler.ErrNoGroup) {
			return nil, notFound("group does not exist")
		}
		return nil, err
	}
	return withStatus{code: 202}, nil
}
