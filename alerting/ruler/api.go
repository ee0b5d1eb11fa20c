package ruler

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/internal/tenancy"
)

type apiAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    *time.Time        `json:"activeAt,omitempty"`
	KeepFiring  *time.Time        `json:"keepFiringSince,omitempty"`
	Value       string            `json:"value"`
}

func toAPI(a *Alert) apiAlert {
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

func writeJSON(ctx *fasthttp.RequestCtx, data any) {
	b, err := json.Marshal(map[string]any{"status": "success", "data": data})
	if err != nil {
		ctx.Error(`{"status":"error","errorType":"internal","error":"encode"}`, fasthttp.StatusInternalServerError)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// AlertsHandler serves /api/v1/alerts in Prometheus's shape.
func (r *Ruler) AlertsHandler(ctx *fasthttp.RequestCtx) {
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		ctx.Error(err.Error()+"\n", fasthttp.StatusBadRequest)
		return
	}
	alerts := []apiAlert{}
	for _, a := range r.alerts(tenant) {
		alerts = append(alerts, toAPI(a))
	}
	writeJSON(ctx, map[string]any{"alerts": alerts})
}

// RulesHandler serves /api/v1/rules with the type, rule_name[],
// rule_group[] and file[] filters.
func (r *Ruler) RulesHandler(ctx *fasthttp.RequestCtx) {
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		ctx.Error(err.Error()+"\n", fasthttp.StatusBadRequest)
		return
	}
	args := ctx.QueryArgs()
	if ctx.IsPost() {
		args = ctx.PostArgs()
	}
	typ := string(args.Peek("type"))
	if typ != "" && typ != "alert" && typ != "record" {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"error","errorType":"bad_data","error":"invalid parameter \"type\": must be alert or record"}` + "\n")
		return
	}
	multi := func(name string) []string {
		var out []string
		for _, v := range args.PeekMulti(name) {
			out = append(out, string(v))
		}
		return out
	}
	names, groupsF, files := multi("rule_name[]"), multi("rule_group[]"), multi("file[]")
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
	out := []apiGroup{}
	for _, g := range r.Groups() {
		if g.tenant() != tenant {
			continue
		}
		if (len(groupsF) > 0 && !slices.Contains(groupsF, g.Name)) || (len(files) > 0 && !slices.Contains(files, g.File)) {
			continue
		}
		g.mu.Lock()
		ag := apiGroup{Name: g.Name, File: g.File, Interval: g.Interval.Seconds(), Limit: g.Limit,
			LastEvaluation: g.last.UTC(), EvaluationTime: g.dur.Seconds(), Rules: []apiRule{}}
		g.mu.Unlock()
		for _, rl := range g.Rules {
			if (typ == "alert" && rl.Kind != "alerting") || (typ == "record" && rl.Kind != "recording") {
				continue
			}
			if len(names) > 0 && !slices.Contains(names, rl.Def.Name()) {
				continue
			}
			rl.mu.Lock()
			ar := apiRule{Name: rl.Def.Name(), Query: rl.Def.Expr, Labels: rl.Def.Labels, Health: rl.health,
				LastError: rl.lastErr, LastEvaluation: rl.lastEval.UTC(), EvaluationTime: rl.evalDur.Seconds()}
			if ar.Labels == nil {
				ar.Labels = map[string]string{}
			}
			if rl.Kind == "alerting" {
				ar.Type = "alerting"
				ar.Duration = time.Duration(rl.Def.For).Seconds()
				ar.KeepFiringFor = time.Duration(rl.Def.KeepFiringFor).Seconds()
				ar.Annotations = rl.Def.Annotations
				ar.State = string(StateInactive)
				ar.Alerts = []apiAlert{}
				for _, a := range rl.active {
					if a.State == StateInactive {
						continue
					}
					ar.Alerts = append(ar.Alerts, toAPI(a))
					if a.State == StateFiring || ar.State == string(StateInactive) {
						ar.State = string(a.State)
					}
				}
			} else {
				ar.Type = "recording"
			}
			rl.mu.Unlock()
			ag.Rules = append(ag.Rules, ar)
		}
		if len(ag.Rules) > 0 || (len(names) == 0 && typ == "") {
			out = append(out, ag)
		}
	}
	writeJSON(ctx, map[string]any{"groups": out})
}

// HistoryHandler serves /api/v1/alerts/history?start=&end=[&alertname=]:
// every alert transition in the range, oldest first, read back from the
// ALERTS_TRANSITIONS series (so it survives restarts).
func (r *Ruler) HistoryHandler(ctx *fasthttp.RequestCtx) {
	tenant, err := tenancy.FromRequest(ctx)
	if err != nil {
		ctx.Error(err.Error()+"\n", fasthttp.StatusBadRequest)
		return
	}
	now := r.opts.Now()
	parse := func(name string, def time.Time) (time.Time, bool) {
		v := string(ctx.QueryArgs().Peek(name))
		if v == "" {
			return def, true
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return time.UnixMilli(int64(f * 1000)), true
		}
		t, err := time.Parse(time.RFC3339, v)
		return t, err == nil
	}
	start, ok1 := parse("start", now.Add(-24*time.Hour))
	end, ok2 := parse("end", now)
	if !ok1 || !ok2 || end.Before(start) {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"error","errorType":"bad_data","error":"start and end must be times (Unix seconds or RFC 3339), start not after end"}` + "\n")
		return
	}
	sel := "ALERTS_TRANSITIONS"
	if n := string(ctx.QueryArgs().Peek("alertname")); n != "" {
		sel = fmt.Sprintf(`ALERTS_TRANSITIONS{alertname=%q}`, n)
	}
	q := fmt.Sprintf("%s[%dms]", sel, max(1, end.Sub(start).Milliseconds()+1))
	res, err := r.eng.Instant(context.Background(), tenant, q, end.UnixMilli())
	if err != nil {
		ctx.Error(err.Error()+"\n", fasthttp.StatusUnprocessableEntity)
		return
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
	writeJSON(ctx, map[string]any{"transitions": out})
}
