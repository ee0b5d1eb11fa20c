package itsm

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/alert"
	"github.com/emsdb/tsdb/internal/apptest"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestMaintenanceEndOpensIncident: an alert that fires through a window
// and still fires at its end opens its incident then (the bug: it never
// did); one that resolved within the window opens none. The held alert
// survives a restart.
func TestMaintenanceEndOpensIncident(t *testing.T) {
	dir := t.TempDir()
	db := st.OpenDir(t, dir, nil)
	t0 := time.Unix(1_700_000_000, 0)
	clk := apptest.NewClock(t0)
	cfg := testConfig("", "")
	cfg.Receivers = nil
	cfg.Maintenance = []Maintenance{{Name: "db-upgrade", Selector: `{service="checkout"}`, Start: t0, End: t0.Add(time.Hour)}}
	m, err := New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	ev := func(name string, from, to alert.State) {
		a := &alert.Alert{Labels: labels.FromStrings("alertname", name, "service", "checkout", "severity", "critical"),
			Annotations: labels.FromStrings("summary", name+" on checkout")}
		m.HandleAlert(alert.Event{Tenant: "acme", Alert: a, From: from, To: to, At: clk.Now()})
	}
	clk.Add(10 * time.Minute)
	ev("Errors", alert.StatePending, alert.StateFiring)
	ev("Latency", alert.StatePending, alert.StateFiring)
	clk.Add(10 * time.Minute)
	ev("Latency", alert.StateFiring, alert.StateInactive)
	m.Tick()
	require.Empty(t, m.Incidents("acme", "", "", "", time.Time{}), "suppressed within the window")
	require.Len(t, m.Suppressed("acme"), 2)

	m.Close()
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, nil)
	m, err = New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()

	clk.Add(40 * time.Minute) // the window's end
	m.Tick()
	incs := m.Incidents("acme", "", "", "", time.Time{})
	require.Len(t, incs, 1, "the alert still firing opens its incident at the window's end")
	inc := incs[0]
	require.Equal(t, "Errors on checkout", inc.Title)
	require.Equal(t, t0.Add(time.Hour), inc.OpenedAt)
	require.Equal(t, StatusOpen, inc.Status)
	require.Equal(t, "maintenance ended", inc.Timeline[len(inc.Timeline)-1].What)
	m.Tick()
	require.Len(t, m.Incidents("acme", "", "", "", time.Time{}), 1, "opened once")

	ev("Errors", alert.StateFiring, alert.StateInactive)
	inc, _ = m.Incident("acme", inc.ID)
	require.Equal(t, StatusResolved, inc.Status)
}

// TestSilentSourceKeepsIncidentOpen: an alert that went away for no data
// keeps its incident open, says since when the source is silent, and
// resolves it when the source reports again; no_data: resolve (per CI or
// per rule) resolves at once (the bug: a silent source resolved it).
func TestSilentSourceKeepsIncidentOpen(t *testing.T) {
	db := st.Open(t, nil)
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	cfg := testConfig("", "")
	cfg.Receivers = nil
	cfg.CIs = append(cfg.CIs, CI{Name: "lab", Selector: `{service="lab"}`, OwnerGroup: "lab", NoData: NoDataResolve})
	m, err := New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()
	ev := func(service, rule string, from, to alert.State, noData bool) *Incident {
		a := &alert.Alert{Labels: labels.FromStrings("alertname", "Hot", "service", service, "rule", rule)}
		if rule == "resolve" {
			a.Annotations = labels.FromStrings("no_data", "resolve")
		}
		m.HandleAlert(alert.Event{Tenant: "acme", Alert: a, From: from, To: to, At: clk.Now(), NoData: noData})
		incs := m.Incidents("acme", "", "", "", time.Time{})
		for _, inc := range incs {
			if inc.Alerts[a.Labels.String()] != nil {
				return inc
			}
		}
		t.Fatalf("no incident for %s", a.Labels)
		return nil
	}
	inc := ev("checkout", "", alert.StatePending, alert.StateFiring, false)
	require.Equal(t, StatusOpen, inc.Status)
	clk.Add(5 * time.Minute)
	inc = ev("checkout", "", alert.StateFiring, alert.StateInactive, true)
	require.Equal(t, StatusOpen, inc.Status, "no data is not a recovery")
	last := inc.Timeline[len(inc.Timeline)-1]
	require.Equal(t, "source silent", last.What)
	require.Contains(t, last.Detail, "source silent since "+clk.Now().UTC().Format(time.RFC3339))
	for _, a := range inc.Alerts {
		require.Equal(t, "no_data", a.State)
	}
	clk.Add(time.Hour)
	inc = ev("checkout", "", alert.StateInactive, alert.StateInactive, false)
	require.Equal(t, StatusResolved, inc.Status, "the source reports again without the alert: recovered")
	require.Contains(t, inc.Timeline[len(inc.Timeline)-2].Detail, "its source reports again")

	ev("lab", "", alert.StatePending, alert.StateFiring, false)
	inc = ev("lab", "", alert.StateFiring, alert.StateInactive, true)
	require.Equal(t, StatusResolved, inc.Status, "the CI's no_data: resolve")

	ev("other", "resolve", alert.StatePending, alert.StateFiring, false)
	inc = ev("other", "resolve", alert.StateFiring, alert.StateInactive, true)
	require.Equal(t, StatusResolved, inc.Status, "the rule's no_data annotation")
}

// TestConfigWarnings: groups without members and CIs without an owner
// group are warned about at load.
func TestConfigWarnings(t *testing.T) {
	cfg := testConfig("", "")
	cfg.Receivers = nil
	cfg.CIs = append(cfg.CIs, CI{Name: "orphan", Selector: `{service="orphan"}`})
	cfg.Groups = map[string][]string{"payments-oncall": {"kim"}}
	m, err := New(cfg, st.Open(t, nil), nil, nil)
	require.NoError(t, err)
	defer m.Close()
	w := m.configWarnings()
	require.Contains(t, w, "ci orphan has no owner_group")
	require.Contains(t, w[1], "group head-of-ops has no members")
	require.Len(t, w, 3, "head-of-ops and payments-lead: %v", w)
}
