package ruler

import (
	"encoding/json"
	"math"
	"slices"
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
