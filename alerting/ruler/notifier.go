package ruler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
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
	Dropped  int
}

// NewAlertmanagers starts a sender to the given base URLs.
func NewAlertmanagers(urls []string, external map[string]string, log *slog.Logger) *Alertmanagers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Alertmanagers{urls: urls, external: external, client: &http.Client{Timeout: 10 * time.Second},
		queue: make(chan []*Alert, 1000), log: log, done: make(chan struct{})}
	go a.loop()
	return a
}

// Send queues alerts for delivery.
func (a *Alertmanagers) Send(alerts []*Alert) {
	for {
		select {
		case a.queue <- alerts:
			return
		default:
			select {
			case <-a.queue:
				a.Dropped++
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
			return
		}
		if attempt == 3 {
			a.log.Warn("alertmanager unreachable; alerts will be resent", "url", url, "err", err)
			return
		}
		time.Sleep(backoff)
		backoff *= 2
	}
}
