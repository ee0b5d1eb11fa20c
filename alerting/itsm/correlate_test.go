package itsm

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/duration"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// switchConfig: five servers depend on a switch, which depends on a core
// router; one webhook receiver.
func switchConfig(url string) Config {
	cfg := Config{
		GroupBy: []string{"alertname"},
		CIs: []CI{
			{Name: "core-router", Kind: "network device", Selector: `{device="core-router"}`, OwnerGroup: "network", Impact: "high"},
			{Name: "switch-1", Kind: "network device", Selector: `{device="switch-1"}`, OwnerGroup: "network", Impact: "high",
				DependsOn: []string{"core-router"}},
		},
		SLA: map[string]SLATarget{
			"P1": {Acknowledge: duration.Duration(15 * time.Minute), Resolve: duration.Duration(4 * time.Hour)},
			"P2": {Acknowledge: duration.Duration(15 * time.Minute), Resolve: duration.Duration(4 * time.Hour)},
		},
		Escalation: map[string][]EscalationLevel{"P2": {{After: duration.Duration(10 * time.Minute), Group: "ops-lead"}}},
		Groups:     map[string][]string{"network": {"kim"}, "servers": {"lee"}, "ops-lead": {"park"}},
		Receivers:  []Receiver{{Name: "hook", Type: "webhook", URL: url}},
	}
	for i := 1; i <= 5; i++ {
		cfg.CIs = append(cfg.CIs, CI{Name: fmt.Sprintf("server-%d", i), Kind: "host", Selector: fmt.Sprintf(`{instance="server-%d"}`, i),
			OwnerGroup: "servers", Impact: "medium", DependsOn: []string{"switch-1"}})
	}
	return cfg
}

type corrTest struct {
	t   *testing.T
	m   *Manager
	clk *apptest.Clock
	rcv *apptest.Receiver
}

func newCorrTest(t *testing.T, change func(*Config)) *corrTest {
	rcv := apptest.NewReceiver(t, 0)
	cfg := switchConfig(rcv.URL())
	if change != nil {
		change(&cfg)
	}
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	m, err := New(cfg, st.Open(t, nil), nil, clk.Now)
	require.NoError(t, err)
	t.Cleanup(m.Close)
	return &corrTest{t: t, m: m, clk: clk, rcv: rcv}
}

func (c *corrTest) fire(name string, kv ...string) {
	a := &ruler.Alert{Labels: labels.FromStrings(append([]string{"alertname", name, "severity", "critical"}, kv...)...)}
	c.m.HandleAlert(ruler.Event{Tenant: "acme", Alert: a, From: ruler.StatePending, To: ruler.StateFiring, At: c.clk.Now()})
}

func (c *corrTest) resolve(name string, kv ...string) {
	a := &ruler.Alert{Labels: labels.FromStrings(append([]string{"alertname", name, "severity", "critical"}, kv...)...)}
	c.m.HandleAlert(ruler.Event{Tenant: "acme", Alert: a, From: ruler.StateFiring, To: ruler.StateInactive, At: c.clk.Now()})
}

func (c *corrTest) servers(f func(name string, kv ...string)) {
	for i := 1; i <= 5; i++ {
		f("HostDown", "instance", fmt.Sprintf("server-%d", i))
	}
}

// byCI is the acme incidents, by CI (one each in these tests).
func (c *corrTest) byCI() map[string]*Incident {
	out := map[string]*Incident{}
	for _, inc := range c.m.Incidents("acme", "", "", "", time.Time{}) {
		require.Nil(c.t, out[inc.CI], "one incident per CI")
		out[inc.CI] = inc
	}
	return out
}

// pages sends what waits to be coalesced now, waits for the receiver to
// have everything, and answers "event incident-CI" per delivery.
func (c *corrTest) pages() []string {
	c.m.mu.Lock()
	for _, k := range sortedKeys(c.m.coalesce) { // in the order they opened
		c.m.flushLocked(k)
	}
	c.m.mu.Unlock()
	require.Eventually(c.t, func() bool { return c.m.outbox.Pending()["hook"] == 0 }, 10*time.Second, 10*time.Millisecond)
	var out []string
	for _, b := range c.rcv.Got() {
		out = append(out, b["event"].(string)+" "+b["incident"].(map[string]any)["ci"].(string))
	}
	return out
}

func childrenOf(inc *Incident) []string {
	out := append([]string(nil), inc.Children...)
	sort.Strings(out)
	return out
}

// timeline is what the incident's timeline says, and each entry with
// the first word of its detail ("child of INC-000001").
func timeline(inc *Incident) []string {
	var out []string
	for _, e := range inc.Timeline {
		out = append(out, e.What)
		if f := strings.Fields(e.Detail); len(f) > 0 {
			out = append(out, e.What+" "+f[0])
		}
	}
	return out
}

// TestCorrelationSwitchFirst: the seed scenario. The switch fails, then
// its five servers: one incident with five children, and one page.
func TestCorrelationSwitchFirst(t *testing.T) {
	c := newCorrTest(t, nil)
	c.fire("SwitchDown", "device", "switch-1")
	c.clk.Add(30 * time.Second)
	c.servers(c.fire)

	incs := c.byCI()
	require.Len(t, incs, 6)
	sw := incs["switch-1"]
	require.Empty(t, sw.Parent)
	var want []string
	for i := 1; i <= 5; i++ {
		srv := incs[fmt.Sprintf("server-%d", i)]
		require.Equal(t, sw.ID, srv.Parent)
		require.True(t, srv.Quiet, "not paged separately")
		require.Contains(t, timeline(srv), "child of "+sw.ID)
		require.Empty(t, srv.PropagatedTo, "nobody was sent it")
		want = append(want, srv.ID)
	}
	sort.Strings(want)
	require.Equal(t, want, childrenOf(sw))
	require.Contains(t, timeline(sw), "child added "+want[0])
	require.Equal(t, []string{"opened switch-1"}, c.pages(), "one page, none for the servers")

	// The servers recover with the switch: the switch incident resolves,
	// and so does each child; still no page for them.
	c.clk.Add(10 * time.Minute)
	c.servers(c.resolve)
	c.resolve("SwitchDown", "device", "switch-1")
	for _, inc := range c.byCI() {
		require.Equal(t, StatusResolved, inc.Status, inc.CI)
	}
	require.Equal(t, []string{"opened switch-1", "resolved switch-1"}, c.pages())
}

// TestCorrelationServersFirst: the servers' alerts come first, the
// switch's within the window after them: the servers' incidents are
// attached to the switch's. Those of the same evaluation (their opening
// not sent yet) are never paged; one paged before learns of its parent.
func TestCorrelationServersFirst(t *testing.T) {
	c := newCorrTest(t, nil)
	c.fire("HostDown", "instance", "server-5")
	require.Equal(t, []string{"opened server-5"}, c.pages(), "paged: no parent known yet")
	c.clk.Add(time.Minute)
	for i := 1; i <= 4; i++ {
		c.fire("HostDown", "instance", fmt.Sprintf("server-%d", i))
	}
	c.clk.Add(time.Second)
	c.fire("SwitchDown", "device", "switch-1") // the same evaluation, in another order

	incs := c.byCI()
	sw := incs["switch-1"]
	require.Len(t, sw.Children, 5)
	for i := 1; i <= 5; i++ {
		srv := incs[fmt.Sprintf("server-%d", i)]
		require.Equal(t, sw.ID, srv.Parent)
		require.Equal(t, i != 5, srv.Quiet, srv.CI)
		require.Contains(t, timeline(srv), "child of "+sw.ID)
	}
	require.ElementsMatch(t, []string{"opened server-5", "opened switch-1", "updated server-5"}, c.pages())
	for _, b := range c.rcv.Got()[1:] {
		if inc := b["incident"].(map[string]any); b["event"] == "updated" {
			require.Equal(t, sw.ID, inc["parent"], "the ticket learns of its parent")
		}
	}

	// Outside the window: not attached.
	c2 := newCorrTest(t, nil)
	c2.fire("HostDown", "instance", "server-1")
	c2.clk.Add(6 * time.Minute)
	c2.fire("SwitchDown", "device", "switch-1")
	incs = c2.byCI()
	require.Empty(t, incs["server-1"].Parent, "opened more than correlation.window (5m) before")
	require.Empty(t, incs["switch-1"].Children)
}

// TestCorrelationTransitive: the core router fails: the switch's
// incident is its child, the servers' the switch's; a server whose
// switch has no incident is still the router's child.
func TestCorrelationTransitive(t *testing.T) {
	c := newCorrTest(t, nil)
	c.fire("RouterDown", "device", "core-router")
	c.fire("HostDown", "instance", "server-1") // the switch has no incident yet
	c.fire("SwitchDown", "device", "switch-1")
	c.fire("HostDown", "instance", "server-2")
	incs := c.byCI()
	r, sw := incs["core-router"], incs["switch-1"]
	require.Equal(t, r.ID, incs["server-1"].Parent, "through the switch, to the router")
	require.Equal(t, r.ID, sw.Parent)
	require.Equal(t, sw.ID, incs["server-2"].Parent, "the nearest upstream incident")
	require.Equal(t, []string{incs["server-1"].ID, sw.ID}, childrenOf(r))
	require.Equal(t, []string{"opened core-router"}, c.pages())

	// Acknowledging the router acknowledges its tree.
	_, err := c.m.Action("acme", r.ID, "ack", "kim", "", "")
	require.NoError(t, err)
	for _, inc := range c.byCI() {
		require.Equal(t, StatusAcknowledged, inc.Status, inc.CI)
	}
}

// TestCorrelationOff: with correlation off, five servers are five
// incidents, each paged.
func TestCorrelationOff(t *testing.T) {
	c := newCorrTest(t, func(cfg *Config) { cfg.Correlation.Mode = CorrelationOff })
	c.fire("SwitchDown", "device", "switch-1")
	c.servers(c.fire)
	incs := c.byCI()
	require.Len(t, incs, 6)
	for _, inc := range incs {
		require.Empty(t, inc.Parent)
		require.Empty(t, inc.Children)
		require.False(t, inc.Quiet)
	}
	require.Len(t, c.pages(), 6)
}

// TestCorrelationNotifyChildren: notify_children sends the children,
// marked with their parent.
func TestCorrelationNotifyChildren(t *testing.T) {
	c := newCorrTest(t, func(cfg *Config) { cfg.Correlation.NotifyChildren = true })
	c.fire("SwitchDown", "device", "switch-1")
	c.fire("HostDown", "instance", "server-1")
	require.Equal(t, []string{"opened switch-1", "opened server-1"}, c.pages())
	sw := c.byCI()["switch-1"]
	require.Equal(t, sw.ID, c.rcv.Got()[1]["incident"].(map[string]any)["parent"])
}

// TestCorrelationSLAFollowsParent: a child neither escalates nor
// breaches on its own while its parent is open; when the parent
// resolves while the child still fires, the child's clocks start then,
// and it is paged.
func TestCorrelationSLAFollowsParent(t *testing.T) {
	c := newCorrTest(t, nil)
	c.fire("SwitchDown", "device", "switch-1")
	c.fire("HostDown", "instance", "server-1")
	c.fire("HostDown", "instance", "server-2")
	c.clk.Add(20 * time.Minute)
	c.m.Tick()
	incs := c.byCI()
	sw, s1, s2 := incs["switch-1"], incs["server-1"], incs["server-2"]
	require.True(t, sw.SLA.AcknowledgeBreached, "the parent breaches")
	for _, s := range []*Incident{s1, s2} {
		require.Equal(t, "P2", s.Priority)
		require.False(t, s.SLA.AcknowledgeBreached, "a child does not breach on its own")
		require.Equal(t, sw.ID, s.SLA.Follows)
		require.Empty(t, s.EscalatedTo, "nor escalate")
		require.NotContains(t, timeline(s), "sla breached")
	}

	// server-2 went silent, server-1 still fires; the switch's incident
	// is resolved by hand.
	c.m.HandleAlert(ruler.Event{Tenant: "acme", Alert: &ruler.Alert{Labels: labels.FromStrings("alertname", "HostDown", "severity", "critical",
		"instance", "server-2")}, From: ruler.StateFiring, To: ruler.StateInactive, NoData: true, At: c.clk.Now()})
	_, err := c.m.Finish("acme", sw.ID, "resolve", "kim", "switch replaced", Closure{RootCause: "power supply"})
	require.NoError(t, err)
	resolvedAt := c.clk.Now()
	incs = c.byCI()
	s1, s2 = incs["server-1"], incs["server-2"]
	require.Equal(t, StatusResolved, s2.Status, "no alert of its own fires: resolved with its parent (resolve_children: auto)")
	require.Contains(t, timeline(s2), "resolved")
	require.Equal(t, StatusOpen, s1.Status, "still firing: on its own")
	require.False(t, s1.Quiet)
	require.Empty(t, s1.SLA.Follows)
	require.Equal(t, resolvedAt, *s1.SLAFrom)
	require.Contains(t, timeline(s1), "on its own")
	require.Equal(t, []string{"opened switch-1", "sla_breached switch-1", "resolved switch-1", "opened server-1"}, c.pages(),
		"the child is paged once it is on its own")

	c.clk.Add(11 * time.Minute)
	c.m.Tick()
	s1, _ = c.m.Incident("acme", s1.ID)
	require.False(t, s1.SLA.AcknowledgeBreached, "15m counted from the parent's resolution, not the opening")
	require.Equal(t, []string{"ops-lead"}, s1.EscalatedTo, "escalation counted from then too")
	c.clk.Add(5 * time.Minute)
	c.m.Tick()
	s1, _ = c.m.Incident("acme", s1.ID)
	require.True(t, s1.SLA.AcknowledgeBreached)
}

// TestCorrelationResolveChildrenOffer: with resolve_children: offer, the
// parent's resolution lists its quiet children, and its resolve_children
// action resolves them.
func TestCorrelationResolveChildrenOffer(t *testing.T) {
	c := newCorrTest(t, func(cfg *Config) { cfg.Correlation.ResolveChildren = ResolveChildrenOffer })
	c.fire("SwitchDown", "device", "switch-1")
	c.fire("HostDown", "instance", "server-1")
	c.m.HandleAlert(ruler.Event{Tenant: "acme", Alert: &ruler.Alert{Labels: labels.FromStrings("alertname", "HostDown", "severity", "critical",
		"instance", "server-1")}, From: ruler.StateFiring, To: ruler.StateInactive, NoData: true, At: c.clk.Now()})
	c.resolve("SwitchDown", "device", "switch-1")
	incs := c.byCI()
	require.Equal(t, StatusResolved, incs["switch-1"].Status)
	require.Equal(t, StatusOpen, incs["server-1"].Status)
	require.Contains(t, timeline(incs["switch-1"]), "children to resolve")
	_, err := c.m.Action("acme", incs["switch-1"].ID, "resolve_children", "kim", "", "")
	require.NoError(t, err)
	require.Equal(t, StatusResolved, c.byCI()["server-1"].Status)
	_, err = c.m.Action("acme", incs["switch-1"].ID, "resolve_children", "kim", "", "")
	require.ErrorIs(t, err, ErrInvalid, "nothing left to resolve")
}

// TestCIsAPI: a tenant's CIs, with their dependencies, are made at run
// time, map alerts as the config file's do, are checked (unknown
// targets, cycles, the file's names) and survive a restart.
func TestCIsAPI(t *testing.T) {
	rcv := apptest.NewReceiver(t, 0)
	dir := t.TempDir()
	db := st.OpenDir(t, dir, nil)
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	m, err := New(switchConfig(rcv.URL()), db, nil, clk.Now)
	require.NoError(t, err)

	_, err = m.PutCI("acme", "kim", CI{Name: "app-1", Selector: `{app="one"}`, DependsOn: []string{"nope"}}, true)
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, `no CI "nope"`)
	_, err = m.PutCI("acme", "kim", CI{Name: "switch-1"}, true)
	require.ErrorIs(t, err, ErrConflict, "the config file's")
	_, err = m.PutCI("acme", "kim", CI{Name: "db-1", Selector: `{db="one"}`, DependsOn: []string{"server-1"}, OwnerGroup: "dba"}, true)
	require.NoError(t, err)
	got, err := m.PutCI("acme", "kim", CI{Name: "app-1", Selector: `{app="one"}`, DependsOn: []string{"db-1"}}, true)
	require.NoError(t, err)
	require.Equal(t, "api", got.Source)
	_, err = m.PutCI("acme", "kim", CI{Name: "db-1", DependsOn: []string{"app-1"}}, false)
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "cycle: app-1 → db-1 → app-1")
	require.ErrorIs(t, m.DeleteCI("acme", "kim", "db-1"), ErrConflict, "app-1 depends on it")
	require.Len(t, m.CIs("acme"), 9)
	require.Len(t, m.CIs("other"), 7, "per tenant")

	// Alerts map to the API's CIs, and correlate through them.
	fire := func(kv ...string) {
		a := &ruler.Alert{Labels: labels.FromStrings(append([]string{"alertname", "Down", "severity", "critical"}, kv...)...)}
		m.HandleAlert(ruler.Event{Tenant: "acme", Alert: a, From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	}
	fire("device", "switch-1")
	clk.Add(time.Second)
	fire("app", "one")
	incs := m.Incidents("acme", "", "", "", time.Time{})
	require.Len(t, incs, 2)
	require.Equal(t, "app-1", incs[0].CI)
	require.Equal(t, incs[1].ID, incs[0].Parent, "app-1 → db-1 → server-1 → switch-1")
	m.Close()
	require.NoError(t, db.Close())

	db = st.OpenDir(t, dir, nil)
	m, err = New(switchConfig(rcv.URL()), db, nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()
	var names []string
	for _, v := range m.CIs("acme") {
		names = append(names, v.Name)
		if v.Name == "app-1" {
			require.Equal(t, []string{"db-1"}, v.DependsOn)
			require.Len(t, v.History, 1)
			require.Len(t, v.Incidents, 1)
		}
		if v.Name == "switch-1" {
			require.Equal(t, []string{"server-1", "server-2", "server-3", "server-4", "server-5"}, v.Dependents)
		}
	}
	require.Equal(t, []string{"app-1", "db-1", "core-router", "switch-1"}, names[:4], "the tenant's own, then the file's")
	require.NoError(t, m.DeleteCI("acme", "kim", "app-1"))
	require.NoError(t, m.DeleteCI("acme", "kim", "db-1"))
	require.ErrorIs(t, m.DeleteCI("acme", "kim", "db-1"), ErrNotFound)
}

// TestCIConfigGraph: the config file's dependencies name its CIs and
// make no cycle.
func TestCIConfigGraph(t *testing.T) {
	f := func(want string, cis ...CI) {
		t.Helper()
		err := (&Config{CIs: cis}).Validate()
		if want == "" {
			require.NoError(t, err)
			return
		}
		require.ErrorContains(t, err, want)
	}
	f("", CI{Name: "a"}, CI{Name: "b", DependsOn: []string{"a"}})
	f(`depends_on: no CI "c" in the config file`, CI{Name: "a"}, CI{Name: "b", DependsOn: []string{"c"}})
	f("cycle: a → b → c → a", CI{Name: "a", DependsOn: []string{"b"}}, CI{Name: "b", DependsOn: []string{"c"}}, CI{Name: "c", DependsOn: []string{"a"}})
	f("cannot depend on itself", CI{Name: "a", DependsOn: []string{"a"}})
	f("the name is used twice", CI{Name: "a"}, CI{Name: "a"})
	err := (&Config{Correlation: Correlation{Mode: "sometimes"}}).Validate()
	require.ErrorContains(t, err, `mode "sometimes" (child, off)`)
}
