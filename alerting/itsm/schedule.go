package itsm

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"mime/multipart"
	"net/http"
	"net/smtp"
	"net/textproto"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emsdb/tsdb/internal/duration"
)

// ReportSchedule sends the SLA report of the day, week or month that
// just ended, at a time of day in a time zone, to webhook receivers (as
// JSON) and by e-mail (as HTML, through the itsm smtp: settings). One
// from the config file runs for every tenant that has incidents; the
// API's are a tenant's own.
type ReportSchedule struct {
	Name string `yaml:"name" json:"name"`
	// Period is day, week (Monday to Monday) or month.
	Period string `yaml:"period" json:"period"`
	// At is when the report of the period that ended goes out: HH:MM in
	// Timezone on the period's first day after it; default 08:00.
	At       string `yaml:"at" json:"at"`
	Timezone string `yaml:"timezone" json:"timezone"` // IANA; default UTC
	// Receivers name webhook receivers that get the report as JSON.
	Receivers []string `yaml:"receivers" json:"receivers,omitempty"`
	// EmailTo get the report as an HTML e-mail.
	EmailTo []string `yaml:"email_to" json:"email_to,omitempty"`
	// Lang of the e-mail's words (en, ko); default en.
	Lang   string `yaml:"lang" json:"lang,omitempty"`
	Origin `yaml:",inline"`

	loc *time.Location
	at  int // minutes after midnight
}

func (s *ReportSchedule) name() string { return s.Name }

func (s *ReportSchedule) describe() string {
	to := append(slices.Clone(s.Receivers), s.EmailTo...)
	return fmt.Sprintf("%s report at %s %s to %s", s.Period, s.At, s.Timezone, strings.Join(to, ", "))
}

func (s *ReportSchedule) check() error {
	if !reportNameRE.MatchString(s.Name) {
		return fmt.Errorf("report %q: a name of letters, digits, _ . - is required", s.Name)
	}
	switch s.Period {
	case "day", "week", "month":
	default:
		return fmt.Errorf("report %s: period %q (day, week, month)", s.Name, s.Period)
	}
	if s.At == "" {
		s.At = "08:00"
	}
	t, err := time.Parse("15:04", s.At)
	if err != nil {
		return fmt.Errorf("report %s: at %q: want HH:MM", s.Name, s.At)
	}
	s.at = t.Hour()*60 + t.Minute()
	if s.Timezone == "" {
		s.Timezone = "UTC"
	}
	if s.loc, err = time.LoadLocation(s.Timezone); err != nil {
		return fmt.Errorf("report %s: timezone %q: %w", s.Name, s.Timezone, err)
	}
	if len(s.Receivers) == 0 && len(s.EmailTo) == 0 {
		return fmt.Errorf("report %s: name receivers or email_to", s.Name)
	}
	for _, a := range s.EmailTo {
		if !strings.Contains(a, "@") || strings.ContainsAny(a, " \r\n<>,") {
			return fmt.Errorf("report %s: email_to %q is not an address", s.Name, a)
		}
	}
	switch s.Lang {
	case "", "en", "ko":
	default:
		return fmt.Errorf("report %s: lang %q (en, ko)", s.Name, s.Lang)
	}
	return nil
}

// SMTP is how reports are e-mailed (itsm smtp:).
type SMTP struct {
	// Addr is host:port of the relay.
	Addr     string            `yaml:"addr"`
	From     string            `yaml:"from"`
	Username string            `yaml:"username"`
	Password string            `yaml:"password"` // never logged
	Timeout  duration.Duration `yaml:"timeout"`  // default 30s
}

// due returns the period of s that ended last and is due by now: [from,
// to) and when it went (or goes) out.
func (s *ReportSchedule) due(now time.Time) (from, to time.Time) {
	l := now.In(s.loc)
	day := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, s.loc)
	start := func(t time.Time) time.Time { // the period's start at or before t
		switch s.Period {
		case "week":
			back := (int(t.Weekday()) + 6) % 7 // days since Monday
			return t.AddDate(0, 0, -back)
		case "month":
			return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, s.loc)
		}
		return t
	}
	prev := func(t time.Time) time.Time {
		switch s.Period {
		case "week":
			return t.AddDate(0, 0, -7)
		case "month":
			return t.AddDate(0, -1, 0)
		}
		return t.AddDate(0, 0, -1)
	}
	to = start(day)
	if now.Before(to.Add(time.Duration(s.at) * time.Minute)) {
		to = prev(to)
	}
	return prev(to), to
}

// ScheduledReport is what a schedule sends: the SLA report of the
// period, by owner group, each CI's availability and the breaches.
type ScheduledReport struct {
	Report       string         `json:"report"`
	Tenant       string         `json:"tenant"`
	Period       string         `json:"period"`
	From         time.Time      `json:"from"`
	To           time.Time      `json:"to"`
	SLA          SLAReport      `json:"sla"`
	Groups       []GroupReport  `json:"owner_groups"`
	Availability []Availability `json:"availability"`
	Breaches     []Breach       `json:"breaches"`
}

// GroupReport sums up an owner group's incidents.
type GroupReport struct {
	Group     string `json:"group"`
	Incidents int    `json:"incidents"`
	Breached  int    `json:"sla_breached"`
	MTTA      string `json:"mtta,omitempty"`
	MTTR      string `json:"mttr,omitempty"`
}

// Availability is the share of the period a CI had no open incident.
type Availability struct {
	CI           string  `json:"ci"`
	Percent      float64 `json:"availability_percent"`
	Downtime     string  `json:"downtime"`
	DowntimeSecs float64 `json:"downtime_seconds"`
	Incidents    int     `json:"incidents"`
}

// Breach is an incident whose SLA was breached.
type Breach struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Priority string `json:"priority"`
	CI       string `json:"ci"`
	What     string `json:"what"` // acknowledge, resolve or both
}

// BuildReport assembles a tenant's report of [from, to).
func (m *Manager) BuildReport(tenant, name, period string, from, to time.Time) ScheduledReport {
	r := ScheduledReport{Report: name, Tenant: tenant, Period: period, From: from, To: to,
		SLA: m.SLAReport(tenant, from, to.Add(-time.Nanosecond)), Groups: []GroupReport{}, Availability: []Availability{}, Breaches: []Breach{}}
	type acc struct {
		n, breached, acked, resolved int
		ack, res                     time.Duration
	}
	groups := map[string]*acc{}
	down := map[string][][2]time.Time{}
	counts := map[string]int{}
	for _, inc := range m.Incidents(tenant, "", "", "", time.Time{}) {
		end := to
		if inc.ResolvedAt != nil {
			end = *inc.ResolvedAt
		}
		if inc.OpenedAt.Before(to) && end.After(from) && inc.CI != "" && inc.Parent == "" {
			down[inc.CI] = append(down[inc.CI], [2]time.Time{maxTime(inc.OpenedAt, from), minTime(end, to)})
			counts[inc.CI]++
		}
		if inc.OpenedAt.Before(from) || !inc.OpenedAt.Before(to) {
			continue
		}
		g := groups[inc.OwnerGroup]
		if g == nil {
			g = &acc{}
			groups[inc.OwnerGroup] = g
		}
		g.n++
		if inc.AcknowledgedAt != nil {
			g.acked++
			g.ack += inc.AcknowledgedAt.Sub(inc.OpenedAt)
		}
		if inc.ResolvedAt != nil {
			g.resolved++
			g.res += inc.ResolvedAt.Sub(inc.OpenedAt)
		}
		if inc.SLA.AcknowledgeBreached || inc.SLA.ResolveBreached {
			g.breached++
			what := "acknowledge"
			switch {
			case inc.SLA.AcknowledgeBreached && inc.SLA.ResolveBreached:
				what = "acknowledge, resolve"
			case inc.SLA.ResolveBreached:
				what = "resolve"
			}
			r.Breaches = append(r.Breaches, Breach{ID: inc.ID, Title: inc.Title, Priority: inc.Priority, CI: inc.CI, What: what})
		}
	}
	for _, name := range sortedKeys(groups) {
		g := groups[name]
		gr := GroupReport{Group: name, Incidents: g.n, Breached: g.breached}
		if g.acked > 0 {
			gr.MTTA = FormatDuration(g.ack / time.Duration(g.acked))
		}
		if g.resolved > 0 {
			gr.MTTR = FormatDuration(g.res / time.Duration(g.resolved))
		}
		if gr.Group == "" {
			gr.Group = "—"
		}
		r.Groups = append(r.Groups, gr)
	}
	span := to.Sub(from)
	for _, ci := range sortedKeys(down) {
		d := union(down[ci])
		r.Availability = append(r.Availability, Availability{CI: ci, Percent: 100 * (1 - float64(d)/float64(span)),
			Downtime: FormatDuration(d), DowntimeSecs: d.Seconds(), Incidents: counts[ci]})
	}
	sort.SliceStable(r.Availability, func(i, j int) bool { return r.Availability[i].Percent < r.Availability[j].Percent })
	sort.Slice(r.Breaches, func(i, j int) bool { return r.Breaches[i].ID < r.Breaches[j].ID })
	return r
}

// union is the length of the union of the intervals.
func union(iv [][2]time.Time) time.Duration {
	sort.Slice(iv, func(i, j int) bool { return iv[i][0].Before(iv[j][0]) })
	var total time.Duration
	var cur [2]time.Time
	for i, x := range iv {
		if i == 0 || x[0].After(cur[1]) {
			if i > 0 {
				total += cur[1].Sub(cur[0])
			}
			cur = x
			continue
		}
		cur[1] = maxTime(cur[1], x[1])
	}
	if len(iv) > 0 {
		total += cur[1].Sub(cur[0])
	}
	return total
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

var scheduledTmpl = template.Must(template.New("extra").Parse(`
<h2>{{call .T "Owner groups"}}</h2>
<table><tr><th>{{call .T "Group"}}</th><th>{{call .T "Incidents"}}</th><th>{{call .T "SLA breached"}}</th><th>MTTA</th><th>MTTR</th></tr>
{{range .R.Groups}}<tr><td>{{.Group}}</td><td>{{.Incidents}}</td><td>{{.Breached}}</td><td>{{or .MTTA "—"}}</td><td>{{or .MTTR "—"}}</td></tr>
{{end}}</table>
<h2>{{call .T "Availability"}}</h2>
<table><tr><th>CI</th><th>{{call .T "Availability"}}</th><th>{{call .T "Downtime"}}</th><th>{{call .T "Incidents"}}</th></tr>
{{range .R.Availability}}<tr><td>{{.CI}}</td><td>{{printf "%.2f" .Percent}}%</td><td>{{.Downtime}}</td><td>{{.Incidents}}</td></tr>
{{else}}<tr><td colspan="4">100%</td></tr>{{end}}</table>
<h2>{{call .T "SLA breaches"}}</h2>
<table><tr><th>ID</th><th>{{call .T "Priority"}}</th><th>CI</th><th>{{call .T "Breached"}}</th><th>{{call .T "Title"}}</th></tr>
{{range .R.Breaches}}<tr><td>{{.ID}}</td><td>{{.Priority}}</td><td>{{.CI}}</td><td>{{.What}}</td><td>{{.Title}}</td></tr>
{{else}}<tr><td colspan="5">{{call .T "none"}}</td></tr>{{end}}</table>
`))

func init() {
	for k, v := range map[string][2]string{"Owner groups": {"Owner groups", "담당 그룹별"}, "Group": {"Group", "그룹"},
		"Incidents": {"Incidents", "인시던트"}, "SLA breached": {"SLA breached", "SLA 위반"}, "Availability": {"Availability", "가용성"},
		"Downtime": {"Downtime", "중단 시간"}, "SLA breaches": {"SLA breaches", "SLA 위반 목록"}, "Breached": {"Breached", "위반 항목"},
		"Title": {"Title", "제목"}, "none": {"none", "없음"}} {
		reportText["en"][k], reportText["ko"][k] = v[0], v[1]
	}
}

// HTML is the report as a page: the SLA report, then the groups,
// availability and breaches.
func (r ScheduledReport) HTML(lang string) ([]byte, error) {
	page, err := SLAReportHTML(r.SLA, r.Tenant)
	if err != nil {
		return nil, err
	}
	v := Viewer{Lang: lang}
	var b bytes.Buffer
	if err := scheduledTmpl.Execute(&b, map[string]any{"R": r, "T": v.t}); err != nil {
		return nil, err
	}
	return bytes.Replace(page, []byte("</body>"), append(b.Bytes(), []byte("</body>")...), 1), nil
}

// reportState is what a schedule sent last, per tenant.
type reportState struct {
	LastTo time.Time `json:"last_to"` // end of the last period sent
	SentAt time.Time `json:"sent_at"`
	Error  string    `json:"error,omitempty"` // of the last attempt
}

// reportRetryAfter is how long a schedule whose delivery failed waits
// before it tries again.
const reportRetryAfter = time.Hour

func reportStateKey(tenant, name string) string { return "itsm/" + tenant + "/reportstate/" + name }

// sendDue starts, for every schedule and tenant whose latest period was
// not sent yet, its sending in the background (at most one at a time per
// schedule and tenant). Only the latest period is sent: periods missed
// while tsdb was down are not made up.
func (m *Manager) sendDue(now time.Time) {
	m.mu.Lock()
	type job struct {
		tenant string
		s      ReportSchedule
	}
	var jobs []job
	tenants := sortedKeys(m.incidents)
	for _, s := range m.reports.config {
		for _, t := range tenants {
			jobs = append(jobs, job{t, *s})
		}
	}
	for t, byName := range m.reports.byTenant {
		for _, s := range byName {
			jobs = append(jobs, job{t, *s})
		}
	}
	var start []job
	for _, j := range jobs {
		_, to := j.s.due(now)
		k := j.tenant + "/" + j.s.Name
		if m.sending[k] || !m.reportSent[k].Before(to) || now.Before(m.reportRetry[k]) {
			continue
		}
		m.sending[k] = true
		start = append(start, j)
	}
	m.mu.Unlock()
	for _, j := range start {
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			from, to := j.s.due(now)
			err := m.sendReport(context.Background(), j.tenant, &j.s, from, to)
			m.mu.Lock()
			defer m.mu.Unlock()
			k := j.tenant + "/" + j.s.Name
			delete(m.sending, k)
			st := reportState{LastTo: to, SentAt: m.now()}
			if err != nil {
				// NB: a delivery that worked is sent again with the one
				// that failed; waiting keeps that to one copy an hour.
				st = reportState{LastTo: m.reportSent[k], Error: err.Error(), SentAt: m.now()}
				m.reportRetry[k] = m.now().Add(reportRetryAfter)
				m.log.Warn("itsm: scheduled report not sent", "report", j.s.Name, "tenant", j.tenant, "err", err, "retry_after", reportRetryAfter)
			} else {
				m.reportSent[k] = to
			}
			b, _ := json.Marshal(st)
			if err := m.st.PutKV(reportStateKey(j.tenant, j.s.Name), b); err != nil {
				m.log.Warn("itsm: report state not stored", "report", j.s.Name, "err", err)
			}
			m.reportErr[k] = st.Error
		}()
	}
}

// SendReport sends a schedule's latest period now, whether or not it was
// sent (an operator's "send again").
func (m *Manager) SendReport(ctx context.Context, tenant, name string) (ScheduledReport, error) {
	m.mu.Lock()
	p := m.reports.get(tenant, name)
	if p == nil {
		m.mu.Unlock()
		return ScheduledReport{}, fmt.Errorf("%w: no report schedule %s", ErrNotFound, name)
	}
	s := *p
	m.mu.Unlock()
	from, to := s.due(m.now())
	r := m.BuildReport(tenant, s.Name, s.Period, from, to)
	return r, m.sendReport(ctx, tenant, &s, from, to)
}

// sendReport builds the report of [from, to) and delivers it to every
// receiver and address of s; it returns the deliveries' errors joined.
func (m *Manager) sendReport(ctx context.Context, tenant string, s *ReportSchedule, from, to time.Time) error {
	r := m.BuildReport(tenant, s.Name, s.Period, from, to)
	var errs []string
	if len(s.Receivers) > 0 {
		body, err := json.Marshal(r)
		if err != nil {
			return err
		}
		for _, name := range s.Receivers {
			rc, ok := m.receiverByName(name)
			if !ok {
				errs = append(errs, "receiver "+name+" is not configured")
				continue
			}
			if err := postReport(ctx, rc, body); err != nil {
				errs = append(errs, fmt.Sprintf("receiver %s: %v", name, err))
			}
		}
	}
	if len(s.EmailTo) > 0 {
		if err := m.mailReport(r, s); err != nil {
			errs = append(errs, "e-mail: "+err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func (m *Manager) receiverByName(name string) (Receiver, bool) {
	for _, r := range m.cfg.Receivers {
		if r.Name == name {
			return r, true
		}
	}
	return Receiver{}, false
}

// postReport posts the report's JSON to a receiver's URL, signed as
// incident events are when it has a secret, three tries.
func postReport(ctx context.Context, rc Receiver, body []byte) error {
	timeout := time.Duration(rc.Timeout)
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var last error
	for try := range 3 {
		if try > 0 {
			time.Sleep(time.Duration(try) * time.Second)
		}
		c, cancel := context.WithTimeout(ctx, timeout)
		req, err := http.NewRequestWithContext(c, http.MethodPost, rc.URL, bytes.NewReader(body))
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Tsdb-Event", "report")
		if rc.Username != "" {
			req.SetBasicAuth(rc.Username, rc.Password)
		}
		if rc.Secret != "" {
			mac := hmac.New(sha256.New, []byte(rc.Secret))
			mac.Write(body)
			req.Header.Set("X-Tsdb-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		}
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			last = err
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		last = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return last
}

// mailReport e-mails the report as HTML with a plain-text part.
func (m *Manager) mailReport(r ScheduledReport, s *ReportSchedule) error {
	cfg := m.cfg.SMTP
	if cfg.Addr == "" {
		return fmt.Errorf("no itsm smtp: addr configured")
	}
	page, err := r.HTML(s.Lang)
	if err != nil {
		return err
	}
	var text strings.Builder
	fmt.Fprintf(&text, "SLA report %s, %s to %s (%s)\n\n", r.Tenant, r.From.Format(time.DateOnly), r.To.Format(time.DateOnly), s.Timezone)
	for _, p := range r.SLA.Priorities {
		fmt.Fprintf(&text, "%s: %d incidents, SLA %.1f%%, MTTA %s, MTTR %s\n", p.Priority, p.Incidents, p.Compliance, p.MTTA, p.MTTR)
	}
	for _, a := range r.Availability {
		fmt.Fprintf(&text, "%s: %.2f%% available (down %s)\n", a.CI, a.Percent, a.Downtime)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	subject := fmt.Sprintf("SLA report %s: %s %s", r.Tenant, s.Period, r.From.In(s.loc).Format(time.DateOnly))
	fmt.Fprintf(&body, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=%s\r\n\r\n",
		cfg.From, strings.Join(s.EmailTo, ", "), subject, m.now().Format(time.RFC1123Z), mw.Boundary())
	for _, part := range []struct {
		ctype string
		b     []byte
	}{{"text/plain; charset=utf-8", []byte(text.String())}, {"text/html; charset=utf-8", page}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.ctype}, "Content-Transfer-Encoding": {"8bit"}})
		if err != nil {
			return err
		}
		if _, err := w.Write(part.b); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	var auth smtp.Auth
	if cfg.Username != "" {
		host, _, _ := strings.Cut(cfg.Addr, ":")
		auth = smtp.PlainAuth("", cfg.Username, cfg.Password, host)
	}
	return smtp.SendMail(cfg.Addr, auth, cfg.From, s.EmailTo, body.Bytes())
}

// ReportSchedules lists the schedules that apply to a tenant with what
// each sent last.
func (m *Manager) ReportSchedules(tenant string) []map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []map[string]any{}
	for _, s := range m.reports.copies(tenant) {
		k := tenant + "/" + s.Name
		from, to := s.due(m.now())
		e := map[string]any{"schedule": s, "latest_period": map[string]time.Time{"from": from, "to": to}}
		if t := m.reportSent[k]; !t.IsZero() {
			e["last_sent_to"] = t
		}
		if msg := m.reportErr[k]; msg != "" {
			e["last_error"] = msg
		}
		out = append(out, e)
	}
	return out
}

// PutReportSchedule creates (create) or replaces a tenant's schedule.
func (m *Manager) PutReportSchedule(tenant, who string, s ReportSchedule, create bool) (*ReportSchedule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, name := range s.Receivers {
		if _, ok := m.receiverByName(name); !ok {
			return nil, fmt.Errorf("report %s: receiver %s is not configured", s.Name, name)
		}
	}
	if len(s.EmailTo) > 0 && m.cfg.SMTP.Addr == "" {
		return nil, fmt.Errorf("report %s: email_to needs itsm smtp: in the config file", s.Name)
	}
	return m.reports.put(m, tenant, who, s, create)
}

// DeleteReportSchedule removes a tenant's schedule.
func (m *Manager) DeleteReportSchedule(tenant, who, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reports.remove(m, tenant, who, name)
}

// loadReportState reads what the schedules sent last (at start).
func (m *Manager) loadReportState(k string, v []byte) {
	var st reportState
	if json.Unmarshal(v, &st) != nil {
		return
	}
	rest := strings.TrimPrefix(k, "itsm/")
	tenant, name, _ := strings.Cut(rest, "/reportstate/")
	m.reportSent[tenant+"/"+name] = st.LastTo
	m.reportErr[tenant+"/"+name] = st.Error
}

var reportNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
