package itsm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/alerting/alert"
	"github.com/emsdb/tsdb/internal/errkind"
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
	// Comment says why, for the operations room.
	Comment string `yaml:"comment" json:"comment,omitempty"`
	// Source is "config" for the config file's windows (every tenant,
	// read-only through the API) and "api" for a tenant's own.
	Source string `yaml:"-" json:"source,omitempty"`
	// History is who created and changed an API window, and when.
	History []TimelineEvent `yaml:"-" json:"history,omitempty"`

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
	for _, name := range sortedKeys(m.windows[tenant]) {
		out = append(out, m.windows[tenant][name])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ErrConflict reports a change that contradicts the state: a window name
// already taken, a config-file window changed through the API.
var ErrConflict = errors.New("itsm: conflict")

// ErrInvalid reports a request the ITSM layer refuses as malformed.
var ErrInvalid = errors.New("itsm: invalid")

func windowKey(tenant, name string) string { return "itsm/" + tenant + "/maintenance/" + name }

// WindowStatus is a maintenance window and whether it is active now.
type WindowStatus struct {
	Window *Maintenance `json:"window"`
	Active bool         `json:"active"`
}

// Maintenance lists the windows that apply to a tenant (the config
// file's, then the tenant's own, by name) and whether each is active.
func (m *Manager) Maintenance(tenant string) []WindowStatus {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []WindowStatus{}
	for _, w := range m.windowsLocked(tenant) {
		c := *w
		c.History = append([]TimelineEvent(nil), w.History...)
		out = append(out, WindowStatus{Window: &c, Active: w.active(now)})
	}
	return out
}

// PutWindow creates (create) or replaces a tenant's maintenance window,
// stored durably and recorded in its history with who. A name the config
// file uses, or (create) one the tenant has, is ErrConflict; a window
// that does not validate is ErrInvalid; replacing a missing one is
// ErrNotFound.
func (m *Manager) PutWindow(tenant, who string, w Maintenance, create bool) (*Maintenance, error) {
	if strings.ContainsAny(w.Name, "/\n") {
		return nil, errkind.Mark(fmt.Errorf("itsm maintenance %q: a name has no '/' or newline", w.Name), ErrInvalid)
	}
	w.Source, w.History = "api", nil
	if err := w.validate(); err != nil {
		return nil, errkind.Mark(err, ErrInvalid)
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.cfg.Maintenance {
		if m.cfg.Maintenance[i].Name == w.Name {
			return nil, errkind.Mark(fmt.Errorf("maintenance window %q is in the config file; change it there", w.Name), ErrConflict)
		}
	}
	old := m.windows[tenant][w.Name]
	switch {
	case create && old != nil:
		return nil, errkind.Mark(fmt.Errorf("maintenance window %q exists; PUT /api/v1/maintenance/%s changes it", w.Name, w.Name), ErrConflict)
	case !create && old == nil:
		return nil, fmt.Errorf("no maintenance window %q: %w", w.Name, ErrNotFound)
	}
	what := "created"
	if old != nil {
		w.History = append(w.History, old.History...)
		what = "changed"
	}
	w.History = append(w.History, TimelineEvent{At: now, Who: who, What: what, Detail: w.describe()})
	b, _ := json.Marshal(&w)
	if err := m.st.PutKV(windowKey(tenant, w.Name), b); err != nil {
		return nil, fmt.Errorf("maintenance window %s not saved: %w", w.Name, err)
	}
	if m.windows[tenant] == nil {
		m.windows[tenant] = map[string]*Maintenance{}
	}
	m.windows[tenant][w.Name] = &w
	m.log.Info("itsm: maintenance window "+what, "tenant", tenant, "window", w.Name, "who", who, "detail", w.describe())
	c := w
	return &c, nil
}

// DeleteWindow removes a tenant's window; a config-file window is
// ErrConflict, a missing one ErrNotFound. The log line names who.
func (m *Manager) DeleteWindow(tenant, who, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.cfg.Maintenance {
		if m.cfg.Maintenance[i].Name == name {
			return errkind.Mark(fmt.Errorf("maintenance window %q is in the config file; remove it there", name), ErrConflict)
		}
	}
	w := m.windows[tenant][name]
	if w == nil {
		return fmt.Errorf("no maintenance window %q: %w", name, ErrNotFound)
	}
	if err := m.st.DeleteKV(windowKey(tenant, name)); err != nil {
		return fmt.Errorf("maintenance window %s not deleted: %w", name, err)
	}
	delete(m.windows[tenant], name)
	m.log.Info("itsm: maintenance window deleted", "tenant", tenant, "window", name, "who", who, "detail", w.describe())
	return nil
}

// describe is the window in a line, for its history and the log.
func (w *Maintenance) describe() string {
	var b strings.Builder
	if w.CI != "" {
		fmt.Fprintf(&b, "ci %s ", w.CI)
	}
	if w.Selector != "" {
		fmt.Fprintf(&b, "selector %s ", w.Selector)
	}
	if w.Recurring != nil {
		fmt.Fprintf(&b, "%s–%s %s %v", w.Recurring.From, w.Recurring.To, w.Recurring.Timezone, w.Recurring.Weekdays)
	} else {
		fmt.Fprintf(&b, "%s – %s", w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339))
	}
	return strings.TrimSpace(b.String())
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
			if ci := m.ciFor(tenant, ls); ci != nil {
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
