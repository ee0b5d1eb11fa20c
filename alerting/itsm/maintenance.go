package itsm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/alerting/alert"
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

// heldAlert is a firing alert a window suppressed, kept (durably, under
// itsm/<tenant>/held/<hash of its labels>) until it resolves or no window
// covers it any more.
type heldAlert struct {
	Tenant      string            `json:"tenant"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Window      string            `json:"window"`
	Since       time.Time         `json:"since"`
}

func heldKey(tenant, akey string) string {
	h := sha256.Sum256([]byte(akey))
	return "itsm/" + tenant + "/held/" + hex.EncodeToString(h[:12])
}

// windowFor returns the first window that covers the alert at t, or nil;
// the caller holds m.mu.
func (m *Manager) windowFor(tenant string, ls labels.Labels, ci string, t time.Time) *Maintenance {
	for _, w := range m.windowsLocked(tenant) {
		if w.active(t) && w.covers(ls, ci) {
			return w
		}
	}
	return nil
}

// windowsLocked are the windows that apply to a tenant: the config
// file's, then the tenant's own; the caller holds m.mu.
func (m *Manager) windowsLocked(tenant string) []*Maintenance {
	out := make([]*Maintenance, 0, len(m.cfg.Maintenance))
	for i := range m.cfg.Maintenance {
		out = append(out, &m.cfg.Maintenance[i])
	}
	return out
}

// hold remembers a suppressed firing alert; the caller holds m.mu.
func (m *Manager) hold(tenant string, a *alert.Alert, window string, at time.Time) {
	akey := a.Labels.String()
	if h := m.held[tenant][akey]; h != nil {
		return // held since its first suppression
	}
	h := &heldAlert{Tenant: tenant, Labels: a.Labels.Map(), Annotations: a.Annotations.Map(), Window: window, Since: at}
	m.holdLocked(tenant, h)
	b, _ := json.Marshal(h)
	if err := m.st.PutKV(heldKey(tenant, akey), b); err != nil {
		m.log.Error("itsm: suppressed alert not saved", "alert", akey, "err", err)
	}
}

func (m *Manager) holdLocked(tenant string, h *heldAlert) {
	if m.held[tenant] == nil {
		m.held[tenant] = map[string]*heldAlert{}
	}
	m.held[tenant][labels.FromMap(h.Labels).String()] = h
}

// release forgets a held alert (it resolved); the caller holds m.mu.
func (m *Manager) release(tenant, akey string) {
	if m.held[tenant][akey] == nil {
		return
	}
	delete(m.held[tenant], akey)
	_ = m.st.DeleteKV(heldKey(tenant, akey))
}

// windowsEnded opens the incidents of held alerts that no window covers
// at now: the alert fired through the window and still fires after it;
// the caller holds m.mu.
func (m *Manager) windowsEnded(now time.Time) {
	for tenant, byKey := range m.held {
		for akey, h := range byKey {
			ls := labels.FromMap(h.Labels)
			ciName := ls.Get("instance")
			if ci := m.cfg.ciFor(ls); ci != nil {
				ciName = ci.Name
			}
			if m.windowFor(tenant, ls, ciName, now) != nil {
				continue
			}
			m.release(tenant, akey)
			a := &alert.Alert{Labels: ls, Annotations: labels.FromMap(h.Annotations), State: alert.StateFiring}
			m.log.Info("itsm: maintenance window ended with the alert still firing", "window", h.Window, "alert", akey)
			m.fireLocked(tenant, a, now, false)
			if inc := m.incidentOf(tenant, akey); inc != nil {
				inc.log(now, "tsdb", "maintenance ended", fmt.Sprintf("window %s ended; the alert has fired since %s",
					h.Window, h.Since.UTC().Format(time.RFC3339)))
				m.save(inc)
			}
		}
	}
}

// incidentOf is the newest open incident with the alert firing; the
// caller holds m.mu.
func (m *Manager) incidentOf(tenant, akey string) *Incident {
	var out *Incident
	for _, inc := range m.tenantIncidents(tenant) {
		if al := inc.Alerts[akey]; al != nil && al.State == "firing" && (out == nil || inc.OpenedAt.After(out.OpenedAt)) {
			out = inc
		}
	}
	return out
}
