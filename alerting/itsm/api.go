package itsm

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/apijson"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/tenancy"
)

var (
	reply = apijson.Reply
	fail  = apijson.Fail
)

// param reads a value from the query string, a form body or a JSON body.
func param(ctx *fasthttp.RequestCtx, body map[string]string, name string) string {
	if v := ctx.QueryArgs().Peek(name); len(v) > 0 {
		return string(v)
	}
	if v, ok := body[name]; ok {
		return v
	}
	return string(ctx.PostArgs().Peek(name))
}

// IsPath reports whether the ITSM handler serves path.
func IsPath(path string) bool {
	for _, p := range []string{"/api/v1/incidents", "/api/v1/problems", "/api/v1/groups", "/api/v1/maintenance", "/api/v1/itsm/inbound"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return path == "/api/v1/reports/sla"
}

// Handler serves /api/v1/incidents…, /api/v1/problems and
// /api/v1/reports/sla; path is the request path.
func (m *Manager) Handler(ctx *fasthttp.RequestCtx, path string) {
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		fail(ctx, fasthttp.StatusBadRequest, "bad_data", err.Error())
		return
	}
	if rest, ok := strings.CutPrefix(path, "/api/v1/itsm/inbound/"); ok {
		m.inboundHandler(ctx, rest, tenant)
		return
	}
	body := map[string]string{}
	if strings.HasPrefix(string(ctx.Request.Header.ContentType()), "application/json") && len(ctx.PostBody()) > 0 {
		var raw map[string]any
		if err := json.Unmarshal(ctx.PostBody(), &raw); err != nil {
			fail(ctx, fasthttp.StatusBadRequest, "bad_data", "body is not a JSON object: "+err.Error())
			return
		}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				body[k] = s
			}
		}
	}
	who := auth.UserOf(ctx) // with authentication on, the user who signed in
	if who == "" {
		who = string(ctx.Request.Header.Peek("X-User"))
	}
	if who == "" {
		who = param(ctx, body, "who")
	}
	if who == "" {
		who = "api"
	}
	switch {
	case path == "/api/v1/problems" && ctx.IsGet():
		reply(ctx, 200, m.Problems(tenant))
	case strings.HasPrefix(path, "/api/v1/problems/") && ctx.IsPost():
		parts := strings.Split(strings.TrimPrefix(path, "/api/v1/problems/"), "/")
		if len(parts) != 2 {
			fail(ctx, 404, "not_found", "use POST /api/v1/problems/{id}/{root_cause|workaround|solution|verify|close}")
			return
		}
		p, err := m.ProblemAction(tenant, parts[0], parts[1], who, param(ctx, body, "text"))
		switch {
		case errors.Is(err, ErrNotFound):
			fail(ctx, 404, "not_found", "no problem "+parts[0])
		case err != nil:
			fail(ctx, 400, "bad_data", err.Error())
		default:
			reply(ctx, 200, p)
		}
	case path == "/api/v1/groups" && ctx.IsGet():
		reply(ctx, 200, m.Groups(tenant))
	case strings.HasPrefix(path, "/api/v1/groups/"):
		// POST /api/v1/groups/{name}/members {member}; DELETE …/members/{member}
		parts := strings.Split(strings.TrimPrefix(path, "/api/v1/groups/"), "/")
		var members []string
		var err error
		switch {
		case len(parts) == 2 && parts[1] == "members" && ctx.IsPost():
			members, err = m.SetMember(tenant, parts[0], param(ctx, body, "member"), true)
		case len(parts) == 3 && parts[1] == "members" && ctx.IsDelete():
			members, err = m.SetMember(tenant, parts[0], parts[2], false)
		default:
			fail(ctx, 404, "not_found", "use POST /api/v1/groups/{name}/members (member=…) or DELETE /api/v1/groups/{name}/members/{member}")
			return
		}
		if err != nil {
			fail(ctx, 400, "bad_data", err.Error())
			return
		}
		reply(ctx, 200, map[string]any{"group": parts[0], "members": members})
	case path == "/api/v1/maintenance":
		reply(ctx, 200, map[string]any{"windows": m.Maintenance(), "suppressed": m.Suppressed(tenant)})
	case path == "/api/v1/reports/sla":
		from, err1 := when(param(ctx, body, "from"), time.Time{})
		to, err2 := when(param(ctx, body, "to"), m.now())
		if err1 != nil || err2 != nil || to.Before(from) {
			fail(ctx, 400, "bad_data", "from and to must be times (Unix seconds or RFC 3339), from not after to")
			return
		}
		rep := m.SLAReport(tenant, from, to)
		if param(ctx, body, "format") == "html" || strings.Contains(string(ctx.Request.Header.Peek("Accept")), "text/html") {
			html, err := slaReportHTML(rep, tenant)
			if err != nil {
				fail(ctx, 500, "internal", err.Error())
				return
			}
			ctx.SetContentType("text/html; charset=utf-8")
			ctx.SetBody(html)
			return
		}
		reply(ctx, 200, rep)
	case path == "/api/v1/incidents" && ctx.IsGet():
		since, err := when(param(ctx, body, "since"), time.Time{})
		if err != nil {
			fail(ctx, 400, "bad_data", "since: "+err.Error())
			return
		}
		out := m.Incidents(tenant, param(ctx, body, "status"), param(ctx, body, "priority"), param(ctx, body, "ci"), since)
		if out == nil {
			out = []*Incident{}
		}
		reply(ctx, 200, out)
	case path == "/api/v1/incidents" && ctx.IsPost():
		inc, err := m.Create(tenant, param(ctx, body, "title"), who, param(ctx, body, "priority"), param(ctx, body, "ci"), param(ctx, body, "owner_group"))
		if err != nil {
			fail(ctx, 400, "bad_data", err.Error())
			return
		}
		reply(ctx, 201, inc)
	case strings.HasPrefix(path, "/api/v1/incidents/"):
		parts := strings.Split(strings.TrimPrefix(path, "/api/v1/incidents/"), "/")
		id := parts[0]
		if len(parts) == 2 && parts[1] == "report" && ctx.IsGet() {
			html, err := m.Report(tenant, id)
			if errors.Is(err, ErrNotFound) {
				fail(ctx, 404, "not_found", "no incident "+id)
				return
			}
			if err != nil {
				fail(ctx, 500, "internal", err.Error())
				return
			}
			ctx.SetContentType("text/html; charset=utf-8")
			ctx.SetBody(html)
			return
		}
		if len(parts) == 1 && ctx.IsGet() {
			inc, ok := m.Incident(tenant, id)
			if !ok {
				fail(ctx, 404, "not_found", "no incident "+id)
				return
			}
			reply(ctx, 200, inc)
			return
		}
		if len(parts) != 2 || !ctx.IsPost() {
			fail(ctx, 405, "bad_data", "use POST /api/v1/incidents/{id}/{ack|resolve|close|assign|comment|priority|change|change_close|events}")
			return
		}
		action := parts[1]
		if action == "events" { // two-way sync from ticketing systems
			action = param(ctx, body, "action")
		}
		arg := ""
		switch action {
		case "assign":
			arg = param(ctx, body, "assignee")
		case "comment":
			arg = param(ctx, body, "text")
		case "priority":
			arg = param(ctx, body, "priority")
		case "change", "change_close":
			arg = param(ctx, body, "change_request")
		case "resolve", "close":
			arg = param(ctx, body, "text")
		}
		inc, err := m.Action(tenant, id, action, who, arg, param(ctx, body, "reason"))
		switch {
		case errors.Is(err, ErrNotFound):
			fail(ctx, 404, "not_found", "no incident "+id)
		case err != nil:
			fail(ctx, 400, "bad_data", err.Error())
		default:
			reply(ctx, 200, inc)
		}
	default:
		fail(ctx, 404, "not_found", "unknown ITSM endpoint "+path)
	}
}

func when(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.UnixMilli(int64(f * 1000)), nil
	}
	return time.Parse(time.RFC3339, s)
}

// PriorityReport is one priority's line of the SLA report.
type PriorityReport struct {
	Priority   string  `json:"priority"`
	Incidents  int     `json:"incidents"`
	MTTA       string  `json:"mtta"`
	MTTR       string  `json:"mttr"`
	MTTASecs   float64 `json:"mtta_seconds"`
	MTTRSecs   float64 `json:"mttr_seconds"`
	Compliance float64 `json:"sla_compliance_percent"`
}

// SLAReport is the periodic SLA report.
type SLAReport struct {
	From       time.Time        `json:"from"`
	To         time.Time        `json:"to"`
	Priorities []PriorityReport `json:"priorities"`
	TopCIs     []map[string]any `json:"top_cis"`
}

// SLAReport summarises incidents opened in [from, to].
func (m *Manager) SLAReport(tenant string, from, to time.Time) SLAReport {
	rep := SLAReport{From: from, To: to, Priorities: []PriorityReport{}, TopCIs: []map[string]any{}}
	type acc struct {
		n, acked, resolved, ok int
		ackSum, resSum         time.Duration
	}
	by := map[string]*acc{}
	cis := map[string]int{}
	for _, inc := range m.Incidents(tenant, "", "", "", from) {
		if inc.OpenedAt.After(to) {
			continue
		}
		a := by[inc.Priority]
		if a == nil {
			a = &acc{}
			by[inc.Priority] = a
		}
		a.n++
		cis[inc.CI]++
		if inc.AcknowledgedAt != nil {
			a.acked++
			a.ackSum += inc.AcknowledgedAt.Sub(inc.OpenedAt)
		}
		if inc.ResolvedAt != nil {
			a.resolved++
			a.resSum += inc.ResolvedAt.Sub(inc.OpenedAt)
		}
		if !inc.SLA.AcknowledgeBreached && !inc.SLA.ResolveBreached {
			a.ok++
		}
	}
	for _, p := range []string{"P1", "P2", "P3", "P4", "P5"} {
		a := by[p]
		if a == nil {
			continue
		}
		r := PriorityReport{Priority: p, Incidents: a.n, Compliance: 100 * float64(a.ok) / float64(a.n)}
		if a.acked > 0 {
			d := a.ackSum / time.Duration(a.acked)
			r.MTTA, r.MTTASecs = FormatDuration(d), d.Seconds()
		}
		if a.resolved > 0 {
			d := a.resSum / time.Duration(a.resolved)
			r.MTTR, r.MTTRSecs = FormatDuration(d), d.Seconds()
		}
		rep.Priorities = append(rep.Priorities, r)
	}
	names := make([]string, 0, len(cis))
	for c := range cis {
		names = append(names, c)
	}
	sort.Slice(names, func(i, j int) bool {
		if cis[names[i]] != cis[names[j]] {
			return cis[names[i]] > cis[names[j]]
		}
		return names[i] < names[j]
	})
	for i, c := range names {
		if i == 10 {
			break
		}
		rep.TopCIs = append(rep.TopCIs, map[string]any{"ci": c, "incidents": cis[c]})
	}
	return rep
}

func (m *Manager) inboundHandler(ctx *fasthttp.RequestCtx, receiver, tenant string) {
	if !ctx.IsPost() {
		fail(ctx, 405, "bad_data", "use POST /api/v1/itsm/inbound/{receiver}")
		return
	}
	header := func(name string) string { return string(ctx.Request.Header.Peek(name)) }
	applied, skipped, err := m.Inbound(receiver, tenant, header, ctx.PostBody())
	switch {
	case errors.Is(err, ErrNotFound):
		fail(ctx, 404, "not_found", err.Error())
	case errors.Is(err, ErrUnauthorized):
		fail(ctx, 401, "unauthorized", err.Error())
	case err != nil:
		fail(ctx, 400, "bad_data", err.Error())
	default:
		reply(ctx, 200, map[string]any{"applied": applied, "skipped": skipped})
	}
}
