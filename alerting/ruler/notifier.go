package ruler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/prometheus/client_golang/prometheus"
)

// Alertmanagers sends alerts to Alertmanager's /api/v2/alerts, to every
// configured instance, retrying with backoff. Send never blocks: a full
// queue drops the oldest batch (and counts it).
type Alertmanagers struct {
	urls     []string
	external map[string]string
	client   *http.Client
	queue    chan []*Alert
	log      *slog.Logger
	done     chan struct{}
	dropped  atomic.Int64
	sent     *prometheus.CounterVec
}

// NewAlertmanagers starts a sender to the given base URLs.
func NewAlertmanagers(urls []string, external map[string]string, log *slog.Logger) *Alertmanagers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Alertmanagers{urls: urls, external: external, client: &http.Client{Timeout: 10 * time.Second},
		queue: make(chan []*Alert, 1000), log: log, done: make(chan struct{}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tsdb_notifications_total",
			Help: "Alert batches posted to Alertmanager, by Alertmanager and result (sent, failed)."}, []string{"alertmanager", "result"})}
	go a.loop()
	return a
}

// Register exposes the notifier's queue depth, drops and deliveries.
func (a *Alertmanagers) Register(reg prometheus.Registerer) {
	reg.MustRegister(a.sent,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tsdb_notification_queue_length",
			Help: "Alert batches waiting to be sent to Alertmanager."}, func() float64 { return float64(len(a.queue)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tsdb_notifications_dropped_total",
			Help: "Alert batches dropped because the queue was full."}, func() float64 { return float64(a.dropped.Load()) }))
}

// Dropped is how many batches a full queue dropped.
func (a *Alertmanagers) Dropped() int64 { return a.dropped.Load() }

// Send queues alerts for delivery.
func (a *Alertmanagers) Send(alerts []*Alert) {
	for {
		select {
		case a.queue <- alerts:
			return
		default:
			select {
			case <-a.queue:
				a.dropped.Add(1)
			default:
			}
		}
	}
}

// Close stops after delivering what is queued (bounded by ctx).
func (a *Alertmanagers) Close(ctx context.Context) {
	close(a.queue)
	select {
	case <-a.done:
	case <-ctx.Done():
	}
}

type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (a *Alertmanagers) loop() {
	defer close(a.done)
	for batch := range a.queue {
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
		payload, err := json.Marshal(body)
		if err != nil {
			a.log.Error("encode alerts", "err", err)
			continue
		}
		for _, u := range a.urls {
			a.post(u, payload)
		}
	}
}

func (a *Alertmanagers) post(base string, payload []byte) {
	url := strings.TrimSuffix(base, "/") + "/api/v2/alerts"
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := func() error {
			resp, err := a.client.Post(url, "application/json", bytes.NewReader(payload))
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("%s", resp.Status)
			}
			return nil
		}()
		if err == nil {
			a.sent.WithLabelValues(base, "sent").Inc()
			return
		}
		if attempt == 3 {
			a.sent.WithLabelValues(base, "failed").Inc()
			a.log.Warn("alertmanager unreachable; alerts will be resent", "url", url, "err", err)
			return
		}
		time.Sleep(backoff)
		backoff *= 2
	}
}
