package web

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/alerting/itsm"
)

// The scheduled reports API, per tenant (docs/itsm.md):
//
//	GET    /api/v1/reports/schedules               read: the tenant's and the config file's, with what each sent last
//	POST   /api/v1/reports/schedules               operator: create (201; 409 when the name is taken)
//	PUT    /api/v1/reports/schedules/{name}        operator: replace
//	DELETE /api/v1/reports/schedules/{name}        operator
//	POST   /api/v1/reports/schedules/{name}/send   operator: send the latest period now (again)

func (h *incidents) reportSchedules(r *Request, tenant string) (any, error) {
	return h.m.ReportSchedules(tenant), nil
}

func (h *incidents) putReportSchedule(r *Request, tenant string) (any, error) {
	return putSetting(r, "report schedule", `a report schedule (JSON: name, period day|week|month, at "08:00", timezone, receivers, email_to, lang)`,
		func(x *itsm.ReportSchedule) *string { return &x.Name },
		func(who string, x itsm.ReportSchedule, create bool) (any, error) {
			return h.m.PutReportSchedule(tenant, who, x, create)
		})
}

func (h *incidents) deleteReportSchedule(r *Request, tenant string) (any, error) {
	who, err := r.Who()
	if err != nil {
		return nil, err
	}
	name := r.Param("name")
	if err := h.m.DeleteReportSchedule(tenant, who, name); err != nil {
		return nil, invalid(err)
	}
	return map[string]any{"deleted": name}, nil
}

// sendReport serves POST /api/v1/reports/schedules/{name}/send: the
// latest period's report, delivered now; the answer is the report, or a
// 502 saying which delivery failed.
func (h *incidents) sendReport(r *Request, tenant string) (any, error) {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := h.m.SendReport(c, tenant, r.Param("name"))
	if errors.Is(err, itsm.ErrNotFound) {
		return nil, notFound("no report schedule %s", r.Param("name"))
	}
	if err != nil {
		return nil, &apiError{typ: errUnavailable, status: fasthttp.StatusBadGateway, err: fmt.Errorf("report built but not delivered: %w", err)}
	}
	return rep, nil
}
