package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const exposition = `# HELP tsdb_cluster_partition_lag Records of a partition produced but not yet committed.
# TYPE tsdb_cluster_partition_lag gauge
tsdb_cluster_partition_lag{partition="0",zone="zone-a"} 12
tsdb_cluster_partition_lag{partition="1",zone="zone-a"} 3
tsdb_cluster_partition_lag{partition="0",zone="zone-b"} 0
tsdb_cluster_partition_lag{partition="1",zone="zone-b"} 7.5
tsdb_cluster_partition_lag_other{zone="zone-a"} 1000
tsdb_samples_written_total 1.2e+06
tsdb_odd{path="a\"b,c",zone="zone-a"} 2
`

func TestParseMetric(t *testing.T) {
	f := func(name string, match map[string]string, want float64, found bool) {
		t.Helper()
		got, ok := ParseMetric([]byte(exposition), name, match)
		require.Equal(t, found, ok, name)
		require.Equal(t, want, got, name)
	}
	f("tsdb_samples_written_total", nil, 1.2e6, true)
	f("tsdb_cluster_partition_lag", nil, 22.5, true) // not the _other metric
	f("tsdb_cluster_partition_lag", map[string]string{"zone": "zone-b"}, 7.5, true)
	f("tsdb_cluster_partition_lag", map[string]string{"zone": "zone-c"}, 0, false)
	f("tsdb_odd", map[string]string{"path": `a"b,c`, "zone": "zone-a"}, 2, true)
	f("tsdb_missing", nil, 0, false)

	require.Equal(t, map[string]float64{"zone-a": 15, "zone-b": 7.5}, ZoneLagRecords([]byte(exposition), []string{"zone-a", "zone-b"}))
}

func TestParseStatus(t *testing.T) {
	body := `{"status":"success","data":{"self":"zone-a/n2","nodes":[
	  {"zone":"zone-a","node":"n1","healthy":false,"owned":[]},
	  {"zone":"zone-a","node":"n2","healthy":true,"owned":[0,1,2,3]},
	  {"zone":"zone-b","node":"n3","healthy":true,"owned":[0,1,2,3]}],
	 "zones":[
	  {"zone":"zone-a","partitions":[
	    {"partition":0,"owner":"n2","lag":0,"readable":false},
	    {"partition":1,"owner":"n2","lag":0,"readable":true},
	    {"partition":2,"owner":"n2","lag":4,"readable":false},
	    {"partition":3,"owner":"","lag":-1,"readable":false}]},
	  {"zone":"zone-b","partitions":[
	    {"partition":0,"owner":"n3","lag":0,"readable":true},
	    {"partition":1,"owner":"n3","lag":0,"readable":true},
	    {"partition":2,"owner":"n3","lag":0,"readable":true},
	    {"partition":3,"owner":"n3","lag":0,"readable":true}]}]}}`
	st, err := ParseStatus([]byte(body))
	require.NoError(t, err)
	require.Equal(t, []int32{0, 1, 2}, st.Owned("zone-a", "n2"))
	require.Empty(t, st.Owned("zone-a", "n1"))
	require.False(t, st.Healthy("zone-a", "n1"))
	require.True(t, st.Healthy("zone-b", "n3"))
	require.False(t, st.Healthy("zone-c", "n9"))

	f := func(zone, node string, ps []int32, owned, readable bool) {
		t.Helper()
		o, r := st.Served(zone, node, ps)
		require.Equal(t, owned, o, "owned %s %s %v", zone, node, ps)
		require.Equal(t, readable, r, "readable %s %s %v", zone, node, ps)
	}
	f("zone-a", "n2", []int32{0, 1}, true, false)
	f("zone-a", "n2", []int32{1}, true, true)
	f("zone-a", "n2", []int32{1, 2}, false, false) // lag 4
	f("zone-a", "n2", []int32{3}, false, false)    // unassigned
	f("zone-a", "", []int32{0, 1}, true, false)
	f("zone-b", "", []int32{0, 1, 2, 3}, true, true)
	f("zone-b", "n3", []int32{7}, false, false) // no such partition
	f("zone-b", "n3", nil, false, false)

	_, err = ParseStatus([]byte(`{"status":"error","error":"cluster mode is off"}`))
	require.ErrorContains(t, err, "cluster mode is off")
	_, err = ParseStatus([]byte(`<html>`))
	require.Error(t, err)
}

func TestFitCostsRecoversTheCosts(t *testing.T) {
	// Two zone-a nodes storing half each, one zone-b node storing all;
	// n1 received two senders' samples, the others one each.
	const produce, store = 1.5, 4.0
	procs := []ProcCost{
		{Name: "zone-a/n1", Received: 500_000, Stored: 500_000},
		{Name: "zone-a/n2", Received: 250_000, Stored: 500_000},
		{Name: "zone-b/n3", Received: 250_000, Stored: 1_000_000},
		{Name: "kafka", CPUSeconds: 99},
	}
	for i := range procs[:3] {
		procs[i].CPUSeconds = produce*float64(procs[i].Received)/1e6 + store*float64(procs[i].Stored)/1e6
	}
	a, c := FitCosts(procs)
	require.InDelta(t, produce, a, 1e-9)
	require.InDelta(t, store, c, 1e-9)

	// Every node with the same mix: the split is not determined.
	a, c = FitCosts([]ProcCost{{Name: "x", Received: 1e6, Stored: 1e6, CPUSeconds: 5}, {Name: "y", Received: 2e6, Stored: 2e6, CPUSeconds: 10}})
	require.Zero(t, a)
	require.Zero(t, c)
}

func TestFinishAndSummarize(t *testing.T) {
	r := WriteRun{StoredSeconds: 10, Procs: []ProcCost{
		{Name: "zone-a/n1", Stored: 1_000_000, CPUSeconds: 3, RSSBytes: 150 << 20, RSSIdleBytes: 50 << 20},
		{Name: "zone-b/n3", Stored: 2_000_000, CPUSeconds: 5, RSSBytes: 250 << 20, RSSIdleBytes: 50 << 20},
		{Name: "kafka", CPUSeconds: 2},
	}}
	r.Finish(2_000_000, 1000)
	require.InDelta(t, 4.0, r.CPUPerMillion, 1e-9)
	require.InDelta(t, 5.0, r.CPUPerMillionWithBroker, 1e-9)
	require.InDelta(t, 200_000.0, r.StoredPerSec, 1e-9)
	require.InDelta(t, float64(100<<20)/500, r.Procs[0].RSSPerSeries, 1e-6) // holds half the series
	require.InDelta(t, float64(200<<20)/1000, r.Procs[1].RSSPerSeries, 1e-6)
	require.Zero(t, r.Proc("kafka").RSSPerSeries)
	require.Nil(t, r.Proc("n9"))

	l := Lag{Trace: []LagPoint{
		{T: 0, Acked: 0, Stored: map[string]int64{}, Records: map[string]float64{}},
		{T: 1, Acked: 1000, Stored: map[string]int64{"zone-a": 400, "zone-b": 900}, Records: map[string]float64{"zone-a": 6, "zone-b": 1}},
		{T: 2, Acked: 2000, Stored: map[string]int64{"zone-a": 1900, "zone-b": 1200}, Records: map[string]float64{"zone-a": 2, "zone-b": 9}},
	}}
	l.Summarize([]string{"zone-a", "zone-b"}, 1000, 2, map[string]float64{"zone-a": 2.5, "zone-b": 3})
	require.Equal(t, []ZoneLag{
		{Zone: "zone-a", MaxRecords: 6, MaxSamples: 600, MaxSeconds: 0.6, CatchUpSeconds: 0.5},
		{Zone: "zone-b", MaxRecords: 9, MaxSamples: 800, MaxSeconds: 0.8, CatchUpSeconds: 1},
	}, l.Zones)
}

func TestSizingPlan(t *testing.T) {
	in := DefaultSizing()
	in.MaxSeriesPerNode = 0
	s := Sizing{ProduceCPUPerMillion: 3, StoreCPUPerMillion: 6, BrokerCPUPerMillion: 1,
		RSSPerSeries: 4096, BytesPerSample: 1.5, KafkaBytesPerSample: 10}.Plan(in)
	require.InDelta(t, 666_666.67, s.SamplesPerSec, 0.01)
	// 0.667 M/s × (6 + 3/2) = 5 cores per zone: one 16-core node at 50 %
	// by CPU, but 10M × 4 KiB = 38 GiB of series over 32 GiB usable: 2.
	require.InDelta(t, 5.0, s.CoresPerZone, 1e-9)
	require.Equal(t, 1, s.NodesByCPU)
	require.Equal(t, 2, s.NodesByMem)
	require.Equal(t, 2, s.NodesPerZone)
	require.Equal(t, 4, s.Nodes)
	require.Equal(t, 8, s.Partitions)
	require.InDelta(t, 666_666.67*86400*30*1.5/2/1e12, s.DiskPerNodeTB, 1e-6)
	require.InDelta(t, 6.67, s.KafkaMBps, 0.01)
	require.InDelta(t, 6.666_666_7*3600*24*3/1e6, s.KafkaDiskTB, 1e-6)
	require.InDelta(t, 2.0, s.BrokerCores, 1e-9)
	require.Equal(t, 3, s.Brokers)

	// CPU-bound: more cores per sample means more nodes.
	s = Sizing{ProduceCPUPerMillion: 10, StoreCPUPerMillion: 60, RSSPerSeries: 1000}.Plan(in)
	require.Equal(t, 6, s.NodesByCPU) // 0.667 × 65 = 43.3 cores / 8 usable
	require.Equal(t, 6, s.NodesPerZone)

	// The series cap: 10M over 2M a node.
	s = Sizing{StoreCPUPerMillion: 1, RSSPerSeries: 1000}.Plan(DefaultSizing())
	require.Equal(t, 5, s.NodesBySeries)
	require.Equal(t, 5, s.NodesPerZone)
	require.Equal(t, 10, s.Nodes)
	require.Equal(t, 20, s.Partitions)
}

func TestKafkaTopicBytes(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		t.Helper()
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644))
	}
	write("tsdb-samples-0/00000000000000000000.log", 1000)
	write("tsdb-samples-0/00000000000000000000.index", 10<<20) // preallocated
	write("tsdb-samples-0/00000000000000000000.timeindex", 10<<20)
	write("tsdb-samples-11/00000000000000004711.log", 234)
	write("tsdb-samples-11/leader-epoch-checkpoint", 10)
	write("tsdb-samples-nodes-0/00000000000000000000.log", 500)
	write("__consumer_offsets-3/00000000000000000000.log", 700)
	write("meta.properties", 100)
	n, err := KafkaTopicBytes(dir, "tsdb-samples")
	require.NoError(t, err)
	require.Equal(t, int64(1234), n)
	_, err = KafkaTopicBytes(filepath.Join(dir, "missing"), "tsdb-samples")
	require.Error(t, err)
}
