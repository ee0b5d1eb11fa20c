package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// leaderPage is one event a webhook receiver got: which incident, what
// happened, when.
type leaderPage struct {
	incident, event string
	at              time.Time
}

// pager is the ITSM's webhook receiver in the leader test.
type pager struct {
	mu    sync.Mutex
	pages []leaderPage
}

func (p *pager) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body struct {
		Event    string `json:"event"`
		Incident struct {
			ID string `json:"id"`
		} `json:"incident"`
	}
	_ = json.Unmarshal(b, &body)
	p.mu.Lock()
	p.pages = append(p.pages, leaderPage{incident: body.Incident.ID, event: body.Event, at: time.Now()})
	p.mu.Unlock()
}

// first returns the first leaderPage of event, if any.
func (p *pager) first(event string) (leaderPage, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pg := range p.pages {
		if pg.event == event {
			return pg, true
		}
	}
	return leaderPage{}, false
}

// count returns, per incident, how many pages of each event it got.
func (p *pager) count() map[string]map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]map[string]int{}
	for _, pg := range p.pages {
		if out[pg.incident] == nil {
			out[pg.incident] = map[string]int{}
		}
		out[pg.incident][pg.event]++
	}
	return out
}

func leaderConfig(t *testing.T, broker, zone, node, hook string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), node+".yml")
	doc := fmt.Sprintf(`cluster:
  brokers: [%s]
  partitions: 4
  replication_factor: 1
  zone: %s
  node: %s
  produce_timeout: 3s
  session_timeout: 6s
  secret: e2e-secret
itsm:
  group_by: [alertname]
  cis:
    - {name: checkout, kind: service, selector: '{service="checkout"}', owner_group: payments-oncall, impact: high}
  escalation:
    P1: [{after: 15s, group: payments-lead}]
  groups: {payments-oncall: [kim], payments-lead: [park]}
  receivers:
    - {name: hook, type: webhook, url: '%s'}
`, broker, zone, node, hook)
	require.NoError(t, os.WriteFile(p, []byte(doc), 0o644))
	return p
}

var leaderGauge = regexp.MustCompile(`(?m)^tsdb_cluster_leader (\d)$`)

// leads says whether node p reports itself the leader in /metrics.
func leads(p *apptest.Proc) bool {
	resp, err := http.Get(p.URL() + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := leaderGauge.FindSubmatch(b)
	return m != nil && string(m[1]) == "1"
}

// TestClusterLeaderFailover: one Kafka broker, three tsdb nodes (zone-a:
// n1, n2; zone-b: n3), every one with the same alert rule (`for: 20s`,
// evaluated every second) and ITSM with a webhook receiver and an
// escalation 15 s after an incident opens. Exactly one node leads. The
// leader is killed (SIGKILL) while the alert is pending: another node
// leads, restores the alert's `for` state from ALERTS_FOR_STATE through
// the cluster's read path, and the alert fires at activeAt + 20s, a few
// seconds late at most; exactly one incident is opened and paged once.
// The killed node comes back; the new leader is killed while the
// incident's escalation timer runs: the third leader loads the incident
// from the state topic and the escalation still reaches the webhook,
// for the same incident. Followers forward the ITSM API and the alerts'
// state to the leader: they list the leader's pending alert and
// incident, and an acknowledgement sent through a follower reaches the
// leader's incident.
func TestClusterLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker and three tsdb")
	}
	pg := &pager{}
	hook := httptest.NewServer(http.HandlerFunc(pg.serve))
	t.Cleanup(hook.Close)
	k := apptest.StartKafka(t, nil)
	bin := apptest.Build(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	require.NoError(t, os.WriteFile(rules, []byte(`
groups:
  - name: shop
    interval: 1s
    rules:
      - alert: CheckoutErrors
        expr: leader_e2e_errors > 0
        for: 20s
        labels: {severity: critical}
`), 0o644))
	type node struct {
		zone, name, dir string
		p               *apptest.Proc
	}
	nodes := []*node{{zone: "zone-a", name: "n1"}, {zone: "zone-a", name: "n2"}, {zone: "zone-b", name: "n3"}}
	var mu sync.Mutex // guards nodes[i].p
	start := func(n *node) {
		if n.dir == "" {
			n.dir = t.TempDir()
		}
		p := apptest.StartTSDB(t, bin, n.dir, "--config.file", leaderConfig(t, k.Addr, n.zone, n.name, hook.URL),
			"--rules", rules, "--self-monitor.interval", "0")
		mu.Lock()
		n.p = p
		mu.Unlock()
	}
	for _, n := range nodes {
		start(n)
	}
	live := func() []*node {
		mu.Lock()
		defer mu.Unlock()
		var out []*node
		for _, n := range nodes {
			if n.p != nil {
				out = append(out, n)
			}
		}
		return out
	}
	leader := func() *node {
		var who *node
		for _, n := range live() {
			if leads(n.p) {
				if who != nil {
					t.Errorf("two leaders at once: %s and %s", who.name, n.name)
				}
				who = n
			}
		}
		return who
	}
	var l1 *node
	require.Eventually(t, func() bool { l1 = leader(); return l1 != nil }, time.Minute, 200*time.Millisecond, "a leader is elected")
	t.Logf("leader: %s", l1.name)
	var st struct {
		Data struct {
			Leader struct {
				Node string `json:"node"`
				Self bool   `json:"self"`
			} `json:"leader"`
		} `json:"data"`
	}
	for _, n := range live() {
		require.Eventually(t, func() bool {
			_, body := n.p.Get(t, "/api/v1/status/cluster")
			return json.Unmarshal([]byte(body), &st) == nil && st.Data.Leader.Node == l1.zone+"/"+l1.name
		}, 20*time.Second, 200*time.Millisecond, "node %s names the leader in its status", n.name)
		require.Equal(t, n == l1, st.Data.Leader.Self)
	}

	// The writer: the error series, every 500 ms, through a live node.
	c := &http.Client{Timeout: 5 * time.Second}
	ctx, stopWriting := context.WithCancel(context.Background())
	defer stopWriting()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for ctx.Err() == nil {
			req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
				Labels:  []prompb.Label{{Name: "__name__", Value: "leader_e2e_errors"}, {Name: "service", Value: "checkout"}},
				Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 3}},
			}}}
			for _, n := range live() {
				if code, _, err := apptest.RemoteWrite(ctx, c, n.p.URL()+"/api/v1/write", req); err == nil && code == http.StatusNoContent {
					break
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	})

	// The alert is pending on the leader.
	type alert struct {
		State    string    `json:"state"`
		ActiveAt time.Time `json:"activeAt"`
	}
	alertsOf := func(n *node) []alert {
		resp, err := c.Get(n.p.URL() + "/api/v1/alerts")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var r struct {
			Data struct{ Alerts []alert }
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return r.Data.Alerts
	}
	var pending alert
	require.Eventually(t, func() bool {
		a := alertsOf(l1)
		if len(a) == 1 && a[0].State == "pending" {
			pending = a[0]
			return true
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "the alert is pending on the leader")
	for _, n := range live() {
		if n != l1 {
			require.False(t, evaluates(n.p), "node %s does not evaluate rules", n.name)
			a := alertsOf(n)
			require.Len(t, a, 1, "node %s shows the leader's alerts (forwarded)", n.name)
			require.Equal(t, pending.ActiveAt.UnixMilli(), a[0].ActiveAt.UnixMilli())
		}
	}
	dueAt := pending.ActiveAt.Add(20 * time.Second)
	t.Logf("pending since %s, due to fire at %s", pending.ActiveAt.Format(time.RFC3339Nano), dueAt.Format(time.RFC3339Nano))

	// kill -9 of the leader, 6 s into the pending.
	time.Sleep(time.Until(pending.ActiveAt.Add(6 * time.Second)))
	killed1 := time.Now()
	l1.p.Kill()
	mu.Lock()
	l1.p = nil
	mu.Unlock()
	var l2 *node
	require.Eventually(t, func() bool { l2 = leader(); return l2 != nil }, time.Minute, 100*time.Millisecond, "another node leads")
	failover1 := time.Since(killed1)
	require.Eventually(t, func() bool { return len(alertsOf(l2)) == 1 }, 30*time.Second, 100*time.Millisecond, "the new leader evaluates")
	evaluating1 := time.Since(killed1)
	a := alertsOf(l2)[0]
	require.Equal(t, pending.ActiveAt.UnixMilli(), a.ActiveAt.UnixMilli(), "the pending time is restored, not restarted")
	t.Logf("leader %s killed; %s leads after %v, evaluates the rule after %v", l1.name, l2.name, failover1.Round(time.Millisecond), evaluating1.Round(time.Millisecond))

	// The alert fires on time; the incident opens once and is paged.
	var opened leaderPage
	require.Eventually(t, func() bool { var ok bool; opened, ok = pg.first("opened"); return ok }, time.Minute, 100*time.Millisecond, "the incident's leaderPage")
	late := opened.at.Sub(dueAt)
	t.Logf("opened %s paged %v after the alert was due (rule interval 1s)", opened.incident, late.Round(time.Millisecond))
	require.Less(t, late, 5*time.Second, "the alert fires on time")
	require.Greater(t, late, -time.Second, "not before its `for`")

	// The first node comes back (its samples are readable again), then
	// the second leader is killed while the escalation timer runs.
	start(l1)
	time.Sleep(time.Until(opened.at.Add(5 * time.Second)))
	killed2 := time.Now()
	l2.p.Kill()
	mu.Lock()
	l2.p = nil
	mu.Unlock()
	var l3 *node
	require.Eventually(t, func() bool { l3 = leader(); return l3 != nil }, time.Minute, 100*time.Millisecond, "a third leader")
	failover2 := time.Since(killed2)
	var escalated leaderPage
	require.Eventually(t, func() bool { var ok bool; escalated, ok = pg.first("escalated"); return ok }, time.Minute, 100*time.Millisecond,
		"the escalation reaches the webhook")
	t.Logf("leader %s killed 5 s after the opening; %s leads after %v; escalated paged %v after the opening (due at 15 s)",
		l2.name, l3.name, failover2.Round(time.Millisecond), escalated.at.Sub(opened.at).Round(time.Millisecond))
	require.Equal(t, opened.incident, escalated.incident)
	require.GreaterOrEqual(t, escalated.at.Sub(opened.at), 15*time.Second-time.Second)

	// One incident, paged once when opened, on every leader's watch.
	time.Sleep(3 * time.Second) // late duplicates would come now
	stopWriting()
	counts := pg.count()
	t.Logf("pages by incident: %v", counts)
	require.Len(t, counts, 1, "one incident")
	require.Equal(t, 1, counts[opened.incident]["opened"], "opened paged once")
	require.Equal(t, 1, counts[opened.incident]["escalated"], "escalated paged once")
	var incs struct {
		Data []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"data"`
	}
	_, body := l3.p.Get(t, "/api/v1/incidents")
	require.NoError(t, json.Unmarshal([]byte(body), &incs), body)
	require.Len(t, incs.Data, 1, body)
	require.Equal(t, opened.incident, incs.Data[0].ID)
	// A follower forwards the ITSM API to the leader: it lists the same
	// incident, and an acknowledgement sent through it reaches the
	// leader's incident.
	var follower *node
	for _, n := range live() {
		if n != l3 {
			follower = n
			code, fbody := n.p.Get(t, "/api/v1/incidents")
			require.Equal(t, http.StatusOK, code, fbody)
			var finc struct {
				Data []struct {
					ID       string          `json:"id"`
					Timeline json.RawMessage `json:"timeline"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal([]byte(fbody), &finc), fbody)
			require.Len(t, finc.Data, 1, "node %s lists the leader's incidents: %s", n.name, fbody)
			require.Equal(t, opened.incident, finc.Data[0].ID)
			require.Contains(t, string(finc.Data[0].Timeline), "escalated", "node %s shows the leader's incident", n.name)
		}
	}
	req, err := http.NewRequest(http.MethodPost, follower.p.URL()+"/api/v1/incidents/"+opened.incident+"/ack", nil)
	require.NoError(t, err)
	req.Header.Set("X-User", "kim")
	resp, err := c.Do(req)
	require.NoError(t, err)
	ackBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(ackBody))
	_, body = l3.p.Get(t, "/api/v1/incidents/"+opened.incident)
	var inc struct {
		Data struct {
			Status string `json:"status"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &inc), body)
	require.Equal(t, "acknowledged", inc.Data.Status, "acknowledged through %s, on the leader %s", follower.name, l3.name)
	t.Logf("incident %s acknowledged through follower %s: %s on the leader", opened.incident, follower.name, inc.Data.Status)
}

var ruleEvals = regexp.MustCompile(`(?m)^tsdb_rule_evaluations_total\{[^}]*\} [1-9]`)

// evaluates says whether node p has evaluated a rule, as its /metrics say.
func evaluates(p *apptest.Proc) bool {
	resp, err := http.Get(p.URL() + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return ruleEvals.Match(b)
}
