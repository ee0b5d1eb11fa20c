package itsm

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/query"
)

// Maintenance is a window during which matching alerts open no incident
// and notify no one; what it suppressed is recorded on it.
type Maintenance struct {
	Name     string    `yaml:"name" json:"name"`
	CI       string    `yaml:"ci" json:"ci,omitempty"`
	Selector string    `yaml:"selector" json:"selector,omitempty"`
	Start    time.Time `yaml:"start" json:"start,omitempty"` // one-off window
	End      time.Time `yaml:"end" json:"end,omitempty"`
	// Recurring is a daily window in local time on some weekdays.
	Recurring *Recurring `yaml:"recurring" json:"recurring,omitempty"`

	matchers [][]*labels.Matcher
	loc      *time.Location
}

// Recurring is e.g. Saturdays and Sundays from 02:00 to 04:00 Seoul time.
type Recurring struct {
	Weekdays []string `yaml:"weekdays" json:"weekdays"` // mon…sun; empty: every day
	From     string   `yaml:"from" json:"from"`         // HH:MM
	To       string   `yaml:"to" json:"to"`
	Timezone string   `yaml:"timezone" json:"timezone"`
}

// Suppressed records an alert a window kept quiet.
type Suppressed struct {
	Window string            `json:"window"`
	At     time.Time         `json:"at"`
	Labels map[string]string `json:"labels"`
}

func (w *Maintenance) validate() error {
	if w.Name == "" {
		return fmt.Errorf("itsm maintenance: a window needs a name")
	}
	if w.CI == "" && w.Selector == "" {
		return fmt.Errorf("itsm maintenance %q: give a ci or a selector", w.Name)
	}
	if w.Selector != "" {
		m, err := query.ParseSelector(w.Selector)
		if err != nil {
			return fmt.Errorf("itsm maintenance %q: %w", w.Name, err)
		}
		w.matchers = m
	}
	if w.Recurring == nil {
		if w.Start.IsZero() || !w.End.After(w.Start) {
			return fmt.Errorf("itsm maintenance %q: a one-off window needs start before end", w.Name)
		}
		return nil
	}
	loc, err := time.LoadLocation(w.Recurring.Timezone)
	if err != nil {
		return fmt.Errorf("itsm maintenance %q: timezone: %w", w.Name, err)
	}
	w.loc = loc
	for _, s := range []string{w.Recurring.From, w.Recurring.To} {
		if _, err := time.Parse("15:04", s); err != nil {
			return fmt.Errorf("itsm maintenance %q: %q is not HH:MM", w.Name, s)
		}
	}
	for _, d := range w.Recurring.Weekdays {
		if weekday(d) < 0 {
			return fmt.Errorf("itsm maintenance %q: %q is not a weekday", w.Name, d)
		}
	}
	return nil
}

func weekday(s string) time.Weekday {
	for i, d := range []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} {
		if strings.HasPrefix(strings.ToLower(s), d) {
			return time.Weekday(i)
		}
	}
	return -1
}

// active reports whether the window covers t.
func (w *Maintenance) active(t time.Time) bool {
	if w.Recurring == nil {
		return !t.Before(w.Start) && t.Before(w.End)
	}
	lt := t.In(w.loc)
	if len(w.Recurring.Weekdays) > 0 {
		ok := false
		for _, d := range w.Recurring.Weekdays {
			ok = ok || weekday(d) == lt.Weekday()
		}
		if !ok {
			return false
		}
	}
	from, _ := time.Parse("15:04", w.Recurring.From)
	to, _ := time.Parse("15:04", w.Recurring.To)
	mins := lt.Hour()*60 + lt.Minute()
	f, e := from.Hour()*60+from.Minute(), to.Hour()*60+to.Minute()
	if f <= e {
		return mins >= f && mins < e
	}
	return mins >= f || mins < e // across midnight
}

// covers reports whether the window applies to an alert on ci.
func (w *Maintenance) covers(ls labels.Labels, ci string) bool {
	if w.CI != "" && w.CI == ci {
		return true
	}
	return selects(w.matchers, ls)
}
