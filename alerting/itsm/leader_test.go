package itsm

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/internal/apptest"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// A cluster's leader changes: the old leader's Manager pauses, the new
// one (paused until then, over the same replicated store) resumes with
// the stored incidents, escalates on the old schedule, numbers on, and
// does not open the incident again when the restored alert fires again.
func TestPauseResumeContinues(t *testing.T) {
	pd := apptest.NewReceiver(t, 0)
	db := st.Open(t, nil)
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	cfg := testConfig(pd.URL(), "")
	cfg.Receivers = cfg.Receivers[:1]
	old, err := New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	next, err := NewPaused(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	defer next.Close()

	fire := ruler.Event{Tenant: "acme", Alert: newAlert("CheckoutErrors"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()}
	old.HandleAlert(fire)
	require.Eventually(t, func() bool { return len(pd.Got()) == 1 }, 10*time.Second, 20*time.Millisecond, "opened")
	old.Pause()

	require.NoError(t, next.Resume())
	incs := next.Incidents("acme", "", "", "", time.Time{})
	require.Len(t, incs, 1)
	id := incs[0].ID
	fire.At = clk.Now().Add(time.Second)
	next.HandleAlert(fire) // the new leader's ruler restored it and fires it again
	require.Len(t, next.Incidents("acme", "", "", "", time.Time{}), 1, "not opened twice")
	clk.Add(11 * time.Minute)
	next.Tick()
	inc, _ := next.Incident("acme", id)
	require.Equal(t, []string{"payments-lead"}, inc.EscalatedTo, "escalates on the old leader's schedule")
	require.Eventually(t, func() bool { return len(pd.Got()) == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Never(t, func() bool { return len(pd.Got()) > 2 }, 1500*time.Millisecond, 50*time.Millisecond, "no updated page for the repeated firing")
	var actions []string
	for _, b := range pd.Got() {
		actions = append(actions, b["event_action"].(string))
	}
	require.Equal(t, []string{"trigger", "trigger"}, actions, "opened, escalated")

	next.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("Other"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	incs = next.Incidents("acme", "", "", "", time.Time{})
	require.Len(t, incs, 2)
	require.NotEqual(t, incs[0].ID, incs[1].ID, "numbering continues")
}
