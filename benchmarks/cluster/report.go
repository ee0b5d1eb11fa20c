package cluster

import (
	"fmt"
	"strings"
)

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// Markdown renders the report as results.md.
func Markdown(r Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s; Kafka %s (one broker, KRaft, on the same host).\n\n", r.Date.Format("2006-01-02 15:04 MST"), r.Machine, r.Kafka)
	fmt.Fprintf(&b, "Workload: %s; %d samples sent to each system by %d senders. Cluster: zone-a n1, n2; zone-b n3; %d partitions, replication 1, session_timeout %s; sender i writes through node i mod 3.\n\n",
		r.Workload, r.Samples, r.Single.Load.Clients, r.Partitions, r.SessionTimeout)
	b.WriteString("NB: broker, nodes and senders share 2 cores: absolute figures mean little; the ratios cluster ÷ single carry over.\n\n")

	s, c := r.Single, r.Cluster
	b.WriteString("## Write path\n\n| | single node | cluster | cluster ÷ single |\n|---|---:|---:|---:|\n")
	row := func(name string, a, x float64, f string) {
		fmt.Fprintf(&b, "| %s | "+f+" | "+f+" | %s |\n", name, a, x, ratio(x, a))
	}
	row("samples/s acknowledged", s.Load.SamplesPerSec, c.Load.SamplesPerSec, "%.0f")
	row("samples/s stored (every zone)", s.StoredPerSec, c.StoredPerSec, "%.0f")
	row("write latency p50 ms", s.Load.LatencyP50Ms, c.Load.LatencyP50Ms, "%.1f")
	row("write latency p99 ms", s.Load.LatencyP99Ms, c.Load.LatencyP99Ms, "%.1f")
	row("CPU s per 1M samples, tsdb processes", s.CPUPerMillion, c.CPUPerMillion, "%.2f")
	row("CPU s per 1M samples, with the broker", s.CPUPerMillionWithBroker, c.CPUPerMillionWithBroker, "%.2f")
	if single := s.Proc("single"); single != nil {
		row("CPU s per 1M samples per copy (cluster: ÷ 2 zones)", single.CPUPerMillion, c.CPUPerMillion/2, "%.2f")
	}
	b.WriteString("\nPer process (CPU from /proc/<pid>/stat, user+system, from the first request until every zone stored every sample; per 1M samples sent in the run):\n\n")
	b.WriteString("| process | received | stored | CPU s | CPU s per 1M | RSS MiB idle → after | RSS grown B per series held | disk B/sample stored |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range []WriteRun{s, c} {
		for _, p := range run.Procs {
			rss, perSeries := fmt.Sprintf("%d → %d", p.RSSIdleBytes>>20, p.RSSBytes>>20), fmt.Sprintf("%.0f", p.RSSPerSeries)
			if p.Name == "kafka" {
				rss, perSeries = "–", "–"
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %.2f | %s | %s | %.2f |\n", p.Name, p.Received, p.Stored, p.CPUSeconds, p.CPUPerMillion, rss, perSeries, p.BytesPerSample)
		}
	}
	fmt.Fprintf(&b, "\nA cluster node's CPU, fitted over the three nodes (cpu = a·received + c·stored): **%.2f s per 1M samples received** (validate, encode, produce, wait for Kafka) and **%.2f s per 1M samples stored** (fetch, decode, write locally, commit).",
		r.ProduceCPUPerMillion, r.StoreCPUPerMillion)
	if single := s.Proc("single"); single != nil {
		fmt.Fprintf(&b, " The single node: %.2f s per 1M samples for both.", single.CPUPerMillion)
	}
	b.WriteString(" Kafka's disk is the topic's .log segments (snappy-compressed record batches, one replica) over the samples sent.\n")

	fmt.Fprintf(&b, "\n## Consumer lag during the cluster ingest (sampled every %d ms)\n\n", r.Lag.IntervalMs)
	b.WriteString("| zone | max records behind (tsdb_cluster_partition_lag) | max samples behind | ≈ seconds behind | catch-up after the last write s |\n|---|---:|---:|---:|---:|\n")
	for _, z := range r.Lag.Zones {
		fmt.Fprintf(&b, "| %s | %.0f | %d | %.2f | %.2f |\n", z.Zone, z.MaxRecords, z.MaxSamples, z.MaxSeconds, z.CatchUpSeconds)
	}
	b.WriteString("\nSamples behind: acknowledged to the senders minus stored by the zone's nodes (tsdb_samples_written_total); seconds behind: that at the senders' mean rate. The partition lag is as the nodes last described the groups (every 2 s).\n")

	if len(r.Queries) > 0 {
		fmt.Fprintf(&b, "\n## Dashboard queries (nocache=1, %d runs each, one at a time), p50 ms\n\n", r.Queries[0].Runs)
		b.WriteString("| query | series | single | zone-a n1 (half local) | n1 ÷ single | zone-b n3 (all local) | n3 ÷ single |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, q := range r.Queries {
			fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %s | %.1f | %s |\n", q.Name, q.Series, q.SingleP50Ms, q.ZoneAP50Ms, ratio(q.ZoneAP50Ms, q.SingleP50Ms), q.ZoneBP50Ms, ratio(q.ZoneBP50Ms, q.SingleP50Ms))
		}
		var sa, sb, ss float64
		for _, q := range r.Queries {
			ss += q.SingleP50Ms
			sa += q.ZoneAP50Ms
			sb += q.ZoneBP50Ms
		}
		fmt.Fprintf(&b, "| **sum of p50s** | | %.1f | %.1f | %s | %.1f | %s |\n", ss, sa, ratio(sa, ss), sb, ratio(sb, ss))
	}

	if f := r.Failover; f != nil {
		fmt.Fprintf(&b, "\n## Failover: kill -9 of %s (partitions %v) while a writer writes through the others\n\n", f.Killed, f.Moved)
		b.WriteString("| from | to | seconds |\n|---|---|---:|\n")
		fmt.Fprintf(&b, "| kill | %s sees it unhealthy | %.2f |\n", f.Survivor, f.UnhealthySec)
		fmt.Fprintf(&b, "| kill | its partitions owned by %s and consumed to their end (reassigned) | %.2f |\n", f.Survivor, f.ReassignedSec)
		fmt.Fprintf(&b, "| kill | first strong read through %s answering every acknowledged sample | %.2f |\n", f.Survivor, f.FirstWholeSec)
		fmt.Fprintf(&b, "| restart | the killed node ready | %.2f |\n", f.RestartReadySec)
		fmt.Fprintf(&b, "| restart | zone-a reads every partition whole again | %.2f |\n", f.RestartReadableSec)
		fmt.Fprintf(&b, "\nStrong reads through %s from the kill to the end of the drill (one every 250 ms): %d, %d failed or short, slowest %.0f ms, longest time without a whole answer %.2f s. Writes through the other nodes: %d, %d failed, slowest %.0f ms. In all %d samples acknowledged; counted by a strong read through each node right after the drill: %v, 5 s later: %v.\n",
			f.Survivor, f.Probes, f.ProbesFailed, f.MaxProbeMs, f.MaxGapSec, f.Writes, f.WritesFailed, f.MaxWriteMs, f.Acked, f.Counted, f.CountedLater)
		short := 0
		for _, x := range f.Failures {
			fmt.Fprintf(&b, "- %s\n", x)
			if strings.Contains(x, "counted") {
				short++
			}
		}
		if short > 0 {
			fmt.Fprintf(&b, "\nNB: %d of these strong reads answered success, with neither an error nor a warning, but short: a silent gap.\n", short)
		}
		b.WriteString("\nWhile the killed node is down, zone-a cannot read its former partitions whole (the node holds their history), so reads of them go to zone-b; the survivor consumes them from the committed offsets and serves new samples, and zone-a is whole again once the node is back.\n")
	}

	z := r.Sizing
	in := z.In
	fmt.Fprintf(&b, "\n## Sizing on paper: %.0fM active series at %.0f s\n\n", float64(in.Series)/1e6, in.IntervalSec)
	fmt.Fprintf(&b, "Measured here: %.2f CPU s per 1M samples received, %.2f per 1M stored, broker %.2f per 1M (one replica); %.0f B RSS per series held; %.2f B/sample on a node's disk, %.2f B/sample in Kafka.\n\n",
		z.ProduceCPUPerMillion, z.StoreCPUPerMillion, z.BrokerCPUPerMillion, z.RSSPerSeries, z.BytesPerSample, z.KafkaBytesPerSample)
	fmt.Fprintf(&b, "Assumed: %d zones, nodes of %d cores and %d GiB used to %.0f%% CPU and %.0f%% memory and at most %.1fM series each, %.0f days local retention, Kafka retention %.0f h with %d replicas on %d-core brokers, %d partitions per node of a zone.\n\n",
		in.Zones, in.CoresPerNode, in.MemGiBPerNode, 100*in.TargetCPU, 100*in.TargetMem, float64(in.MaxSeriesPerNode)/1e6, in.RetentionDays, in.KafkaRetentionH, in.KafkaReplicas, in.CoresPerBroker, in.PartitionsPer)
	b.WriteString("| | |\n|---|---:|\n")
	fmt.Fprintf(&b, "| samples/s | %.0f |\n", z.SamplesPerSec)
	fmt.Fprintf(&b, "| cores per zone (store + its share of receiving) | %.1f |\n", z.CoresPerZone)
	fmt.Fprintf(&b, "| nodes per zone by CPU / by memory / by the series cap | %d / %d / %d |\n", z.NodesByCPU, z.NodesByMem, z.NodesBySeries)
	fmt.Fprintf(&b, "| **nodes per zone (at least 2) × zones** | **%d × %d = %d** |\n", z.NodesPerZone, in.Zones, z.Nodes)
	fmt.Fprintf(&b, "| series per node | %.1fM |\n", z.SeriesPerNodeMil)
	fmt.Fprintf(&b, "| disk per node (%.0f days) | %.1f TB |\n", in.RetentionDays, z.DiskPerNodeTB)
	fmt.Fprintf(&b, "| Kafka partitions | %d |\n", z.Partitions)
	fmt.Fprintf(&b, "| Kafka ingress (one replica) | %.1f MB/s |\n", z.KafkaMBps)
	fmt.Fprintf(&b, "| Kafka disk (%.0f h × %d replicas) | %.1f TB |\n", in.KafkaRetentionH, in.KafkaReplicas, z.KafkaDiskTB)
	fmt.Fprintf(&b, "| broker cores (pessimistic) / brokers | %.1f / %d |\n", z.BrokerCores, z.Brokers)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n- %s", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}
