package itsm

import (
	"bytes"
	"fmt"
	"html/template"
	"sort"
	"time"
)

// Viewer is who reads a report: the time zone and the language (en, ko)
// it is written in. The zero Viewer reads UTC and English.
type Viewer struct {
	Loc  *time.Location
	Lang string
}

func (v Viewer) loc() *time.Location {
	if v.Loc == nil {
		return time.UTC
	}
	return v.Loc
}

// t is the report's text for key in the viewer's language (English
// when there is none).
func (v Viewer) t(key string) string {
	if s, ok := reportText[v.Lang][key]; ok {
		return s
	}
	if s, ok := reportText["en"][key]; ok {
		return s
	}
	return key
}

// reportText holds the report's words; timeline events are translated
// by their name (opened, acknowledged…), others are shown as they are.
var reportText = map[string]map[string]string{
	"en": {"Priority": "Priority", "urgency": "urgency", "impact": "impact", "overridden": "overridden", "status": "status",
		"owner": "owner", "assignee": "assignee", "change": "change", "problem": "problem", "Summary": "Summary",
		"Opened": "Opened", "Acknowledged": "Acknowledged", "Resolved": "Resolved", "Closed": "Closed", "Duration": "Duration",
		"SLA": "SLA", "acknowledge": "acknowledge", "resolve": "resolve", "breached": "breached", "Change requests": "Change requests",
		"Escalated to": "Escalated to", "Sent to": "Sent to", "Cause and resolution": "Cause and resolution", "Root cause": "Root cause",
		"Resolution": "Resolution", "Prevention": "Prevention", "Timeline": "Timeline", "When": "When", "Who": "Who", "What": "What",
		"Detail": "Detail", "Alerts": "Alerts", "Labels": "Labels", "State": "State", "Since": "Since",
		"Actions and follow-up": "Actions and follow-up", "none recorded": "none recorded", "Times in": "Times in"},
	"ko": {"Priority": "우선순위", "urgency": "긴급도", "impact": "영향도", "overridden": "변경됨", "status": "상태",
		"owner": "담당 그룹", "assignee": "담당자", "change": "변경", "problem": "문제", "Summary": "요약",
		"Opened": "발생", "Acknowledged": "확인", "Resolved": "해결", "Closed": "종료", "Duration": "경과 시간",
		"SLA": "SLA", "acknowledge": "확인", "resolve": "해결", "breached": "위반", "Change requests": "변경 요청",
		"Escalated to": "에스컬레이션 대상", "Sent to": "전달 대상", "Cause and resolution": "원인과 해결", "Root cause": "근본 원인",
		"Resolution": "해결 방법", "Prevention": "재발 방지", "Timeline": "타임라인", "When": "시각", "Who": "누가", "What": "무엇을",
		"Detail": "상세", "Alerts": "경보", "Labels": "레이블", "State": "상태", "Since": "시작",
		"Actions and follow-up": "조치와 후속 작업", "none recorded": "기록 없음", "Times in": "시간대",
		"opened": "발생", "acknowledged": "확인", "resolved": "해결", "closed": "종료", "escalated": "에스컬레이션",
		"sla breached": "SLA 위반", "reopened": "재발생", "propagated": "전달", "assigned": "배정", "commented": "의견",
		"updated": "갱신", "priority changed": "우선순위 변경", "alert added": "경보 추가", "alert resolved": "경보 해소"},
}

var reportTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Inc.ID}} — {{.Inc.Title}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#111}
h1{font-size:20px;margin:0 0 .3em} table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.P1{color:#b00020;font-weight:bold}.P2{color:#c75000;font-weight:bold}
@media print{body{margin:0}}
</style></head><body>
<h1>{{.Inc.ID}}: {{.Inc.Title}}</h1>
<p>{{call .T "Priority"}} <span class="{{.Inc.Priority}}">{{.Inc.Priority}}</span> ({{call .T "urgency"}} {{.Inc.Urgency}} × {{call .T "impact"}} {{.Inc.Impact}}{{if .Inc.PriorityReason}}; {{call .T "overridden"}}: {{.Inc.PriorityReason}}{{end}}) ·
{{call .T "status"}} <b>{{call .T .Inc.Status}}</b> · CI {{.Inc.CI}} · {{call .T "owner"}} {{.Inc.OwnerGroup}}{{if .Inc.Assignee}} · {{call .T "assignee"}} {{.Inc.Assignee}}{{end}}{{if .Inc.ChangeRequest}} · {{call .T "change"}} {{.Inc.ChangeRequest}}{{end}}{{if .Inc.ProblemID}} · {{call .T "problem"}} {{.Inc.ProblemID}}{{end}}</p>
<p>{{call .T "Times in"}} {{.Zone}}</p>
<h2>{{call .T "Summary"}}</h2>
<table>
<tr><th>{{call .T "Opened"}}</th><td>{{call .Time .Inc.OpenedAt}}</td></tr>
<tr><th>{{call .T "Acknowledged"}}</th><td>{{call .TimePtr .Inc.AcknowledgedAt}}</td></tr>
<tr><th>{{call .T "Resolved"}}</th><td>{{call .TimePtr .Inc.ResolvedAt}}</td></tr>
<tr><th>{{call .T "Closed"}}</th><td>{{call .TimePtr .Inc.ClosedAt}}</td></tr>
<tr><th>{{call .T "Duration"}}</th><td>{{.Inc.SLA.Elapsed}}</td></tr>
<tr><th>{{call .T "SLA"}}</th><td>{{call .T "acknowledge"}} {{.AckTarget}}{{if .Inc.SLA.AcknowledgeBreached}} — <b>{{call .T "breached"}}</b>{{end}}; {{call .T "resolve"}} {{.ResTarget}}{{if .Inc.SLA.ResolveBreached}} — <b>{{call .T "breached"}}</b>{{end}}</td></tr>
<tr><th>{{call .T "Change requests"}}</th><td>{{range .Inc.Changes}}{{.ID}} ({{.Status}}) {{else}}—{{end}}</td></tr>
<tr><th>{{call .T "Escalated to"}}</th><td>{{range .Inc.EscalatedTo}}{{.}} {{else}}—{{end}}</td></tr>
<tr><th>{{call .T "Sent to"}}</th><td>{{range $g := .Inc.PropagatedTo}}{{$g}} ({{range $i, $m := index $.Inc.Recipients $g}}{{if $i}}, {{end}}{{$m}}{{end}}) {{else}}—{{end}}</td></tr>
</table>
<h2>{{call .T "Cause and resolution"}}</h2>
<table>
<tr><th>{{call .T "Root cause"}}</th><td>{{or .Inc.RootCause "—"}}</td></tr>
<tr><th>{{call .T "Resolution"}}</th><td>{{or .Inc.Resolution "—"}}</td></tr>
<tr><th>{{call .T "Prevention"}}</th><td>{{or .Inc.Prevention "—"}}</td></tr>
</table>
<h2>{{call .T "Timeline"}}</h2>
{{.Chart}}
<table><tr><th>{{call .T "When"}}</th><th>{{call .T "Who"}}</th><th>{{call .T "What"}}</th><th>{{call .T "Detail"}}</th></tr>
{{range .Inc.Timeline}}<tr><td>{{call $.Time .At}}</td><td>{{.Who}}</td><td>{{call $.T .What}}</td><td>{{.Detail}}</td></tr>
{{end}}</table>
<h2>{{call .T "Alerts"}}</h2>
<table><tr><th>{{call .T "Labels"}}</th><th>{{call .T "State"}}</th><th>{{call .T "Since"}}</th></tr>
{{range .Alerts}}<tr><td>{{.Key}}</td><td>{{.State}}</td><td>{{call $.Time .Since}}</td></tr>
{{end}}</table>
<h2>{{call .T "Actions and follow-up"}}</h2>
<ul>{{range .Actions}}<li>{{.}}</li>{{else}}<li>{{call .T "none recorded"}}</li>{{end}}</ul>
</body></html>
`))

// Report renders a printable HTML report of an incident, with an SVG
// timeline chart, for the viewer (time zone and language).
func (m *Manager) Report(tenant, id string, v Viewer) ([]byte, error) {
	inc, ok := m.Incident(tenant, id)
	if !ok {
		return nil, ErrNotFound
	}
	loc := v.loc()
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
			actions = append(actions, fmt.Sprintf("%s — %s %s %s", e.At.In(loc).Format("01-02 15:04"), e.Who, v.t(e.What), e.Detail))
		}
	}
	lang := v.Lang
	if reportText[lang] == nil {
		lang = "en"
	}
	fmtTime := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04:05 MST") }
	t := m.cfg.SLA[inc.Priority]
	var buf bytes.Buffer
	err := reportTmpl.Execute(&buf, map[string]any{
		"Inc": inc, "Alerts": alerts, "Actions": actions, "Chart": timelineSVG(inc, m.now(), v),
		"AckTarget": orDash(time.Duration(t.Acknowledge)), "ResTarget": orDash(time.Duration(t.Resolve)),
		"Lang": lang, "Zone": loc.String(), "T": v.t, "Time": fmtTime,
		"TimePtr": func(t *time.Time) string {
			if t == nil {
				return "—"
			}
			return fmtTime(*t)
		},
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
// Labels go into four lanes (two above the bar, two below), each into the
// first lane where it does not overlap the last label there; an event
// whose label fits nowhere keeps its mark and its tooltip (the table
// below lists every event).
func timelineSVG(inc *Incident, now time.Time, v Viewer) template.HTML {
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
	const w, left, right, bar = 760.0, 20.0, 20.0, 56.0
	x := func(t time.Time) float64 {
		return left + (w-left-right)*float64(t.Sub(inc.OpenedAt))/float64(span)
	}
	colors := map[string]string{"opened": "#b00020", "acknowledged": "#c75000", "resolved": "#2e7d32", "closed": "#555",
		"escalated": "#6a1b9a", "sla breached": "#d50000", "reopened": "#b00020"}
	loc := v.loc()
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="130" role="img" aria-label="%s">`, w, template.HTMLEscapeString(v.t("Timeline")))
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.0f" width="%.1f" height="8" fill="#ddd"/>`, left, bar, w-left-right)
	if inc.AcknowledgedAt != nil {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.0f" width="%.1f" height="8" fill="#fbc02d"/>`, left, bar, x(*inc.AcknowledgedAt)-left)
	}
	lanes := []float64{bar - 8, bar + 26, bar - 22, bar + 40} // nearest the bar first
	laneEnd := []float64{-1e9, -1e9, -1e9, -1e9}
	for _, e := range inc.Timeline {
		c, ok := colors[e.What]
		if !ok {
			c = "#1565c0"
		}
		label := v.t(e.What)
		cx := x(e.At)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.0f" r="5" fill="%s"><title>%s %s</title></circle>`, cx, bar+4, c,
			template.HTMLEscapeString(e.At.In(loc).Format("15:04:05")), template.HTMLEscapeString(label))
		// A label is about 6 px a character (10 px font), centred on its
		// mark but kept inside the chart.
		lw := 6.0 * float64(len([]rune(label)))
		lx := min(max(cx, left+lw/2), w-right-lw/2)
		for i, y := range lanes {
			if lx-lw/2 >= laneEnd[i]+4 {
				laneEnd[i] = lx + lw/2
				fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="10" text-anchor="middle">%s</text>`, lx, y, template.HTMLEscapeString(label))
				break
			}
		}
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="126" font-size="10">%s</text>`, left, template.HTMLEscapeString(inc.OpenedAt.In(loc).Format("2006-01-02 15:04 MST")))
	fmt.Fprintf(&b, `<text x="%.1f" y="126" font-size="10" text-anchor="end">%s</text></svg>`, w-right, template.HTMLEscapeString(FormatDuration(span)))
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
