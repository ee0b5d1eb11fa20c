package cluster

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"

	"github.com/emsdb/tsdb/benchmarks/peer"
	"github.com/emsdb/tsdb/benchmarks/queryload"
	"github.com/emsdb/tsdb/benchmarks/rwload"
	"github.com/emsdb/tsdb/benchmarks/workload"
	"github.com/emsdb/tsdb/internal/apptest"
)

var (
	flagSeries     = flag.Int("series", 20000, "active series of the node-exporter-like workload")
	flagSamples    = flag.Int("samples", 120, "samples per series, 15 s apart")
	flagClients    = flag.Int("clients", 4, "concurrent remote-write senders")
	flagPartitions = flag.Int("partitions", 6, "partitions of the cluster's topic")
	flagSession    = flag.Duration("session-timeout", 10*time.Second, "the nodes' cluster.session_timeout (failover waits about this long)")
	flagQueryRuns  = flag.Int("query-runs", 10, "runs of each dashboard query per system (0: skip the queries)")
	flagFailover   = flag.Bool("failover", true, "run the kill -9 drill")
	flagOut        = flag.String("out", "", "folder for results.json and results.md (empty: print the table only)")
)

var zones = []string{"zone-a", "zone-b"}

// BenchmarkCluster measures the write path, the consumer lag, the query
// latency through the fan-out and the failover of a three-node cluster on
// a real Kafka broker against a single node fed the same bodies, once
// (see the package doc and docs/cluster.md, "Sizing"). Each phase is
// bounded: about 3 minutes at 20k series on 2 cores.
//
//	go test -tags pebblegozstd -run '^$' -bench Cluster -benchtime 1x -timeout 20m ./benchmarks/cluster -args -out $PWD/benchmarks/results/cluster
func BenchmarkCluster(b *testing.B) {
	var rep Report
	for b.Loop() {
		rep = runCluster(b)
	}
	b.ReportMetric(rep.Cluster.CPUPerMillion/rep.Single.CPUPerMillion, "cpu-cluster/single")
	b.ReportMetric(rep.Cluster.Load.LatencyP99Ms, "write-p99-ms")
	if rep.Failover != nil {
		b.ReportMetric(rep.Failover.ReassignedSec, "failover-s")
	}
	md := Markdown(rep)
	fmt.Print(md) // b.Log would cut it short
	if *flagOut == "" {
		return
	}
	if err := os.MkdirAll(*flagOut, 0o755); err != nil {
		b.Fatal(err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*flagOut, "results.json"), append(js, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*flagOut, "results.md"), []byte(md), 0o644); err != nil {
		b.Fatal(err)
	}
}

func runCluster(b *testing.B) Report {
	ctx := b.Context()
	series, steps, parts := *flagSeries, *flagSamples, *flagPartitions
	rep := Report{Date: time.Now().UTC(), Machine: machine(), Series: series, Partitions: parts,
		SessionTimeout: flagSession.String(), Kafka: apptest.KafkaVersion}

	k := apptest.StartKafka(b, nil)
	bin := apptest.Build(b)
	work := b.TempDir()

	const interval = 15 * time.Second
	start := time.Now().Add(-time.Duration(steps) * interval).UnixMilli()
	dataEnd := time.UnixMilli(start + int64(steps)*interval.Milliseconds())
	w, err := workload.NewNodeExporterModel(workload.Recorded, series, start, interval.Milliseconds(), 1)
	if err != nil {
		b.Fatal(err)
	}
	streams := rwload.Encode(w, steps, *flagClients, 2000)
	perStream := make([]int64, len(streams))
	for c, s := range streams {
		for _, body := range s {
			perStream[c] += int64(body.Samples)
			rep.Samples += int64(body.Samples)
		}
	}
	rep.Workload = fmt.Sprintf("node-exporter-like, recorded model, %d series (%d per host), %d samples per series at 15 s, 2000 samples per request",
		w.Len(), w.PerHost(), steps)
	qs := queryload.NodeDashboard()
	for i := range qs {
		qs[i].NoCache = true
	}

	// The single node.
	single, err := peer.Start(ctx, peer.Spec{Name: "single", Kind: peer.TSDB, Bin: bin, Args: []string{"--self-monitor.interval", "0"}}, work)
	if err != nil {
		b.Fatal(err)
	}
	rep.Single = WriteRun{Name: "single node"}
	idle, _, _ := single.RSS()
	cpu0 := mustCPU(b, single.PID())
	res, err := rwload.Send(ctx, rwload.Config{URL: single.WriteURL()}, streams)
	if err != nil {
		single.Kill()
		b.Fatalf("single node: %v", err)
	}
	sp := ProcCost{Name: "single", Received: rep.Samples, CPUSeconds: mustCPU(b, single.PID()) - cpu0, RSSIdleBytes: idle}
	rep.Single.Load, rep.Single.StoredSeconds = res, res.Seconds
	sp.RSSBytes, _, _ = single.RSS()
	written, _ := single.Metric(ctx, "tsdb_samples_written_total")
	sp.Stored = int64(written)
	var singleQ []queryload.Stat
	if *flagQueryRuns > 0 {
		if singleQ, err = queryload.Run(ctx, single.URL(), dataEnd, qs, *flagQueryRuns); err != nil {
			b.Fatalf("single node queries: %v", err)
		}
	}
	if err := single.Stop(); err != nil {
		b.Fatal(err)
	}
	sp.SetDisk(dirSize(b, single.DataDir), sp.Stored)
	rep.Single.Procs = []ProcCost{sp}
	rep.Single.Finish(rep.Samples, series)
	b.Logf("single node: %.0f samples/s, p99 %.1f ms, %.2f CPU s per 1M", res.SamplesPerSec, res.LatencyP99Ms, rep.Single.CPUPerMillion)

	// The cluster.
	names := []string{"n1", "n2", "n3"}
	nodeZone := map[string]string{"n1": "zone-a", "n2": "zone-a", "n3": "zone-b"}
	nodes := map[string]*peer.Peer{}
	for _, n := range names {
		cfg := filepath.Join(work, n+".yml")
		doc := fmt.Sprintf("cluster:\n  brokers: [%s]\n  partitions: %d\n  replication_factor: 1\n  zone: %s\n  node: %s\n  session_timeout: %s\n  secret: bench\n",
			k.Addr, parts, nodeZone[n], n, flagSession.String())
		if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
			b.Fatal(err)
		}
		p, err := peer.Start(ctx, peer.Spec{Name: n, Kind: peer.TSDB, Bin: bin, Args: []string{"--config.file", cfg, "--self-monitor.interval", "0"}}, work)
		if err != nil {
			b.Fatal(err)
		}
		nodes[n] = p
		b.Cleanup(func() { p.Kill() })
	}
	n1, n2, n3 := nodes["n1"], nodes["n2"], nodes["n3"]
	waitFor(b, 2*time.Minute, "zone-a's nodes share the partitions, zone-b's node owns them all", func() bool {
		st, err := status(ctx, n3)
		return err == nil && len(st.Owned("zone-a", "n1")) > 0 && len(st.Owned("zone-a", "n2")) > 0 &&
			len(st.Owned("zone-a", "n1"))+len(st.Owned("zone-a", "n2")) == parts && len(st.Owned("zone-b", "n3")) == parts
	})

	written0 := map[string]float64{}
	for _, n := range names {
		written0[n] = metric(ctx, nodes[n], "tsdb_samples_written_total")
	}
	pids := map[string]int{"kafka": k.PID()}
	for _, n := range names {
		pids[n] = nodes[n].PID()
	}
	rssIdle := map[string]int64{}
	for _, n := range names {
		rssIdle[n], _, _ = nodes[n].RSS()
	}
	cpuStart := map[string]float64{}
	for name, pid := range pids {
		cpuStart[name] = mustCPU(b, pid)
	}
	stored := func() map[string]int64 {
		out := map[string]int64{}
		for _, n := range names {
			out[nodeZone[n]] += int64(metric(ctx, nodes[n], "tsdb_samples_written_total") - written0[n])
		}
		return out
	}
	var acked atomic.Int64
	rep.Lag.IntervalMs = 500
	t0 := time.Now()
	stopPoll := make(chan struct{})
	var pollWG sync.WaitGroup
	pollWG.Go(func() {
		tick := time.NewTicker(time.Duration(rep.Lag.IntervalMs) * time.Millisecond)
		defer tick.Stop()
		for {
			p := LagPoint{T: time.Since(t0).Seconds(), Acked: acked.Load(), Stored: stored()}
			if text, err := get(ctx, n3.URL()+"/metrics"); err == nil {
				p.Records = ZoneLagRecords(text, zones)
			}
			rep.Lag.Trace = append(rep.Lag.Trace, p)
			select {
			case <-stopPoll:
				return
			case <-tick.C:
			}
		}
	})
	urls := []string{n1.WriteURL(), n2.WriteURL(), n3.WriteURL()}
	res, err = rwload.Send(ctx, rwload.Config{URLs: urls, Acked: &acked}, streams)
	if err != nil {
		b.Fatalf("cluster: %v", err)
	}
	sendEnd := time.Since(t0).Seconds()
	caughtUp := map[string]float64{}
	waitFor(b, 5*time.Minute, "every zone stores every sample", func() bool {
		for z, n := range stored() {
			if _, ok := caughtUp[z]; !ok && n >= rep.Samples {
				caughtUp[z] = time.Since(t0).Seconds()
			}
		}
		return len(caughtUp) == len(zones)
	})
	cpuEnd := map[string]float64{}
	for name, pid := range pids {
		cpuEnd[name] = mustCPU(b, pid)
	}
	close(stopPoll)
	pollWG.Wait()
	rep.Lag.Summarize(zones, res.SamplesPerSec, sendEnd, caughtUp)
	rep.Cluster = WriteRun{Name: "cluster", Load: res, StoredSeconds: max(caughtUp["zone-a"], caughtUp["zone-b"])}
	for i, n := range names {
		var recv int64
		for c := range streams {
			if c%len(urls) == i {
				recv += perStream[c]
			}
		}
		pc := ProcCost{Name: nodeZone[n] + "/" + n, Received: recv, CPUSeconds: cpuEnd[n] - cpuStart[n], RSSIdleBytes: rssIdle[n]}
		pc.Stored = int64(metric(ctx, nodes[n], "tsdb_samples_written_total") - written0[n])
		pc.RSSBytes, _, _ = nodes[n].RSS()
		rep.Cluster.Procs = append(rep.Cluster.Procs, pc)
	}
	rep.Cluster.Procs = append(rep.Cluster.Procs, ProcCost{Name: "kafka", CPUSeconds: cpuEnd["kafka"] - cpuStart["kafka"]})
	rep.Cluster.Finish(rep.Samples, series)
	rep.ProduceCPUPerMillion, rep.StoreCPUPerMillion = FitCosts(rep.Cluster.Procs)
	b.Logf("cluster: %.0f samples/s acknowledged, stored in every zone after %.1f s, p99 %.1f ms, %.2f CPU s per 1M (tsdb), %.2f with the broker",
		res.SamplesPerSec, rep.Cluster.StoredSeconds, res.LatencyP99Ms, rep.Cluster.CPUPerMillion, rep.Cluster.CPUPerMillionWithBroker)

	if *flagQueryRuns > 0 {
		qa, err := queryload.Run(ctx, n1.URL(), dataEnd, qs, *flagQueryRuns)
		if err != nil {
			b.Fatalf("queries through n1: %v", err)
		}
		qb, err := queryload.Run(ctx, n3.URL(), dataEnd, qs, *flagQueryRuns)
		if err != nil {
			b.Fatalf("queries through n3: %v", err)
		}
		rep.Queries = CompareQueries(singleQ, qa, qb)
	}

	var drillSamples int64
	if *flagFailover {
		rep.Failover = failover(b, nodes)
		drillSamples = rep.Failover.Acked
	}

	// Disk after a graceful stop: the nodes' (over what they stored of
	// the ingest: the drill's few samples are left out of the count, as
	// the killed node's counter restarted), and the topic's segments.
	for i, n := range names {
		if err := nodes[n].Stop(); err != nil {
			b.Fatal(err)
		}
		rep.Cluster.Procs[i].SetDisk(dirSize(b, nodes[n].DataDir), rep.Cluster.Procs[i].Stored)
	}
	kb, err := KafkaTopicBytes(k.DataDir(), "tsdb-samples")
	if err != nil {
		b.Fatal(err)
	}
	kp := rep.Cluster.Proc("kafka")
	kp.SetDisk(kb, rep.Samples+drillSamples)

	// The plan on paper rests on the zone-b node, which holds every series.
	n3c := rep.Cluster.Proc("zone-b/n3")
	rep.Sizing = Sizing{ProduceCPUPerMillion: rep.ProduceCPUPerMillion, StoreCPUPerMillion: rep.StoreCPUPerMillion,
		BrokerCPUPerMillion: kp.CPUPerMillion, RSSPerSeries: n3c.RSSPerSeries, BytesPerSample: n3c.BytesPerSample,
		KafkaBytesPerSample: kp.BytesPerSample}.Plan(DefaultSizing())
	return rep
}

// failover kills n1 (zone-a) while a writer writes through n2 and n3 and
// a reader asks strong reads through n2, then restarts it.
func failover(b *testing.B, nodes map[string]*peer.Peer) *Failover {
	ctx := b.Context()
	n1, n2, n3 := nodes["n1"], nodes["n2"], nodes["n3"]
	st, err := status(ctx, n2)
	if err != nil {
		b.Fatal(err)
	}
	f := &Failover{Killed: "zone-a/n1", Survivor: "zone-a/n2", Moved: st.Owned("zone-a", "n1"),
		Counted: map[string]int64{}, CountedLater: map[string]int64{}}
	c := &http.Client{Timeout: 30 * time.Second}
	var (
		acked     atomic.Int64
		mu        sync.Mutex
		killed    time.Time // zero until the kill
		revived   time.Time // zero until the restart
		firstOK   time.Duration
		lastOK    time.Duration // since the kill, of the last whole answer
		done      = make(chan struct{})
		wg        sync.WaitGroup
		sinceKill = func() (time.Duration, bool) {
			mu.Lock()
			defer mu.Unlock()
			return time.Since(killed), !killed.IsZero()
		}
	)
	const perWrite = 50
	wg.Go(func() { // the writer, through n2 and n3 in turn
		for i := 0; ; i++ {
			req := &prompb.WriteRequest{}
			now := time.Now().UnixMilli()
			for s := range perWrite {
				req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
					Labels:  []prompb.Label{{Name: "__name__", Value: "bench_failover"}, {Name: "s", Value: strconv.Itoa(s)}},
					Samples: []prompb.Sample{{Timestamp: now, Value: float64(i)}},
				})
			}
			u := []*peer.Peer{n2, n3}[i%2].WriteURL()
			t0 := time.Now()
			code, _, err := apptest.RemoteWrite(ctx, c, u, req)
			d := time.Since(t0)
			mu.Lock()
			f.Writes++
			if err != nil || code/100 != 2 {
				f.WritesFailed++
			} else {
				acked.Add(perWrite)
			}
			f.MaxWriteMs = max(f.MaxWriteMs, float64(d.Microseconds())/1000)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	wg.Go(func() { // strong reads through the survivor
		for {
			want := acked.Load()
			_, after := sinceKill()
			t0 := time.Now()
			n, why := countFailover(c, n2)
			d := time.Since(t0)
			if after {
				mu.Lock()
				f.Probes++
				at := time.Since(killed)
				if why == "" && n < want {
					why = fmt.Sprintf("counted %d of %d", n, want)
				}
				if why != "" {
					f.ProbesFailed++
					when := fmt.Sprintf("%.2f s after the kill", (t0.Sub(killed)).Seconds())
					if !revived.IsZero() {
						when = fmt.Sprintf("%.2f s after the restart", (t0.Sub(revived)).Seconds())
					}
					if len(f.Failures) < 10 {
						f.Failures = append(f.Failures, when+": "+why)
					}
				} else {
					if firstOK == 0 {
						firstOK = at
					}
					f.MaxGapSec = max(f.MaxGapSec, (at - lastOK).Seconds())
					lastOK = at
				}
				f.MaxProbeMs = max(f.MaxProbeMs, float64(d.Microseconds())/1000)
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	})
	time.Sleep(3 * time.Second) // the writer and reader under way
	mu.Lock()
	killed = time.Now()
	mu.Unlock()
	n1.Kill()
	var unhealthy, reassigned time.Duration
	waitFor(b, 2*time.Minute, "n1's partitions reassigned to n2", func() bool {
		st, err := status(ctx, n2)
		if err != nil {
			return false
		}
		d, _ := sinceKill()
		if unhealthy == 0 && !st.Healthy("zone-a", "n1") {
			unhealthy = d
		}
		if owned, _ := st.Served("zone-a", "n2", f.Moved); reassigned == 0 && owned {
			reassigned = d
		}
		return unhealthy > 0 && reassigned > 0
	})
	time.Sleep(2 * time.Second) // reads and writes on the survivors for a while
	f.UnhealthySec, f.ReassignedSec = unhealthy.Seconds(), reassigned.Seconds()

	t1 := time.Now()
	mu.Lock()
	revived = t1
	mu.Unlock()
	if err := n1.Revive(ctx); err != nil {
		b.Fatalf("restart n1: %v", err)
	}
	f.RestartReadySec = time.Since(t1).Seconds()
	all := make([]int32, *flagPartitions)
	for i := range all {
		all[i] = int32(i)
	}
	waitFor(b, 2*time.Minute, "zone-a reads every partition whole again", func() bool {
		st, err := status(ctx, n2)
		if err != nil {
			return false
		}
		_, readable := st.Served("zone-a", "", all)
		return readable && st.Healthy("zone-a", "n1")
	})
	f.RestartReadableSec = time.Since(t1).Seconds()
	time.Sleep(3 * time.Second) // reads and writes with the node back
	close(done)
	wg.Wait()
	mu.Lock()
	f.FirstWholeSec = firstOK.Seconds()
	mu.Unlock()
	f.Acked = acked.Load()
	for _, n := range []string{"n1", "n2", "n3"} {
		got, why := countFailover(c, nodes[n])
		if why != "" {
			b.Logf("final count through %s: %s", n, why)
		}
		f.Counted[n] = got
	}
	time.Sleep(5 * time.Second)
	for _, n := range []string{"n1", "n2", "n3"} {
		got, why := countFailover(c, nodes[n])
		if why != "" {
			b.Logf("count 5 s later through %s: %s", n, why)
		}
		f.CountedLater[n] = got
	}
	b.Logf("failover: unhealthy %.1f s, reassigned %.1f s, first whole strong read %.2f s after the kill; restart ready %.1f s, zone-a readable %.1f s",
		f.UnhealthySec, f.ReassignedSec, f.FirstWholeSec, f.RestartReadySec, f.RestartReadableSec)
	return f
}

// countFailover counts the drill's samples by a strong read through p;
// why says what went wrong (an error, a partial answer), "" when nothing.
func countFailover(c *http.Client, p *peer.Peer) (n int64, why string) {
	r, err := apptest.PostAPI(c, p.URL(), "/api/v1/query", url.Values{
		"query":            {"sum(count_over_time(bench_failover[1h]))"},
		"time":             {strconv.FormatFloat(float64(time.Now().UnixMilli())/1000, 'f', 3, 64)},
		"read_consistency": {"strong"},
	})
	switch {
	case err != nil:
		return -1, err.Error()
	case r.Status != "success":
		return -1, r.ErrorType + ": " + r.Error
	case len(r.Warnings) > 0:
		return -1, "warnings: " + strings.Join(r.Warnings, "; ")
	}
	var v []struct {
		Value [2]any `json:"value"`
	}
	if err := json.Unmarshal(r.Data.Result, &v); err != nil {
		return -1, err.Error()
	}
	if len(v) == 0 {
		return 0, ""
	}
	s, _ := v[0].Value[1].(string)
	n, _ = strconv.ParseInt(s, 10, 64)
	return n, ""
}

func status(ctx context.Context, p *peer.Peer) (Status, error) {
	body, err := get(ctx, p.URL()+"/api/v1/status/cluster")
	if err != nil {
		return Status{}, err
	}
	return ParseStatus(body)
}

var getClient = &http.Client{Timeout: 10 * time.Second}

func get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := getClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return body, err
}

// metric reads a metric of p's /metrics, 0 when it cannot.
func metric(ctx context.Context, p *peer.Peer, name string) float64 {
	text, err := get(ctx, p.URL()+"/metrics")
	if err != nil {
		return 0
	}
	v, _ := ParseMetric(text, name, nil)
	return v
}

func mustCPU(b *testing.B, pid int) float64 {
	b.Helper()
	s, err := peer.ProcCPUSeconds(pid)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func dirSize(b *testing.B, dir string) int64 {
	b.Helper()
	n, err := peer.DirSize(dir)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// waitFor polls cond every 100 ms until it holds, failing after within.
func waitFor(b *testing.B, within time.Duration, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func machine() string {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s", runtime.NumCPU(), cpu, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
