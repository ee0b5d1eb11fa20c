package itsm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/internal/apptest"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// The period a schedule reports: the day, week (Monday to Monday) or
// month that ended, once its send time has come, in its time zone.
func TestReportPeriods(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, seoul)
		require.NoError(t, err)
		return v
	}
	for _, c := range []struct {
		period, now, from, to string
	}{
		{"day", "2026-12-03 08:00", "2026-12-02 00:00", "2026-12-03 00:00"},
		{"day", "2026-12-03 07:59", "2026-12-01 00:00", "2026-12-02 00:00"},  // today's not due yet
		{"week", "2026-12-03 12:00", "2026-11-23 00:00", "2026-11-30 00:00"}, // Thursday: last week
		{"week", "2026-11-30 08:00", "2026-11-23 00:00", "2026-11-30 00:00"}, // Monday at 08:00
		{"week", "2026-11-30 07:00", "2026-11-16 00:00", "2026-11-23 00:00"},
		{"month", "2026-12-01 08:00", "2026-11-01 00:00", "2026-12-01 00:00"},
		{"month", "2026-12-01 07:00", "2026-10-01 00:00", "2026-11-01 00:00"},
		{"month", "2026-03-15 09:00", "2026-02-01 00:00", "2026-03-01 00:00"},
	} {
		s := ReportSchedule{Name: "r", Period: c.period, Timezone: "Asia/Seoul", Receivers: []string{"x"}}
		require.NoError(t, s.check())
		from, to := s.due(at(c.now))
		require.Equal(t, at(c.from), from, "%s at %s", c.period, c.now)
		require.Equal(t, at(c.to), to, "%s at %s", c.period, c.now)
	}
	for _, bad := range []ReportSchedule{
		{Name: "r", Period: "year", Receivers: []string{"x"}},
		{Name: "r", Period: "day", At: "8am", Receivers: []string{"x"}},
		{Name: "r", Period: "day", Timezone: "Mars/Olympus", Receivers: []string{"x"}},
		{Name: "r", Period: "day"},
		{Name: "r", Period: "day", EmailTo: []string{"not an address"}},
		{Name: "r p", Period: "day", Receivers: []string{"x"}},
	} {
		require.Error(t, bad.check(), "%+v", bad)
	}
}

// TestScheduledReport: a daily report goes out at 08:00 to a webhook
// receiver and by e-mail through a real SMTP server (aiosmtpd), once —
// not again at the next tick nor after a restart — with the day's
// incidents by priority and owner group, each CI's availability from its
// incidents' open time and the SLA breaches.
func TestScheduledReport(t *testing.T) {
	smtpd := apptest.StartSMTP(t)
	hook := apptest.NewReceiver(t, 0)
	db := st.Open(t, nil)
	day := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	clk := apptest.NewClock(day.Add(9 * time.Hour))
	cfg := testConfig("", "")
	cfg.Receivers = []Receiver{{Name: "reports-hook", Type: "webhook", URL: hook.URL()}}
	cfg.SMTP = SMTP{Addr: smtpd.Addr, From: "tsdb@example.com"}
	cfg.Reports = []ReportSchedule{{Name: "daily-sla", Period: "day", At: "08:00", Receivers: []string{"reports-hook"},
		EmailTo: []string{"ops@example.com", "lead@example.com"}}}
	m, err := New(cfg, db, nil, clk.Now)
	require.NoError(t, err)

	// 09:00–10:30 checkout is down (P1, acknowledged after 20 min: the
	// 15 min target is breached); 10:00–11:00 a second alert on it.
	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("CheckoutDown"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	inc := m.Incidents("acme", "", "", "", time.Time{})[0]
	clk.Add(20 * time.Minute)
	m.Tick()
	_, err = m.Action("acme", inc.ID, "ack", "kim", "", "")
	require.NoError(t, err)
	clk.Add(40 * time.Minute)
	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: newAlert("CheckoutSlow"), From: ruler.StatePending, To: ruler.StateFiring, At: clk.Now()})
	clk.Add(30 * time.Minute)
	_, err = m.Action("acme", inc.ID, "resolve", "kim", "", "")
	require.NoError(t, err)
	clk.Add(30 * time.Minute)
	for _, i := range m.Incidents("acme", "", "", "", time.Time{}) {
		if i.ID != inc.ID {
			_, err = m.Action("acme", i.ID, "resolve", "kim", "", "")
			require.NoError(t, err)
		}
	}

	// The receiver gets incident events too: its reports are the bodies
	// that name a report.
	reports := func() []map[string]any {
		var out []map[string]any
		for _, b := range hook.Got() {
			if b["report"] != nil {
				out = append(out, b)
			}
		}
		return out
	}
	// The first tick (09:20 on the 2nd) sent the 1st's report, the latest
	// due when the schedule was first seen.
	require.Len(t, reports(), 1)
	require.Equal(t, day.Add(-24*time.Hour).Format(time.RFC3339), reports()[0]["from"])

	// The next morning: nothing more before 08:00, the 2nd's at 08:00.
	clk.Add(24*time.Hour - 11*time.Hour + 7*time.Hour + 59*time.Minute) // 07:59 on the 3rd
	require.Equal(t, day.Add(24*time.Hour+7*time.Hour+59*time.Minute), clk.Now())
	m.Tick()
	m.bg.Wait()
	require.Len(t, reports(), 1)
	clk.Add(time.Minute)
	m.Tick()
	m.bg.Wait()
	m.Tick() // due again: already sent
	m.bg.Wait()
	require.Len(t, reports(), 2, "one report a day")
	r := reports()[1]
	require.Equal(t, "daily-sla", r["report"])
	require.Equal(t, "acme", r["tenant"])
	require.Equal(t, day.Format(time.RFC3339), r["from"])
	avail := r["availability"].([]any)[0].(map[string]any)
	require.Equal(t, "checkout", avail["ci"])
	require.Equal(t, "2h", avail["downtime"], "09:00–11:00: the two incidents' open times, overlapping, counted once")
	require.InDelta(t, 100*(1-2.0/24), avail["availability_percent"], 1e-9)
	breaches := r["breaches"].([]any)
	require.Len(t, breaches, 1)
	require.Equal(t, inc.ID, breaches[0].(map[string]any)["id"])
	require.Equal(t, "acknowledge", breaches[0].(map[string]any)["what"])
	groups := r["owner_groups"].([]any)
	require.Equal(t, "payments-oncall", groups[0].(map[string]any)["group"])
	require.EqualValues(t, 2, groups[0].(map[string]any)["incidents"])

	var msgs []string
	require.Eventually(t, func() bool { msgs = smtpd.Messages(t); return len(msgs) == 2 }, 10*time.Second, 100*time.Millisecond)
	msg := msgs[0]
	if !strings.Contains(msg, "day 2026-12-02") {
		msg = msgs[1]
	}
	require.Contains(t, msg, "Subject: SLA report acme: day 2026-12-02")
	require.Contains(t, msg, "ops@example.com, lead@example.com")
	require.Contains(t, msg, "text/html")
	require.Contains(t, msg, "<h2>Availability</h2>")
	require.Contains(t, msg, "91.67%")
	require.Contains(t, msg, inc.ID)
	require.True(t, strings.Contains(msg, "checkout: 91.67% available"), "the plain-text part")
	m.Close()

	// After a restart the same day: not sent again.
	m, err = New(cfg, db, nil, clk.Now)
	require.NoError(t, err)
	m.Tick()
	m.bg.Wait()
	require.Len(t, reports(), 2, "sent once, across a restart")
	list := m.ReportSchedules("acme")
	require.Len(t, list, 1)
	require.Equal(t, day.Add(24*time.Hour), list[0]["last_sent_to"])

	// Sent again by hand; a receiver that fails says so.
	_, err = m.SendReport(context.Background(), "acme", "daily-sla")
	require.NoError(t, err)
	require.Len(t, reports(), 3)
	hook.Close()
	_, err = m.SendReport(context.Background(), "acme", "daily-sla")
	require.ErrorContains(t, err, "receiver reports-hook")
	m.Close()
}

// An alerting rule's runbook_url and actions annotations reach its
// incident as a KPI's do: links.runbook and details.suggested_actions.
func TestRuleRunbookOnIncident(t *testing.T) {
	cfg := testConfig("", "")
	cfg.Receivers = nil
	m, err := New(cfg, st.Open(t, nil), nil, apptest.NewClock(time.Unix(1_700_000_000, 0)).Now)
	require.NoError(t, err)
	defer m.Close()
	a := newAlert("CheckoutDown")
	a.Annotations = labels.FromStrings("runbook_url", "https://wiki.example/runbooks/checkout",
		"actions", "1. check the payment gateway\n2. fail over to the second region\n")
	m.HandleAlert(ruler.Event{Tenant: "acme", Alert: a, From: ruler.StatePending, To: ruler.StateFiring, At: time.Unix(1_700_000_000, 0)})
	inc := m.Incidents("acme", "", "", "", time.Time{})[0]
	require.Equal(t, "https://wiki.example/runbooks/checkout", inc.Links["runbook"])
	require.Equal(t, []string{"check the payment gateway", "fail over to the second region"}, inc.Details["suggested_actions"])
}
