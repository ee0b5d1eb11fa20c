package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/emsdb/tsdb/storage"
)

// storageCollector exports storage.Stats at scrape time.
type storageCollector struct {
	db    *storage.DB
	descs map[string]*prometheus.Desc
}

type statMetric struct {
	name, help string
	counter    bool
	get        func(storage.Stats) float64
}

var statMetrics = []statMetric{
	{"tsdb_samples_written_total", "Samples accepted and durable.", true, func(s storage.Stats) float64 { return float64(s.SamplesWritten) }},
	{"tsdb_samples_dropped_total", "Samples dropped because they are older than retention.", true, func(s storage.Stats) float64 { return float64(s.SamplesDropped) }},
	{"tsdb_retention_size_days_dropped_total", "Oldest days dropped to keep the data folder under --retention.max-bytes.", true, func(s storage.Stats) float64 { return float64(s.DaysDroppedBySize) }},
	{"tsdb_series_created_total", "Series created.", true, func(s storage.Stats) float64 { return float64(s.SeriesCreated) }},
	{"tsdb_active_series", "Series held by the database.", false, func(s storage.Stats) float64 { return float64(s.Series) }},
	{"tsdb_chunks_sealed_total", "Chunks written to disk.", true, func(s storage.Stats) float64 { return float64(s.ChunksSealed) }},
	{"tsdb_samples_sealed_total", "Samples in chunks written to disk.", true, func(s storage.Stats) float64 { return float64(s.SamplesSealed) }},
	{"tsdb_chunk_bytes_sealed_total", "Encoded bytes of sealed chunks, before block compression.", true, func(s storage.Stats) float64 { return float64(s.BytesSealed) }},
	{"tsdb_disk_bytes", "Bytes on disk: Pebble files plus write-ahead logs.", false, func(s storage.Stats) float64 { return float64(s.DiskBytes) }},
	{"tsdb_wal_bytes", "Bytes of write-ahead log segments.", false, func(s storage.Stats) float64 { return float64(s.WALBytes) }},
	{"tsdb_pebble_compactions_total", "Pebble compactions.", true, func(s storage.Stats) float64 { return float64(s.PebbleCompactions) }},
	{"tsdb_pebble_l0_files", "Pebble level-0 files.", false, func(s storage.Stats) float64 { return float64(s.PebbleL0Files) }},
	{"tsdb_pebble_memtable_bytes", "Bytes in Pebble memtables.", false, func(s storage.Stats) float64 { return float64(s.PebbleMemtableBytes) }},
	{"tsdb_exemplars_out_of_order_total", "Exemplars dropped as older than their series' newest.", true, func(s storage.Stats) float64 { return float64(s.ExemplarsOutOfOrder) }},
	{"tsdb_exemplars_invalid_total", "Exemplars dropped: labels too long or not UTF-8.", true, func(s storage.Stats) float64 { return float64(s.ExemplarsInvalid) }},
	{"tsdb_metadata_dropped_total", "Metric metadata dropped: invalid, or a family over --storage.metadata.max-families.", true, func(s storage.Stats) float64 { return float64(s.MetadataDropped) }},
	{"tsdb_storage_writable", "1 while storage takes writes, 0 while it refuses them because its disk is full or failing (see /-/ready for the reason).", false, func(s storage.Stats) float64 { return b2f(s.Writable) }},
}

func newStorageCollector(db *storage.DB) *storageCollector {
	c := &storageCollector{db: db, descs: map[string]*prometheus.Desc{}}
	for _, m := range statMetrics {
		c.descs[m.name] = prometheus.NewDesc(m.name, m.help, nil, nil)
	}
	return c
}

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.db.Stats()
	for _, m := range statMetrics {
		t := prometheus.GaugeValue
		if m.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(c.descs[m.name], t, m.get(st))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
