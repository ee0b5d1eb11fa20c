package itsm

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/internal/apptest"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func policyConfig(t0 time.Time) Config {
	cfg := testConfig("", "")
	cfg.Receivers = nil
	cfg.Groups = map[string][]string{"payments-oncall": {"kim", "lee"}, "payments-lead": {"park"}}
	cfg.Rotations = []Rotation{{Name: "pay-primary", Group: "payments-oncall", Participants: []string{"kim", "lee"},
		Handover: "daily", At: "09:00", Start: t0.Add(-time.Hour), // kim's turn from an hour ago
		Overrides: []Override{{Person: "choi", Start: t0.Add(20 * time.Minute), End: t0.Add(40 * time.Minute)}}}}
	cfg.EscalationPolicies = []EscalationPolicy{
		{Name: "payments", Groups: []string{"payments-oncall"}, Repeat: 1, RepeatAfter: Delay(10 * time.Minute), Steps: []EscalationStep{
			{After: 0, OnCall: "payments-oncall"},
			{After: Delay(5 * time.Minute), Group: "payments-lead"},
			{After: Delay(15 * time.Minute), Person: "boss"},
		}},
		{Name: "db", CIs: []string{"db-1"}, Steps: []EscalationStep{{After: Delay(time.Minute), Person: "dba-on-duty"}}},
	}
	return cfg
}

// TestEscalationPolicy: an incident of the payments group is assigned to
// the person on call, follows its group's policy step by step (the
// on-call step resolved at the time of the step), repeats, and stops on
// acknowledgement; a CI's policy comes before the group's; without a
// policy the priority's lines still apply; escalate by hand takes the
// next step.
func TestEscalationPolicy(t *testing.T) {
	t0 := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)
	clk := apptest.NewClock(t0)
	m, err := New(policyConfig(t0), st.Open(t, nil), nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()

	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("CheckoutErrors"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	inc := m.Incidents("acme", "", "", "", time.Time{})[0]
	require.Equal(t, "kim", inc.Assignee, "the person on call for the owner group")
	require.Equal(t, "payments", inc.EscalationPolicy)
	require.Equal(t, t0, *inc.NextEscalationAt)
	id := inc.ID
	get := func() *Incident {
		inc, ok := m.Incident("acme", id)
		require.True(t, ok)
		return inc
	}
	tick := func(d time.Duration) *Incident {
		clk.Add(d)
		m.Tick()
		return get()
	}

	inc = tick(0)
	require.Equal(t, []string{"kim"}, inc.EscalatedTo, "step 1 at once: the on-call")
	require.Equal(t, &EscalationState{Policy: "payments", Step: 1, Round: 1, Target: "on-call of payments-oncall", People: []string{"kim"}, At: t0}, inc.Escalation)
	last := inc.Timeline[len(inc.Timeline)-1]
	require.Equal(t, "escalated", last.What)
	require.Contains(t, last.Detail, "policy payments step 1/3 (round 1 of 2)")
	require.Equal(t, t0.Add(5*time.Minute), *inc.NextEscalationAt)

	inc = tick(4*time.Minute + 59*time.Second)
	require.Len(t, inc.EscalatedTo, 1, "not yet")
	inc = tick(time.Second)
	require.Equal(t, []string{"kim", "payments-lead"}, inc.EscalatedTo)
	require.Equal(t, []string{"park"}, inc.Recipients["payments-lead"])
	inc = tick(10 * time.Minute) // 15m
	require.Equal(t, []string{"kim", "payments-lead", "boss"}, inc.EscalatedTo)
	// Round 2 starts 10m after the last step (25m); choi covers the
	// on-call from 20m to 40m, so the on-call step now reaches choi.
	inc = tick(9 * time.Minute) // 24m
	require.Len(t, inc.EscalatedTo, 3)
	inc = tick(time.Minute) // 25m
	require.Equal(t, "choi", inc.EscalatedTo[3], "the on-call at the time of the step")
	require.Equal(t, 2, inc.Escalation.Round)
	require.Equal(t, []string{"choi"}, inc.Recipients["oncall:payments-oncall"])

	// Escalate by hand: the next step now (round 2, step 2).
	inc, err = m.Action("acme", id, "escalate", "kim", "", "customers calling")
	require.NoError(t, err)
	require.Equal(t, "payments-lead", inc.EscalatedTo[4])
	require.Equal(t, "kim", inc.Timeline[len(inc.Timeline)-1].Who)
	require.Equal(t, t0.Add(40*time.Minute), *inc.NextEscalationAt, "the last step keeps its time")

	// Acknowledged: it stops.
	_, err = m.Action("acme", id, "ack", "kim", "", "")
	require.NoError(t, err)
	inc = tick(time.Hour)
	require.Len(t, inc.EscalatedTo, 5, "no step after the acknowledgement")
	require.Nil(t, inc.NextEscalationAt)

	// A second incident runs all 6 steps, then no more, and escalate by
	// hand says it is past the last step.
	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("CheckoutSlow"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	var id2 string
	for _, x := range m.Incidents("acme", "open", "", "", time.Time{}) {
		id2 = x.ID
	}
	require.Equal(t, "kim", get2(t, m, id2).Assignee, "choi's override is over")
	for range 10 {
		clk.Add(10 * time.Minute)
		m.Tick()
	}
	require.Len(t, get2(t, m, id2).EscalatedTo, 6)
	_, err = m.Action("acme", id2, "escalate", "kim", "", "")
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "past the last step of escalation policy payments")

	// A CI's policy comes before its owner group's; an incident of
	// neither follows the priority's lines.
	db, err := m.CreateIncident("acme", "kim", NewIncident{Title: "Disk", CI: "db-1", OwnerGroup: "payments-oncall"})
	require.NoError(t, err)
	require.Equal(t, "db", db.EscalationPolicy)
	other, err := m.CreateIncident("acme", "kim", NewIncident{Title: "Printer", Priority: "P1", OwnerGroup: "office"})
	require.NoError(t, err)
	require.Empty(t, other.EscalationPolicy)
	require.Empty(t, other.Assignee, "office has no rotation")
	clk.Add(11 * time.Minute)
	m.Tick()
	require.Equal(t, []string{"dba-on-duty"}, get2(t, m, db.ID).EscalatedTo)
	require.Equal(t, []string{"payments-lead"}, get2(t, m, other.ID).EscalatedTo, "P1's first line")

	// Reassigned to a group with a policy: it follows that one from now.
	other, err = m.Action("acme", other.ID, "reassign", "kim", "payments-oncall", "")
	require.NoError(t, err)
	require.Equal(t, "payments", other.EscalationPolicy)
	require.Equal(t, 0, other.EscalationLevel)
	require.Equal(t, "kim", other.Assignee, "payments-oncall's on-call")
}

func get2(t *testing.T, m *Manager, id string) *Incident {
	t.Helper()
	inc, ok := m.Incident("acme", id)
	require.True(t, ok)
	return inc
}

// TestPolicyAndRotationSettings: the API's policies and rotations are per
// tenant, durable, with who in their history; the config file's cannot be
// changed through it; a tenant's own policy wins over the file's.
func TestPolicyAndRotationSettings(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, nil)
	t0 := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)
	clk := apptest.NewClock(t0)
	cfg := policyConfig(t0)
	m, err := New(cfg, db, nil, clk.Now)
	require.NoError(t, err)

	p := EscalationPolicy{Name: "acme-pay", Groups: []string{"payments-oncall"}, Steps: []EscalationStep{{After: Delay(time.Minute), Person: "ceo"}}}
	out, err := m.PutPolicy("acme", "kim", p, true)
	require.NoError(t, err)
	require.Equal(t, "api", out.Source)
	require.Equal(t, "kim", out.History[0].Who)
	_, err = m.PutPolicy("acme", "kim", p, true)
	require.ErrorIs(t, err, ErrConflict)
	_, err = m.PutPolicy("acme", "kim", EscalationPolicy{Name: "payments", Steps: p.Steps}, false)
	require.ErrorIs(t, err, ErrConflict, "the config file's")
	_, err = m.PutPolicy("acme", "kim", EscalationPolicy{Name: "bad"}, true)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = m.PutPolicy("acme", "kim", EscalationPolicy{Name: "missing", Steps: p.Steps}, false)
	require.ErrorIs(t, err, ErrNotFound)
	require.Len(t, m.Policies("acme"), 3)
	require.Len(t, m.Policies("beta"), 2)

	r := Rotation{Name: "acme-pay", Group: "payments-oncall", Participants: []string{"yoon"}}
	_, err = m.PutRotation("acme", "kim", r, true)
	require.NoError(t, err)
	shifts, err := m.OnCall("acme", "payments-oncall", t0, 2)
	require.NoError(t, err)
	require.Len(t, shifts, 2)
	require.Equal(t, "yoon", shifts[0].Person, "the tenant's own rotation first")
	_, err = m.OnCall("acme", "nobody", t0, 2)
	require.ErrorIs(t, err, ErrNotFound)

	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: &ruler.Alert{Labels: labels.FromStrings("alertname", "X", "service", "checkout")},
		From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	inc := m.Incidents("acme", "", "", "", time.Time{})[0]
	require.Equal(t, "acme-pay", inc.EscalationPolicy)
	require.Equal(t, "yoon", inc.Assignee)

	// Durable.
	m.Close()
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, nil)
	m, err = New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()
	require.Len(t, m.Policies("acme"), 3)
	require.Len(t, m.Rotations("acme"), 2)
	p.Steps = append(p.Steps, EscalationStep{After: Delay(time.Hour), Group: "board"})
	out, err = m.PutPolicy("acme", "lee", p, false)
	require.NoError(t, err)
	require.Len(t, out.History, 2)
	require.NoError(t, m.DeletePolicy("acme", "lee", "acme-pay"))
	require.ErrorIs(t, m.DeletePolicy("acme", "lee", "acme-pay"), ErrNotFound)
	require.ErrorIs(t, m.DeleteRotation("acme", "lee", "pay-primary"), ErrConflict)
	require.NoError(t, m.DeleteRotation("acme", "lee", "acme-pay"))
}

func TestPolicyValidation(t *testing.T) {
	f := func(p EscalationPolicy, want string) {
		t.Helper()
		require.ErrorContains(t, p.check(), want)
	}
	f(EscalationPolicy{Name: "x"}, "steps: at least one")
	f(EscalationPolicy{Name: "x", Steps: []EscalationStep{{}}}, "step 1: name one of group, person or oncall")
	f(EscalationPolicy{Name: "x", Steps: []EscalationStep{{Group: "a", Person: "b"}}}, "step 1: name one of")
	f(EscalationPolicy{Name: "x", Steps: []EscalationStep{{After: Delay(time.Hour), Group: "a"}, {Group: "b"}}}, "step 2: after 0s is before step 1's 1h")
	f(EscalationPolicy{Name: "x", Repeat: 2, Steps: []EscalationStep{{Group: "a"}}}, "repeat needs repeat_after")
	f(EscalationPolicy{Name: "x", Repeat: 1000, RepeatAfter: Delay(time.Second), Steps: []EscalationStep{{Group: "a"}}}, "repeat 1000; from 0 to 100")
}

// The Manager leaves the config it was given as read: a reload compares
// that config with the file's, and marking its policies and rotations
// "config" made an unchanged itsm: section look changed.
func TestNewLeavesConfigAsRead(t *testing.T) {
	t0 := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)
	cfg, want := policyConfig(t0), policyConfig(t0)
	m, err := New(cfg, st.Open(t, nil), nil, func() time.Time { return t0 })
	require.NoError(t, err)
	defer m.Close()
	require.Equal(t, want.EscalationPolicies, cfg.EscalationPolicies)
	require.Equal(t, want.Rotations, cfg.Rotations)
}
