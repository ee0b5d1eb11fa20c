package kpi

import "time"

// State is where a KPI stands.
type State string

// States.
const (
	StateOK       State = "ok"
	StateWarning  State = "predicted_breach"
	StateBreached State = "breached"
)

// Transition is what an observation changed.
type Transition int

// Transitions.
const (
	None    Transition = iota
	Warn               // a predicted breach starts
	Update             // the predicted breach's ETA moved
	Cancel             // the forecast recovered
	Breach             // the KPI crossed its target
	Recover            // the KPI is back on the right side
)

func (t Transition) String() string {
	return [...]string{"none", "warn", "update", "cancel", "breach", "recover"}[t]
}

// Tracker is the hysteresis between forecasts and incidents: a warning
// needs Confirm evaluations in a row at or above WarnProbability, or one
// at or above AtOnce, and is cancelled only after Confirm in a row below
// ClearProbability; an open warning is updated when its ETA moves by more
// than a quarter of the time left (at least 15 minutes). It is pure
// logic, shared by the evaluator and the accuracy suite.
type Tracker struct {
	WarnProbability, ClearProbability float64
	Confirm                           int
	// AtOnce is the probability at which a warning needs no confirmation:
	// Confirm guards against a forecast that crosses WarnProbability
	// once and falls back, and a forecast that is all but certain of
	// the breach is its own confirmation (the accuracy suite: hourly
	// KPIs, whose confirmation costs an hour, warn 1 to 4 points more of
	// their breaches an hour ahead; docs/kpi.md). Zero or below: never.
	AtOnce float64

	State State
	// TurnedAt is when the probability first passed the threshold in the
	// streak that raised the warning (for probable causes).
	TurnedAt time.Time
	// ETA is the breach time last reported (zero: none).
	ETA time.Time

	streak    int
	streakAt  time.Time
	clearRuns int
}

// NewTracker returns a tracker in state ok; clear defaults to half of warn.
func NewTracker(warn, atOnce float64, confirm int) *Tracker {
	return &Tracker{WarnProbability: warn, ClearProbability: warn / 2, Confirm: max(confirm, 1), AtOnce: atOnce, State: StateOK}
}

// Observe takes one evaluation: whether the KPI is on the wrong side now,
// the breach probability within the horizon, and the expected breach time
// (zero if the mean forecast does not cross).
func (t *Tracker) Observe(now time.Time, breached bool, prob float64, eta time.Time) Transition {
	if breached {
		if t.State == StateBreached {
			return None
		}
		t.State, t.streak, t.clearRuns = StateBreached, 0, 0
		return Breach
	}
	if t.State == StateBreached {
		t.State, t.ETA = StateOK, time.Time{}
		return Recover
	}
	switch t.State {
	case StateOK:
		if prob < t.WarnProbability {
			t.streak = 0
			return None
		}
		if t.streak == 0 {
			t.streakAt = now
		}
		t.streak++
		if t.streak < t.Confirm && (t.AtOnce <= 0 || prob < t.AtOnce) {
			return None
		}
		t.State, t.TurnedAt, t.ETA, t.streak, t.clearRuns = StateWarning, t.streakAt, eta, 0, 0
		return Warn
	case StateWarning:
		if prob < t.ClearProbability {
			t.clearRuns++
			if t.clearRuns >= t.Confirm {
				t.State, t.ETA, t.clearRuns = StateOK, time.Time{}, 0
				return Cancel
			}
			return None
		}
		t.clearRuns = 0
		if etaMoved(now, t.ETA, eta) {
			t.ETA = eta
			return Update
		}
	}
	return None
}

func etaMoved(now, old, eta time.Time) bool {
	if old.IsZero() != eta.IsZero() {
		return true
	}
	if eta.IsZero() {
		return false
	}
	d := eta.Sub(old)
	if d < 0 {
		d = -d
	}
	return d > max(15*time.Minute, old.Sub(now)/4)
}

// TrackerState is a Tracker's state as a KPI engine keeps it (Options.Store)
// so that a restart, or a new leader in a cluster, continues the
// hysteresis where it stood: a warning confirmed stays confirmed, a
// streak half way to one goes on.
type TrackerState struct {
	State     State     `json:"state"`
	TurnedAt  time.Time `json:"turned_at,omitzero"`
	ETA       time.Time `json:"eta,omitzero"`
	Streak    int       `json:"streak,omitempty"`
	StreakAt  time.Time `json:"streak_at,omitzero"`
	ClearRuns int       `json:"clear_runs,omitempty"`
}

// Snapshot returns t's state.
func (t *Tracker) Snapshot() TrackerState {
	return TrackerState{State: t.State, TurnedAt: t.TurnedAt, ETA: t.ETA, Streak: t.streak, StreakAt: t.streakAt, ClearRuns: t.clearRuns}
}

// Restore sets t's state to s; the thresholds stay t's own (a definition
// changed since s was kept judges by its new ones).
func (t *Tracker) Restore(s TrackerState) {
	switch s.State {
	case StateOK, StateWarning, StateBreached:
	default:
		s = TrackerState{State: StateOK}
	}
	t.State, t.TurnedAt, t.ETA, t.streak, t.streakAt, t.clearRuns = s.State, s.TurnedAt, s.ETA, max(s.Streak, 0), s.StreakAt, max(s.ClearRuns, 0)
}
