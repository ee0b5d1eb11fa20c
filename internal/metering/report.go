package metering

import (
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emsdb/tsdb/storage"
)

// MaxReportDays bounds the days one report covers.
const MaxReportDays = 366

// NearLimitPercent is how near a limit a tenant is shown as near it.
const NearLimitPercent = 80

// Report is the usage of tenants over a range of UTC days.
type Report struct {
	From    string         `json:"from"` // YYYY-MM-DD, inclusive
	To      string         `json:"to"`
	Tenants []TenantReport `json:"tenants"`
}

// TenantReport is one tenant's usage: every day of the range, the totals,
// and how near the tenant is to its limits now.
type TenantReport struct {
	Tenant string     `json:"tenant"`
	Days   []DayUsage `json:"days"`
	// Total sums the days; for active_series_max and bytes_stored it is
	// the largest day.
	Total  Usage      `json:"total"`
	Limits []LimitUse `json:"limits"`
	// NearLimit is set when any limit is at NearLimitPercent or more.
	NearLimit bool `json:"near_limit"`
}

// DayUsage is a tenant's usage on one UTC day.
type DayUsage struct {
	Date string `json:"date"` // YYYY-MM-DD
	Usage
}

// Usage is the figures of one day, or of a range.
type Usage struct {
	SamplesIngested           uint64            `json:"samples_ingested"`
	SamplesIngestedByProtocol map[string]uint64 `json:"samples_ingested_by_protocol"`
	ActiveSeriesMax           uint64            `json:"active_series_max"`
	SeriesHours               float64           `json:"series_hours"`
	BytesStored               uint64            `json:"bytes_stored"`
	BytesStoredByTier         map[string]uint64 `json:"bytes_stored_by_tier"`
	Queries                   uint64            `json:"queries"`
	SamplesScanned            uint64            `json:"samples_scanned"`
	RuleEvaluations           uint64            `json:"rule_evaluations"`
	AlertsSent                uint64            `json:"alerts_sent"`
	NotificationsSent         uint64            `json:"notifications_sent"`
}

// LimitUse is how much of one limit a tenant uses now.
type LimitUse struct {
	Name      string  `json:"name"` // max_series, ingest_rate
	Limit     float64 `json:"limit"`
	Current   float64 `json:"current"`
	Percent   float64 `json:"percent"`
	NearLimit bool    `json:"near_limit"`
}

// Report returns the usage of the UTC days from through to of tenant, or
// of every tenant with usage in the range when tenant is "". It includes
// what was counted but not yet flushed.
func (m *Meter) Report(from, to time.Time, tenant string) (*Report, error) {
	from, to = dayOf(from), dayOf(to)
	if to.Before(from) {
		return nil, fmt.Errorf("metering: to %s is before from %s", to.Format(time.DateOnly), from.Format(time.DateOnly))
	}
	if days := int(to.Sub(from)/(24*time.Hour)) + 1; days > MaxReportDays {
		return nil, fmt.Errorf("metering: %d days asked, at most %d per report", days, MaxReportDays)
	}
	rows, err := m.opts.Store.Usage(from, to, tenant)
	if err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	rows = append(rows, m.pendingRows(from, to, tenant)...)
	byTenant := map[string]map[time.Time]*Usage{}
	if tenant != "" {
		byTenant[tenant] = map[time.Time]*Usage{}
	}
	for _, r := range rows {
		days := byTenant[r.Tenant]
		if days == nil {
			days = map[time.Time]*Usage{}
			byTenant[r.Tenant] = days
		}
		u := days[r.Day]
		if u == nil {
			u = newUsage()
			days[r.Day] = u
		}
		u.add(r)
	}
	rep := &Report{From: from.Format(time.DateOnly), To: to.Format(time.DateOnly), Tenants: []TenantReport{}}
	for _, t := range slices.Sorted(maps.Keys(byTenant)) {
		tr := TenantReport{Tenant: t, Days: []DayUsage{}, Total: *newUsage(), Limits: []LimitUse{}}
		for d := from; !d.After(to); d = d.Add(24 * time.Hour) {
			u := byTenant[t][d]
			if u == nil {
				u = newUsage()
			}
			tr.Days = append(tr.Days, DayUsage{Date: d.Format(time.DateOnly), Usage: *u})
			tr.Total.sum(u)
		}
		tr.Limits = m.limits(t)
		for _, l := range tr.Limits {
			tr.NearLimit = tr.NearLimit || l.NearLimit
		}
		rep.Tenants = append(rep.Tenants, tr)
	}
	return rep, nil
}

func newUsage() *Usage {
	return &Usage{SamplesIngestedByProtocol: map[string]uint64{}, BytesStoredByTier: map[string]uint64{}}
}

// add applies one counter of a day (several rows of one counter: a
// stored one and one not yet flushed).
func (u *Usage) add(r storage.UsageRow) {
	family, part, _ := strings.Cut(r.Name, ".")
	switch family {
	case SamplesIngested:
		u.SamplesIngested += r.Value
		u.SamplesIngestedByProtocol[part] += r.Value
	case ActiveSeries:
		u.ActiveSeriesMax = max(u.ActiveSeriesMax, r.Value)
	case SeriesSeconds:
		u.SeriesHours += float64(r.Value) / 3600
	case BytesStored:
		u.BytesStoredByTier[part] = max(u.BytesStoredByTier[part], r.Value)
		u.BytesStored = 0
		for _, v := range u.BytesStoredByTier {
			u.BytesStored += v
		}
	case Queries:
		u.Queries += r.Value
	case SamplesScanned:
		u.SamplesScanned += r.Value
	case RuleEvaluations:
		u.RuleEvaluations += r.Value
	case AlertsSent:
		u.AlertsSent += r.Value
	case NotificationsSent:
		u.NotificationsSent += r.Value
	}
}

// sum adds day d to the totals u.
func (u *Usage) sum(d *Usage) {
	u.SamplesIngested += d.SamplesIngested
	for p, v := range d.SamplesIngestedByProtocol {
		u.SamplesIngestedByProtocol[p] += v
	}
	u.ActiveSeriesMax = max(u.ActiveSeriesMax, d.ActiveSeriesMax)
	u.SeriesHours += d.SeriesHours
	u.BytesStored = max(u.BytesStored, d.BytesStored)
	for t, v := range d.BytesStoredByTier {
		u.BytesStoredByTier[t] = max(u.BytesStoredByTier[t], v)
	}
	u.Queries += d.Queries
	u.SamplesScanned += d.SamplesScanned
	u.RuleEvaluations += d.RuleEvaluations
	u.AlertsSent += d.AlertsSent
	u.NotificationsSent += d.NotificationsSent
}

// limits compares tenant's usage now with its limits.
func (m *Meter) limits(tenant string) []LimitUse {
	out := []LimitUse{}
	if m.opts.Limits == nil {
		return out
	}
	lim := m.opts.Limits(tenant)
	use := func(name string, limit, current float64) {
		if limit <= 0 {
			return
		}
		pct := math.Round(current/limit*1000) / 10
		out = append(out, LimitUse{Name: name, Limit: limit, Current: current, Percent: pct, NearLimit: pct >= NearLimitPercent})
	}
	if m.opts.ActiveSeries != nil {
		use("max_series", float64(lim.MaxSeries), float64(m.opts.ActiveSeries()[tenant]))
	}
	if m.opts.IngestRate != nil {
		use("ingest_rate", lim.IngestRate, math.Round(m.opts.IngestRate(tenant)*10)/10)
	}
	return out
}

// WriteCSV writes the report as CSV: a header, then one row per tenant
// and day, then one "total" row per tenant. Each protocol and tier seen
// in the report gets its own column.
func (r *Report) WriteCSV(w io.Writer) error {
	protocols, tiers := map[string]bool{}, map[string]bool{}
	for _, t := range r.Tenants {
		for p := range t.Total.SamplesIngestedByProtocol {
			protocols[p] = true
		}
		for tier := range t.Total.BytesStoredByTier {
			tiers[tier] = true
		}
	}
	ps, ts := slices.Sorted(maps.Keys(protocols)), slices.Sorted(maps.Keys(tiers))
	header := []string{"date", "tenant", "samples_ingested"}
	for _, p := range ps {
		header = append(header, "samples_ingested_"+p)
	}
	header = append(header, "active_series_max", "series_hours", "bytes_stored")
	for _, t := range ts {
		header = append(header, "bytes_stored_"+t)
	}
	header = append(header, "queries", "samples_scanned", "rule_evaluations", "alerts_sent", "notifications_sent", "near_limit")
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	u64 := func(v uint64) string { return strconv.FormatUint(v, 10) }
	row := func(date, tenant string, u *Usage, near string) []string {
		rec := []string{date, tenant, u64(u.SamplesIngested)}
		for _, p := range ps {
			rec = append(rec, u64(u.SamplesIngestedByProtocol[p]))
		}
		rec = append(rec, u64(u.ActiveSeriesMax), strconv.FormatFloat(u.SeriesHours, 'f', 3, 64), u64(u.BytesStored))
		for _, t := range ts {
			rec = append(rec, u64(u.BytesStoredByTier[t]))
		}
		return append(rec, u64(u.Queries), u64(u.SamplesScanned), u64(u.RuleEvaluations), u64(u.AlertsSent), u64(u.NotificationsSent), near)
	}
	for _, t := range r.Tenants {
		for i := range t.Days {
			if err := cw.Write(row(t.Days[i].Date, t.Tenant, &t.Days[i].Usage, "")); err != nil {
				return err
			}
		}
		if err := cw.Write(row("total", t.Tenant, &t.Total, strconv.FormatBool(t.NearLimit))); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ParseDay parses a YYYY-MM-DD date as a UTC day.
func ParseDay(s string) (time.Time, error) {
	d, err := time.ParseInLocation(time.DateOnly, s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date as YYYY-MM-DD", s)
	}
	return d, nil
}
