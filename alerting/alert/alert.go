// Package alert holds the types that alerting components exchange: an
// alert instance, its state, and a transition between states. The ruler
// produces them; ITSM, notifiers and the history consume them, without
// depending on the ruler.
//
//	ruler.OnEvent(func(e alert.Event) {
//		if e.To == alert.StateFiring { … }
//	})
package alert

import (
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// State is where an alert is in its life.
type State string

// The states.
const (
	StateInactive State = "inactive"
	StatePending  State = "pending"
	StateFiring   State = "firing"
)

// Alert is one alert instance.
type Alert struct {
	Labels          labels.Labels
	Annotations     labels.Labels
	State           State
	Value           float64
	ActiveAt        time.Time
	FiredAt         time.Time
	ResolvedAt      time.Time
	LastSentAt      time.Time
	ValidUntil      time.Time
	KeepFiringSince time.Time
	// SilentSince is when a firing alert went away because its source
	// stopped reporting (no data, not recovered); zero otherwise.
	SilentSince  time.Time
	GeneratorURL string
}

// Event is an alert transition, for the ITSM layer and history. Alert is
// a copy the receiver may keep.
//
// NB: two events tell no data from recovery. From firing To inactive with
// NoData set: the alert went away because its source stopped reporting
// (the series the rule reads have no samples for the alert's labels), not
// because the condition cleared. From inactive To inactive (NoData unset)
// then follows when that source reports again without the alert: the
// alert has now recovered.
type Event struct {
	Tenant string
	Alert  *Alert
	From   State
	To     State
	At     time.Time
	NoData bool
}
