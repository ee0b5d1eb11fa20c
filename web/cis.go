package web

import (
	"github.com/emsdb/tsdb/alerting/itsm"
)

// The CI API: configuration items and their dependencies (depends_on),
// made per tenant at run time beside the config file's, which change
// only there (409).
//
//	GET    /api/v1/cis          read: the tenant's and the config file's, with dependents and open incidents
//	POST   /api/v1/cis          operator: create (201; 409 when the name is taken)
//	PUT    /api/v1/cis/{name}   operator: replace
//	DELETE /api/v1/cis/{name}   operator (409 while other CIs depend on it)

func (h *incidents) cis(r *Request, tenant string) (any, error) {
	return h.m.CIs(tenant), nil
}

// putCI serves POST /api/v1/cis (create) and PUT /api/v1/cis/{name}
// (replace).
func (h *incidents) putCI(r *Request, tenant string) (any, error) {
	return putSetting(r, "CI", `a CI (JSON: name, kind, selector, owner_group, impact high|medium|low, propagation, no_data, depends_on)`,
		func(x *itsm.CI) *string { return &x.Name },
		func(who string, x itsm.CI, create bool) (any, error) { return h.m.PutCI(tenant, who, x, create) })
}

// deleteCI serves DELETE /api/v1/cis/{name}.
func (h *incidents) deleteCI(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	name := r.Param("name")
	if err := h.m.DeleteCI(tenant, who, name); err != nil {
		return nil, invalid(err)
	}
	return map[string]any{"deleted": name}, nil
}
