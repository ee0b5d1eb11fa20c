package kpi

import (
	"fmt"
	"slices"
	"time"
)

// Calendar is a tenant's business calendar, as configured under
// calendars: in the config file: the days its KPIs do not keep their
// usual shape (public holidays), in its time zone.
//
//	calendars:
//	  - tenant: default
//	    timezone: Asia/Seoul
//	    holidays: [2026-01-01, 2026-02-16, 2026-02-17, 2026-02-18, 2026-03-02]
//
// A holiday's points are replaced, before the models fit the history, by
// the same time of the last ordinary season (a week before with weekly
// seasonality, a day before otherwise), so a holiday's low is read
// neither as a trend nor as next week's shape; and the KPI is not judged
// against its target while a holiday lasts.
type Calendar struct {
	Tenant   string   `yaml:"tenant" json:"tenant"`     // default "default"
	Timezone string   `yaml:"timezone" json:"timezone"` // IANA name; default UTC
	Holidays []string `yaml:"holidays" json:"holidays"` // YYYY-MM-DD

	loc  *time.Location
	days map[string]bool
}

// Validate fills in defaults and checks the calendar.
func (c *Calendar) Validate() error {
	if c.Tenant == "" {
		c.Tenant = "default"
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return fmt.Errorf("calendar %s: timezone: %w", c.Tenant, err)
	}
	c.loc, c.days = loc, make(map[string]bool, len(c.Holidays))
	for _, h := range c.Holidays {
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			return fmt.Errorf("calendar %s: holiday %q: want YYYY-MM-DD", c.Tenant, h)
		}
		c.days[h] = true
	}
	return nil
}

// Holiday reports whether t falls on one of the calendar's holidays. A
// nil calendar has none.
func (c *Calendar) Holiday(t time.Time) bool {
	return c != nil && len(c.days) > 0 && c.days[t.In(c.loc).Format(time.DateOnly)]
}

// Ordinary returns y (d's history at times ts, ms) as d's models see it:
// with the points that fall on holidays replaced by an ordinary season's
// (a copy), or y itself when none does.
func (c *Calendar) Ordinary(d *Definition, ts []int64, y []float64) []float64 {
	if c == nil || len(c.days) == 0 {
		return y
	}
	out := slices.Clone(y)
	if c.fill(ts, out, season(d.period(out), d.Step)) == 0 {
		return y
	}
	return out
}

// fill replaces the points of y (at times ts, ms) that fall on holidays
// by the point one season earlier (or, at the start, one season later)
// that is not a holiday; season is in steps. It returns how many points
// it replaced; y is changed in place.
func (c *Calendar) fill(ts []int64, y []float64, season int) int {
	if c == nil || len(c.days) == 0 || season < 1 {
		return 0
	}
	hol := make([]bool, len(y))
	n := 0
	for i, t := range ts {
		hol[i] = c.Holiday(time.UnixMilli(t))
		if hol[i] {
			n++
		}
	}
	if n == 0 || n == len(y) {
		return 0
	}
	for i := range y {
		if !hol[i] {
			continue
		}
		// Earlier seasons first (already filled when they were holidays
		// too), then later ones.
		if j := i - season; j >= 0 {
			y[i] = y[j]
			continue
		}
		for j := i + season; j < len(y); j += season {
			if !hol[j] {
				y[i] = y[j]
				break
			}
		}
	}
	return n
}

// season is the length in steps of the season a holiday is replaced
// from: the KPI's seasonal period, else a day (or one step, when a step
// is a day or longer).
func season(period int, step time.Duration) int {
	if period > 0 {
		return period
	}
	return max(int(24*time.Hour/step), 1)
}
