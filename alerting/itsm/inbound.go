package itsm

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Two-way sync: a ticketing system calls POST /api/v1/itsm/inbound/<receiver>
// when someone acknowledges, assigns, comments on or resolves the ticket
// there, and the change flows back into the incident.

func jiraIssueKey(receiver, issue string) string { return "itsm/jira/" + receiver + "/" + issue }

// InboundAction is one change a ticketing system reported.
type InboundAction struct {
	Tenant, Incident, Action, Who, Arg string
}

// ErrUnauthorized rejects an inbound webhook without valid credentials.
var ErrUnauthorized = errors.New("itsm: inbound webhook credentials missing or wrong")

// ErrForbidden rejects an inbound webhook acting for a tenant its
// receiver is not bound to (Receiver.Tenants).
var ErrForbidden = errors.New("itsm: inbound webhook for a tenant its receiver is not bound to")

// allows reports whether the receiver's inbound webhook may act for
// tenant.
func (r Receiver) allows(tenant string) bool {
	return slices.Contains(r.Tenants, "*") || slices.Contains(r.Tenants, tenant)
}

// inboundTenant resolves the tenant a webhook names ("" for none): the
// receiver's first, or a tenant it is bound to.
func (r Receiver) inboundTenant(want string) (string, error) {
	if want == "" {
		if len(r.Tenants) == 0 || r.Tenants[0] == "*" {
			return defaultTenant, nil
		}
		return r.Tenants[0], nil
	}
	if !r.allows(want) {
		return "", fmt.Errorf("%w: receiver %s may act for %s, not for %q", ErrForbidden, r.Name, strings.Join(r.Tenants, ", "), want)
	}
	return want, nil
}

// verifyInbound checks a bearer token or an HMAC-SHA256 signature of body
// made with the receiver's inbound secret.
func verifyInbound(secret string, header func(string) string, body []byte) bool {
	if secret == "" {
		return false
	}
	if tok, ok := strings.CutPrefix(header("Authorization"), "Bearer "); ok {
		return subtle.ConstantTimeCompare([]byte(tok), []byte(secret)) == 1
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	for _, h := range []struct{ name, prefix string }{
		{"X-PagerDuty-Signature", "v1="}, {"X-Hub-Signature", "sha256="}, {"X-Tsdb-Signature", "sha256="},
	} {
		// PagerDuty may list several signatures (key rotation).
		for _, sig := range strings.Split(header(h.name), ",") {
			if got, ok := strings.CutPrefix(strings.TrimSpace(sig), h.prefix); ok &&
				subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 {
				return true
			}
		}
	}
	return false
}

// splitRef splits "tenant/INC-000001" (a dedup key or correlation id).
func splitRef(ref string) (tenant, id string, ok bool) {
	i := strings.LastIndexByte(ref, '/')
	if i <= 0 || i == len(ref)-1 {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}

// parseInbound turns a receiver's webhook body into actions. PagerDuty,
// Jira and ServiceNow name the tenant in the reference tsdb sent them
// (outbound, receivers serve every tenant; Inbound checks the tenants
// against the receiver's); a generic body names only the incident, which
// is looked up in the request's tenant.
func (m *Manager) parseInbound(r Receiver, tenant string, body []byte) ([]InboundAction, error) {
	switch r.Type {
	case "pagerduty":
		return parsePagerDuty(body)
	case "jira":
		return m.parseJira(r, body)
	case "servicenow":
		return parseServiceNow(r, body)
	}
	var g struct {
		Incident, Action, Who, Text, Assignee string
	}
	if err := json.Unmarshal(body, &g); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %w", err)
	}
	if g.Incident == "" || g.Action == "" {
		return nil, errors.New(`want {"incident": id, "action": ack|resolve|close|assign|comment, "who", "text", "assignee"}`)
	}
	arg := g.Text
	if g.Action == "assign" {
		arg = g.Assignee
	}
	return []InboundAction{{Tenant: tenant, Incident: g.Incident, Action: g.Action, Who: g.Who, Arg: arg}}, nil
}

// parsePagerDuty reads a PagerDuty V3 webhook; the incident key is the
// dedup key tsdb sent (tenant/incident).
func parsePagerDuty(body []byte) ([]InboundAction, error) {
	var w struct {
		Event struct {
			EventType string `json:"event_type"`
			Agent     struct {
				Summary string `json:"summary"`
			} `json:"agent"`
			Data struct {
				IncidentKey string `json:"incident_key"`
				Assignees   []struct {
					Summary string `json:"summary"`
				} `json:"assignees"`
				Content  string `json:"content"`
				Incident struct {
					IncidentKey string `json:"incident_key"`
				} `json:"incident"`
			} `json:"data"`
		} `json:"event"`
	}
	if err := json.Unmarshal(body, &w); err != nil || w.Event.EventType == "" {
		return nil, fmt.Errorf("not a PagerDuty V3 webhook (event.event_type): %v", err)
	}
	d := w.Event.Data
	key := d.IncidentKey
	if key == "" {
		key = d.Incident.IncidentKey
	}
	tenant, id, ok := splitRef(key)
	if !ok {
		return nil, nil // not an incident tsdb sent
	}
	a := InboundAction{Tenant: tenant, Incident: id, Who: w.Event.Agent.Summary}
	switch w.Event.EventType {
	case "incident.acknowledged":
		a.Action = "ack"
	case "incident.resolved":
		a.Action = "resolve"
	case "incident.reassigned":
		if len(d.Assignees) == 0 {
			return nil, nil
		}
		a.Action, a.Arg = "assign", d.Assignees[0].Summary
	case "incident.annotated":
		a.Action, a.Arg = "comment", d.Content
	default:
		return nil, nil
	}
	return []InboundAction{a}, nil
}

var defaultJiraStatus = map[string]string{"In Progress": "ack", "Done": "resolve", "Resolved": "resolve", "Closed": "close"}

// parseJira reads a Jira webhook (jira:issue_updated, comment_created).
func (m *Manager) parseJira(r Receiver, body []byte) ([]InboundAction, error) {
	var w struct {
		WebhookEvent string `json:"webhookEvent"`
		User         struct {
			DisplayName string `json:"displayName"`
		} `json:"user"`
		Issue struct {
			Key string `json:"key"`
		} `json:"issue"`
		Changelog struct {
			Items []struct {
				Field    string `json:"field"`
				ToString string `json:"toString"`
			} `json:"items"`
		} `json:"changelog"`
		Comment struct {
			Body   string `json:"body"`
			Author struct {
				DisplayName string `json:"displayName"`
			} `json:"author"`
		} `json:"comment"`
	}
	if err := json.Unmarshal(body, &w); err != nil || w.WebhookEvent == "" || w.Issue.Key == "" {
		return nil, fmt.Errorf("not a Jira webhook (webhookEvent, issue.key): %v", err)
	}
	ref, err := m.st.ListKV(jiraIssueKey(r.Name, w.Issue.Key))
	if err != nil {
		return nil, err
	}
	tenant, id, ok := splitRef(string(ref[jiraIssueKey(r.Name, w.Issue.Key)]))
	if !ok {
		return nil, nil // an issue tsdb did not create
	}
	statuses := r.InboundStatus
	if statuses == nil {
		statuses = defaultJiraStatus
	}
	var out []InboundAction
	who := w.User.DisplayName
	for _, it := range w.Changelog.Items {
		switch it.Field {
		case "status":
			if act := statuses[it.ToString]; act != "" {
				out = append(out, InboundAction{Tenant: tenant, Incident: id, Action: act, Who: who})
			}
		case "assignee":
			if it.ToString != "" {
				out = append(out, InboundAction{Tenant: tenant, Incident: id, Action: "assign", Who: who, Arg: it.ToString})
			}
		}
	}
	if strings.HasPrefix(w.WebhookEvent, "comment_") || (w.WebhookEvent == "jira:issue_updated" && w.Comment.Body != "") {
		if w.Comment.Body != "" && !strings.HasPrefix(w.Comment.Body, "tsdb: ") { // not our own comments
			out = append(out, InboundAction{Tenant: tenant, Incident: id, Action: "comment", Who: w.Comment.Author.DisplayName, Arg: w.Comment.Body})
		}
	}
	return out, nil
}

var defaultServiceNowState = map[string]string{"2": "ack", "6": "resolve", "7": "close"}

// parseServiceNow reads what a ServiceNow business rule posts: the
// incident's correlation_id (the one tsdb sent) and changed fields.
func parseServiceNow(r Receiver, body []byte) ([]InboundAction, error) {
	var w struct {
		CorrelationID string `json:"correlation_id"`
		State         string `json:"state"`
		AssignedTo    string `json:"assigned_to"`
		Comments      string `json:"comments"`
		UpdatedBy     string `json:"sys_updated_by"`
	}
	if err := json.Unmarshal(body, &w); err != nil || w.CorrelationID == "" {
		return nil, fmt.Errorf("want a ServiceNow incident with correlation_id: %v", err)
	}
	tenant, id, ok := splitRef(w.CorrelationID)
	if !ok {
		return nil, nil
	}
	states := r.InboundStatus
	if states == nil {
		states = defaultServiceNowState
	}
	var out []InboundAction
	if w.AssignedTo != "" {
		out = append(out, InboundAction{Tenant: tenant, Incident: id, Action: "assign", Who: w.UpdatedBy, Arg: w.AssignedTo})
	}
	if w.Comments != "" {
		out = append(out, InboundAction{Tenant: tenant, Incident: id, Action: "comment", Who: w.UpdatedBy, Arg: w.Comments})
	}
	if act := states[w.State]; act != "" {
		out = append(out, InboundAction{Tenant: tenant, Incident: id, Action: act, Who: w.UpdatedBy})
	}
	return out, nil
}

// Inbound applies a receiver's webhook; tenant is the request's
// X-Scope-OrgID, "" when it names none. A webhook naming a tenant the
// receiver is not bound to, in its header or in any ticket reference of
// its body, is refused whole (ErrForbidden). Actions the incident is
// already past (an ack of a resolved incident) are reported as skipped,
// not failed: ticketing systems resend.
func (m *Manager) Inbound(receiver, tenant string, header func(string) string, body []byte) (applied, skipped []string, err error) {
	r, ok := m.outbox.receivers[receiver]
	if !ok || r.InboundSecret == "" {
		return nil, nil, fmt.Errorf("%w: no receiver %q with an inbound_secret", ErrNotFound, receiver)
	}
	if !verifyInbound(r.InboundSecret, header, body) {
		return nil, nil, ErrUnauthorized
	}
	if tenant, err = r.inboundTenant(tenant); err != nil {
		return nil, nil, err
	}
	acts, err := m.parseInbound(r, tenant, body)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range acts {
		if !r.allows(a.Tenant) {
			return nil, nil, fmt.Errorf("%w: receiver %s may act for %s, not for %q (incident %s)",
				ErrForbidden, r.Name, strings.Join(r.Tenants, ", "), a.Tenant, a.Incident)
		}
	}
	applied, skipped = []string{}, []string{}
	for _, a := range acts {
		who := a.Who
		if who == "" {
			who = receiver
		}
		if _, err := m.action(receiver, a.Tenant, a.Incident, a.Action, who, a.Arg, "", Closure{}); err != nil {
			if errors.Is(err, ErrNotFound) {
				skipped = append(skipped, a.Incident+" "+a.Action+": no such incident")
				continue
			}
			skipped = append(skipped, a.Incident+" "+a.Action+": "+err.Error())
			continue
		}
		applied = append(applied, a.Incident+" "+a.Action)
	}
	return applied, skipped, nil
}
