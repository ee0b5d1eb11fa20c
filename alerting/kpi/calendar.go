package kpi

import (
	"fmt"
	"slices"
	"strings"
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
	// Weekend are the days no business is done (English day names);
	// default Saturday and Sunday.
	Weekend []string `yaml:"weekend" json:"weekend,omitempty"`

	loc     *time.Location
	days    map[string]bool
	weekend map[time.Weekday]bool
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
	names := c.Weekend
	if names == nil {
		names = []string{"Saturday", "Sunday"}
	}
	c.weekend = map[time.Weekday]bool{}
	for _, n := range names {
		wd, ok := weekdays[strings.ToLower(n)]
		if !ok {
			return fmt.Errorf("calendar %s: weekend day %q: want an English day name (Saturday)", c.Tenant, n)
		}
		c.weekend[wd] = true
	}
	return nil
}

var weekdays = func() map[string]time.Weekday {
	m := map[string]time.Weekday{}
	for d := time.Sunday; d <= time.Saturday; d++ {
		m[strings.ToLower(d.String())] = d
	}
	return m
}()

// defaultCalendar is a tenant's without calendars: UTC, no holidays,
// Saturday and Sunday off.
var defaultCalendar = &Calendar{loc: time.UTC, weekend: map[time.Weekday]bool{time.Saturday: true, time.Sunday: true}}

// or is c, or the default calendar when c is nil.
func (c *Calendar) or() *Calendar {
	if c == nil {
		return defaultCalendar
	}
	return c
}

// BusinessDay reports whether t falls on a working day: neither a
// weekend day nor a holiday, in the calendar's time zone. A nil calendar
// works Monday to Friday in UTC.
func (c *Calendar) BusinessDay(t time.Time) bool {
	c = c.or()
	return !c.weekend[t.In(c.loc).Weekday()] && !c.Holiday(t)
}

// deadlineOn is the deadline hh:mm on t's day in the calendar's zone.
func (c *Calendar) deadlineOn(t time.Time, minutes int) time.Time {
	c = c.or()
	l := t.In(c.loc)
	return time.Date(l.Year(), l.Month(), l.Day(), minutes/60, minutes%60, 0, 0, c.loc)
}

// passedDeadline returns the deadline of t's day when t is at or past it
// on a working day.
func (c *Calendar) passedDeadline(t time.Time, minutes int) (time.Time, bool) {
	d := c.deadlineOn(t, minutes)
	return d, !t.Before(d) && c.BusinessDay(d)
}

// nextDeadline returns the first deadline after t on a working day
// (within a year).
func (c *Calendar) nextDeadline(t time.Time, minutes int) (time.Time, bool) {
	for i := range 370 {
		d := c.deadlineOn(t.AddDate(0, 0, i), minutes)
		if d.After(t) && c.BusinessDay(d) {
			return d, true
		}
	}
	return time.Time{}, false
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
