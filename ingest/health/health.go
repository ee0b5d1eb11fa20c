// Package health tracks whether an ingest source (an MQTT broker, an SNMP
// target) works and, when it does not, why: the status API and the console
// show the reason, and the log says each change of state once instead of
// once per attempt.
package health

import (
	"log/slog"
	"sync"
	"time"
)

// State is a source's health at one moment.
type State struct {
	Up bool
	// Reason says why the source is down ("" when up, or not yet tried).
	Reason string
	// Since is when the source entered this state (zero: never tried).
	Since time.Time
}

// Source is the health of one source; the zero value is not usable, see
// New. It is safe for concurrent use.
type Source struct {
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	state State
}

// New returns the health of a source not tried yet, down for the reason
// pending; log carries the source's identity (e.g. slog.With("target",
// name)) and gets a warning when the source goes down and an info when it
// comes back.
func New(log *slog.Logger, pending string) *Source {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{log: log, now: time.Now, state: State{Reason: pending}}
}

// Up records a success.
func (s *Source) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Up {
		return
	}
	if !s.state.Since.IsZero() {
		s.log.Info("source is back", "was", s.state.Reason, "down_for", s.now().Sub(s.state.Since).Round(time.Second))
	}
	s.state = State{Up: true, Since: s.now()}
}

// Down records a failure and why. The log says it when the source goes
// down, not once per failed attempt: while it stays down the reason is
// kept up to date silently (errors often differ only in a port number).
func (s *Source) Down(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.state.Up && !s.state.Since.IsZero() {
		s.state.Reason = reason
		return
	}
	s.log.Warn("source is down", "reason", reason)
	s.state = State{Reason: reason, Since: s.now()}
}

// State returns the current state.
func (s *Source) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}
