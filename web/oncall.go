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

func (h *incidents) policies(r *Request, tenant string) (any, error) {
	return h.m.Policies(tenant), nil
}

// putPolicy serves POST /api/v1/escalation_policies (create) and PUT
// /api/v1/escalation_policies/{name} (replace).
func (h *incidents) putPolicy(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	var p itsm.EscalationPolicy
	if err := decodeStrict(r, &p, `an escalation policy (JSON: name, cis, groups, steps [{"after":"5m","group"|"person"|"oncall":…}], repeat, repeat_after)`); err != nil {
		return nil, err
	}
	create := r.Param("name") == ""
	if !create {
		if p.Name == "" {
			p.Name = r.Param("name")
		}
		if p.Name != r.Param("name") {
			return nil, badData("the body names escalation policy %q, the path %q", p.Name, r.Param("name"))
		}
	}
	out, err := h.m.PutPolicy(tenant, who, p, create)
	if err != nil {
		return nil, invalid(err)
	}
	if create {
		return withStatus{code: 201, data: out}, nil
	}
	return out, nil
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
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	var rot itsm.Rotation
	if err := decodeStrict(r, &rot, `an on-call rotation (JSON: name, group, participants, handover daily|weekly, weekday, at "HH:MM", timezone, start, overrides [{"person","start","end"}])`); err != nil {
		return nil, err
	}
	create := r.Param("name") == ""
	if !create {
		if rot.Name == "" {
			rot.Name = r.Param("name")
		}
		if rot.Name != r.Param("name") {
			return nil, badData("the body names rotation %q, the path %q", rot.Name, r.Param("name"))
		}
	}
	out, err := h.m.PutRotation(tenant, who, rot, create)
	if err != nil {
		return nil, invalid(err)
	}
	if create {
		return withStatus{code: 201, data: out}, nil
	}
	return out, nil
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
