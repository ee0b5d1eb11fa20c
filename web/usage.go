package web

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/errkind"
	"github.com/emsdb/tsdb/internal/metering"
	"github.com/emsdb/tsdb/internal/tenancy"
)

// usageReport serves GET /api/v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD&tenant=T&format=json|csv:
// the usage of the UTC days from through to (default: the month so far),
// per tenant and day with totals and how near each tenant is to its
// limits. Admins (everyone, with authentication off) see every tenant, or
// the one tenant= names; anyone else sees only a tenant they may act for
// (the request's, by default), and 403 for any other. CSV comes with
// format=csv or Accept: text/csv.
func usageReport(m *metering.Meter, now func() time.Time) Handler {
	if m == nil {
		return nil
	}
	return func(r *Request) (any, error) {
		tenant := r.Arg("tenant")
		if tenant != "" {
			if _, err := tenancy.Parse(tenant); err != nil {
				return nil, badData("invalid parameter \"tenant\": %v", err)
			}
		}
		if u := auth.Current(r.Ctx); u != nil && !u.Has(auth.Admin) {
			own, err := r.Tenant()
			if err != nil {
				return nil, err
			}
			if tenant == "" {
				tenant = own
			} else if _, err := u.Tenant(tenant); err != nil {
				return nil, errkind.Mark(fmt.Errorf("usage of tenant %q: %w; only admins see other tenants' usage", tenant, err), auth.ErrForbidden)
			}
		}
		today := now().UTC()
		from := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC)
		to := today
		var err error
		if s := r.Arg("from"); s != "" {
			if from, err = metering.ParseDay(s); err != nil {
				return nil, badData("invalid parameter \"from\": %v", err)
			}
		}
		if s := r.Arg("to"); s != "" {
			if to, err = metering.ParseDay(s); err != nil {
				return nil, badData("invalid parameter \"to\": %v", err)
			}
		}
		if to.Before(from) {
			return nil, badData("invalid parameter \"to\": %s is before from (%s)", to.Format(time.DateOnly), from.Format(time.DateOnly))
		}
		if days := int(to.Sub(from).Hours()/24) + 1; days > metering.MaxReportDays {
			return nil, badData("from %s to %s is %d days: ask for at most %d at once", from.Format(time.DateOnly), to.Format(time.DateOnly), days, metering.MaxReportDays)
		}
		format := r.Arg("format")
		switch {
		case format == "" && strings.Contains(string(r.Ctx.Request.Header.Peek("Accept")), "text/csv"):
			format = "csv"
		case format == "":
			format = "json"
		case format != "json" && format != "csv":
			return nil, badData("invalid parameter \"format\": %q; use json or csv", format)
		}
		rep, err := m.Report(from, to, tenant)
		if err != nil {
			return nil, err
		}
		if format == "json" {
			return rep, nil
		}
		var b bytes.Buffer
		if err := rep.WriteCSV(&b); err != nil {
			return nil, err
		}
		r.Ctx.Response.Header.Set("Content-Disposition", fmt.Sprintf("attachment; filename=\"usage-%s-%s.csv\"", rep.From, rep.To))
		return body{contentType: "text/csv; charset=utf-8", b: b.Bytes()}, nil
	}
}
