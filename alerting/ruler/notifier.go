package ruler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/alerting/outbox"
)

// Alertmanagers sends alerts to Alertmanager's API v2 (POST
// /api/v2/alerts) of every configured instance through a durable outbox
// (package outbox): one queue per Alertmanager, delivered in order,
// retried with exponential backoff while an Alertmanager is down, kept in
// the store across restarts. Send never blocks on the network. A queue
// holds at most 1000 batches; beyond that the oldest is dropped (and
// counted). A batch an Alertmanager refuses as malformed (4xx other than
// 408 and 429) is dropped and counted as rejected, so that it does not
// hold up the ones behind it.
type Alertmanagers struct {
	urls     []string
	external map[string]string
	client   *http.Client
	log      *slog.Logger
	ob       *outbox.Outbox
	sent     *prometheus.CounterVec
}

// amPrefix is where undelivered batches live in the Store; the queue of
// an Alertmanager is its base URL (see package outbox for the layout).
const amPrefix = "notifier/alertmanager/"

// amMaxPending bounds each Alertmanager's queue, in batches.
const amMaxPending = 1000

// OpenAlertmanagers starts a sender to the given base URLs whose
// undelivered batches are kept in st (storage.DB) under
// "notifier/alertmanager/": after a restart, what was not delivered is
// delivered first. external labels are added to every alert that lacks
// them. Close it before closing st.
func OpenAlertmanagers(urls []string, external map[string]string, st Store, log *slog.Logger) (*Alertmanagers, error) {
	return openAlertmanagers(urls, external, st, log, 0, 0)
}

// NewAlertmanagers is OpenAlertmanagers on a store in memory: in order
// and retried, but what is undelivered when the process stops is lost.
// Use OpenAlertmanagers to keep it.
func NewAlertmanagers(urls []string, external map[string]string, log *slog.Logger) *Alertmanagers {
	a, err := openAlertmanagers(urls, external, outbox.NewMemStore(), log, 0, 0)
	if err != nil {
		// NB: only a failing store makes Open fail, and MemStore does not fail.
		panic(fmt.Sprintf("ruler: alertmanager outbox in memory: %v", err))
	}
	return a
}

// openAlertmanagers is OpenAlertmanagers with the outbox's backoff (zero:
// its defaults, 500ms doubling to 1m).
func openAlertmanagers(urls []string, external map[string]string, st Store, log *slog.Logger, minBackoff, maxBackoff time.Duration) (*Alertmanagers, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	urls = slices.Compact(slices.Sorted(slices.Values(urls)))
	a := &Alertmanagers{urls: urls, external: external, client: &http.Client{Timeout: 10 * time.Second}, log: log,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tsdb_notifications_total",
			Help: "Attempts to post an alert batch to Alertmanager, by Alertmanager and result (sent; failed: retried later; rejected: refused as malformed, dropped)."},
			[]string{"alertmanager", "result"})}
	ob, err := outbox.Open(st, outbox.Options{Prefix: amPrefix, Queues: urls, Deliver: a.post, MaxPending: amMaxPending,
		MinBackoff: minBackoff, MaxBackoff: maxBackoff, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("alertmanager notifier: %w", err)
	}
	a.ob = ob
	return a, nil
}

// Register exposes the notifier's queue depths, drops and deliveries.
func (a *Alertmanagers) Register(reg prometheus.Registerer) {
	reg.MustRegister(a.sent,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tsdb_notifications_dropped_total",
			Help: "Alert batches dropped: the queue of an Alertmanager was full, or it refused them as malformed."},
			func() float64 { return float64(a.Dropped()) }))
	for _, u := range a.urls {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tsdb_notification_queue_length",
			Help: "Alert batches waiting to be delivered to an Alertmanager.", ConstLabels: prometheus.Labels{"alertmanager": u}},
			func() float64 { return float64(a.ob.Pending()[u]) }))
	}
}

// Dropped is how many batches were dropped, over all Alertmanagers.
func (a *Alertmanagers) Dropped() int64 {
	var n int64
	for _, d := range a.ob.Dropped() {
		n += d
	}
	return n
}

// Pending is the number of batches waiting per Alertmanager.
func (a *Alertmanagers) Pending() map[string]int { return a.ob.Pending() }

// Send stores alerts for delivery to every Alertmanager.
func (a *Alertmanagers) Send(alerts []*Alert) {
	payload, err := json.Marshal(a.apiAlerts(alerts))
	if err != nil {
		a.log.Error("encode alerts", "err", err)
		return
	}
	for _, u := range a.urls {
		if _, err := a.ob.Enqueue(u, "alerts", "alerts", payload); err != nil {
			a.log.Error("queue alerts for alertmanager", "url", u, "alerts", len(alerts), "err", err)
		}
	}
}

// Close delivers what it can until ctx is done, without waiting for an
// Alertmanager that is failing, then stops; what is undelivered stays in
// the store for the next start.
func (a *Alertmanagers) Close(ctx context.Context) {
	if err := a.ob.Drain(ctx); err != nil {
		a.log.Info("alerts left undelivered until the next start", "pending", a.ob.Pending(), "reason", err)
	}
	a.ob.Close()
}

type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (a *Alertmanagers) apiAlerts(batch []*Alert) []amAlert {
	body := make([]amAlert, 0, len(batch))
	for _, al := range batch {
		lb := labels.NewBuilder(al.Labels)
		for k, v := range a.external {
			if al.Labels.Get(k) == "" {
				lb.Set(k, v)
			}
		}
		// startsAt is when the alert fired (the specification's FiredAt).
		starts := al.FiredAt
		if starts.IsZero() {
			starts = al.ActiveAt
		}
		x := amAlert{Labels: lb.Labels().Map(), Annotations: al.Annotations.Map(), StartsAt: starts, GeneratorURL: al.GeneratorURL}
		if al.State == StateInactive {
			x.EndsAt = al.ResolvedAt
		} else {
			x.EndsAt = al.ValidUntil
		}
		body = append(body, x)
	}
	return body
}

// post is the outbox's DeliverFunc: one batch to one Alertmanager.
func (a *Alertmanagers) post(ctx context.Context, it outbox.Item) error {
	base := it.Queue
	url := strings.TrimSuffix(base, "/") + "/api/v2/alerts"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(it.Body))
	if err != nil {
		return outbox.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		a.sent.WithLabelValues(base, "failed").Inc()
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c/100 == 2:
		a.sent.WithLabelValues(base, "sent").Inc()
		return nil
	case c/100 == 4 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests:
		a.sent.WithLabelValues(base, "rejected").Inc()
		return outbox.Permanent(fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(msg)))
	}
	a.sent.WithLabelValues(base, "failed").Inc()
	return fmt.Errorf("%s: %s", url, resp.Status)
}
