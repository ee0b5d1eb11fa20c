package itsm

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/alerting/outbox"
)

// Outbox routes incident events to the configured receivers and renders
// each receiver's payload; the durable, ordered, retried delivery is
// package outbox's, one queue per receiver. The Idempotency-Key of an
// event is "<tenant>/<incident>/<event>/<sequence number>", unique
// forever.
type Outbox struct {
	receivers map[string]Receiver
	st        Store
	log       *slog.Logger
	client    *http.Client
	// q is the durable queue while delivering (nil while paused).
	q atomic.Pointer[outbox.Outbox]
	// delivered, when set, learns of each event a receiver took.
	delivered atomic.Pointer[func(tenant, receiver string)]
}

// outboxPrefix is where the items live in the Store (see package outbox).
const outboxPrefix = "itsm/outbox/"

func newOutbox(rs []Receiver, st Store, log *slog.Logger) *Outbox {
	o := &Outbox{receivers: map[string]Receiver{}, st: st, log: log, client: &http.Client{}}
	for _, r := range rs {
		o.receivers[r.Name] = r
	}
	return o
}

// open loads the undelivered events and starts delivering them.
func (o *Outbox) open() error {
	names := slices.Sorted(maps.Keys(o.receivers))
	q, err := outbox.Open(o.st, outbox.Options{Prefix: outboxPrefix, Queues: names, Deliver: o.deliver, Logger: o.log})
	if err != nil {
		return fmt.Errorf("itsm outbox: %w", err)
	}
	o.q.Store(q)
	return nil
}

// close stops delivering; what is undelivered stays stored.
func (o *Outbox) close() {
	if q := o.q.Swap(nil); q != nil {
		q.Close()
	}
}

// enqueue stores the event for every receiver it is routed to, except
// skip (the ticketing system the change came from).
func (o *Outbox) enqueue(event string, inc *Incident, skip ...string) {
	for name, r := range o.receivers {
		if contains(skip, name) || (len(r.Priorities) > 0 && !contains(r.Priorities, inc.Priority)) ||
			(len(r.CIs) > 0 && !contains(r.CIs, inc.CI)) || (len(r.Events) > 0 && !contains(r.Events, event)) ||
			(r.matcher != nil && !routeMatches(r.matcher, inc)) {
			continue
		}
		body, err := payload(r, event, inc)
		if err != nil {
			o.log.Error("itsm payload", "receiver", name, "err", err)
			continue
		}
		q := o.q.Load()
		if q == nil {
			o.log.Error("itsm outbox: an event while paused (not the leader) is not sent", "receiver", name, "event", event, "incident", inc.ID)
			continue
		}
		if _, err := q.Enqueue(name, event, inc.Tenant+"/"+inc.ID+"/"+event, body); err != nil {
			o.log.Error("itsm outbox", "receiver", name, "event", event, "incident", inc.ID, "err", err)
		}
	}
}

// routeMatches applies a receiver's label selector to the incident's
// alerts, each seen with the incident's ci, owner_group and priority.
func routeMatches(sets [][]*labels.Matcher, inc *Incident) bool {
	extra := map[string]string{"ci": inc.CI, "owner_group": inc.OwnerGroup, "priority": inc.Priority}
	if len(inc.Alerts) == 0 {
		m := map[string]string{}
		for k, v := range inc.Labels {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return selects(sets, labels.FromMap(m))
	}
	for _, a := range inc.Alerts {
		m := make(map[string]string, len(a.Labels)+3)
		for k, v := range extra {
			m[k] = v
		}
		for k, v := range a.Labels {
			m[k] = v
		}
		if selects(sets, labels.FromMap(m)) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// OnDelivered registers f to learn of each event a receiver took, with
// the incident's tenant (for usage metering). f is called from the
// delivering goroutines and must not block.
func (m *Manager) OnDelivered(f func(tenant, receiver string)) {
	m.outbox.delivered.Store(&f)
}

// deliver is the outbox's DeliverFunc: one event to its receiver.
func (o *Outbox) deliver(ctx context.Context, it outbox.Item) error {
	err := o.deliverTo(ctx, it)
	if f := o.delivered.Load(); err == nil && f != nil {
		(*f)(tenantOfItem(it.ID), it.Queue)
	}
	return err
}

// tenantOfItem is the tenant in an item ID, "<tenant>/<incident>/<event>/<seq>"
// (the tenant may hold slashes; the rest does not).
func tenantOfItem(id string) string {
	for range 3 {
		i := strings.LastIndexByte(id, '/')
		if i < 0 {
			return ""
		}
		id = id[:i]
	}
	return id
}

func (o *Outbox) deliverTo(ctx context.Context, it outbox.Item) error {
	r := o.receivers[it.Queue]
	switch r.Type {
	case "jira":
		return o.postJira(ctx, r, it)
	case "servicenow":
		return o.putServiceNow(ctx, r, it)
	}
	return o.send(ctx, r, it.ID, it.Event, r.URL, it.Body, nil)
}

// putServiceNow creates the incident's record with the Table API's POST
// once, keeps its sys_id in the store (itsm/<tenant>/servicenow/<receiver>/<id>),
// and PATCHes <url>/<sys_id> with every later event, so one incident is
// one record.
func (o *Outbox) putServiceNow(ctx context.Context, r Receiver, it outbox.Item) error {
	var ev struct {
		Correlation string `json:"correlation_id"`
	}
	if err := json.Unmarshal(it.Body, &ev); err != nil || ev.Correlation == "" {
		return outbox.Permanent(fmt.Errorf("servicenow body without correlation_id"))
	}
	keyKV := "itsm/" + strings.Replace(ev.Correlation, "/", "/servicenow/"+r.Name+"/", 1)
	sysID := ""
	if b, err := o.st.ListKV(keyKV); err == nil {
		if v, ok := b[keyKV]; ok {
			sysID = string(v)
		}
	}
	base := strings.TrimSuffix(r.URL, "/")
	if sysID != "" {
		return o.sendMethod(ctx, http.MethodPatch, r, it.ID, it.Event, base+"/"+sysID, it.Body, nil)
	}
	var resp []byte
	if err := o.send(ctx, r, it.ID, it.Event, base, it.Body, &resp); err != nil {
		return err
	}
	var created struct {
		Result struct {
			SysID string `json:"sys_id"`
		} `json:"result"`
	}
	if json.Unmarshal(resp, &created) != nil || created.Result.SysID == "" {
		o.log.Warn("itsm: servicenow answered without result.sys_id; later events create again", "receiver", r.Name, "incident", ev.Correlation)
		return nil
	}
	return o.st.PutKV(keyKV, []byte(created.Result.SysID))
}

// send POSTs body; out receives the response body when non-nil.
func (o *Outbox) send(ctx context.Context, r Receiver, id, event, url string, body []byte, out *[]byte) error {
	return o.sendMethod(ctx, http.MethodPost, r, id, event, url, body, out)
}

func (o *Outbox) sendMethod(ctx context.Context, method string, r Receiver, id, event, url string, body []byte, out *[]byte) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id)
	req.Header.Set("X-Tsdb-Event", event)
	if r.Username != "" {
		req.SetBasicAuth(r.Username, r.Password)
	}
	if r.Secret != "" {
		mac := hmac.New(sha256.New, []byte(r.Secret))
		mac.Write(body)
		req.Header.Set("X-Tsdb-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	c := *o.client
	c.Timeout = time.Duration(r.Timeout)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s", resp.Status)
	}
	if out != nil {
		*out = rb
	}
	return nil
}

// postJira creates an issue for a new incident and transitions it when
// the incident resolves or closes; the issue key is kept in the store.
func (o *Outbox) postJira(ctx context.Context, r Receiver, it outbox.Item) error {
	var ev struct {
		Event    string   `json:"event"`
		Incident Incident `json:"incident"`
	}
	if err := json.Unmarshal(it.Body, &ev); err != nil {
		return nil // not deliverable: drop
	}
	inc := ev.Incident
	keyKV := "itsm/" + inc.Tenant + "/jira/" + r.Name + "/" + inc.ID
	base := strings.TrimSuffix(r.URL, "/")
	issueKey := ""
	if b, err := o.st.ListKV(keyKV); err == nil {
		if v, ok := b[keyKV]; ok {
			issueKey = string(v)
		}
	}
	if issueKey == "" {
		typ := r.IssueType
		if typ == "" {
			typ = "Incident"
		}
		body, _ := json.Marshal(map[string]any{"fields": map[string]any{
			"project": map[string]string{"key": r.Project}, "issuetype": map[string]string{"name": typ},
			"summary":     fmt.Sprintf("[%s] %s", inc.Priority, inc.Title),
			"description": describe(&inc), "labels": []string{"tsdb", inc.ID},
		}})
		var resp []byte
		if err := o.send(ctx, r, it.ID, ev.Event, base+"/rest/api/2/issue", body, &resp); err != nil {
			return err
		}
		var created struct {
			Key string `json:"key"`
		}
		if json.Unmarshal(resp, &created) != nil || created.Key == "" {
			return fmt.Errorf("jira create: no issue key in %q", resp)
		}
		issueKey = created.Key
		if err := o.st.PutKV(keyKV, []byte(issueKey)); err != nil {
			return err
		}
		// The reverse mapping lets Jira's webhooks find the incident.
		if err := o.st.PutKV(jiraIssueKey(r.Name, issueKey), []byte(inc.Tenant+"/"+inc.ID)); err != nil {
			return err
		}
	}
	if ev.Event == "opened" {
		return nil
	}
	if tr, ok := r.Transitions[ev.Event]; ok {
		body, _ := json.Marshal(map[string]any{"transition": map[string]string{"id": tr}})
		return o.send(ctx, r, it.ID, ev.Event, base+"/rest/api/2/issue/"+issueKey+"/transitions", body, nil)
	}
	// Without a transition the event becomes a comment on the issue.
	last := ""
	if n := len(inc.Timeline); n > 0 {
		e := inc.Timeline[n-1]
		last = fmt.Sprintf(" (%s: %s %s)", e.Who, e.What, e.Detail)
	}
	body, _ := json.Marshal(map[string]string{"body": fmt.Sprintf("tsdb: incident %s %s, status %s, priority %s%s",
		inc.ID, ev.Event, inc.Status, inc.Priority, last)})
	return o.send(ctx, r, it.ID, ev.Event, base+"/rest/api/2/issue/"+issueKey+"/comment", body, nil)
}

// Register exposes the outbox depth per receiver.
func (m *Manager) Register(reg prometheus.Registerer) {
	for name := range m.outbox.receivers {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tsdb_itsm_outbox_pending",
			Help: "Incident events waiting to be delivered, per receiver.", ConstLabels: prometheus.Labels{"receiver": name}},
			func() float64 { return float64(m.outbox.Pending()[name]) }))
	}
}

// Pending is the number of undelivered events per receiver.
func (o *Outbox) Pending() map[string]int {
	if q := o.q.Load(); q != nil {
		return q.Pending()
	}
	return map[string]int{}
}

func payload(r Receiver, event string, inc *Incident) ([]byte, error) {
	switch r.Type {
	case "pagerduty":
		action := "trigger"
		switch event {
		case "acknowledged":
			action = "acknowledge"
		case "resolved", "closed":
			action = "resolve"
		}
		sev := map[string]string{"P1": "critical", "P2": "error", "P3": "warning", "P4": "info", "P5": "info"}[inc.Priority]
		links := []map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(inc.Links)) {
			links = append(links, map[string]string{"href": inc.Links[k], "text": k})
		}
		return json.Marshal(map[string]any{
			"links":        links,
			"routing_key":  r.RoutingKey,
			"event_action": action,
			"dedup_key":    inc.Tenant + "/" + inc.ID,
			"payload": map[string]any{
				"summary":   fmt.Sprintf("[%s] %s", inc.Priority, inc.Title),
				"source":    inc.CI,
				"severity":  sev,
				"timestamp": inc.OpenedAt.UTC().Format(time.RFC3339),
				"group":     inc.OwnerGroup,
				"custom_details": map[string]any{
					"incident": inc.ID, "status": inc.Status, "event": event, "urgency": inc.Urgency, "impact": inc.Impact,
					"recipients": inc.Recipients, "kind": inc.Kind, "details": inc.Details, "probable_causes": inc.ProbableCauses,
				},
			},
		})
	case "servicenow":
		level := map[string]string{"high": "1", "medium": "2", "low": "3"}
		state := map[string]string{StatusOpen: "1", StatusAcknowledged: "2", StatusResolved: "6", StatusClosed: "7"}[inc.Status]
		return json.Marshal(map[string]any{
			"short_description": fmt.Sprintf("[%s] %s", inc.Priority, inc.Title),
			"description":       describe(inc),
			"impact":            level[inc.Impact],
			"urgency":           level[inc.Urgency],
			"priority":          strings.TrimPrefix(inc.Priority, "P"),
			"state":             state,
			"assignment_group":  inc.OwnerGroup,
			"cmdb_ci":           inc.CI,
			"correlation_id":    inc.Tenant + "/" + inc.ID,
			"u_tsdb_event":      event,
			"watch_list":        strings.Join(recipientList(inc), ","),
		})
	case "alertmanager":
		status := "firing"
		if inc.Status == StatusResolved || inc.Status == StatusClosed {
			status = "resolved"
		}
		var alerts []map[string]any
		for _, a := range inc.Alerts {
			st := "firing"
			if a.State == "resolved" {
				st = "resolved"
			}
			alerts = append(alerts, map[string]any{"status": st, "labels": a.Labels, "annotations": map[string]string{},
				"startsAt": inc.OpenedAt.UTC().Format(time.RFC3339), "fingerprint": inc.ID})
		}
		return json.Marshal(map[string]any{
			"version": "4", "status": status, "receiver": r.Name, "groupKey": inc.GroupKey,
			"groupLabels":       map[string]string{"incident": inc.ID},
			"commonLabels":      map[string]string{"priority": inc.Priority, "ci": inc.CI, "owner_group": inc.OwnerGroup},
			"commonAnnotations": map[string]string{"summary": inc.Title}, "alerts": alerts,
		})
	case "jira":
		// Delivery turns this into a create or a transition (see postJira).
		return json.Marshal(map[string]any{"event": event, "incident": inc})
	}
	if r.Template != "" {
		t, err := bodyTemplate(r)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, map[string]any{"Event": event, "Incident": inc}); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return json.Marshal(map[string]any{"event": event, "incident": inc})
}

// bodyTemplate parses a receiver's body template; `json` quotes a value
// as JSON (e.g. {"text": {{json .Incident.Title}}}).
func bodyTemplate(r Receiver) (*template.Template, error) {
	return template.New(r.Name).Funcs(template.FuncMap{"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}}).Parse(r.Template)
}

// recipientList is every member the incident went to, once, in order.
func recipientList(inc *Incident) []string {
	var out []string
	for _, g := range inc.PropagatedTo {
		for _, m := range inc.Recipients[g] {
			if !contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

func describe(inc *Incident) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s, owner %s, CI %s\n", inc.ID, inc.Priority, inc.Status, inc.OwnerGroup, inc.CI)
	for _, e := range inc.Timeline {
		fmt.Fprintf(&b, "%s %s: %s %s\n", e.At.UTC().Format(time.RFC3339), e.Who, e.What, e.Detail)
	}
	return b.String()
}
