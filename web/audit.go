package web

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/internal/audit"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/tenancy"
)

// The audit log is written in one place: the router records an entry
// after each successful call of a route with an Audit describer (the
// change routes of the ITSM, rule config and admin APIs). The describer
// says what changed (action, object, summary) from the request and the
// handler's answer; the router adds who (the authenticated user, or
// "anonymous" without authentication: a claimed X-User is not trusted),
// when, from where and the tenant. A change is never undone because its
// entry could not be stored; the failure is logged.

// Auditor describes a successful change for the audit log from its
// request and answer (Action, Kind, Object and Summary of the entry).
type Auditor func(r *Request, data any) audit.Entry

var errAuditOff = &apiError{typ: errNotFound, err: errors.New("the audit log is not kept")}

// anonymous is the user of entries recorded without authentication.
const anonymous = "anonymous"

// record stores the audit entry of a successful change.
func (rt *Router) record(c *compiled, r *Request, data any) {
	if rt.audit == nil || c.Audit == nil {
		return
	}
	if _, ok := data.(proxied); ok {
		return // the leader that served it records it
	}
	e := c.Audit(r, data)
	if e.Action == "" {
		return
	}
	e.User = auth.UserOf(r.Ctx)
	if e.User == "" {
		e.User = anonymous
	}
	e.Addr = r.Ctx.RemoteIP().String()
	e.ForwardedFor = r.Header("X-Forwarded-For")
	if t, err := tenancy.FromRequest(r.Ctx); err == nil {
		e.Tenant = t
	}
	if e.Tenant == "" {
		e.Tenant = tenancy.Default
	}
	e.Summary = clip(e.Summary, 300)
	_ = rt.audit.Record(e) // it logs its failures
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// auditList serves GET /api/v1/audit?start=&end=&user=&action=&object=&limit=:
// the tenant's entries, newest first.
func auditList(l *audit.Log) Handler {
	return func(r *Request) (any, error) {
		if l == nil {
			return nil, errAuditOff
		}
		tenant, err := r.Tenant()
		if err != nil {
			return nil, err
		}
		q := audit.Query{User: r.Arg("user"), Action: r.Arg("action"), Object: r.Arg("object")}
		if q.Start, err = parseWhen(r.Arg("start"), zeroTime); err != nil {
			return nil, badData("start: %v", err)
		}
		if q.End, err = parseWhen(r.Arg("end"), zeroTime); err != nil {
			return nil, badData("end: %v", err)
		}
		if s := r.Arg("limit"); s != "" {
			if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 0 {
				return nil, badData("limit: want a count, at most %d", audit.MaxLimit)
			}
		}
		return l.Query(tenant, q)
	}
}

// unwrap is a handler's data without its status.
func unwrap(data any) any {
	if w, ok := data.(withStatus); ok {
		return w.data
	}
	return data
}

// auditIncidentCreate describes POST /api/v1/incidents.
func auditIncidentCreate(_ *Request, data any) audit.Entry {
	inc, ok := unwrap(data).(*itsm.Incident)
	if !ok {
		return audit.Entry{}
	}
	return audit.Entry{Action: "incident.create", Kind: "incident", Object: inc.ID,
		Summary: fmt.Sprintf("opened manual incident %s (%s): %s", inc.ID, inc.Priority, inc.Title)}
}

// auditIncidentAction describes POST /api/v1/incidents/{id}/{action}
// by the timeline entry the action added ("INC-000012 acknowledged",
// "INC-000012 priority changed: P3 → P1: customers affected").
func auditIncidentAction(r *Request, data any) audit.Entry {
	inc, ok := data.(*itsm.Incident)
	if !ok {
		return audit.Entry{}
	}
	action, via := r.Param("action"), ""
	if action == "events" {
		action, _ = r.Field("action")
		via = " (events API)"
	}
	e := audit.Entry{Action: "incident." + action, Kind: "incident", Object: inc.ID, Summary: inc.ID + " " + action + via}
	for i := len(inc.Timeline) - 1; i >= 0; i-- {
		if t := inc.Timeline[i]; t.Who != "tsdb" {
			e.Summary = inc.ID + " " + t.What
			if t.Detail != "" {
				e.Summary += ": " + t.Detail
			}
			e.Summary += via
			break
		}
	}
	return e
}

// auditProblem describes POST /api/v1/problems and its actions.
func auditProblem(r *Request, data any) audit.Entry {
	p, ok := unwrap(data).(*itsm.Problem)
	if !ok {
		return audit.Entry{}
	}
	if action := r.Param("action"); action != "" {
		s := fmt.Sprintf("problem %s is %s", p.ID, p.Status)
		if text, _ := r.Field("text"); text != "" {
			s += ": " + text
		}
		return audit.Entry{Action: "problem." + action, Kind: "problem", Object: p.ID, Summary: s}
	}
	s := "registered problem " + p.ID
	if p.Title != "" {
		s += ": " + p.Title
	}
	if len(p.Incidents) > 0 {
		s += " (incidents " + strings.Join(p.Incidents, ", ") + ")"
	}
	return audit.Entry{Action: "problem.create", Kind: "problem", Object: p.ID, Summary: s}
}

// auditMember describes the group member routes.
func auditMember(add bool) Auditor {
	return func(r *Request, _ any) audit.Entry {
		group := r.Param("name")
		if add {
			member, _ := r.Field("member")
			return audit.Entry{Action: "group.add_member", Kind: "group", Object: group, Summary: fmt.Sprintf("added %s to group %s", member, group)}
		}
		return audit.Entry{Action: "group.remove_member", Kind: "group", Object: group,
			Summary: fmt.Sprintf("removed %s from group %s", r.Param("member"), group)}
	}
}

// auditWindow describes the maintenance window routes.
func auditWindow(verb string) Auditor {
	return func(r *Request, data any) audit.Entry {
		name := r.Param("name")
		s := "maintenance window " + name + " " + verb
		if w, ok := unwrap(data).(*itsm.Maintenance); ok {
			name = w.Name
			s = "maintenance window " + name + " " + verb
			if w.CI != "" {
				s += ", ci " + w.CI
			}
			if w.Selector != "" {
				s += ", selector " + w.Selector
			}
			if w.Recurring != nil {
				s += fmt.Sprintf(", %s %s–%s %s", strings.Join(w.Recurring.Weekdays, ","), w.Recurring.From, w.Recurring.To, w.Recurring.Timezone)
			} else {
				s += ", " + w.Start.UTC().Format("2006-01-02 15:04") + " – " + w.End.UTC().Format("2006-01-02 15:04 UTC")
			}
		}
		return audit.Entry{Action: "maintenance." + map[string]string{"created": "create", "changed": "change", "deleted": "delete"}[verb],
			Kind: "maintenance", Object: name, Summary: s}
	}
}

// auditRulesSet describes POST /config/v1/rules/{namespace}.
func auditRulesSet(r *Request, _ any) audit.Entry {
	ns := r.Param("namespace")
	var g struct {
		Name string `yaml:"name"`
	}
	_ = yaml.Unmarshal(r.Body(), &g)
	return audit.Entry{Action: "rules.set", Kind: "rule_group", Object: ns + "/" + g.Name,
		Summary: fmt.Sprintf("rule group %s set in namespace %s", g.Name, ns)}
}

// auditRulesDelete describes DELETE /config/v1/rules/{namespace}[/{group}].
func auditRulesDelete(r *Request, _ any) audit.Entry {
	ns, g := r.Param("namespace"), r.Param("group")
	if g == "" {
		return audit.Entry{Action: "rules.delete", Kind: "rule_namespace", Object: ns, Summary: "rule namespace " + ns + " deleted"}
	}
	return audit.Entry{Action: "rules.delete", Kind: "rule_group", Object: ns + "/" + g,
		Summary: fmt.Sprintf("rule group %s deleted from namespace %s", g, ns)}
}

// auditDeleteSeries describes POST /api/v1/admin/tsdb/delete_series.
func auditDeleteSeries(r *Request, _ any) audit.Entry {
	ms := strings.Join(r.Args("match[]"), " ")
	s := "deleted series " + ms
	if start, end := r.Arg("start"), r.Arg("end"); start != "" || end != "" {
		s += fmt.Sprintf(" from %s to %s", or(start, "the beginning"), or(end, "now"))
	}
	return audit.Entry{Action: "admin.delete_series", Kind: "series", Object: ms, Summary: s}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// auditSnapshot describes POST /api/v1/admin/tsdb/snapshot.
func auditSnapshot(_ *Request, data any) audit.Entry {
	m, _ := data.(map[string]string)
	return audit.Entry{Action: "admin.snapshot", Kind: "snapshot", Object: m["name"], Summary: "snapshot " + m["name"] + " taken"}
}

// auditDeleteSnapshot describes DELETE /api/v1/admin/tsdb/snapshots/{name}.
func auditDeleteSnapshot(r *Request, _ any) audit.Entry {
	n := r.Param("name")
	return audit.Entry{Action: "admin.delete_snapshot", Kind: "snapshot", Object: n, Summary: "snapshot " + n + " deleted"}
}

// auditReload describes POST /-/reload (a Raw route: it changed something
// when it answered 2xx).
func auditReload(r *Request, _ any) audit.Entry {
	if r.Ctx.Response.StatusCode() >= fasthttp.StatusMultipleChoices {
		return audit.Entry{}
	}
	s := "configuration reloaded"
	if b := strings.TrimSpace(string(r.Ctx.Response.Body())); b != "" {
		s += ": " + b
	}
	return audit.Entry{Action: "config.reload", Kind: "config", Summary: s}
}
