package kpi

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/query"
)

// mapStore is an Options.Store in memory.
type mapStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *mapStore) PutKV(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}

func (s *mapStore) ListKV(prefix string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for k, v := range maps.All(s.m) {
		if strings.HasPrefix(k, prefix) {
			out[k] = append([]byte(nil), v...)
		}
	}
	return out, nil
}

// TestTrackerKept: a KPI engine keeps each tracker and open incident in
// its Store, and an engine started afterwards (a restart, a new leader)
// takes them back: a warning confirmed by the first engine is still
// confirmed, with its incident, on the second one's first evaluation —
// no second confirmation, no fresh streak — and its later evaluations
// update that incident rather than warn again.
func TestTrackerKept(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	db := checkoutOrders(t, t0)

	clk := &clock{t: t0}
	mgr, err := itsm.New(itsm.Config{
		CIs: []itsm.CI{{Name: "checkout", Kind: "service", Selector: `{service="checkout"}`, OwnerGroup: "payments", Impact: "high"}},
	}, db, nil, clk.now)
	require.NoError(t, err)
	defer mgr.Close()
	store := &mapStore{m: map[string][]byte{}}
	def := Definition{Name: "checkout_success", Expr: `orders_ok_ratio{service="checkout"}`, Target: 0.95, Direction: "above",
		Interval: 15 * time.Minute, Horizon: 6 * time.Hour, Step: 5 * time.Minute, History: 48 * time.Hour, Seasonality: "none",
		Labels: map[string]string{"service": "checkout"}, Confirm: 3, WarnAtOnce: -1}
	newEngine := func() *Engine {
		eng, err := New([]Definition{def}, query.NewEngine(db, nil), db, mgr, &Options{Now: clk.now, Store: store})
		require.NoError(t, err)
		eng.restore() // what Run does first
		return eng
	}

	first := newEngine()
	var warned time.Time
	var incident string
	at := t0
	for ; at.Before(t0.Add(3 * time.Hour)); at = at.Add(15 * time.Minute) {
		clk.set(at)
		ev, err := first.Evaluate(ctx, "default", "checkout_success")
		require.NoError(t, err)
		if ev.Transition == "warn" {
			warned, incident = at, ev.Incident
			break
		}
	}
	require.False(t, warned.IsZero(), "the first engine warned")
	require.NotEmpty(t, incident)
	all, err := store.ListKV("kpis/")
	require.NoError(t, err)
	require.Len(t, all, 1)
	var key string
	var kept []byte
	for key, kept = range all {
	}
	require.True(t, strings.HasSuffix(key, "/checkout_success"), key)
	require.Contains(t, string(kept), `"state":"predicted_breach"`)
	require.Contains(t, string(kept), incident)

	// A second engine, the first gone: its first evaluation is a
	// confirmed warning on the same incident.
	second := newEngine()
	clk.set(at.Add(15 * time.Minute))
	ev, err := second.Evaluate(ctx, "default", "checkout_success")
	require.NoError(t, err)
	require.Equal(t, StateWarning, ev.State)
	require.NotEqual(t, "warn", ev.Transition, "no second warning")
	require.Equal(t, incident, ev.Incident)
	inc, ok := mgr.Incident("default", incident)
	require.True(t, ok)
	require.NotEqual(t, itsm.StatusResolved, inc.Status)

	// Without a store the same second engine starts afresh: nothing
	// confirmed, no incident known.
	fresh, err := New([]Definition{def}, query.NewEngine(db, nil), db, mgr, &Options{Now: clk.now})
	require.NoError(t, err)
	ev, err = fresh.Evaluate(ctx, "default", "checkout_success")
	require.NoError(t, err)
	require.Equal(t, StateOK, ev.State, "a fresh tracker needs %d evaluations", def.Confirm)
}
