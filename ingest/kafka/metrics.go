package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the cluster's write path in /metrics, shared by a node's
// Producer and Consumer.
type Metrics struct {
	produceDuration prometheus.Histogram
	produceErrors   prometheus.Counter
	produced        prometheus.Counter
	consumed        prometheus.Counter
	skipped         *prometheus.CounterVec
	writeRetries    prometheus.Counter
	lag             *prometheus.GaugeVec
	owned           prometheus.Gauge

	// The read path.
	partitionLag   *prometheus.GaugeVec
	fanoutDuration prometheus.Histogram
	peerDuration   prometheus.Histogram
	peerErrors     prometheus.Counter
	unavailable    prometheus.Counter
	partial        prometheus.Counter

	// Leadership and the replicated state.
	leader        prometheus.Gauge
	leaderTerms   prometheus.Counter
	stateProduced prometheus.Counter
	stateApplied  prometheus.Counter
	stateErrors   prometheus.Counter
}

// NewMetrics makes the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		produceDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tsdb_cluster_produce_duration_seconds",
			Help:    "Time from a write's hand-over to Kafka until Kafka acknowledged all its records (acks=all), successful writes only.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		produceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_produce_errors_total",
			Help: "Writes that Kafka did not acknowledge in time (answered 503).",
		}),
		produced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_records_produced_total",
			Help: "Records Kafka acknowledged.",
		}),
		consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_records_consumed_total",
			Help: "Records consumed and written to local storage.",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tsdb_cluster_records_skipped_total",
			Help: "Records consumed but not written: reason=malformed for one that does not decode, rejected for one local storage refused (invalid, or over a series limit).",
		}, []string{"reason"}),
		writeRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_write_retries_total",
			Help: "Local writes of consumed records retried because storage could not take them (a full disk); the partition waits meanwhile.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tsdb_cluster_consumer_lag_records",
			Help: "Records of an owned partition behind its high watermark, after the last fetch was written.",
		}, []string{"partition"}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tsdb_cluster_partitions_owned",
			Help: "Partitions this node consumes in its zone.",
		}),
		partitionLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tsdb_cluster_partition_lag",
			Help: "Records of a partition produced but not yet committed by its owner in a zone's consumer group (end offset minus committed offset), as this node last saw them.",
		}, []string{"zone", "partition"}),
		fanoutDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tsdb_cluster_read_duration_seconds",
			Help:    "Time of one read across the cluster (a select or label listing): planning, asking the nodes, retries.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		peerDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tsdb_cluster_peer_request_duration_seconds",
			Help:    "Time of one internal read request to another node, until its answer is read.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		peerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_peer_errors_total",
			Help: "Internal read requests to another node that failed (the read was planned again without it).",
		}),
		unavailable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_reads_unavailable_total",
			Help: "Reads refused because a partition had no healthy owner in any zone (503).",
		}),
		partial: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_reads_partial_total",
			Help: "Reads answered without some partitions, as the request allowed (partial_response=true).",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tsdb_cluster_leader",
			Help: "1 while this node is the cluster's leader (it runs rules, ITSM and KPIs), else 0.",
		}),
		leaderTerms: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_leader_terms_total",
			Help: "Times this node became the leader.",
		}),
		stateProduced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_state_records_produced_total",
			Help: "Changes of the leader's state (ITSM, rule groups) this node wrote to the state topic.",
		}),
		stateApplied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_state_records_applied_total",
			Help: "Records of the state topic applied to this node's key-value store.",
		}),
		stateErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsdb_cluster_state_errors_total",
			Help: "State changes not written to the state topic (the change failed), or records not applied locally.",
		}),
	}
	m.skipped.WithLabelValues("malformed")
	m.skipped.WithLabelValues("rejected")
	if reg != nil {
		reg.MustRegister(m.produceDuration, m.produceErrors, m.produced, m.consumed, m.skipped, m.writeRetries, m.lag, m.owned,
			m.partitionLag, m.fanoutDuration, m.peerDuration, m.peerErrors, m.unavailable, m.partial,
			m.leader, m.leaderTerms, m.stateProduced, m.stateApplied, m.stateErrors)
	}
	return m
}
