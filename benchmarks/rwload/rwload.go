// Package rwload sends a workload to any Prometheus remote-write 1.0
// receiver with concurrent clients and measures what the receiver accepted.
//
// Request bodies are encoded before the clock starts, so the figures measure
// the receiver, not the sender; every peer of a comparison receives the very
// same bytes.
package rwload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/encoding/protowire"
)

// Source is a workload: a fixed set of series, each with one sample per step.
type Source interface {
	Len() int
	Labels(i int) labels.Labels
	Timestamp(i, step int) int64
	Next(i int) float64 // the value for the next step of series i
}

// Churning is a Source whose series change labels over time (pods
// replaced): series i has the labels LabelsAt(i, Epoch(i, step)).
type Churning interface {
	Source
	Epoch(i, step int) int
	LabelsAt(i, epoch int) labels.Labels
}

// Body is one encoded remote-write request.
type Body struct {
	Data    []byte // snappy-compressed prometheus.WriteRequest
	Samples int
}

// Encode turns steps samples of every series into request bodies of at most
// batch samples, one stream per client. Series are spread over clients by
// index (as Prometheus spreads them over its shards), and each stream is in
// time order, so every series arrives in order.
func Encode(src Source, steps, clients, batch int) [][]Body {
	return NewEncoder(src, clients, batch).Steps(steps)
}

// Encoder encodes a workload a few steps at a time (a sender keeping up
// with real time), remembering each series' encoded labels.
type Encoder struct {
	src            Source
	churn          Churning
	clients, batch int
	lbls           [][]byte
	epochs         []int
	next           int // the next step to encode
}

// NewEncoder prepares to encode src from its first step.
func NewEncoder(src Source, clients, batch int) *Encoder {
	if clients < 1 {
		clients = 1
	}
	if batch < 1 {
		batch = 2000
	}
	e := &Encoder{src: src, clients: clients, batch: batch, lbls: make([][]byte, src.Len()), epochs: make([]int, src.Len())}
	e.churn, _ = src.(Churning)
	for i := range e.lbls {
		e.lbls[i] = encodeLabels(src.Labels(i))
	}
	return e
}

// SetClients changes how many streams the next Steps call makes: a series
// still goes to one stream, so it still arrives in order.
func (e *Encoder) SetClients(clients int) { e.clients = max(clients, 1) }

// Steps encodes the next steps steps of every series.
func (e *Encoder) Steps(steps int) [][]Body {
	n, src, from := e.src.Len(), e.src, e.next
	e.next += steps
	streams := make([][]Body, e.clients)
	// Next is per series, and clients own disjoint series: no locking.
	var wg sync.WaitGroup
	for c := range e.clients {
		wg.Go(func() {
			var raw []byte
			var count int
			flush := func() {
				if count == 0 {
					return
				}
				streams[c] = append(streams[c], Body{Data: snappy.Encode(nil, raw), Samples: count})
				raw, count = raw[:0], 0
			}
			for step := from; step < from+steps; step++ {
				for i := c; i < n; i += e.clients {
					if e.churn != nil {
						if ep := e.churn.Epoch(i, step); ep != e.epochs[i] {
							e.epochs[i], e.lbls[i] = ep, encodeLabels(e.churn.LabelsAt(i, ep))
						}
					}
					raw = appendSeries(raw, e.lbls[i], src.Timestamp(i, step), src.Next(i))
					count++
					if count == e.batch {
						flush()
					}
				}
			}
			flush()
		})
	}
	wg.Wait()
	return streams
}

func encodeLabels(ls labels.Labels) []byte {
	var b []byte
	ls.Range(func(l labels.Label) {
		var lb []byte
		lb = protowire.AppendTag(lb, 1, protowire.BytesType)
		lb = protowire.AppendString(lb, l.Name)
		lb = protowire.AppendTag(lb, 2, protowire.BytesType)
		lb = protowire.AppendString(lb, l.Value)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, lb)
	})
	return b
}

// appendSeries appends one WriteRequest.timeseries entry holding one sample.
func appendSeries(b, lbls []byte, t int64, v float64) []byte {
	var s [20]byte
	sample := protowire.AppendTag(s[:0], 1, protowire.Fixed64Type)
	sample = protowire.AppendFixed64(sample, math.Float64bits(v))
	sample = protowire.AppendTag(sample, 2, protowire.VarintType)
	sample = protowire.AppendVarint(sample, uint64(t))
	tsLen := len(lbls) + 1 + protowire.SizeBytes(len(sample))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(tsLen))
	b = append(b, lbls...)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, sample)
}

// Result is what a run measured.
type Result struct {
	Clients       int     `json:"clients"`
	Requests      int64   `json:"requests"`
	Samples       int64   `json:"samples"`
	Retries       int64   `json:"retries"`
	Seconds       float64 `json:"seconds"`
	SamplesPerSec float64 `json:"samples_per_sec"`
	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	LatencyMaxMs  float64 `json:"latency_max_ms"`
}

// Config says where and how to send.
type Config struct {
	URL string
	// URLs, when set, spreads the streams over several receivers (the
	// nodes of a cluster): stream c goes to URLs[c%len(URLs)].
	URLs    []string
	Headers map[string]string
	// Retry bounds retries of one request answered 429 or 5xx (as a
	// Prometheus sender would retry) before the run fails.
	Retry   int
	Timeout time.Duration // per request
	// Acked, when set, counts the samples acknowledged so far, for
	// readers that follow the run as it goes (a consumer's lag).
	Acked *atomic.Int64
}

// Send sends each stream from its own client, one request in flight per
// client, and returns when all are sent or one fails for good.
func Send(ctx context.Context, cfg Config, streams [][]Body) (Result, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.Retry == 0 {
		cfg.Retry = 10
	}
	client := &http.Client{
		Timeout:   cfg.Timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: len(streams), DisableCompression: true},
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		res       = Result{Clients: len(streams)}
		retries   atomic.Int64
		latencies = make([][]time.Duration, len(streams))
		wg        sync.WaitGroup
	)
	start := time.Now()
	for c, stream := range streams {
		url := cfg.URL
		if len(cfg.URLs) > 0 {
			url = cfg.URLs[c%len(cfg.URLs)]
		}
		wg.Go(func() {
			lat := make([]time.Duration, 0, len(stream))
			for _, b := range stream {
				d, r, err := post(ctx, client, cfg, url, b.Data)
				retries.Add(int64(r))
				if err != nil {
					cancel(fmt.Errorf("client %d: %w", c, err))
					return
				}
				if cfg.Acked != nil {
					cfg.Acked.Add(int64(b.Samples))
				}
				lat = append(lat, d)
			}
			latencies[c] = lat
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return res, err
	}
	var all []time.Duration
	for c, s := range streams {
		all = append(all, latencies[c]...)
		for _, b := range s {
			res.Samples += int64(b.Samples)
		}
	}
	slices.Sort(all)
	res.Requests = int64(len(all))
	res.Retries = retries.Load()
	res.Seconds = elapsed.Seconds()
	res.SamplesPerSec = float64(res.Samples) / elapsed.Seconds()
	res.LatencyP50Ms = ms(percentile(all, 0.50))
	res.LatencyP99Ms = ms(percentile(all, 0.99))
	if len(all) > 0 {
		res.LatencyMaxMs = ms(all[len(all)-1])
	}
	return res, nil
}

// post sends one body, retrying on 429 and 5xx; the latency is that of the
// successful attempt.
func post(ctx context.Context, c *http.Client, cfg Config, url string, body []byte) (time.Duration, int, error) {
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, attempt, err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		for k, v := range cfg.Headers {
			req.Header.Set(k, v)
		}
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return 0, attempt, err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		d := time.Since(t0)
		switch {
		case resp.StatusCode/100 == 2:
			return d, attempt, nil
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5) && attempt < cfg.Retry:
			select {
			case <-ctx.Done():
				return 0, attempt, ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		default:
			return 0, attempt, errors.New(resp.Status + ": " + string(bytes.TrimSpace(msg)))
		}
	}
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(len(sorted)-1, i))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
