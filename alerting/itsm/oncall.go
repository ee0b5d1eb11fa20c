package itsm

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rotation is a group's on-call rotation: its participants take turns,
// handing over daily or weekly at a time of day in a time zone (so that a
// 09:00 hand-over stays at 09:00 across daylight saving time); an
// override puts someone else on call for a period.
type Rotation struct {
	Name  string `yaml:"name" json:"name"`
	Group string `yaml:"group" json:"group"`
	// Participants take turns in this order.
	Participants []string `yaml:"participants" json:"participants"`
	// Handover is daily or weekly (the default).
	Handover string `yaml:"handover" json:"handover"`
	// Weekday is the day of a weekly hand-over: mon…sun, default mon.
	Weekday string `yaml:"weekday" json:"weekday,omitempty"`
	// At is the time of day of the hand-over, HH:MM (default 09:00), in
	// Timezone (an IANA name, default UTC).
	At       string `yaml:"at" json:"at"`
	Timezone string `yaml:"timezone" json:"timezone"`
	// Start anchors the turns: the first hand-over at or after it goes
	// to the first participant. Default 2024-01-01 00:00 in Timezone.
	Start time.Time `yaml:"start" json:"start,omitzero"`
	// Overrides put a person on call for a period, whoever's turn it is;
	// where two overlap, the later in the list wins.
	Overrides []Override `yaml:"overrides" json:"overrides,omitempty"`
	Origin    `yaml:"-"`

	loc    *time.Location
	hh, mm int
	wd     time.Weekday
	step   int // days between hand-overs: 1 or 7
}

// Override puts Person on call from Start to End (exclusive).
type Override struct {
	Person  string    `yaml:"person" json:"person"`
	Start   time.Time `yaml:"start" json:"start"`
	End     time.Time `yaml:"end" json:"end"`
	Comment string    `yaml:"comment" json:"comment,omitempty"`
}

// defaultRotationStart is where turns are counted from without a start.
var defaultRotationStart = [3]int{2024, 1, 1}

func (r *Rotation) name() string { return r.Name }

func (r *Rotation) check() error {
	if r.Name == "" {
		return fmt.Errorf("itsm rotation: a rotation needs a name")
	}
	if r.Group == "" {
		return fmt.Errorf("itsm rotation %q: group is required (whose on-call it is)", r.Name)
	}
	if len(r.Participants) == 0 {
		return fmt.Errorf("itsm rotation %q: participants: at least one person", r.Name)
	}
	if slices.Contains(r.Participants, "") {
		return fmt.Errorf("itsm rotation %q: participants: an empty name", r.Name)
	}
	switch r.Handover {
	case "", "weekly":
		r.Handover, r.step = "weekly", 7
		if r.Weekday == "" {
			r.Weekday = "mon"
		}
		if r.wd = weekday(r.Weekday); r.wd < 0 {
			return fmt.Errorf("itsm rotation %q: weekday %q (mon…sun)", r.Name, r.Weekday)
		}
	case "daily":
		r.step = 1
		if r.Weekday != "" {
			return fmt.Errorf("itsm rotation %q: weekday goes with a weekly hand-over, not a daily one", r.Name)
		}
	default:
		return fmt.Errorf("itsm rotation %q: handover %q (daily, weekly)", r.Name, r.Handover)
	}
	if r.At == "" {
		r.At = "09:00"
	}
	at, err := time.Parse("15:04", r.At)
	if err != nil {
		return fmt.Errorf("itsm rotation %q: at %q is not HH:MM", r.Name, r.At)
	}
	r.hh, r.mm = at.Hour(), at.Minute()
	if r.Timezone == "" {
		r.Timezone = "UTC"
	}
	if r.loc, err = time.LoadLocation(r.Timezone); err != nil {
		return fmt.Errorf("itsm rotation %q: timezone %q: %w", r.Name, r.Timezone, err)
	}
	for i, o := range r.Overrides {
		if o.Person == "" || o.Start.IsZero() || !o.End.After(o.Start) {
			return fmt.Errorf("itsm rotation %q: override %d: a person, and start before end", r.Name, i+1)
		}
	}
	return nil
}

func (r *Rotation) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "group %s: %s, %s", r.Group, strings.Join(r.Participants, ", "), r.Handover)
	if r.Handover == "weekly" {
		fmt.Fprintf(&b, " on %s", r.Weekday)
	}
	fmt.Fprintf(&b, " at %s %s", r.At, r.Timezone)
	if n := len(r.Overrides); n > 0 {
		fmt.Fprintf(&b, ", %d override(s)", n)
	}
	return b.String()
}

// A rotation's arithmetic counts civil days (days since 1970-01-01 of a
// date in the rotation's zone), never hours: a day with a daylight saving
// change has 23 or 25 hours, and the hand-over stays at the wall-clock
// time. Day n's hand-over is at At on that date in the zone; a time that
// does not exist that day, in the spring gap, moves forward by the gap.

func dayNum(t time.Time) int {
	y, m, d := t.Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// handover is the time of day n's hand-over.
func (r *Rotation) handover(n int) time.Time {
	y, m, d := time.Unix(int64(n)*86400, 0).UTC().Date()
	t := time.Date(y, m, d, r.hh, r.mm, 0, 0, r.loc)
	if t.Hour() != r.hh || t.Minute() != r.mm {
		// NB: in the spring gap time.Date goes back (02:30 → 01:30 EST);
		// a hand-over goes forward instead (03:30 EDT), as cron does: the
		// wall clock read with the offset from before the change.
		_, off := t.Zone()
		t = time.Date(y, m, d, r.hh, r.mm, 0, 0, time.UTC).Add(-time.Duration(off) * time.Second).In(r.loc)
	}
	return t
}

// onWeekday moves day n back (dir -1) or forward (+1) to the rotation's
// hand-over day (every day for a daily rotation).
func (r *Rotation) onWeekday(n, dir int) int {
	if r.step == 1 {
		return n
	}
	wd := (n + 4) % 7 // 1970-01-01 was a Thursday
	if wd < 0 {
		wd += 7
	}
	if dir < 0 {
		return n - (wd-int(r.wd)+7)%7
	}
	return n + (int(r.wd)-wd+7)%7
}

// shiftDay is the day of the hand-over that began the turn t is in.
func (r *Rotation) shiftDay(t time.Time) int {
	n := dayNum(t.In(r.loc))
	if t.Before(r.handover(n)) {
		n--
	}
	return r.onWeekday(n, -1)
}

// anchorDay is the day of the first participant's first turn.
func (r *Rotation) anchorDay() int {
	start := r.Start
	if start.IsZero() {
		start = time.Date(defaultRotationStart[0], time.Month(defaultRotationStart[1]), defaultRotationStart[2], 0, 0, 0, 0, r.loc)
	}
	n := dayNum(start.In(r.loc))
	if r.handover(n).Before(start) {
		n++
	}
	n = r.onWeekday(n, +1)
	return n
}

// turn is whose turn it is at t, ignoring overrides, and when the turn
// began and ends.
func (r *Rotation) turn(t time.Time) (who string, from, until time.Time) {
	sd := r.shiftDay(t)
	k := floorDiv(sd-r.anchorDay(), r.step)
	i := k % len(r.Participants)
	if i < 0 {
		i += len(r.Participants)
	}
	return r.Participants[i], r.handover(sd), r.handover(sd + r.step)
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// override is the override in force at t, or nil.
func (r *Rotation) override(t time.Time) *Override {
	for i := len(r.Overrides) - 1; i >= 0; i-- {
		if o := &r.Overrides[i]; !t.Before(o.Start) && t.Before(o.End) {
			return o
		}
	}
	return nil
}

// whoAt is who is on call at t.
func (r *Rotation) whoAt(t time.Time) string {
	if o := r.override(t); o != nil {
		return o.Person
	}
	who, _, _ := r.turn(t)
	return who
}

// Handover is a change of who is on call.
type Handover struct {
	At   time.Time `json:"at"`
	From string    `json:"from"`
	To   string    `json:"to"`
}

// Shift is who is on call in a rotation at a time.
type Shift struct {
	Group    string `json:"group"`
	Rotation string `json:"rotation"`
	Person   string `json:"person"`
	// Since and Until bound the person's time on call around the time
	// asked about: Until is the next hand-over (none, and left out, for
	// a rotation of one person without overrides ahead); Since the last
	// (at least that long for a rotation of one).
	Since time.Time `json:"since"`
	Until time.Time `json:"until,omitzero"`
	// Override is set when Person covers for the rotation's turn.
	Override *Override `json:"override,omitempty"`
	// Next are the next hand-overs after the time asked about.
	Next []Handover `json:"next"`
}

// shiftAt is who is on call at t, since when, until when, and the next n
// hand-overs.
func (r *Rotation) shiftAt(t time.Time, n int) Shift {
	s := Shift{Group: r.Group, Rotation: r.Name, Person: r.whoAt(t), Override: r.override(t), Next: []Handover{}}
	// The moments who is on call may change: hand-overs and the edges of
	// overrides, after t and before it.
	var after, before []time.Time
	sd := r.shiftDay(t)
	for i := 0; i <= n*len(r.Participants)+1; i++ {
		after = append(after, r.handover(sd+(i+1)*r.step))
	}
	for i := 0; i <= len(r.Participants)+1; i++ {
		before = append(before, r.handover(sd-i*r.step))
	}
	horizon := after[len(after)-1]
	for _, o := range r.Overrides {
		for _, x := range []time.Time{o.Start, o.End} {
			if x.After(t) && x.Before(horizon) {
				after = append(after, x)
			} else if !x.After(t) {
				before = append(before, x)
			}
		}
	}
	slices.SortFunc(after, func(a, b time.Time) int { return a.Compare(b) })
	slices.SortFunc(before, func(a, b time.Time) int { return b.Compare(a) })
	prev := s.Person
	for _, x := range after {
		w := r.whoAt(x)
		if w == prev {
			continue
		}
		if s.Until.IsZero() {
			s.Until = x
		}
		if len(s.Next) < n {
			s.Next = append(s.Next, Handover{At: x, From: prev, To: w})
		}
		prev = w
	}
	// Since: the latest change at or before t that made s.Person on
	// call (the oldest moment looked at when there is none).
	s.Since = before[len(before)-1]
	for _, x := range before {
		if r.whoAt(x.Add(-time.Nanosecond)) != s.Person {
			s.Since = x
			break
		}
	}
	return s
}

// rotationsOf are a tenant's rotations of a group (all with group ""),
// its own first; the caller holds m.mu.
func (m *Manager) rotationsOf(tenant, group string) []*Rotation {
	var out []*Rotation
	for _, r := range m.rotations.list(tenant) {
		if group == "" || r.Group == group {
			out = append(out, r)
		}
	}
	return out
}

// onCallLocked is who is on call for a group at t: the person of its
// first rotation (a tenant's own before the config file's); ok is false
// when the group has no rotation. The caller holds m.mu.
func (m *Manager) onCallLocked(tenant, group string, t time.Time) (person string, rotation *Rotation, ok bool) {
	rs := m.rotationsOf(tenant, group)
	if group == "" || len(rs) == 0 {
		return "", nil, false
	}
	return rs[0].whoAt(t), rs[0], true
}

// OnCall answers who is on call at t for a group (every group with
// ""), per rotation, and the next hand-overs (up to next). A group
// without a rotation is ErrNotFound.
func (m *Manager) OnCall(tenant, group string, t time.Time, next int) ([]Shift, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Shift{}
	for _, r := range m.rotationsOf(tenant, group) {
		out = append(out, r.shiftAt(t, next))
	}
	if group != "" && len(out) == 0 {
		return nil, fmt.Errorf("group %q has no on-call rotation: %w", group, ErrNotFound)
	}
	return out, nil
}

// Rotations lists the rotations that apply to a tenant: its own, by
// name, then the config file's.
func (m *Manager) Rotations(tenant string) []*Rotation {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rotations.copies(tenant)
}

// PutRotation creates (create) or replaces a tenant's rotation, stored
// and recorded with who. A config file's name, or (create) a taken one,
// is ErrConflict; an invalid rotation ErrInvalid; replacing a missing one
// ErrNotFound.
func (m *Manager) PutRotation(tenant, who string, r Rotation, create bool) (*Rotation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rotations.put(m, tenant, who, r, create)
}

// DeleteRotation removes a tenant's rotation.
func (m *Manager) DeleteRotation(tenant, who, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rotations.remove(m, tenant, who, name)
}

// assignOnCall assigns a new incident to the person on call for its
// owner group, if the group has a rotation; the caller holds m.mu.
func (m *Manager) assignOnCall(inc *Incident, at time.Time) {
	person, r, ok := m.onCallLocked(inc.Tenant, inc.OwnerGroup, at)
	if !ok {
		return
	}
	inc.Assignee = person
	inc.log(at, "tsdb", "assigned", fmt.Sprintf("%s (on call for %s, rotation %s)", person, inc.OwnerGroup, r.Name))
}
