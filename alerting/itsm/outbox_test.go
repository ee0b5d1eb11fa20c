package itsm

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
