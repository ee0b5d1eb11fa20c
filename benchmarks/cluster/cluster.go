// Package cluster measures tsdb's clustered mode (docs/cluster.md) on one
// machine: a real Kafka broker, three tsdb nodes in two zones (zone-a: n1
// and n2, zone-b: n3) and a single node fed the very same remote-write
// bodies. BenchmarkCluster (cluster_bench_test.go) runs the phases once and
// writes results.json and results.md; this file holds what it reports and
// how the figures are read and derived: the node's /metrics and
// /api/v1/status/cluster, the per-sample costs and the sizing on paper.
//
//	make bench-cluster                  # 20k series
//	make bench-cluster CLUSTER_SERIES=100000
package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emsdb/tsdb/benchmarks/queryload"
	"github.com/emsdb/tsdb/benchmarks/rwload"
)

// Report is one run of every phase.
type Report struct {
	Date           time.Time `json:"date"`
	Machine        string    `json:"machine"`
	Workload       string    `json:"workload"`
	Series         int       `json:"series"`
	Samples        int64     `json:"samples"` // sent to each of the two systems
	Partitions     int       `json:"partitions"`
	SessionTimeout string    `json:"session_timeout"`
	Kafka          string    `json:"kafka"`

	Single  WriteRun `json:"single"`
	Cluster WriteRun `json:"cluster"`
	// ProduceCPUPerMillion and StoreCPUPerMillion split a cluster node's
	// CPU into what receiving (validate, produce, wait for Kafka) and
	// storing (consume, decode, write locally) cost per million samples:
	// the least-squares fit of FitCosts over the three nodes.
	ProduceCPUPerMillion float64 `json:"produce_cpu_seconds_per_million"`
	StoreCPUPerMillion   float64 `json:"store_cpu_seconds_per_million"`

	Lag      Lag            `json:"lag"`
	Queries  []QueryCompare `json:"queries"`
	Failover *Failover      `json:"failover,omitempty"`
	Sizing   Sizing         `json:"sizing"`
	Notes    []string       `json:"notes,omitempty"`
}

// WriteRun is one ingest of the workload into one system.
type WriteRun struct {
	Name string        `json:"name"`
	Load rwload.Result `json:"load"` // as the senders saw it
	// StoredSeconds runs from the first request until every sample was
	// stored: a single node stores before it answers; a cluster when
	// every zone has consumed and written all of them.
	StoredSeconds float64 `json:"stored_seconds"`
	StoredPerSec  float64 `json:"stored_samples_per_sec"`
	// Procs are the tsdb processes, then the broker (Name "kafka").
	Procs []ProcCost `json:"procs"`
	// CPUPerMillion is the tsdb processes' CPU per million samples sent;
	// WithBroker adds the broker's.
	CPUPerMillion           float64 `json:"cpu_seconds_per_million"`
	CPUPerMillionWithBroker float64 `json:"cpu_seconds_per_million_with_broker"`
}

// ProcCost is what one process spent on one ingest.
type ProcCost struct {
	Name       string  `json:"name"`     // single, zone-a/n1…, kafka
	Received   int64   `json:"received"` // samples sent to it
	Stored     int64   `json:"stored"`   // samples written to its storage
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPerMillion is per million samples of the run (sent), so that
	// the processes of one run add up.
	CPUPerMillion float64 `json:"cpu_seconds_per_million"`
	RSSBytes      int64   `json:"rss_bytes"`
	RSSIdleBytes  int64   `json:"rss_idle_bytes"` // before the ingest
	// RSSPerSeries is the RSS grown during the ingest over the series the
	// process stores (a zone-a node holds about half of them): what a
	// series costs, without the process's fixed memory.
	RSSPerSeries float64 `json:"rss_bytes_per_series"`
	DiskBytes    int64   `json:"disk_bytes"` // after a graceful stop (Kafka: its log folder)
	// BytesPerSample is DiskBytes over the samples it stored (Kafka: the
	// samples sent, one replica).
	BytesPerSample float64 `json:"bytes_per_sample"`
}

// Finish fills the derived figures of r: per-million costs, RSS per
// series held and the totals. samples is what was sent, series how many
// series the workload has.
func (r *WriteRun) Finish(samples int64, series int) {
	m := float64(samples) / 1e6
	r.CPUPerMillion, r.CPUPerMillionWithBroker = 0, 0
	for i := range r.Procs {
		p := &r.Procs[i]
		if m > 0 {
			p.CPUPerMillion = p.CPUSeconds / m
		}
		if p.Name == "kafka" {
			r.CPUPerMillionWithBroker += p.CPUPerMillion
			continue
		}
		r.CPUPerMillion += p.CPUPerMillion
		r.CPUPerMillionWithBroker += p.CPUPerMillion
		if p.Stored > 0 && samples > 0 {
			p.RSSPerSeries = float64(p.RSSBytes-p.RSSIdleBytes) / (float64(series) * min(1, float64(p.Stored)/float64(samples)))
		}
	}
	if r.StoredSeconds > 0 {
		r.StoredPerSec = float64(samples) / r.StoredSeconds
	}
}

// SetDisk records a process's disk use and its bytes per sample.
func (p *ProcCost) SetDisk(bytes, samples int64) {
	p.DiskBytes = bytes
	if samples > 0 {
		p.BytesPerSample = float64(bytes) / float64(samples)
	}
}

// Proc returns the cost entry of the named process, or nil.
func (r *WriteRun) Proc(name string) *ProcCost {
	for i := range r.Procs {
		if r.Procs[i].Name == name {
			return &r.Procs[i]
		}
	}
	return nil
}

// FitCosts splits the nodes' CPU into a cost per million samples
// received (produce) and per million stored (consume and write): the
// least-squares solution of cpu_i = a·received_i + c·stored_i over the
// tsdb processes (no intercept: the idle cost over a minute is small
// next to the ingest's). It needs two nodes whose mix of received and
// stored differs, as zone-a's and zone-b's do; otherwise it returns 0, 0.
func FitCosts(procs []ProcCost) (produce, store float64) {
	var sxx, sxy, syy, sxc, syc float64
	for _, p := range procs {
		if p.Name == "kafka" {
			continue
		}
		x, y := float64(p.Received)/1e6, float64(p.Stored)/1e6
		sxx += x * x
		sxy += x * y
		syy += y * y
		sxc += x * p.CPUSeconds
		syc += y * p.CPUSeconds
	}
	det := sxx*syy - sxy*sxy
	if math.Abs(det) < 1e-12*max(1, sxx*syy) {
		return 0, 0
	}
	return (sxc*syy - syc*sxy) / det, (syc*sxx - sxc*sxy) / det
}

// Lag is how far the zones' consumers fell behind the acknowledged
// writes during the cluster ingest, and how long they took to catch up.
type Lag struct {
	IntervalMs int        `json:"interval_ms"` // how often it was sampled
	Zones      []ZoneLag  `json:"zones"`
	Trace      []LagPoint `json:"trace"`
}

// ZoneLag is one zone's lag figures.
type ZoneLag struct {
	Zone string `json:"zone"`
	// MaxRecords is the most tsdb_cluster_partition_lag summed over the
	// zone's partitions (Kafka records produced, not yet committed; the
	// nodes refresh it every 2 s).
	MaxRecords float64 `json:"max_records"`
	// MaxSamples is the most samples acknowledged to the senders but not
	// yet stored by the zone (tsdb_samples_written_total of its nodes).
	MaxSamples int64 `json:"max_samples"`
	// MaxSeconds is MaxSamples at the senders' mean rate: how stale the
	// zone's answers were at worst.
	MaxSeconds float64 `json:"max_seconds"`
	// CatchUpSeconds runs from the senders' last acknowledgement until
	// the zone stored every sample.
	CatchUpSeconds float64 `json:"catch_up_seconds"`
}

// LagPoint is one sample of the lag: seconds since the first request,
// samples acknowledged, and per zone samples stored and records behind.
type LagPoint struct {
	T       float64            `json:"t"`
	Acked   int64              `json:"acked"`
	Stored  map[string]int64   `json:"stored"`
	Records map[string]float64 `json:"records"`
}

// Summarize fills Zones from Trace: rate is the senders' samples/s,
// sendEnd the seconds from the start to their last acknowledgement,
// caughtUp per zone the seconds from the start until it stored all.
func (l *Lag) Summarize(zones []string, rate, sendEnd float64, caughtUp map[string]float64) {
	l.Zones = nil
	for _, z := range zones {
		zl := ZoneLag{Zone: z}
		for _, p := range l.Trace {
			zl.MaxRecords = max(zl.MaxRecords, p.Records[z])
			zl.MaxSamples = max(zl.MaxSamples, p.Acked-p.Stored[z])
		}
		if rate > 0 {
			zl.MaxSeconds = float64(zl.MaxSamples) / rate
		}
		if c, ok := caughtUp[z]; ok {
			zl.CatchUpSeconds = max(0, c-sendEnd)
		}
		l.Zones = append(l.Zones, zl)
	}
}

// ParseMetric returns the sum of a metric's series in a Prometheus text
// exposition, those whose labels include every pair of match (nil: all),
// and whether any was found.
func ParseMetric(text []byte, name string, match map[string]string) (float64, bool) {
	sum, found := 0.0, false
	for line := range bytes.SplitSeq(text, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		var lbls map[string]string
		if rest[0] == '{' {
			end := bytes.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			lbls = parseLabels(string(rest[1:end]))
			rest = rest[end+1:]
		}
		if !matches(lbls, match) {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum, found = sum+v, true
	}
	return sum, found
}

// ZoneLagRecords sums tsdb_cluster_partition_lag per zone.
func ZoneLagRecords(text []byte, zones []string) map[string]float64 {
	out := map[string]float64{}
	for _, z := range zones {
		out[z], _ = ParseMetric(text, "tsdb_cluster_partition_lag", map[string]string{"zone": z})
	}
	return out
}

// parseLabels reads `a="x",b="y"`, with the exposition's escapes.
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		name, rest, ok := strings.Cut(s, `="`)
		if !ok {
			break
		}
		var v strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(rest[i])
				}
				continue
			}
			v.WriteByte(rest[i])
		}
		out[strings.TrimSpace(name)] = v.String()
		s = strings.TrimLeft(rest[min(i+1, len(rest)):], ", ")
	}
	return out
}

func matches(lbls, want map[string]string) bool {
	for k, v := range want {
		if lbls[k] != v {
			return false
		}
	}
	return true
}

// KafkaTopicBytes is the size of a topic's record batches in a broker's
// log folder: the .log segments of its partitions' folders
// (<topic>-<partition>). NB: Kafka preallocates each segment's offset and
// time indexes (10 MiB, sparse), so the folder's apparent size says
// little; the other topics (__consumer_offsets, <topic>-nodes) are left
// out too.
func KafkaTopicBytes(logDir, topic string) (int64, error) {
	ents, err := os.ReadDir(logDir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ents {
		p, ok := strings.CutPrefix(e.Name(), topic+"-")
		if !ok || !e.IsDir() {
			continue
		}
		if _, err := strconv.Atoi(p); err != nil {
			continue // <topic>-nodes
		}
		segs, err := os.ReadDir(filepath.Join(logDir, e.Name()))
		if err != nil {
			return 0, err
		}
		for _, sg := range segs {
			if !strings.HasSuffix(sg.Name(), ".log") {
				continue
			}
			fi, err := sg.Info()
			if err != nil {
				return 0, err
			}
			n += fi.Size()
		}
	}
	return n, nil
}

// Status is the part of /api/v1/status/cluster the benchmark reads.
type Status struct {
	Nodes []struct {
		Zone    string  `json:"zone"`
		Node    string  `json:"node"`
		Healthy bool    `json:"healthy"`
		Owned   []int32 `json:"owned"`
	} `json:"nodes"`
	Zones []struct {
		Zone       string `json:"zone"`
		Partitions []struct {
			Partition int32  `json:"partition"`
			Owner     string `json:"owner"`
			Lag       int64  `json:"lag"`
			Readable  bool   `json:"readable"`
		} `json:"partitions"`
	} `json:"zones"`
}

// ParseStatus reads an /api/v1/status/cluster answer.
func ParseStatus(body []byte) (Status, error) {
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   Status `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Status{}, fmt.Errorf("status/cluster: %w", err)
	}
	if r.Status != "success" {
		return Status{}, fmt.Errorf("status/cluster: %s: %s", r.Status, r.Error)
	}
	return r.Data, nil
}

// Owned returns the partitions node owns in zone, sorted.
func (s Status) Owned(zone, node string) []int32 {
	var out []int32
	for _, z := range s.Zones {
		if z.Zone != zone {
			continue
		}
		for _, p := range z.Partitions {
			if p.Owner == node {
				out = append(out, p.Partition)
			}
		}
	}
	return out
}

// Healthy reports whether zone/node is known and healthy.
func (s Status) Healthy(zone, node string) bool {
	for _, n := range s.Nodes {
		if n.Zone == zone && n.Node == node {
			return n.Healthy
		}
	}
	return false
}

// Served reports whether every partition of ps is owned in zone by node
// with no lag (consumed up to its end offset), and whether the zone can
// read all of them whole (Readable).
func (s Status) Served(zone, node string, ps []int32) (owned, readable bool) {
	want := map[int32]bool{}
	for _, p := range ps {
		want[p] = true
	}
	owned, readable = len(ps) > 0, len(ps) > 0
	seen := 0
	for _, z := range s.Zones {
		if z.Zone != zone {
			continue
		}
		for _, p := range z.Partitions {
			if !want[p.Partition] {
				continue
			}
			seen++
			if node != "" && p.Owner != node || p.Lag != 0 {
				owned = false
			}
			if !p.Readable {
				readable = false
			}
		}
	}
	if seen != len(ps) {
		return false, false
	}
	return owned, readable
}

// QueryCompare is one dashboard query's p50 on the single node and
// through two cluster nodes: one of zone-a (half the partitions local,
// the other half asked of its peer) and zone-b's only node (every
// partition local, through the fan-out reader).
type QueryCompare struct {
	Name        string  `json:"name"`
	Series      int     `json:"series"`
	Runs        int     `json:"runs"`
	SingleP50Ms float64 `json:"single_p50_ms"`
	ZoneAP50Ms  float64 `json:"zone_a_p50_ms"`
	ZoneBP50Ms  float64 `json:"zone_b_p50_ms"`
}

// CompareQueries pairs the stats of the same queries by name.
func CompareQueries(single, zoneA, zoneB []queryload.Stat) []QueryCompare {
	byName := func(st []queryload.Stat) map[string]queryload.Stat {
		m := map[string]queryload.Stat{}
		for _, s := range st {
			m[s.Name] = s
		}
		return m
	}
	a, b := byName(zoneA), byName(zoneB)
	var out []QueryCompare
	for _, s := range single {
		out = append(out, QueryCompare{Name: s.Name, Series: s.Series, Runs: s.Runs,
			SingleP50Ms: s.P50Ms, ZoneAP50Ms: a[s.Name].P50Ms, ZoneBP50Ms: b[s.Name].P50Ms})
	}
	return out
}

// Failover is the kill -9 drill: a zone-a node killed while a writer
// writes through the others and a reader asks strong reads through the
// zone's survivor.
type Failover struct {
	Killed   string  `json:"killed"`
	Survivor string  `json:"survivor"`
	Moved    []int32 `json:"moved"` // the killed node's partitions
	// From the kill: the survivor sees the node unhealthy; owns all its
	// partitions, consumed to their end (reassigned); the zone reads them
	// whole again (never while the killed node is down: it holds their
	// history, so reads of them go to the other zone meanwhile).
	UnhealthySec  float64 `json:"kill_to_unhealthy_seconds"`
	ReassignedSec float64 `json:"kill_to_reassigned_seconds"`
	// FirstWholeSec is the first strong read through the survivor that
	// answered every acknowledged sample after the kill; Probes counts
	// them, ProbesFailed those that failed or answered short, MaxProbeMs
	// the slowest.
	FirstWholeSec float64 `json:"kill_to_first_whole_read_seconds"`
	Probes        int     `json:"probes"`
	ProbesFailed  int     `json:"probes_failed"`
	MaxProbeMs    float64 `json:"max_probe_ms"`
	// MaxGapSec is the longest time after the kill without a whole
	// answer (from the kill, or from one whole answer, to the next).
	MaxGapSec float64 `json:"max_gap_seconds"`
	// Failures are the failed or short probes: seconds after the kill
	// (negative: after the restart, counted from it) and why.
	Failures []string `json:"failures,omitempty"`
	// Writes through the other nodes during the drill.
	Writes       int     `json:"writes"`
	WritesFailed int     `json:"writes_failed"`
	MaxWriteMs   float64 `json:"max_write_ms"`
	// After restarting the killed node: until it answers /-/ready, and
	// until its zone reads every partition whole again.
	RestartReadySec    float64 `json:"restart_to_ready_seconds"`
	RestartReadableSec float64 `json:"restart_to_zone_readable_seconds"`
	// Acked samples of the drill, and what a strong read through each
	// node counted right after it and 5 s later (each should equal
	// Acked: exactly once).
	Acked        int64            `json:"acked"`
	Counted      map[string]int64 `json:"counted"`
	CountedLater map[string]int64 `json:"counted_5s_later"`
}

// SizingInput are the assumptions of the plan on paper.
type SizingInput struct {
	Series          int     `json:"series"`
	IntervalSec     float64 `json:"interval_seconds"`
	Zones           int     `json:"zones"`
	CoresPerNode    int     `json:"cores_per_node"`
	MemGiBPerNode   int     `json:"mem_gib_per_node"`
	TargetCPU       float64 `json:"target_cpu"`     // the share of a node's cores the ingest may use
	TargetMem       float64 `json:"target_mem"`     // the share of its memory the series may use
	RetentionDays   float64 `json:"retention_days"` // local
	KafkaRetentionH float64 `json:"kafka_retention_hours"`
	KafkaReplicas   int     `json:"kafka_replicas"`
	CoresPerBroker  int     `json:"cores_per_broker"`
	PartitionsPer   int     `json:"partitions_per_node"` // per node of a zone, room to grow
	// MaxSeriesPerNode caps a node's series beyond what memory allows:
	// the largest node measured here held 1M series (benchmarks/results/full).
	MaxSeriesPerNode int `json:"max_series_per_node"`
}

// DefaultSizing is the target of issue 15: 10M active series at 15 s, two
// zones, 16-core 64-GiB nodes at half load.
func DefaultSizing() SizingInput {
	return SizingInput{Series: 10_000_000, IntervalSec: 15, Zones: 2, CoresPerNode: 16, MemGiBPerNode: 64,
		TargetCPU: 0.5, TargetMem: 0.5, RetentionDays: 30, KafkaRetentionH: 24, KafkaReplicas: 3,
		CoresPerBroker: 8, PartitionsPer: 4, MaxSeriesPerNode: 2_000_000}
}

// Sizing is the plan: the inputs, the measured per-sample costs it rests
// on, and what follows.
type Sizing struct {
	In SizingInput `json:"input"`
	// Measured (this run).
	ProduceCPUPerMillion float64 `json:"produce_cpu_seconds_per_million"`
	StoreCPUPerMillion   float64 `json:"store_cpu_seconds_per_million"`
	BrokerCPUPerMillion  float64 `json:"broker_cpu_seconds_per_million"` // one replica
	RSSPerSeries         float64 `json:"rss_bytes_per_series"`
	BytesPerSample       float64 `json:"bytes_per_sample"`       // local, final
	KafkaBytesPerSample  float64 `json:"kafka_bytes_per_sample"` // one replica
	// Derived.
	SamplesPerSec    float64 `json:"samples_per_sec"`
	CoresPerZone     float64 `json:"cores_per_zone"` // produce share + store
	NodesByCPU       int     `json:"nodes_per_zone_by_cpu"`
	NodesByMem       int     `json:"nodes_per_zone_by_memory"`
	NodesBySeries    int     `json:"nodes_per_zone_by_series_cap"`
	NodesPerZone     int     `json:"nodes_per_zone"`
	Nodes            int     `json:"nodes"`
	Partitions       int     `json:"partitions"`
	DiskPerNodeTB    float64 `json:"disk_per_node_tb"`
	KafkaMBps        float64 `json:"kafka_ingress_mb_per_sec"` // one replica
	KafkaDiskTB      float64 `json:"kafka_disk_tb"`            // all replicas
	BrokerCores      float64 `json:"broker_cores"`
	Brokers          int     `json:"brokers"`
	SeriesPerNodeMil float64 `json:"series_per_node_millions"`
}

// Plan derives the sizing from in and the measured costs in s (its
// measured fields set).
func (s Sizing) Plan(in SizingInput) Sizing {
	s.In = in
	s.SamplesPerSec = float64(in.Series) / in.IntervalSec
	mps := s.SamplesPerSec / 1e6
	// Each sample is received once (by any node of any zone: the load
	// balancer spreads writes over all) and stored once per zone.
	s.CoresPerZone = mps*s.StoreCPUPerMillion + mps*s.ProduceCPUPerMillion/float64(in.Zones)
	s.NodesByCPU = int(math.Ceil(s.CoresPerZone / (float64(in.CoresPerNode) * in.TargetCPU)))
	memPerZone := float64(in.Series) * s.RSSPerSeries
	s.NodesByMem = int(math.Ceil(memPerZone / (float64(in.MemGiBPerNode) * (1 << 30) * in.TargetMem)))
	if in.MaxSeriesPerNode > 0 {
		s.NodesBySeries = (in.Series + in.MaxSeriesPerNode - 1) / in.MaxSeriesPerNode
	}
	s.NodesPerZone = max(2, s.NodesByCPU, s.NodesByMem, s.NodesBySeries) // two, so that a zone survives one node
	s.Nodes = s.NodesPerZone * in.Zones
	s.SeriesPerNodeMil = float64(in.Series) / float64(s.NodesPerZone) / 1e6
	s.Partitions = s.NodesPerZone * in.PartitionsPer
	perZone := s.SamplesPerSec * 86400 * in.RetentionDays * s.BytesPerSample
	s.DiskPerNodeTB = perZone / float64(s.NodesPerZone) / 1e12
	s.KafkaMBps = s.SamplesPerSec * s.KafkaBytesPerSample / 1e6
	s.KafkaDiskTB = s.KafkaMBps * 1e6 * 3600 * in.KafkaRetentionH * float64(in.KafkaReplicas) / 1e12
	// The measured broker served one replica, one producer and one
	// consumer group per zone; a follower replica fetches the same
	// bytes again: counted as one more leader's work per replica
	// (pessimistic).
	s.BrokerCores = mps * s.BrokerCPUPerMillion * float64(in.KafkaReplicas)
	s.Brokers = max(in.KafkaReplicas, int(math.Ceil(s.BrokerCores/(float64(in.CoresPerBroker)*in.TargetCPU))))
	return s
}
