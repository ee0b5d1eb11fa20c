package audit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/outbox"
	"github.com/emsdb/tsdb/internal/audit"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func actions(es []audit.Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Action+" "+e.Object)
	}
	return out
}

func TestRecordQueryReopen(t *testing.T) {
	st := outbox.NewMemStore()
	c := &clock{time.Unix(1_700_000_000, 0).UTC()}
	l, err := audit.Open(st, &audit.Options{Now: c.now})
	require.NoError(t, err)
	rec := func(tenant, user, action, kind, obj string) {
		t.Helper()
		c.t = c.t.Add(time.Minute)
		require.NoError(t, l.Record(audit.Entry{Tenant: tenant, User: user, Action: action, Kind: kind, Object: obj, Summary: action}))
	}
	rec("a", "kim", "incident.ack", "incident", "INC-1")
	rec("a", "lee", "incident.resolve", "incident", "INC-1")
	rec("b", "kim", "maintenance.create", "maintenance", "db-patch")
	rec("a", "kim", "maintenance.delete", "maintenance", "db-patch")
	require.Error(t, l.Record(audit.Entry{Action: "x"}), "an entry needs a tenant")

	check := func(l *audit.Log) {
		t.Helper()
		f := func(tenant string, q audit.Query, want ...string) {
			t.Helper()
			got, err := l.Query(tenant, q)
			require.NoError(t, err)
			if want == nil {
				want = []string{}
			}
			require.Equal(t, want, actions(got))
		}
		f("a", audit.Query{}, "maintenance.delete db-patch", "incident.resolve INC-1", "incident.ack INC-1")
		f("b", audit.Query{}, "maintenance.create db-patch")
		f("c", audit.Query{})
		f("a", audit.Query{User: "kim"}, "maintenance.delete db-patch", "incident.ack INC-1")
		f("a", audit.Query{Action: "incident"}, "incident.resolve INC-1", "incident.ack INC-1")
		f("a", audit.Query{Action: "incident.ack"}, "incident.ack INC-1")
		f("a", audit.Query{Action: "incident.a"})
		f("a", audit.Query{Object: "INC-1", Limit: 1}, "incident.resolve INC-1")
		f("a", audit.Query{Object: "maintenance"}, "maintenance.delete db-patch")
		start := time.Unix(1_700_000_000, 0).Add(2 * time.Minute)
		f("a", audit.Query{Start: start, End: start}, "incident.resolve INC-1")
	}
	check(l)
	l2, err := audit.Open(st, &audit.Options{Now: c.now})
	require.NoError(t, err)
	check(l2)
}

func TestRetention(t *testing.T) {
	st := outbox.NewMemStore()
	c := &clock{time.Unix(1_700_000_000, 0).UTC()}
	const max = 2 * audit.PageSize
	l, err := audit.Open(st, &audit.Options{Now: c.now, MaxEntries: max, MaxAge: 24 * time.Hour})
	require.NoError(t, err)
	n := 0
	rec := func(k int) {
		t.Helper()
		for range k {
			n++
			c.t = c.t.Add(time.Second)
			require.NoError(t, l.Record(audit.Entry{Tenant: "t/1", User: "u", Action: "a.b", Object: fmt.Sprint(n)}))
		}
	}
	count := func(l *audit.Log) int {
		got, err := l.Query("t/1", audit.Query{Limit: audit.MaxLimit})
		require.NoError(t, err)
		return len(got)
	}
	rec(5 * audit.PageSize)
	got, err := l.Query("t/1", audit.Query{Limit: 3})
	require.NoError(t, err)
	require.Equal(t, []string{"a.b 1280", "a.b 1279", "a.b 1278"}, actions(got))
	kept := count(l)
	require.GreaterOrEqual(t, kept, max, "at least MaxEntries are kept")
	require.LessOrEqual(t, kept, max+audit.PageSize, "and at most a page more")
	pages, err := st.ListKV("audit/")
	require.NoError(t, err)
	require.Len(t, pages, kept/audit.PageSize, "old pages are deleted")

	// A day later, everything but the newest page has aged out, also after
	// a restart; the newest entries are shown only while younger than MaxAge.
	c.t = c.t.Add(24 * time.Hour)
	rec(1)
	require.Equal(t, 1, count(l))
	l2, err := audit.Open(st, &audit.Options{Now: c.now, MaxEntries: max, MaxAge: 24 * time.Hour})
	require.NoError(t, err)
	require.Equal(t, 1, count(l2))
	got, err = l2.Query("t/1", audit.Query{})
	require.NoError(t, err)
	require.Equal(t, "a.b 1281", got[0].Action+" "+got[0].Object)
	l = l2
	rec(1) // the reopened log appends to the same page
	require.Equal(t, 2, count(l2))
	pages, err = st.ListKV("audit/")
	require.NoError(t, err)
	require.Len(t, pages, 1)
}
