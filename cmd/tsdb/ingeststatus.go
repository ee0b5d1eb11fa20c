package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/emsdb/tsdb/ingest/health"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/storage"
	"github.com/emsdb/tsdb/web"
)

// Ingest protocols, as counted by ingestStats.
var protocols = []string{"remote_write", "otlp", "influx", "prometheus_import", "jsonl", "mqtt", "snmp"}

// ingestStats counts the samples each protocol stored per tenant, keeps a
// minute of history to report rates, and remembers remote-write senders:
// the console's overview and tsdb_ingest_samples_total come from it.
type ingestStats struct {
	now     func() time.Time
	samples *prometheus.CounterVec

	mu      sync.Mutex
	totals  map[string]map[string]float64 // tenant → protocol → samples
	history []snapshotAt                  // every 5 s, the last minute
	senders map[senderKey]*sender
	polled  []polledSource // MQTT brokers and SNMP targets, set at start
}

// polledSource is a source tsdb connects to itself, with its health.
type polledSource struct {
	kind, name, tenant string
	health             func() health.State
}

// addSource registers a configured source (an MQTT broker, an SNMP
// target) for the sources table.
func (s *ingestStats) addSource(kind, name, tenant string, h func() health.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polled = append(s.polled, polledSource{kind: kind, name: name, tenant: tenant, health: h})
}

// How long remote-write senders are remembered after their last request:
// one that never succeeded (a mistyped curl) goes soon, one that wrote
// stays listed, as down, for a while after it went silent.
const (
	forgetFailedSender = 10 * time.Minute
	forgetSilentSender = time.Hour
	senderSilentAfter  = 2 * time.Minute
)

type snapshotAt struct {
	t      time.Time
	totals map[string]map[string]float64
}

// senderKey tells remote-write senders apart: by the name they give
// themselves, else by address and the product in their User-Agent.
type senderKey struct {
	protocol           string // remote_write or otlp
	tenant, addr, name string
	named              bool // name is the sender's own (X-Source-Name)
}

type sender struct {
	agent              string
	requests, failures int
	lastSeen, lastOK   time.Time
	lastCode           int
	lastErr            string
}

func newIngestStats(reg prometheus.Registerer) *ingestStats {
	s := &ingestStats{
		now: time.Now,
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tsdb_ingest_samples_total", Help: "Samples stored, by ingest protocol.",
		}, []string{"protocol"}),
		totals:  map[string]map[string]float64{},
		senders: map[senderKey]*sender{},
	}
	if reg != nil {
		reg.MustRegister(s.samples)
	}
	return s
}

// run records a snapshot every 5 s until ctx is done.
func (s *ingestStats) run(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	s.snapshot()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.snapshot()
		}
	}
}

func (s *ingestStats) snapshot() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := make(map[string]map[string]float64, len(s.totals))
	for t, m := range s.totals {
		cp[t] = make(map[string]float64, len(m))
		for p, v := range m {
			cp[t][p] = v
		}
	}
	s.history = append(s.history, snapshotAt{t: now, totals: cp})
	for len(s.history) > 1 && now.Sub(s.history[0].t) > 65*time.Second {
		s.history = s.history[1:]
	}
	for k, v := range s.senders {
		if silent := now.Sub(v.lastSeen); silent > forgetSilentSender || (v.lastOK.IsZero() && silent > forgetFailedSender) {
			delete(s.senders, k)
		}
	}
}

// wrap counts what w stores for protocol.
func (s *ingestStats) wrap(protocol string, w storage.Writer) storage.Writer {
	return &countingWriter{s: s, protocol: protocol, c: s.samples.WithLabelValues(protocol), w: w}
}

type countingWriter struct {
	s        *ingestStats
	protocol string
	c        prometheus.Counter
	w        storage.Writer
}

func (c *countingWriter) Write(ctx context.Context, tenant string, b *storage.Batch) error {
	if err := c.w.Write(ctx, tenant, b); err != nil {
		return err
	}
	n := float64(b.Len())
	c.c.Add(n)
	c.s.mu.Lock()
	m := c.s.totals[tenant]
	if m == nil {
		m = map[string]float64{}
		c.s.totals[tenant] = m
	}
	m[c.protocol] += n
	c.s.mu.Unlock()
	return nil
}

// sawRequest records one remote-write or OTLP request after it was
// answered.
func (s *ingestStats) sawRequest(r web.SenderSeen) {
	k := senderKey{protocol: r.Protocol, tenant: r.Tenant, addr: r.Addr, name: clip(r.Source, 80), named: r.Source != ""}
	if !k.named {
		k.name = product(r.UserAgent)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snd := s.senders[k]
	if snd == nil {
		if len(s.senders) >= 10000 {
			return // a flood of distinct senders is not remembered
		}
		snd = &sender{}
		s.senders[k] = snd
	}
	now := s.now()
	snd.requests++
	snd.agent = clip(r.UserAgent, 120)
	snd.lastSeen, snd.lastCode = now, r.Code
	if r.Code >= 300 {
		snd.failures++
		snd.lastErr = fmt.Sprintf("HTTP %d: %s", r.Code, clip(r.Error, 200))
	} else {
		snd.lastOK, snd.lastErr = now, ""
	}
}

// product is the first word of a User-Agent ("Prometheus/3.14.0",
// "vmagent", "curl/8.5.0"), "" when there is none.
func product(agent string) string {
	p, _, _ := strings.Cut(strings.TrimSpace(agent), " ")
	return clip(p, 60)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// ingestSource is one row of the sources table.
type ingestSource struct {
	Kind string `json:"kind"` // snmp, mqtt, remote_write
	Name string `json:"name"`
	Up   bool   `json:"up"`
	// Reason says why the source is down: its last error, or how long it
	// has been silent.
	Reason    string     `json:"reason,omitempty"`
	Since     *time.Time `json:"since,omitempty"` // in this state since
	Address   string     `json:"address,omitempty"`
	UserAgent string     `json:"user_agent,omitempty"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
	Requests  int        `json:"requests,omitempty"`
	Failures  int        `json:"failures,omitempty"`
	LastCode  int        `json:"last_code,omitempty"`
}

type protocolRate struct {
	SamplesTotal     float64 `json:"samples_total"`
	SamplesPerSecond float64 `json:"samples_per_second"`
}

// rate is tenant's ingest rate over the last minute, in samples/s.
func (s *ingestStats) rate(tenant string) float64 {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.history) == 0 {
		return 0
	}
	old := s.history[0]
	d := now.Sub(old.t).Seconds()
	if d < 1 {
		return 0
	}
	total := 0.0
	for p, cur := range s.totals[tenant] {
		total += cur - old.totals[tenant][p]
	}
	return total / d
}

// ingestStatus answers /api/v1/status/ingest for a tenant: its active
// series, ingest rates by protocol over the last minute and the health of
// the sources that write into it.
func ingestStatus(s *ingestStats, activeSeries func(tenant string) int, started time.Time) func(tenant string) any {
	return func(tenant string) any {
		now := s.now()
		rates := map[string]protocolRate{}
		total := 0.0
		s.mu.Lock()
		for _, p := range protocols {
			cur := s.totals[tenant][p]
			r := protocolRate{SamplesTotal: cur}
			if len(s.history) > 0 {
				old := s.history[0]
				if d := now.Sub(old.t).Seconds(); d >= 1 {
					r.SamplesPerSecond = (cur - old.totals[tenant][p]) / d
				}
			}
			total += r.SamplesPerSecond
			rates[p] = r
		}
		sources := []ingestSource{}
		for k, v := range s.senders {
			if k.tenant != tenant {
				continue
			}
			seen := v.lastSeen
			src := ingestSource{
				Kind: k.protocol, Name: senderName(k), Address: k.addr, UserAgent: v.agent, LastSeen: &seen,
				Up: v.lastCode < 300, Reason: v.lastErr, Requests: v.requests, Failures: v.failures, LastCode: v.lastCode,
			}
			if silent := now.Sub(seen); src.Up && silent > senderSilentAfter {
				src.Up, src.Reason = false, fmt.Sprintf("silent for %s", silent.Round(time.Second))
			}
			sources = append(sources, src)
		}
		for _, p := range s.polled {
			if p.tenant != tenant {
				continue
			}
			h := p.health()
			src := ingestSource{Kind: p.kind, Name: p.name, Up: h.Up, Reason: h.Reason}
			if !h.Since.IsZero() {
				src.Since = &h.Since
			}
			sources = append(sources, src)
		}
		s.mu.Unlock()
		sort.Slice(sources, func(i, j int) bool {
			if sources[i].Kind != sources[j].Kind {
				return sources[i].Kind < sources[j].Kind
			}
			return sources[i].Name < sources[j].Name
		})
		return map[string]any{
			"tenant":        tenant,
			"active_series": activeSeries(tenant),
			"ingest": map[string]any{
				"samples_per_second": total,
				"by_protocol":        rates,
			},
			"sources":        sources,
			"uptime_seconds": int64(now.Sub(started).Seconds()),
		}
	}
}

// senderName is how the sources table names a remote-write sender: the
// name it gave itself, else its product and address ("Prometheus/3.14.0
// at 10.0.0.7"), else its address.
func senderName(k senderKey) string {
	switch {
	case k.named:
		return k.name
	case k.name == "":
		return k.addr
	}
	return k.name + " at " + k.addr
}

func tenantOr(t string) string {
	if t == "" {
		return tenancy.Default
	}
	return t
}
