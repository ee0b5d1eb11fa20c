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
