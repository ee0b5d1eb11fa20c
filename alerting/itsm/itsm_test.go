package itsm

import (
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

func testConfig(pd, sn string) Config {
	return Config{
		GroupBy: []string{"alertname"},
		CIs:     []CI{{Name: "checkout", Kind: "service", Selector: `{service="checkout"}`, OwnerGroup: "payments-oncall", Impact: "high"}},
		SLA:     map[string]SLATarget{"P1": {Acknowledge: duration.Duration(15 * time.Minute), Resolve: duration.Duration(4 * time.Hour)}},
		Escalation: map[string][]EscalationLevel{"P1": {
			{After: duration.Duration(10 * time.Minute), Group: "payments-lead"}, {After: duration.Duration(30 * time.Minute), Group: "head-of-ops"}}},
		Problems: ProblemRule{Count: 3, Window: duration.Duration(24 * time.Hour)},
		Receivers: []Receiver{
			{Name: "pd", Type: "pagerduty", URL: pd, RoutingKey: "rk-1", Secret: "s3cret"},
			{Name: "snow", Type: "servicenow", URL: sn},
		},
	}
}

func newAlert(name string) *ruler.Alert {
	return &ruler.Alert{Labels: labels.FromStrings("alertname", name, "service", "checkout", "severity", "critical")}
}

func TestIncidentLifecycleAndDelivery(t *testing.T) {
	pd, sn := apptest.NewReceiver(t, 0), apptest.NewReceiver(t, 3) // ServiceNow is down at first
	db := st.Open(t, nil)
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	m, err := New(testConfig(pd.URL(), sn.URL()), db, nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()

	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("CheckoutErrors"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	incs := m.Incidents("acme", "", "", "", time.Time{})
	require.Len(t, incs, 1)
	inc := incs[0]
	require.Equal(t, "P1", inc.Priority, "urgency high (critical) × impact high")
	require.Equal(t, "payments-oncall", inc.OwnerGroup)
	require.Equal(t, "checkout", inc.CI)
	require.Equal(t, StatusOpen, inc.Status)
	require.Empty(t, m.Incidents("other", "", "", "", time.Time{}), "per tenant")

	// Escalation and SLA with the clock.
	clk.Add(11 * time.Minute)
	m.Tick()
	inc, _ = m.Incident("acme", inc.ID)
	require.Equal(t, []string{"payments-lead"}, inc.EscalatedTo)
	clk.Add(5 * time.Minute)
	m.Tick()
	inc, _ = m.Incident("acme", inc.ID)
	require.True(t, inc.SLA.AcknowledgeBreached)
	require.Equal(t, "16m", inc.SLA.Elapsed)

	_, err = m.Action("acme", inc.ID, "ack", "kim", "", "")
	require.NoError(t, err)
	clk.Add(30 * time.Minute)
	m.Tick()
	inc, _ = m.Incident("acme", inc.ID)
	require.Len(t, inc.EscalatedTo, 1, "no escalation once acknowledged")

	// The alert resolves: the incident resolves.
	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("CheckoutErrors"), From: ruler.StateFiring, To: ruler.StateInactive, At: clk.Now()})
	inc, _ = m.Incident("acme", inc.ID)
	require.Equal(t, StatusResolved, inc.Status)

	// Both receivers get every event, in order; ServiceNow after retries.
	require.Eventually(t, func() bool { return len(sn.Got()) == 5 && len(pd.Got()) == 5 }, 20*time.Second, 50*time.Millisecond)
	var actions []string
	for _, b := range pd.Got() {
		actions = append(actions, b["event_action"].(string))
		require.Equal(t, "acme/"+inc.ID, b["dedup_key"])
	}
	require.Equal(t, []string{"trigger", "trigger", "trigger", "acknowledge", "resolve"}, actions)
	last := sn.Got()[4]
	require.Equal(t, "6", last["state"], "resolved")
	require.Equal(t, "1", last["impact"])
	require.Equal(t, "payments-oncall", last["assignment_group"])
	require.Eventually(t, func() bool { return m.outbox.Pending()["snow"] == 0 }, 5*time.Second, 20*time.Millisecond,
		"delivered events leave the outbox")
}

func TestReopenProblemAndRestart(t *testing.T) {
	pd := apptest.NewReceiver(t, 0)
	dir := t.TempDir()
	db := st.OpenDir(t, dir, nil)
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	cfg := testConfig(pd.URL(), pd.URL())
	cfg.Receivers = cfg.Receivers[:1]
	m, err := New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	fire := func() {
		m.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("Latency"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	}
	resolve := func() {
		m.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("Latency"), From: ruler.StateFiring, To: ruler.StateInactive, At: clk.Now()})
	}

	fire()
	clk.Add(5 * time.Minute)
	resolve()
	clk.Add(10 * time.Minute)
	fire() // within the reopen window: the same incident
	incs := m.Incidents("acme", "", "", "", time.Time{})
	require.Len(t, incs, 1)
	require.Equal(t, 1, incs[0].Reopened)
	resolve()
	for range 2 { // two more, after the reopen window: new incidents
		clk.Add(2 * time.Hour)
		fire()
		clk.Add(time.Minute)
		resolve()
	}
	require.Len(t, m.Incidents("acme", "", "", "", time.Time{}), 3)
	probs := m.Problems("acme")
	require.Len(t, probs, 1, "three incidents of one CI and alert within a day")
	require.Len(t, probs[0].Incidents, 3)

	// Restart in the middle: state and numbering survive.
	m.Close()
	require.NoError(t, db.Close())
	db = st.OpenDir(t, dir, nil)
	m, err = New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()
	require.Len(t, m.Incidents("acme", "", "", "", time.Time{}), 3)
	require.Len(t, m.Problems("acme"), 1)
	inc, err := m.Create("acme", "Manual: disk replacement", "lee", "P4", "db-1", "dba")
	require.NoError(t, err)
	require.Equal(t, "INC-000004", inc.ID)
	_, err = m.Action("acme", inc.ID, "priority", "lee", "P2", "customer visible")
	require.NoError(t, err)
	_, err = m.Action("acme", inc.ID, "close", "lee", "", "")
	require.Error(t, err, "must be resolved first")
	_, err = m.Action("acme", "INC-999999", "ack", "lee", "", "")
	require.ErrorIs(t, err, ErrNotFound)
	// A manual incident on a configured CI takes its owner group and
	// impact; the priority follows from them.
	inc, err = m.Create("acme", "Checkout slow for some users", "lee", "", "checkout", "")
	require.NoError(t, err)
	require.Equal(t, "payments-oncall", inc.OwnerGroup)
	require.Equal(t, "P2", inc.Priority, "urgency medium × impact high")
	require.Equal(t, "service", inc.CIKind)
}

func TestFormatDuration(t *testing.T) {
	require.Equal(t, "1d 7h 20m", FormatDuration(31*time.Hour+20*time.Minute))
	require.Equal(t, "5m", FormatDuration(5*time.Minute))
	require.Equal(t, "42s", FormatDuration(42*time.Second))
	require.Equal(t, "1m 30s", FormatDuration(90*time.Second), "the smallest unit kept")
	require.Equal(t, "1h", FormatDuration(time.Hour))
	require.Equal(t, "2d 5s", FormatDuration(48*time.Hour+5*time.Second))
	require.Equal(t, "0s", FormatDuration(0))
}

func TestMaintenanceAndProblemLifecycle(t *testing.T) {
	db := st.Open(t, nil)
	base := time.Date(2026, 12, 5, 17, 30, 0, 0, time.UTC) // Sat 02:30 in Seoul
	clk := apptest.NewClock(base)
	cfg := Config{
		CIs:      []CI{{Name: "checkout", Selector: `{service="checkout"}`, OwnerGroup: "pay", Impact: "high"}},
		Problems: ProblemRule{Count: 2, Window: duration.Duration(24 * time.Hour)},
		Maintenance: []Maintenance{
			{Name: "weekend-patching", CI: "checkout", Recurring: &Recurring{Weekdays: []string{"sat", "sun"}, From: "02:00", To: "04:00", Timezone: "Asia/Seoul"}},
			{Name: "one-off", Selector: `{alertname="Other"}`, Start: base.Add(-time.Hour), End: base.Add(time.Hour)},
		},
	}
	m, err := New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()
	fire := func(name string) {
		m.HandleAlert(ruler.Event{Tenant: "t", Alert: newAlert(name), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	}
	resolve := func(name string) {
		m.HandleAlert(ruler.Event{Tenant: "t", Alert: newAlert(name), From: ruler.StateFiring, To: ruler.StateInactive, At: clk.Now()})
	}
	fire("Latency")
	require.Empty(t, m.Incidents("t", "", "", "", time.Time{}), "inside the recurring window")
	require.Len(t, m.Suppressed("t"), 1)
	require.Equal(t, "weekend-patching", m.Suppressed("t")[0].Window)

	clk.Add(2 * time.Hour) // 04:30 Seoul: outside
	fire("Latency")
	require.Len(t, m.Incidents("t", "", "", "", time.Time{}), 1)
	resolve("Latency")
	clk.Add(2 * time.Hour)
	fire("Latency")
	probs := m.Problems("t")
	require.Len(t, probs, 1)
	id := probs[0].ID
	_, err = m.ProblemAction("t", id, "verify", "kim", "")
	require.Error(t, err, "verify needs a workaround or solution first")
	for _, step := range []string{"root_cause", "workaround", "verify", "close"} {
		_, err = m.ProblemAction("t", id, step, "kim", "note")
		require.NoError(t, err, step)
	}
	require.Equal(t, "closed", m.Problems("t")[0].Status)
	require.Len(t, m.Problems("t")[0].Timeline, 5)
}

func TestPrintableReport(t *testing.T) {
	db := st.Open(t, nil)
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	m, err := New(Config{SLA: map[string]SLATarget{"P3": {Acknowledge: duration.Duration(time.Hour)}}}, db, nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()
	inc, err := m.Create("t", "Printer <on fire>", "kim", "P3", "printer-7", "facilities")
	require.NoError(t, err)
	clk.Add(10 * time.Minute)
	_, err = m.Action("t", inc.ID, "ack", "kim", "", "")
	require.NoError(t, err)
	html, err := m.Report("t", inc.ID, Viewer{})
	require.NoError(t, err)
	s := string(html)
	require.Contains(t, s, "<svg")
	require.Contains(t, s, "Printer &lt;on fire&gt;", "escaped")
	require.Contains(t, s, "acknowledge 1h")
	require.Contains(t, s, "kim acknowledged")
	_, err = m.Report("t", "INC-424242", Viewer{})
	require.ErrorIs(t, err, ErrNotFound)

	// In Seoul, in Korean.
	seoul, err := time.LoadLocation("Asia/Seoul")
	require.NoError(t, err)
	html, err = m.Report("t", inc.ID, Viewer{Loc: seoul, Lang: "ko"})
	require.NoError(t, err)
	s = string(html)
	require.Contains(t, s, `<html lang="ko">`)
	require.Contains(t, s, "우선순위")
	require.Contains(t, s, "2023-11-15 07:13:20 KST", "opened at 22:13:20 UTC")
	require.Contains(t, s, "<td>확인</td>", "the timeline's events translated")

	// Many events at once: their labels do not pile up on one another.
	for range 12 {
		_, err = m.Action("t", inc.ID, "comment", "kim", "again", "")
		require.NoError(t, err)
	}
	html, err = m.Report("t", inc.ID, Viewer{})
	require.NoError(t, err)
	chart := string(html)[strings.Index(string(html), "<svg"):strings.Index(string(html), "</svg>")]
	labels := strings.Count(chart, `font-size="10" text-anchor="middle"`)
	require.LessOrEqual(t, labels, 2+4, "the two events at the start, and at most one label per lane where twelve comments crowd at the end")
	require.GreaterOrEqual(t, strings.Count(chart, "<circle"), 14, "every event keeps its mark")
}

func TestJiraAlertmanagerAndTemplateReceivers(t *testing.T) {
	j := apptest.NewJira(t)
	j.Fail.Store(1) // the first transition/comment fails: retried, no second issue
	am, hook := apptest.NewReceiver(t, 0), apptest.NewReceiver(t, 0)
	cfg := testConfig(apptest.NewReceiver(t, 0).URL(), apptest.NewReceiver(t, 0).URL())
	cfg.Receivers = []Receiver{
		{Name: "jira", Type: "jira", URL: j.URL(), Project: "OPS", Username: "bot", Password: "tok",
			Transitions: map[string]string{"resolved": "31"}},
		{Name: "am", Type: "alertmanager", URL: am.URL()},
		{Name: "chat", Type: "webhook", URL: hook.URL(), Events: []string{"opened", "resolved"},
			Template: `{"text":{{json (printf "%s %s is %s" .Incident.Priority .Incident.Title .Event)}}}`},
	}
	db := st.Open(t, nil)
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	m, err := New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	defer m.Close()

	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("CheckoutErrors"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	inc := m.Incidents("acme", "", "", "", time.Time{})[0]
	_, err = m.Action("acme", inc.ID, "ack", "kim", "", "")
	require.NoError(t, err)
	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("CheckoutErrors"), From: ruler.StateFiring, To: ruler.StateInactive, At: clk.Now()})

	// Jira: one create, the ack as a comment (after one refused try), the
	// resolve as transition 31; always on the same issue, with basic auth.
	require.Eventually(t, func() bool { return len(j.Calls()) == 4 }, 20*time.Second, 50*time.Millisecond)
	calls := j.Calls()
	require.Contains(t, calls[0], `/rest/api/2/issue {"fields":`)
	require.Contains(t, calls[0], `"project":{"key":"OPS"}`)
	require.Contains(t, calls[1], "/rest/api/2/issue/OPS-1/comment")
	require.Contains(t, calls[2], "/rest/api/2/issue/OPS-1/comment")
	require.Contains(t, calls[2], "acknowledged")
	require.Equal(t, `/rest/api/2/issue/OPS-1/transitions {"transition":{"id":"31"}}`, calls[3])
	require.Equal(t, "bot:tok", j.Auth()[0])

	// Alertmanager webhook shape.
	require.Eventually(t, func() bool { return len(am.Got()) == 3 }, 10*time.Second, 20*time.Millisecond)
	last := am.Got()[2]
	require.Equal(t, "4", last["version"])
	require.Equal(t, "resolved", last["status"])
	alerts := last["alerts"].([]any)
	require.Len(t, alerts, 1)
	require.Equal(t, "CheckoutErrors", alerts[0].(map[string]any)["labels"].(map[string]any)["alertname"])
	require.Equal(t, "P1", last["commonLabels"].(map[string]any)["priority"])

	// The templated webhook gets only the events it asked for.
	require.Eventually(t, func() bool { return len(hook.Got()) == 2 }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "P1 "+inc.Title+" is opened", hook.Got()[0]["text"])
	require.Equal(t, "P1 "+inc.Title+" is resolved", hook.Got()[1]["text"])

	// Bad receivers are refused.
	bad := cfg
	bad.Receivers = []Receiver{{Name: "j", Type: "jira", URL: "http://x"}}
	require.ErrorContains(t, bad.Validate(), "jira needs a project")
	bad.Receivers = []Receiver{{Name: "t", Type: "webhook", URL: "http://x", Template: "{{.Nope"}}
	require.ErrorContains(t, bad.Validate(), "template")
}

// TestClosureWithCause: resolving and closing keep the root cause,
// resolution and prevention; closing keeps what resolving said unless it
// says otherwise; the report shows them.
func TestClosureWithCause(t *testing.T) {
	db := st.Open(t, nil)
	clk := apptest.NewClock(time.Unix(1_700_000_000, 0))
	m, err := New(Config{}, db, nil, clk.Now)
	require.NoError(t, err)
	inc, err := m.Create("t", "Checkout slow", "kim", "P2", "checkout", "payments")
	require.NoError(t, err)
	_, err = m.Finish("t", inc.ID, "ack", "kim", "", Closure{RootCause: "x"})
	require.ErrorIs(t, err, ErrInvalid, "a cause goes with resolve or close")
	_, err = m.Finish("t", inc.ID, "close", "kim", "", Closure{RootCause: "x"})
	require.Error(t, err, "not resolved yet")
	got, err := m.Finish("t", inc.ID, "resolve", "kim", "pool resized", Closure{RootCause: "connection pool <exhausted>", Resolution: "pool 50 → 200"})
	require.NoError(t, err)
	require.Equal(t, "connection pool <exhausted>", got.RootCause)
	require.Equal(t, "pool resized (root cause: connection pool <exhausted>; resolution: pool 50 → 200)", got.Timeline[len(got.Timeline)-1].Detail)
	got, err = m.Finish("t", inc.ID, "close", "lee", "", Closure{Prevention: "alert on pool usage over 80%"})
	require.NoError(t, err)
	require.Equal(t, [3]string{"connection pool <exhausted>", "pool 50 → 200", "alert on pool usage over 80%"},
		[3]string{got.RootCause, got.Resolution, got.Prevention})

	m.Close()
	m, err = New(Config{}, db, nil, clk.Now) // kept across a restart
	require.NoError(t, err)
	defer m.Close()
	got, ok := m.Incident("t", inc.ID)
	require.True(t, ok)
	require.Equal(t, "alert on pool usage over 80%", got.Prevention)
	html, err := m.Report("t", inc.ID, Viewer{})
	require.NoError(t, err)
	s := string(html)
	require.Contains(t, s, "<th>Root cause</th><td>connection pool &lt;exhausted&gt;</td>")
	require.Contains(t, s, "<th>Resolution</th><td>pool 50 → 200</td>")
	require.Contains(t, s, "<th>Prevention</th><td>alert on pool usage over 80%</td>")
}
