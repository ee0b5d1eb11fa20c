package main

import (
	"context"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/storage"
)

// Ingest protocols, as counted by ingestStats.
var protocols = []string{"remote_write", "influx", "prometheus_import", "mqtt", "snmp"}

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
}

type snapshotAt struct {
	t      time.Time
	totals map[string]map[string]float64
}

type senderKey struct{ tenant, addr, agent string }

type sender struct {
	requests, failures int
	lastSeen           time.Time
	lastCode           int
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
	for k, v := range s.senders { // forget senders silent for a day
		if now.Sub(v.lastSeen) > 24*time.Hour {
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

// sawRequest records one remote-write request after it was answered.
func (s *ingestStats) sawRequest(tenant, addr, agent string, code int) {
	k := senderKey{tenant: tenant, addr: addr, agent: agent}
	if len(k.agent) > 120 {
		k.agent = k.agent[:120]
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
	snd.requests++
	if code >= 300 {
		snd.failures++
	}
	snd.lastSeen, snd.lastCode = s.now(), code
}

// ingestSource is one row of the sources table.
type ingestSource struct {
	Kind      string     `json:"kind"` // snmp, mqtt, remote_write
	Name      string     `json:"name"`
	Up        bool       `json:"up"`
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

// ingestStatus answers /api/v1/status/ingest for a tenant: its active
// series, ingest rates by protocol over the last minute and the health of
// the sources that write into it.
func ingestStatus(s *ingestStats, db *storage.DB, cfg *fileConfig, gather prometheus.Gatherer, started time.Time) func(tenant string) any {
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
			sources = append(sources, ingestSource{
				Kind: "remote_write", Name: k.addr, UserAgent: k.agent, LastSeen: &seen,
				Up: v.lastCode < 300 && now.Sub(seen) < 2*time.Minute, Requests: v.requests, Failures: v.failures, LastCode: v.lastCode,
			})
		}
		s.mu.Unlock()
		sources = append(sources, configuredSources(cfg, tenant, gather)...)
		sort.Slice(sources, func(i, j int) bool {
			if sources[i].Kind != sources[j].Kind {
				return sources[i].Kind < sources[j].Kind
			}
			return sources[i].Name < sources[j].Name
		})
		return map[string]any{
			"tenant":        tenant,
			"active_series": db.TenantSeries(tenant),
			"ingest": map[string]any{
				"samples_per_second": total,
				"by_protocol":        rates,
			},
			"sources":        sources,
			"uptime_seconds": int64(now.Sub(started).Seconds()),
		}
	}
}

// configuredSources are the SNMP targets and MQTT brokers writing into
// tenant, with their state from the self-monitoring gauges. Broker URLs
// are shown without any user information.
func configuredSources(cfg *fileConfig, tenant string, gather prometheus.Gatherer) []ingestSource {
	gauges := map[string]map[string]float64{"tsdb_snmp_up": {}, "tsdb_mqtt_connected": {}}
	if mfs, err := gather.Gather(); err == nil {
		for _, mf := range mfs {
			g, ok := gauges[mf.GetName()]
			if !ok {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "target" || lp.GetName() == "broker" {
						g[lp.GetValue()] = m.GetGauge().GetValue()
					}
				}
			}
		}
	}
	var out []ingestSource
	if cfg.SNMP != nil && tenantOr(cfg.SNMP.Tenant) == tenant {
		for _, t := range cfg.SNMP.Targets {
			name := t.Name
			if name == "" {
				name = t.Address
			}
			out = append(out, ingestSource{Kind: "snmp", Name: name, Up: gauges["tsdb_snmp_up"][name] == 1})
		}
	}
	for _, m := range cfg.MQTT {
		if tenantOr(m.Tenant) != tenant {
			continue
		}
		u, err := url.Parse(m.Broker)
		if err != nil {
			continue
		}
		switch u.Scheme { // as the subscriber names its broker
		case "tcp":
			u.Scheme = "mqtt"
		case "ssl", "mqtts":
			u.Scheme = "tls"
		}
		up := gauges["tsdb_mqtt_connected"][u.Redacted()] == 1
		u.User = nil
		out = append(out, ingestSource{Kind: "mqtt", Name: u.String(), Up: up})
	}
	return out
}

func tenantOr(t string) string {
	if t == "" {
		return tenancy.Default
	}
	return t
}
