package itsm

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustRotation(t *testing.T, r Rotation) *Rotation {
	t.Helper()
	require.NoError(t, r.check())
	return &r
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v.UTC()
}

// inUTC is a shift with its times in UTC, to compare.
func inUTC(s Shift) Shift {
	s.Since, s.Until = s.Since.UTC(), s.Until.UTC()
	for i := range s.Next {
		s.Next[i].At = s.Next[i].At.UTC()
	}
	return s
}

// TestRotationHandover: the turn changes exactly at the hand-over, in
// the rotation's zone, weekly and daily, and before the start the turns
// run backwards.
func TestRotationHandover(t *testing.T) {
	r := mustRotation(t, Rotation{Name: "pay", Group: "payments", Participants: []string{"kim", "lee", "park"},
		At: "09:00", Timezone: "Asia/Seoul", Start: at(t, "2025-01-06T00:00:00+09:00")}) // a Monday; weekly by default
	f := func(when, want string) {
		t.Helper()
		require.Equal(t, want, r.whoAt(at(t, when)), when)
	}
	f("2025-01-06T08:59:59+09:00", "park") // the turn before the first
	f("2025-01-06T09:00:00+09:00", "kim")
	f("2025-01-08T23:00:00+09:00", "kim")
	f("2025-01-13T08:59:59+09:00", "kim")
	f("2025-01-13T09:00:00+09:00", "lee")
	f("2025-01-13T00:30:00Z", "lee") // 09:30 in Seoul
	f("2025-01-20T09:00:00+09:00", "park")
	f("2025-01-27T09:00:00+09:00", "kim")
	f("2024-12-30T09:00:00+09:00", "park")
	f("2024-12-23T09:00:00+09:00", "lee")

	// A start that is not a hand-over: the first hand-over after it.
	r = mustRotation(t, Rotation{Name: "d", Group: "g", Participants: []string{"a", "b"}, Handover: "daily", At: "18:30",
		Start: at(t, "2025-05-01T19:00:00Z")})
	require.Equal(t, "b", r.whoAt(at(t, "2025-05-02T18:29:00Z")), "before the first hand-over after the start")
	require.Equal(t, "a", r.whoAt(at(t, "2025-05-02T18:30:00Z")))
	require.Equal(t, "b", r.whoAt(at(t, "2025-05-03T18:30:00Z")))
	require.Equal(t, "b", r.whoAt(at(t, "2025-05-04T18:29:59Z")))
	require.Equal(t, "a", r.whoAt(at(t, "2025-05-04T18:30:00Z")))
}

// TestRotationDST: a 09:00 hand-over in New York stays at 09:00 local
// across both daylight saving changes (13:00 or 14:00 UTC), and one in
// the spring gap (02:30 does not exist on 9 March 2025) moves to 03:30.
func TestRotationDST(t *testing.T) {
	r := mustRotation(t, Rotation{Name: "ny", Group: "g", Participants: []string{"a", "b"}, Handover: "daily",
		At: "09:00", Timezone: "America/New_York", Start: at(t, "2025-03-08T00:00:00-05:00")})
	f := func(when, want string) {
		t.Helper()
		require.Equal(t, want, r.whoAt(at(t, when)), when)
	}
	f("2025-03-08T13:59:59Z", "b") // 08:59 EST
	f("2025-03-08T14:00:00Z", "a") // 09:00 EST
	f("2025-03-09T12:59:59Z", "a") // 08:59 EDT: the day had 23 hours
	f("2025-03-09T13:00:00Z", "b") // 09:00 EDT
	f("2025-03-10T13:00:00Z", "a")
	// Autumn: 2 November 2025 has 25 hours.
	f("2025-11-01T12:59:59Z", "b") // 08:59 EDT; 238 days after the start: even → a from 09:00
	f("2025-11-01T13:00:00Z", "a")
	f("2025-11-02T13:59:59Z", "a") // 08:59 EST
	f("2025-11-02T14:00:00Z", "b")

	s := inUTC(r.shiftAt(at(t, "2025-03-09T00:00:00Z"), 2))
	require.Equal(t, "a", s.Person)
	require.Equal(t, at(t, "2025-03-08T14:00:00Z"), s.Since)
	require.Equal(t, at(t, "2025-03-09T13:00:00Z"), s.Until, "23 hours later")
	require.Equal(t, []Handover{{At: at(t, "2025-03-09T13:00:00Z"), From: "a", To: "b"}, {At: at(t, "2025-03-10T13:00:00Z"), From: "b", To: "a"}}, s.Next)

	gap := mustRotation(t, Rotation{Name: "gap", Group: "g", Participants: []string{"a", "b"}, Handover: "daily",
		At: "02:30", Timezone: "America/New_York", Start: at(t, "2025-03-08T00:00:00-05:00")})
	require.Equal(t, "a", gap.whoAt(at(t, "2025-03-09T07:29:59Z")), "03:29 EDT: the 02:30 hand-over has not happened")
	require.Equal(t, "b", gap.whoAt(at(t, "2025-03-09T07:30:00Z")), "03:30 EDT")
	require.Equal(t, "a", gap.whoAt(at(t, "2025-03-10T06:30:00Z")), "02:30 EDT the next day")

	// Weekly on Sundays across the spring change.
	w := mustRotation(t, Rotation{Name: "w", Group: "g", Participants: []string{"a", "b"}, Weekday: "sun",
		At: "09:00", Timezone: "America/New_York", Start: at(t, "2025-03-02T09:00:00-05:00")})
	require.Equal(t, "a", w.whoAt(at(t, "2025-03-09T12:59:59Z")))
	require.Equal(t, "b", w.whoAt(at(t, "2025-03-09T13:00:00Z")))
}

// TestRotationOverrides: an override covers its period whoever's turn it
// is, the later of two overlapping wins, and the next hand-overs name
// its start and end.
func TestRotationOverrides(t *testing.T) {
	r := mustRotation(t, Rotation{Name: "pay", Group: "payments", Participants: []string{"kim", "lee"}, Handover: "daily",
		At: "09:00", Start: at(t, "2025-06-01T09:00:00Z"), Overrides: []Override{
			{Person: "choi", Start: at(t, "2025-06-01T12:00:00Z"), End: at(t, "2025-06-01T18:00:00Z")},
			{Person: "jung", Start: at(t, "2025-06-01T17:00:00Z"), End: at(t, "2025-06-01T20:00:00Z")},
		}})
	f := func(when, want string) {
		t.Helper()
		require.Equal(t, want, r.whoAt(at(t, when)), when)
	}
	f("2025-06-01T11:59:59Z", "kim")
	f("2025-06-01T12:00:00Z", "choi")
	f("2025-06-01T16:59:59Z", "choi")
	f("2025-06-01T17:00:00Z", "jung") // the later override wins
	f("2025-06-01T19:59:59Z", "jung")
	f("2025-06-01T20:00:00Z", "kim")
	f("2025-06-02T09:00:00Z", "lee")

	s := inUTC(r.shiftAt(at(t, "2025-06-01T10:00:00Z"), 4))
	require.Equal(t, "kim", s.Person)
	require.Nil(t, s.Override)
	require.Equal(t, at(t, "2025-06-01T09:00:00Z"), s.Since)
	require.Equal(t, at(t, "2025-06-01T12:00:00Z"), s.Until, "until the override")
	require.Equal(t, []Handover{
		{At: at(t, "2025-06-01T12:00:00Z"), From: "kim", To: "choi"},
		{At: at(t, "2025-06-01T17:00:00Z"), From: "choi", To: "jung"},
		{At: at(t, "2025-06-01T20:00:00Z"), From: "jung", To: "kim"},
		{At: at(t, "2025-06-02T09:00:00Z"), From: "kim", To: "lee"},
	}, s.Next)
	s = inUTC(r.shiftAt(at(t, "2025-06-01T13:00:00Z"), 1))
	require.Equal(t, "choi", s.Person)
	require.NotNil(t, s.Override)
	require.Equal(t, at(t, "2025-06-01T12:00:00Z"), s.Since)
	require.Equal(t, at(t, "2025-06-01T17:00:00Z"), s.Until)
	s = inUTC(r.shiftAt(at(t, "2025-06-01T21:00:00Z"), 1))
	require.Equal(t, at(t, "2025-06-01T20:00:00Z"), s.Since, "kim again since the override ended")
}

func TestRotationValidation(t *testing.T) {
	f := func(r Rotation, want string) {
		t.Helper()
		require.ErrorContains(t, r.check(), want)
	}
	f(Rotation{Name: "x", Participants: []string{"a"}}, "group is required")
	f(Rotation{Name: "x", Group: "g"}, "participants")
	f(Rotation{Name: "x", Group: "g", Participants: []string{"a"}, Handover: "hourly"}, `handover "hourly"`)
	f(Rotation{Name: "x", Group: "g", Participants: []string{"a"}, Weekday: "funday"}, "weekday")
	f(Rotation{Name: "x", Group: "g", Participants: []string{"a"}, At: "9am"}, `at "9am" is not HH:MM`)
	f(Rotation{Name: "x", Group: "g", Participants: []string{"a"}, Timezone: "Mars/Olympus"}, "timezone")
	f(Rotation{Name: "x", Group: "g", Participants: []string{"a"}, Overrides: []Override{{Person: "b"}}}, "override 1")
}
