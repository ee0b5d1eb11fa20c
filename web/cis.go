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
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	var ci itsm.CI
	if err := decodeStrict(r, &ci, `a CI (JSON: name, kind, selector, owner_group, impact high|medium|low, propagation, no_data, depends_on)`); err != nil {
		return nil, err
	}
	create := r.Param("name") == ""
	if !create {
		if ci.Name == "" {
			ci.Name = r.Param("name")
		}
		if ci.Name != r.Param("name") {
			return nil, badData("the body names CI %q, the path %q", ci.Name, r.Param("name"))
		}
	}
	out, err := h.m.PutCI(tenant, who, ci, create)
	if err != nil {
		return nil, invalid(err)
	}
	if create {
		return withStatus{code: 201, data: out}, nil
	}
	return out, nil
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
