package itsm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/alert"
	"github.com/emsdb/tsdb/internal/apptest"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestIdempotencyKeysUniqueAcrossRestarts: every event gets its own
// Idempotency-Key, also after a restart with an empty outbox (the bug:
// the sequence started again at 1, so the second run's second "updated"
// event of an incident reused the key of the first run's).
func TestIdempotencyKeysUniqueAcrossRestarts(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		keys = append(keys, req.Header.Get("Idempotency-Key"))
		mu.Unlock()
	}))
	defer srv.Close()
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), keys...)
	}
	cfg := testConfig(srv.URL, srv.URL)
	cfg.Receivers = cfg.Receivers[1:] // ServiceNow
	dir := t.TempDir()
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	var id string
	want := 0
	for run := range 3 {
		db := st.OpenDir(t, dir, nil)
		m, err := New(cfg, db, nil, clk.Now)
		require.NoError(t, err)
		if run == 0 {
			inc, err := m.Create("acme", "Disk replacement", "lee", "P3", "db-1", "dba")
			require.NoError(t, err)
			id, want = inc.ID, want+1
		}
		for i := range 3 {
			_, err := m.Action("acme", id, "comment", "lee", fmt.Sprintf("note %d.%d", run, i), "")
			require.NoError(t, err)
			want++
		}
		require.Eventually(t, func() bool { return len(got()) == want && m.outbox.Pending()["snow"] == 0 },
			10*time.Second, 10*time.Millisecond)
		m.Close()
		require.NoError(t, db.Close())
	}
	seen := map[string]bool{}
	for _, k := range got() {
		require.NotEmpty(t, k)
		require.False(t, seen[k], "Idempotency-Key %s sent for two different events: %v", k, got())
		seen[k] = true
	}
}

// TestServiceNowRecordAndCoalescing: ServiceNow gets one POST per
// incident and PATCHes of the record's sys_id after it; two alerts that
// open one incident in the same second send one "opened" (one PagerDuty
// trigger), titled with both instances (the bugs: a POST per event, an
// "opened" and an "updated", one instance named).
func TestServiceNowRecordAndCoalescing(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	var bodies []map[string]any
	sn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var b map[string]any
		_ = json.NewDecoder(req.Body).Decode(&b)
		mu.Lock()
		calls = append(calls, req.Method+" "+req.URL.Path)
		bodies = append(bodies, b)
		mu.Unlock()
		if req.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"result":{"sys_id":"46d44f0c1b"}}`))
		}
	}))
	defer sn.Close()
	got := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), calls...) }
	pd := apptest.NewReceiver(t, 0)
	cfg := testConfig(pd.URL(), sn.URL+"/api/now/table/incident")
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	m, err := New(cfg, st.Open(t, nil), nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()
	for _, inst := range []string{"web-1", "web-2"} {
		a := &alert.Alert{Labels: labels.FromStrings("alertname", "Errors", "service", "checkout", "severity", "critical", "instance", inst),
			Annotations: labels.FromStrings("summary", "Errors on "+inst)}
		m.HandleAlert(alert.Event{Tenant: "acme", Alert: a, From: alert.StatePending, To: alert.StateFiring, At: clk.Now()})
	}
	inc := m.Incidents("acme", "", "", "", time.Time{})[0]
	require.Equal(t, "Errors on checkout: 2 instances (web-1, web-2)", inc.Title)
	require.Eventually(t, func() bool { return len(got()) == 1 && len(pd.Got()) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, "opened", pd.Got()[0]["payload"].(map[string]any)["custom_details"].(map[string]any)["event"])
	_, err = m.Action("acme", inc.ID, "ack", "kim", "", "")
	require.NoError(t, err)
	_, err = m.Action("acme", inc.ID, "comment", "kim", "restarting web-2", "")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(got()) == 3 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"POST /api/now/table/incident", "PATCH /api/now/table/incident/46d44f0c1b",
		"PATCH /api/now/table/incident/46d44f0c1b"}, got())
	require.Eventually(t, func() bool { return len(pd.Got()) == 3 }, 10*time.Second, 10*time.Millisecond)
	var events []any
	for _, b := range pd.Got() {
		events = append(events, b["payload"].(map[string]any)["custom_details"].(map[string]any)["event"])
	}
	require.Equal(t, []any{"opened", "acknowledged", "updated"}, events, "one trigger for the two alerts")
}

// OnDelivered learns of each event a receiver took, with the tenant of
// its incident (even one with slashes in its name): usage metering
// counts notifications with it.
func TestOnDeliveredNamesTheTenant(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {}))
	defer srv.Close()
	cfg := testConfig(srv.URL, srv.URL)
	cfg.Receivers = cfg.Receivers[1:] // ServiceNow
	m, err := New(cfg, st.Open(t, nil), nil, apptest.NewClock(time.Unix(1_700_000_000, 0)).Now)
	require.NoError(t, err)
	defer m.Close()
	var mu sync.Mutex
	got := map[string]int{}
	m.OnDelivered(func(tenant, receiver string) {
		mu.Lock()
		got[tenant+" "+receiver]++
		mu.Unlock()
	})
	for _, tenant := range []string{"acme", "team/a", "acme"} {
		_, err := m.Create(tenant, "Disk replacement", "lee", "P3", "db-1", "dba")
		require.NoError(t, err)
	}
	// "opened" waits coalesceWindow (1s) before it is sent.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["acme snow"]+got["team/a snow"] == 3
	}, 10*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]int{"acme snow": 2, "team/a snow": 1}, got)
}

// An "opened" still waiting its coalescing window when the process dies
// (or its node stops leading) is sent by the next Manager on the same
// store: the incident keeps the waiting event (pending_event) until it
// is in the outbox, so a crash cannot lose the first page.
func TestPendingEventSurvivesACrash(t *testing.T) {
	old := coalesceWindow
	coalesceWindow = time.Hour // the first Manager never ends its window
	t.Cleanup(func() { coalesceWindow = old })
	var mu sync.Mutex
	posts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost {
			mu.Lock()
			posts++
			mu.Unlock()
		}
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL, srv.URL)
	cfg.Receivers = cfg.Receivers[1:] // ServiceNow: a POST creates the ticket
	store := st.Open(t, nil)
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	crashed, err := New(cfg, store, nil, clk.Now)
	require.NoError(t, err)
	inc, err := crashed.Create("acme", "Disk replacement", "lee", "P3", "db-1", "dba")
	require.NoError(t, err)
	stored, err := store.ListKV("itsm/acme/incident/")
	require.NoError(t, err)
	require.Contains(t, string(stored["itsm/acme/incident/"+inc.ID]), `"pending_event":"opened"`)
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	require.Zero(t, posts, "the first Manager's window has not ended")
	mu.Unlock()

	next, err := New(cfg, store, nil, clk.Now)
	require.NoError(t, err)
	defer next.Close()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return posts == 1
	}, 10*time.Second, 10*time.Millisecond, "the next Manager sends the waiting opened")
	got, ok := next.Incident("acme", inc.ID)
	require.True(t, ok)
	require.Empty(t, got.Pending)
}
