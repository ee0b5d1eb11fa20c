package itsm

import (
	"bytes"
	"fmt"
	"html/template"
	"sort"
	"time"
)

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"fmtTime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"fmtPtr": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Inc.ID}} — {{.Inc.Title}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#111}
h1{font-size:20px;margin:0 0 .3em} table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.P1{color:#b00020;font-weight:bold}.P2{color:#c75000;font-weight:bold}
@media print{body{margin:0}}
</style></head><body>
<h1>{{.Inc.ID}}: {{.Inc.Title}}</h1>
<p>Priority <span class="{{.Inc.Priority}}">{{.Inc.Priority}}</span> (urgency {{.Inc.Urgency}} × impact {{.Inc.Impact}}{{if .Inc.PriorityReason}}; overridden: {{.Inc.PriorityReason}}{{end}}) ·
status <b>{{.Inc.Status}}</b> · CI {{.Inc.CI}} · owner {{.Inc.OwnerGroup}}{{if .Inc.Assignee}} · assignee {{.Inc.Assignee}}{{end}}{{if .Inc.ChangeRequest}} · change {{.Inc.ChangeRequest}}{{end}}{{if .Inc.ProblemID}} · problem {{.Inc.ProblemID}}{{end}}</p>
<h2>Summary</h2>
<table>
<tr><th>Opened</th><td>{{fmtTime .Inc.OpenedAt}}</td></tr>
<tr><th>Acknowledged</th><td>{{fmtPtr .Inc.AcknowledgedAt}}</td></tr>
<tr><th>Resolved</th><td>{{fmtPtr .Inc.ResolvedAt}}</td></tr>
<tr><th>Closed</th><td>{{fmtPtr .Inc.ClosedAt}}</td></tr>
<tr><th>Duration</th><td>{{.Inc.SLA.Elapsed}}</td></tr>
<tr><th>SLA</th><td>acknowledge {{.AckTarget}}{{if .Inc.SLA.AcknowledgeBreached}} — <b>breached</b>{{end}}; resolve {{.ResTarget}}{{if .Inc.SLA.ResolveBreached}} — <b>breached</b>{{end}}</td></tr>
<tr><th>Change requests</th><td>{{range .Inc.Changes}}{{.ID}} ({{.Status}}) {{else}}—{{end}}</td></tr>
<tr><th>Escalated to</th><td>{{range .Inc.EscalatedTo}}{{.}} {{else}}—{{end}}</td></tr>
<tr><th>Sent to</th><td>{{range $g := .Inc.PropagatedTo}}{{$g}} ({{range $i, $m := index $.Inc.Recipients $g}}{{if $i}}, {{end}}{{$m}}{{end}}) {{else}}—{{end}}</td></tr>
</table>
<h2>Cause and resolution</h2>
<table>
<tr><th>Root cause</th><td>{{or .Inc.RootCause "—"}}</td></tr>
<tr><th>Resolution</th><td>{{or .Inc.Resolution "—"}}</td></tr>
<tr><th>Prevention</th><td>{{or .Inc.Prevention "—"}}</td></tr>
</table>
<h2>Timeline</h2>
{{.Chart}}
<table><tr><th>When</th><th>Who</th><th>What</th><th>Detail</th></tr>
{{range .Inc.Timeline}}<tr><td>{{fmtTime .At}}</td><td>{{.Who}}</td><td>{{.What}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
<h2>Alerts</h2>
<table><tr><th>Labels</th><th>State</th><th>Since</th></tr>
{{range .Alerts}}<tr><td>{{.Key}}</td><td>{{.State}}</td><td>{{fmtTime .Since}}</td></tr>
{{end}}</table>
<h2>Actions and follow-up</h2>
<ul>{{range .Actions}}<li>{{.}}</li>{{else}}<li>none recorded</li>{{end}}</ul>
</body></html>
`))

// Report renders a printable HTML report of an incident, with an SVG
// timeline chart.
func (m *Manager) Report(tenant, id string) ([]byte, error) {
	inc, ok := m.Incident(tenant, id)
	if !ok {
		return nil, ErrNotFound
	}
	type alertRow struct {
		Key, State string
		Since      time.Time
	}
	var alerts []alertRow
	for k, a := range inc.Alerts {
		alerts = append(alerts, alertRow{k, a.State, a.Since})
	}
	sort.Slice(alerts, func(i, j int) bool { return alerts[i].Key < alerts[j].Key })
	var actions []string
	for _, e := range inc.Timeline {
		if e.Who != "tsdb" {
			actions = append(actions, fmt.Sprintf("%s — %s %s %s", e.At.UTC().Format("01-02 15:04"), e.Who, e.What, e.Detail))
		}
	}
	t := m.cfg.SLA[inc.Priority]
	var buf bytes.Buffer
	err := reportTmpl.Execute(&buf, map[string]any{
		"Inc": inc, "Alerts": alerts, "Actions": actions, "Chart": timelineSVG(inc, m.now()),
		"AckTarget": orDash(time.Duration(t.Acknowledge)), "ResTarget": orDash(time.Duration(t.Resolve)),
	})
	return buf.Bytes(), err
}

func orDash(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return FormatDuration(d)
}

// timelineSVG draws the incident's life as a bar with its events marked.
func timelineSVG(inc *Incident, now time.Time) template.HTML {
	end := now
	if inc.ClosedAt != nil {
		end = *inc.ClosedAt
	} else if inc.ResolvedAt != nil {
		end = *inc.ResolvedAt
	}
	span := end.Sub(inc.OpenedAt)
	if span <= 0 {
		span = time.Second
	}
	const w, left, right = 760.0, 20.0, 20.0
	x := func(t time.Time) float64 {
		return left + (w-left-right)*float64(t.Sub(inc.OpenedAt))/float64(span)
	}
	colors := map[string]string{"opened": "#b00020", "acknowledged": "#c75000", "resolved": "#2e7d32", "closed": "#555",
		"escalated": "#6a1b9a", "sla breached": "#d50000", "reopened": "#b00020"}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="90" role="img" aria-label="incident timeline">`, w)
	fmt.Fprintf(&b, `<rect x="%.1f" y="40" width="%.1f" height="8" fill="#ddd"/>`, left, w-left-right)
	if inc.AcknowledgedAt != nil {
		fmt.Fprintf(&b, `<rect x="%.1f" y="40" width="%.1f" height="8" fill="#fbc02d"/>`, left, x(*inc.AcknowledgedAt)-left)
	}
	for i, e := range inc.Timeline {
		c, ok := colors[e.What]
		if !ok {
			c = "#1565c0"
		}
		y := 30.0
		if i%2 == 1 {
			y = 70
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="44" r="5" fill="%s"><title>%s %s</title></circle>`, x(e.At), c,
			template.HTMLEscapeString(e.At.UTC().Format("15:04:05")), template.HTMLEscapeString(e.What))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="10" text-anchor="middle">%s</text>`, x(e.At), y, template.HTMLEscapeString(e.What))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="88" font-size="10">%s</text>`, left, template.HTMLEscapeString(inc.OpenedAt.UTC().Format("2006-01-02 15:04")))
	fmt.Fprintf(&b, `<text x="%.1f" y="88" font-size="10" text-anchor="end">%s</text></svg>`, w-right, template.HTMLEscapeString(FormatDuration(span)))
	return template.HTML(b.String()) //nolint:gosec // built from escaped parts
}

var slaTmpl = template.Must(template.New("sla").Funcs(template.FuncMap{
	"fmtTime": func(t time.Time) string {
		if t.IsZero() {
			return "the beginning"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"pct":  func(f float64) string { return fmt.Sprintf("%.1f%%", f) },
	"dash": func(s string) string { return map[bool]string{true: "—", false: s}[s == ""] },
	// bar is the width in px of n out of max on a 240px scale.
	"bar": func(n, most int) int {
		if most == 0 {
			return 0
		}
		return 240 * n / most
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SLA report {{.Tenant}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#111}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left} .bad{color:#b00020;font-weight:bold}
@media print{body{margin:0}}
</style></head><body>
<h1>SLA report — {{.Tenant}}</h1>
<p>Incidents opened from {{fmtTime .R.From}} to {{fmtTime .R.To}}.</p>
<table><tr><th>Priority</th><th>Incidents</th><th>MTTA</th><th>MTTR</th><th>SLA compliance</th><th></th></tr>
{{range .R.Priorities}}<tr><td>{{.Priority}}</td><td>{{.Incidents}}</td><td>{{dash .MTTA}}</td><td>{{dash .MTTR}}</td>
<td{{if lt .Compliance 95.0}} class="bad"{{end}}>{{pct .Compliance}}</td>
<td><svg width="240" height="12" role="img" aria-label="{{.Incidents}} incidents"><rect width="{{bar .Incidents $.Max}}" height="12" fill="#4a78c2"/></svg></td></tr>
{{else}}<tr><td colspan="6">no incidents</td></tr>{{end}}</table>
<h2>Top configuration items</h2>
<table><tr><th>CI</th><th>Incidents</th></tr>
{{range .R.TopCIs}}<tr><td>{{index . "ci"}}</td><td>{{index . "incidents"}}</td></tr>
{{else}}<tr><td colspan="2">none</td></tr>{{end}}</table>
</body></html>
`))

// SLAReportHTML renders the SLA report as a printable page.
func SLAReportHTML(r SLAReport, tenant string) ([]byte, error) {
	most := 0
	for _, p := range r.Priorities {
		most = max(most, p.Incidents)
	}
	var b bytes.Buffer
	err := slaTmpl.Execute(&b, map[string]any{"R": r, "Tenant": tenant, "Max": most})
	return b.Bytes(), err
}
