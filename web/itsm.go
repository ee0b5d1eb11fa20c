package web

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/internal/tenancy"
)

var zeroTime time.Time

func errorsIsNotFound(err error) bool { return errors.Is(err, itsm.ErrNotFound) }

// incidents serves the ITSM API: incidents, problems, owner groups,
// maintenance windows, the SLA report and inbound webhooks from
// ticketing systems. Every handler answers 404 while ITSM is off.
type incidents struct {
	m *itsm.Manager // nil: ITSM is not configured
}

// on wraps h so that it answers errITSMOff while ITSM is not configured.
func (h *incidents) on(f func(r *Request, tenant string) (any, error)) Handler {
	return func(r *Request) (any, error) {
		if h.m == nil {
			return nil, errITSMOff
		}
		tenant, err := r.Tenant()
		if err != nil {
			return nil, err
		}
		return f(r, tenant)
	}
}

// fields reads several fields of an ITSM request (query, JSON or form).
func fields(r *Request, names ...string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		v, err := r.Field(n)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (h *incidents) problems(r *Request, tenant string) (any, error) {
	return h.m.Problems(tenant), nil
}

// registerProblem serves POST /api/v1/problems: a problem registered by
// hand (title, ci, alertname, incidents: comma-separated ids to link), 201.
func (h *incidents) registerProblem(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	f, err := fields(r, "title", "ci", "alertname", "incidents")
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, id := range strings.Split(f[3], ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	p, err := h.m.RegisterProblem(tenant, who, f[0], f[1], f[2], ids)
	if err != nil {
		return nil, invalid(err)
	}
	return withStatus{code: 201, data: p}, nil
}

// problemAction serves POST /api/v1/problems/{id}/{action}: root_cause,
// workaround, solution, verify, close.
func (h *incidents) problemAction(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	text, err := r.Field("text")
	if err != nil {
		return nil, err
	}
	id := r.Param("id")
	p, err := h.m.ProblemAction(tenant, id, r.Param("action"), who, text)
	if errorsIsNotFound(err) {
		return nil, notFound("no problem %s", id)
	}
	return p, invalid(err)
}

func (h *incidents) groups(r *Request, tenant string) (any, error) {
	return h.m.Groups(tenant), nil
}

// addMember serves POST /api/v1/groups/{name}/members (member=…).
func (h *incidents) addMember(r *Request, tenant string) (any, error) {
	member, err := r.Field("member")
	if err != nil {
		return nil, err
	}
	return h.setMember(tenant, r.Param("name"), member, true)
}

// removeMember serves DELETE /api/v1/groups/{name}/members/{member}.
func (h *incidents) removeMember(r *Request, tenant string) (any, error) {
	return h.setMember(tenant, r.Param("name"), r.Param("member"), false)
}

func (h *incidents) setMember(tenant, group, member string, add bool) (any, error) {
	members, err := h.m.SetMember(tenant, group, member, add)
	if err != nil {
		return nil, invalid(err)
	}
	return map[string]any{"group": group, "members": members}, nil
}

// maintenance serves GET /api/v1/maintenance: the windows that apply to
// the tenant (config file's and its own) and what they suppressed.
func (h *incidents) maintenance(r *Request, tenant string) (any, error) {
	return map[string]any{"windows": h.m.Maintenance(tenant), "suppressed": h.m.Suppressed(tenant)}, nil
}

// window reads a maintenance window from a JSON body.
func window(r *Request) (itsm.Maintenance, error) {
	var w itsm.Maintenance
	if err := json.Unmarshal(r.Body(), &w); err != nil {
		return w, badData("body is not a maintenance window (JSON: name, ci or selector, start and end or recurring): %v", err)
	}
	return w, nil
}

// createWindow serves POST /api/v1/maintenance: a tenant's window (201).
func (h *incidents) createWindow(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	w, err := window(r)
	if err != nil {
		return nil, err
	}
	out, err := h.m.PutWindow(tenant, who, w, true)
	if err != nil {
		return nil, invalid(err)
	}
	return withStatus{code: 201, data: out}, nil
}

// changeWindow serves PUT /api/v1/maintenance/{name}.
func (h *incidents) changeWindow(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	w, err := window(r)
	if err != nil {
		return nil, err
	}
	if w.Name == "" {
		w.Name = r.Param("name")
	}
	if w.Name != r.Param("name") {
		return nil, badData("the body names window %q, the path %q", w.Name, r.Param("name"))
	}
	out, err := h.m.PutWindow(tenant, who, w, false)
	return out, invalid(err)
}

// deleteWindow serves DELETE /api/v1/maintenance/{name}.
func (h *incidents) deleteWindow(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	name := r.Param("name")
	if err := h.m.DeleteWindow(tenant, who, name); err != nil {
		return nil, invalid(err)
	}
	return map[string]any{"deleted": name}, nil
}

// slaReport serves GET /api/v1/reports/sla?from=&to=[&format=html].
func (h *incidents) slaReport(r *Request, tenant string) (any, error) {
	f, err := fields(r, "from", "to", "format")
	if err != nil {
		return nil, err
	}
	from, err1 := parseWhen(f[0], zeroTime)
	to, err2 := parseWhen(f[1], h.m.Now())
	if err1 != nil || err2 != nil || to.Before(from) {
		return nil, badData("from and to must be times (Unix seconds or RFC 3339), from not after to")
	}
	rep := h.m.SLAReport(tenant, from, to)
	if f[2] == "html" || r.Accepts("text/html") {
		html, err := itsm.SLAReportHTML(rep, tenant)
		if err != nil {
			return nil, err
		}
		return body{contentType: "text/html; charset=utf-8", b: html}, nil
	}
	return rep, nil
}

// list serves GET /api/v1/incidents?status=&priority=&ci=&since=.
func (h *incidents) list(r *Request, tenant string) (any, error) {
	f, err := fields(r, "since", "status", "priority", "ci")
	if err != nil {
		return nil, err
	}
	since, err := parseWhen(f[0], zeroTime)
	if err != nil {
		return nil, badData("since: %v", err)
	}
	out := h.m.Incidents(tenant, f[1], f[2], f[3], since)
	if out == nil {
		out = []*itsm.Incident{}
	}
	return out, nil
}

// create serves POST /api/v1/incidents: a manual incident (201).
func (h *incidents) create(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	f, err := fields(r, "title", "priority", "ci", "owner_group", "urgency", "impact")
	if err != nil {
		return nil, err
	}
	inc, err := h.m.CreateIncident(tenant, who, itsm.NewIncident{Title: f[0], Priority: f[1], CI: f[2], OwnerGroup: f[3], Urgency: f[4], Impact: f[5]})
	if err != nil {
		return nil, invalid(err)
	}
	return withStatus{code: 201, data: inc}, nil
}

// get serves GET /api/v1/incidents/{id}.
func (h *incidents) get(r *Request, tenant string) (any, error) {
	id := r.Param("id")
	inc, ok := h.m.Incident(tenant, id)
	if !ok {
		return nil, notFound("no incident %s", id)
	}
	return inc, nil
}

// report serves GET /api/v1/incidents/{id}/report (HTML), in the
// viewer's time zone (tz=, IANA; default UTC) and language (lang=en|ko).
func (h *incidents) report(r *Request, tenant string) (any, error) {
	id := r.Param("id")
	v := itsm.Viewer{Lang: r.Arg("lang")}
	if tz := r.Arg("tz"); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return nil, badData("invalid parameter \"tz\": %q is not an IANA time zone (Asia/Seoul)", tz)
		}
		v.Loc = loc
	}
	html, err := h.m.Report(tenant, id, v)
	if errorsIsNotFound(err) {
		return nil, notFound("no incident %s", id)
	}
	if err != nil {
		return nil, err
	}
	return body{contentType: "text/html; charset=utf-8", b: html}, nil
}

// actionArg names the field each incident action takes its argument from.
var actionArg = map[string]string{
	"assign": "assignee", "comment": "text", "priority": "priority",
	"change": "change_request", "change_close": "change_request", "resolve": "text", "close": "text",
	"escalate": "group", "reassign": "owner_group", "problem": "problem_id",
}

// action serves POST /api/v1/incidents/{id}/{action}: ack, resolve,
// close, assign, comment, priority, change, change_close, and events
// (two-way sync from ticketing systems, which names the action). resolve
// and close take the cause too: root_cause, resolution, prevention.
func (h *incidents) action(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	id, action := r.Param("id"), r.Param("action")
	if action == "events" {
		if action, err = r.Field("action"); err != nil {
			return nil, err
		}
	}
	arg := ""
	if name, ok := actionArg[action]; ok {
		if arg, err = r.Field(name); err != nil {
			return nil, err
		}
	}
	reason, err := r.Field("reason")
	if err != nil {
		return nil, err
	}
	cause, err := fields(r, "root_cause", "resolution", "prevention")
	if err != nil {
		return nil, err
	}
	var inc *itsm.Incident
	if c := (itsm.Closure{RootCause: cause[0], Resolution: cause[1], Prevention: cause[2]}); c != (itsm.Closure{}) {
		inc, err = h.m.Finish(tenant, id, action, who, arg, c)
	} else {
		inc, err = h.m.Action(tenant, id, action, who, arg, reason)
	}
	if err == itsm.ErrNotFound { //nolint:errorlint // the bare sentinel is the incident; a missing problem names itself
		return nil, notFound("no incident %s", id)
	}
	return inc, invalid(err)
}

// inbound serves POST /api/v1/itsm/inbound/{receiver}: a ticketing
// system's webhook, checked against the receiver's own secret.
func (h *incidents) inbound(r *Request, tenant string) (any, error) {
	if r.Header(tenancy.Header) == "" {
		tenant = "" // the receiver's own: it is bound to its tenants
	}
	applied, skipped, err := h.m.Inbound(r.Param("receiver"), tenant, r.Header, r.Body())
	if err != nil {
		return nil, invalid(err)
	}
	return map[string]any{"applied": applied, "skipped": skipped}, nil
}
