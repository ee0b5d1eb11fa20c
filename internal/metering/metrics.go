package metering

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/emsdb/tsdb/storage"
)

// Collector returns the usage as metrics (tsdb_usage_*): counters since
// the data folder was created (they survive restarts, being kept in
// storage), and the active series and bytes stored per tenant now. Each
// scrape reads today's and yesterday's counters from storage; older
// days are summed once a day.
func (m *Meter) Collector() prometheus.Collector {
	c := &collector{m: m}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("tsdb_usage_"+name, help, append([]string{"tenant"}, labels...), nil)
	}
	c.sums = map[string]*prometheus.Desc{
		SamplesIngested:   desc("samples_ingested_total", "Samples (and native histogram samples) stored, by ingest protocol, counted where the write is acknowledged.", "protocol"),
		Queries:           desc("queries_total", "Query and range-query requests answered."),
		SamplesScanned:    desc("samples_scanned_total", "Samples the query engine read (API queries, rules, KPIs)."),
		RuleEvaluations:   desc("rule_evaluations_total", "Rules evaluated."),
		AlertsSent:        desc("alerts_sent_total", "Alerts handed to the Alertmanager notifier."),
		NotificationsSent: desc("notifications_sent_total", "Incident events ITSM receivers took."),
		SeriesSeconds:     desc("series_hours_total", "Active series integrated over time, in series-hours."),
	}
	c.active = desc("active_series", "Active series now.")
	c.bytes = desc("bytes_stored", "Bytes on disk of sealed chunks, by tier, as last estimated today.", "tier")
	return c
}

type collector struct {
	m         *Meter
	sums      map[string]*prometheus.Desc
	active    *prometheus.Desc
	bytes     *prometheus.Desc
	mu        sync.Mutex
	pastUntil time.Time             // past sums the days before this one
	past      map[[2]string]float64 // tenant, name → sum
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.sums {
		ch <- d
	}
	ch <- c.active
	ch <- c.bytes
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	today := dayOf(m.opts.Now())
	recent := today.Add(-24 * time.Hour)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pastUntil.Equal(recent) {
		rows, err := m.opts.Store.Usage(time.Unix(0, 0), recent.Add(-24*time.Hour), "")
		if err != nil {
			m.opts.Logger.Warn("usage metrics: reading past usage", "err", err)
			return
		}
		c.past = map[[2]string]float64{}
		addSums(c.past, rows)
		c.pastUntil = recent
	}
	rows, err := m.opts.Store.Usage(recent, today, "")
	if err != nil {
		m.opts.Logger.Warn("usage metrics: reading recent usage", "err", err)
		return
	}
	rows = append(rows, m.pendingRows(recent, today, "")...)
	totals := make(map[[2]string]float64, len(c.past))
	for k, v := range c.past {
		totals[k] = v
	}
	addSums(totals, rows)
	for k, v := range totals {
		family, part, _ := strings.Cut(k[1], ".")
		d := c.sums[family]
		switch {
		case d == nil:
		case family == SamplesIngested:
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, k[0], part)
		case family == SeriesSeconds:
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v/3600, k[0])
		default:
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, k[0])
		}
	}
	bytes := map[[2]string]uint64{}
	for _, r := range rows {
		if family, tier, _ := strings.Cut(r.Name, "."); family == BytesStored && r.Day.Equal(today) {
			k := [2]string{r.Tenant, tier}
			bytes[k] = max(bytes[k], r.Value)
		}
	}
	for k, v := range bytes {
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(v), k[0], k[1])
	}
	if m.opts.ActiveSeries != nil {
		for t, n := range m.opts.ActiveSeries() {
			ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(n), t)
		}
	}
}

// addSums adds the sum counters of rows to totals by tenant and name.
func addSums(totals map[[2]string]float64, rows []storage.UsageRow) {
	for _, r := range rows {
		if r.Kind == storage.UsageSum {
			totals[[2]string{r.Tenant, r.Name}] += float64(r.Value)
		}
	}
}
