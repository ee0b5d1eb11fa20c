package workload

import (
	"fmt"
	"math/rand/v2"

	"github.com/prometheus/prometheus/model/labels"
)

// series is one generated series of the simpler workloads: a value that
// evolves by kind, with its own random stream.
type series struct {
	lset   labels.Labels
	offset int64
	g      genSeries
}

func (s *series) next() float64 { return s.g.nextValue() }

// nextValue advances a genSeries of the synthetic kinds and returns the
// value before the step (as NodeExporter.Next does).
func (g *genSeries) nextValue() float64 {
	v := g.value
	switch g.kind {
	case kindCounter:
		g.value = g.round(g.value + g.rate*(0.5+g.rng.Float64()))
	case kindGauge:
		nv := g.round(g.value + g.rng.NormFloat64()*g.rate)
		if g.mean > 0 { // bounded gauges (percentages): reflect into [0, mean]
			if nv < 0 {
				nv = -nv
			}
			if nv > g.mean {
				nv = 2*g.mean - nv
			}
		}
		g.value = nv
	}
	return v
}

// Simple is a workload made of independent series (devops, IoT, high
// cardinality); it implements rwload.Source.
type Simple struct {
	Name     string
	Interval int64
	Start    int64
	series   []series
	// jitter, when > 0, moves each sample by up to ±jitter of the
	// interval (irregular senders).
	jitter float64
	seed   uint64
}

// Len implements rwload.Source.
func (w *Simple) Len() int { return len(w.series) }

// Labels implements rwload.Source.
func (w *Simple) Labels(i int) labels.Labels { return w.series[i].lset }

// Timestamp implements rwload.Source; with jitter the spacing is
// irregular but still increasing per series.
func (w *Simple) Timestamp(i, step int) int64 {
	t := w.Start + w.series[i].offset + int64(step)*w.Interval
	if w.jitter > 0 {
		h := splitmix(w.seed ^ uint64(i)<<32 ^ uint64(step))
		f := (float64(h>>11)/(1<<53)*2 - 1) * w.jitter // [-jitter, jitter)
		t += int64(f * float64(w.Interval))
	}
	return t
}

// Next implements rwload.Source.
func (w *Simple) Next(i int) float64 { return w.series[i].next() }

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func gauge(lset labels.Labels, offset int64, start, step, bound, quant float64, rng *rand.Rand) series {
	return series{lset: lset, offset: offset, g: genSeries{value: start, kind: kindGauge, rate: step, mean: bound, quant: quant, rng: rng}}
}

func counter(lset labels.Labels, offset int64, start, rate, quant float64, rng *rand.Rand) series {
	return series{lset: lset, offset: offset, g: genSeries{value: start, kind: kindCounter, rate: rate, quant: quant, rng: rng}}
}

// NewDevops is a TSBS-devops-like workload: per host the cpu (10 fields),
// mem (9), disk and diskio (7 each for 2 devices), net (6 for 2
// interfaces) and kernel (5) measurements as Prometheus series
// `<measurement>_<field>` with TSBS's ten host tags: 64 series per host.
func NewDevops(hosts int, start, interval int64, seed uint64) *Simple {
	r := rand.New(rand.NewPCG(seed, 0xde))
	w := &Simple{Name: "devops", Interval: interval, Start: start}
	regions := []string{"us-east-1", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"}
	for h := range hosts {
		region := regions[h%len(regions)]
		tags := []string{"hostname", fmt.Sprintf("host_%d", h), "region", region, "datacenter", fmt.Sprintf("%s%c", region, 'a'+rune(h%3)),
			"rack", fmt.Sprint(r.IntN(100)), "os", []string{"Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"}[r.IntN(3)],
			"arch", []string{"x64", "x86"}[r.IntN(2)], "team", []string{"SF", "NYC", "LON", "CHI"}[r.IntN(4)],
			"service", fmt.Sprint(r.IntN(20)), "service_version", fmt.Sprint(r.IntN(2)), "service_environment", []string{"production", "staging", "test"}[r.IntN(3)]}
		off := r.Int64N(interval)
		ls := func(name string, extra ...string) labels.Labels {
			return labels.FromStrings(append(append([]string{"__name__", name}, tags...), extra...)...)
		}
		rng := rand.New(rand.NewPCG(seed, uint64(h)+1))
		for _, f := range []string{"usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait", "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice"} {
			w.series = append(w.series, gauge(ls("cpu_"+f), off, 100*rng.Float64(), 1, 100, 0, rng))
		}
		for _, f := range []string{"total", "available", "used", "free", "cached", "buffered", "used_percent", "available_percent", "buffered_percent"} {
			if f == "used_percent" || f == "available_percent" || f == "buffered_percent" {
				w.series = append(w.series, gauge(ls("mem_"+f), off, 100*rng.Float64(), 0.5, 100, 0, rng))
				continue
			}
			w.series = append(w.series, gauge(ls("mem_"+f), off, float64(rng.Int64N(1<<34)), 1<<20, 0, 1, rng))
		}
		for _, dev := range []string{"sda", "sdb"} {
			for _, f := range []string{"total", "free", "used", "used_percent", "inodes_total", "inodes_free", "inodes_used"} {
				w.series = append(w.series, gauge(ls("disk_"+f, "path", "/"+dev, "fstype", "ext4"), off, float64(rng.Int64N(1<<40)), 1<<16, 0, 1, rng))
			}
			for _, f := range []string{"reads", "writes", "read_bytes", "write_bytes", "read_time", "write_time", "io_time"} {
				w.series = append(w.series, counter(ls("diskio_"+f, "name", dev), off, float64(rng.Int64N(1<<30)), float64(1+rng.IntN(5000)), 1, rng))
			}
		}
		for _, ifc := range []string{"eth0", "eth1"} {
			for _, f := range []string{"bytes_sent", "bytes_recv", "packets_sent", "packets_recv", "err_in", "err_out"} {
				w.series = append(w.series, counter(ls("net_"+f, "interface", ifc), off, float64(rng.Int64N(1<<32)), float64(1+rng.IntN(100000)), 1, rng))
			}
		}
		for _, f := range []string{"boot_time", "interrupts", "context_switches", "processes_forked", "disk_pages_in"} {
			if f == "boot_time" {
				w.series = append(w.series, gauge(ls("kernel_"+f), off, float64(1_600_000_000+rng.IntN(1e7)), 0, 0, 1, rng))
				continue
			}
			w.series = append(w.series, counter(ls("kernel_"+f), off, float64(rng.Int64N(1<<32)), float64(1+rng.IntN(20000)), 1, rng))
		}
	}
	return w
}

// NewIoT is many devices with few metrics each (temperature to 0.1 °C,
// humidity in %, battery voltage to mV), sent at irregular times: every
// sample moves by up to ±40% of the interval.
func NewIoT(devices int, start, interval int64, seed uint64) *Simple {
	r := rand.New(rand.NewPCG(seed, 0x107))
	w := &Simple{Name: "iot", Interval: interval, Start: start, jitter: 0.4, seed: seed}
	for d := range devices {
		rng := rand.New(rand.NewPCG(seed, uint64(d)+1))
		tags := []string{"device_id", fmt.Sprintf("dev-%06d", d), "site", fmt.Sprintf("plant-%02d", d%37), "model", []string{"TH-100", "TH-200", "EnvSense"}[r.IntN(3)]}
		off := r.Int64N(interval)
		ls := func(name string) labels.Labels {
			return labels.FromStrings(append([]string{"__name__", name}, tags...)...)
		}
		w.series = append(w.series,
			gauge(ls("iot_temperature_celsius"), off, 15+10*rng.Float64(), 0.1, 0, 0.1, rng),
			gauge(ls("iot_humidity_percent"), off, float64(30+rng.IntN(40)), 1, 100, 1, rng),
			gauge(ls("iot_battery_volts"), off, 3.0+0.6*rng.Float64(), 0.002, 0, 0.001, rng))
	}
	return w
}

// NewHighCard is one metric over n series, each with a unique id: the
// cardinality explosion a label like a request id causes.
func NewHighCard(n int, start, interval int64, seed uint64) *Simple {
	w := &Simple{Name: "highcard", Interval: interval, Start: start}
	rng := rand.New(rand.NewPCG(seed, 0x4c))
	for i := range n {
		w.series = append(w.series, counter(labels.FromStrings("__name__", "hc_requests_total", "id", fmt.Sprintf("%07d", i), "shard", fmt.Sprint(i%64)),
			int64(i)%interval, 0, 1, 1, rng))
	}
	return w
}

// Churn is pods that come and go: slots each run a pod exposing the
// container metrics, and every Lifetime steps (staggered by slot) the pod
// is replaced by a new one with a new name: new series every few minutes.
// It implements rwload.Source and rwload.Churning.
type Churn struct {
	Interval, Start int64
	Lifetime        int
	slots, metrics  int
	series          []series
}

var containerMetrics = []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_rss",
	"container_network_receive_bytes_total", "container_network_transmit_bytes_total", "container_fs_reads_bytes_total",
	"container_fs_writes_bytes_total", "container_cpu_cfs_throttled_seconds_total", "kube_pod_container_status_restarts_total",
	"container_spec_memory_limit_bytes"}

// NewChurn makes slots pods (10 series each) replaced every lifetime steps.
func NewChurn(slots, lifetime int, start, interval int64, seed uint64) *Churn {
	w := &Churn{Interval: interval, Start: start, Lifetime: max(lifetime, 1), slots: slots, metrics: len(containerMetrics)}
	for s := range slots {
		rng := rand.New(rand.NewPCG(seed, uint64(s)+1))
		for m, name := range containerMetrics {
			var x series
			if m == 1 || m == 2 || m == 9 {
				x = gauge(labels.EmptyLabels(), int64(s)%interval, float64(rng.Int64N(1<<28)), 1<<16, 0, 1, rng)
			} else {
				x = counter(labels.EmptyLabels(), int64(s)%interval, 0, 1+float64(rng.IntN(1000)), 0.001, rng)
			}
			x.lset = labels.FromStrings("__name__", name, "namespace", fmt.Sprintf("ns-%d", s%20), "node", fmt.Sprintf("node-%d", s%50), "container", "app")
			w.series = append(w.series, x)
		}
	}
	return w
}

// Len implements rwload.Source: the series slots (each slot's labels
// change with its pod).
func (w *Churn) Len() int { return len(w.series) }

// Labels implements rwload.Source: the first pod's labels.
func (w *Churn) Labels(i int) labels.Labels { return w.LabelsAt(i, 0) }

// Epoch is the pod generation of series i at step.
func (w *Churn) Epoch(i, step int) int {
	slot := i / w.metrics
	return (step + slot*w.Lifetime/max(w.slots, 1)) / w.Lifetime
}

// LabelsAt is the label set of series i in pod generation epoch.
func (w *Churn) LabelsAt(i, epoch int) labels.Labels {
	slot := i / w.metrics
	b := labels.NewBuilder(w.series[i].lset)
	b.Set("pod", fmt.Sprintf("app-%d-%x", slot, splitmix(uint64(slot)<<20|uint64(epoch))&0xfffff))
	return b.Labels()
}

// Timestamp implements rwload.Source.
func (w *Churn) Timestamp(i, step int) int64 {
	return w.Start + w.series[i].offset + int64(step)*w.Interval
}

// Next implements rwload.Source.
func (w *Churn) Next(i int) float64 { return w.series[i].next() }

// SeriesCreated is how many distinct series steps samples of the workload
// create.
func (w *Churn) SeriesCreated(steps int) int {
	n := 0
	for i := range w.series {
		n += w.Epoch(i, steps-1) - w.Epoch(i, 0) + 1
	}
	return n
}
