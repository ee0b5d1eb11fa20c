package web

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/internal/audit"
)

// The on-call API: escalation policies and on-call rotations, made per
// tenant at run time beside the config file's, and who is on call.
//
//	GET    /api/v1/escalation_policies          read: the tenant's and the config file's
//	POST   /api/v1/escalation_policies          operator: create (201; 409 when the name is taken)
//	PUT    /api/v1/escalation_policies/{name}   operator: replace
//	DELETE /api/v1/escalation_policies/{name}   operator
//	GET    /api/v1/rotations                    read, and POST, PUT, DELETE as above
//	GET    /api/v1/oncall?group=&at=&next=      read: who is on call at (default now), next hand-overs

// decodeStrict reads a JSON body into v, refusing unknown fields, so that
// a misspelt field ("participant") is a 400 that names it, not a setting
// silently without it.
func decodeStrict(r *Request, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(r.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badData("body is not %s: %v", what, err)
	}
	return nil
}

// putSetting serves POST (create) and PUT …/{name} (replace) of a
// tenant's run-time ITSM setting: the body is decoded strictly (shape
// says what is expected), its name is the path's (or must equal it), and
// a creation answers 201.
func putSetting[T any](r *Request, what, shape string, name func(*T) *string, put func(who string, v T, create bool) (any, error)) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	var v T
	if err := decodeStrict(r, &v, shape); err != nil {
		return nil, err
	}
	create := r.Param("name") == ""
	if n := name(&v); !create {
		if *n == "" {
			*n = r.Param("name")
		}
		if *n != r.Param("name") {
			return nil, badData("the body names %s %q, the path %q", what, *n, r.Param("name"))
		}
	}
	out, err := put(who, v, create)
	if err != nil {
		return nil, invalid(err)
	}
	if create {
		return withStatus{code: 201, data: out}, nil
	}
	return out, nil
}

func (h *incidents) policies(r *Request, tenant string) (any, error) {
	return h.m.Policies(tenant), nil
}

// putPolicy serves POST /api/v1/escalation_policies (create) and PUT
// /api/v1/escalation_policies/{name} (replace).
func (h *incidents) putPolicy(r *Request, tenant string) (any, error) {
	return putSetting(r, "escalation policy", `an escalation policy (JSON: name, cis, groups, steps [{"after":"5m","group"|"person"|"oncall":…}], repeat, repeat_after)`,
		func(p *itsm.EscalationPolicy) *string { return &p.Name },
		func(who string, p itsm.EscalationPolicy, create bool) (any, error) {
			return h.m.PutPolicy(tenant, who, p, create)
		})
}

// deletePolicy serves DELETE /api/v1/escalation_policies/{name}.
func (h *incidents) deletePolicy(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	name := r.Param("name")
	if err := h.m.DeletePolicy(tenant, who, name); err != nil {
		return nil, invalid(err)
	}
	return map[string]any{"deleted": name}, nil
}

func (h *incidents) rotations(r *Request, tenant string) (any, error) {
	return h.m.Rotations(tenant), nil
}

// putRotation serves POST /api/v1/rotations and PUT /api/v1/rotations/{name}.
func (h *incidents) putRotation(r *Request, tenant string) (any, error) {
	return putSetting(r, "rotation", `an on-call rotation (JSON: name, group, participants, handover daily|weekly, weekday, at "HH:MM", timezone, start, overrides [{"person","start","end"}])`,
		func(x *itsm.Rotation) *string { return &x.Name },
		func(who string, x itsm.Rotation, create bool) (any, error) {
			return h.m.PutRotation(tenant, who, x, create)
		})
}

// deleteRotation serves DELETE /api/v1/rotations/{name}.
func (h *incidents) deleteRotation(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	name := r.Param("name")
	if err := h.m.DeleteRotation(tenant, who, name); err != nil {
		return nil, invalid(err)
	}
	return map[string]any{"deleted": name}, nil
}

// onCall serves GET /api/v1/oncall?group=&at=&next=: per rotation (of
// the group, or every group), who is on call at (Unix seconds or RFC
// 3339; default now), since when, until when, and the next hand-overs
// (next, default 3, at most 50). A group without a rotation is a 404.
func (h *incidents) onCall(r *Request, tenant string) (any, error) {
	f, err := fields(r, "group", "at", "next")
	if err != nil {
		return nil, err
	}
	at, err := parseWhen(f[1], h.m.Now())
	if err != nil {
		return nil, badData("at: want Unix seconds or RFC 3339: %v", err)
	}
	next := 3
	if f[2] != "" {
		if next, err = strconv.Atoi(f[2]); err != nil || next < 0 || next > 50 {
			return nil, badData("next: want a count from 0 to 50")
		}
	}
	out, err := h.m.OnCall(tenant, f[0], at, next)
	return out, invalid(err)
}

// auditSetting describes the policy, rotation and CI routes: kind is
// policy, rotation or ci, verb create, change or delete.
func auditSetting(kind, verb string) Auditor {
	return func(r *Request, data any) audit.Entry {
		name, detail := r.Param("name"), ""
		switch v := unwrap(data).(type) {
		case *itsm.EscalationPolicy:
			name = v.Name
			if n := len(v.History); n > 0 {
				detail = ": " + v.History[n-1].Detail
			}
		case *itsm.Rotation:
			name = v.Name
			if n := len(v.History); n > 0 {
				detail = ": " + v.History[n-1].Detail
			}
		case *itsm.CI:
			name = v.Name
			if n := len(v.History); n > 0 {
				detail = ": " + v.History[n-1].Detail
			}
		case *itsm.ReportSchedule:
			name = v.Name
			if n := len(v.History); n > 0 {
				detail = ": " + v.History[n-1].Detail
			}
		}
		words := map[string]string{"policy": "escalation policy", "rotation": "on-call rotation", "ci": "CI", "report": "report schedule"}
		past := map[string]string{"create": "created", "change": "changed", "delete": "deleted", "send": "sent"}
		return audit.Entry{Action: kind + "." + verb, Kind: kind, Object: name,
			Summary: words[kind] + " " + name + " " + past[verb] + detail}
	}
}
