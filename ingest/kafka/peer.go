package kafka

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/storage"
)

// The internal read API between the nodes of a cluster
// (docs/cluster.md#the-internal-read-api): POST /internal/v1/<op> with a
// JSON peerRequest; select answers a snappy-compressed
// prometheus.QueryResult (remote read's message: labels, float samples
// and native histograms, floats bit for bit), labels and values a JSON
// array of strings.
const (
	opSelect      = "select"
	opLabelNames  = "labels"
	opLabelValues = "values"
	opMetadata    = "metadata"
	opExemplars   = "exemplars"
)

// SecretHeader carries the cluster's secret on internal requests (the
// same as web.ClusterSecretHeader).
const SecretHeader = "X-Tsdb-Cluster-Secret"

// peerRequest is one internal read.
type peerRequest struct {
	Op     string `json:"-"`
	Tenant string `json:"tenant"`
	// Start and End bound the samples read, inclusive, in milliseconds.
	Start    int64         `json:"start"`
	End      int64         `json:"end"`
	Matchers []wireMatcher `json:"matchers"`
	// Sets are the matcher sets of exemplars.
	Sets  [][]wireMatcher `json:"sets,omitempty"`
	Name  string          `json:"name,omitempty"`  // values: the label
	Limit int             `json:"limit,omitempty"` // select: at most this many series
	// Partitions are the partitions whose series select returns.
	Partitions []int32 `json:"partitions"`
	// MinOffsets, for a read-your-writes read, are the offsets the node
	// must have consumed of the partitions it owns before it answers.
	MinOffsets map[int32]int64 `json:"min_offsets,omitempty"`
}

type wireMatcher struct {
	Type  labels.MatchType `json:"type"`
	Name  string           `json:"name"`
	Value string           `json:"value"`
}

func toWireMatchers(ms []*labels.Matcher) []wireMatcher {
	out := make([]wireMatcher, len(ms))
	for i, m := range ms {
		out[i] = wireMatcher{Type: m.Type, Name: m.Name, Value: m.Value}
	}
	return out
}

func fromWireMatchers(ws []wireMatcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, len(ws))
	for i, w := range ws {
		m, err := labels.NewMatcher(w.Type, w.Name, w.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: matcher %s: %v", errBadPeerRequest, w.Name, err)
		}
		out[i] = m
	}
	return out, nil
}

// errBadPeerRequest is an internal request that does not decode; the API
// answers 400.
var errBadPeerRequest = fmt.Errorf("%w: bad internal request", storage.ErrInvalidSeries)

// peerError is a peer's answer other than 200.
type peerError struct {
	status int
	msg    string
}

func (e *peerError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.msg) }

// Unwrap makes a peer's 503 an ErrUnavailable (it is up but cannot
// answer yet), which does not mark it failed.
func (e *peerError) Unwrap() error {
	if e.status == http.StatusServiceUnavailable {
		return storage.ErrUnavailable
	}
	return nil
}

// ServePeer answers a peer's internal request (web.Cluster).
func (r *Reader) ServePeer(ctx context.Context, op, secret string, body []byte) (string, []byte, error) {
	if r.cfg.Secret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(r.cfg.Secret)) != 1 {
		return "", nil, fmt.Errorf("%w: internal requests need the cluster's secret in %s", auth.ErrBadCredentials, SecretHeader)
	}
	var req peerRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return "", nil, fmt.Errorf("%w: %v", errBadPeerRequest, err)
	}
	req.Op = op
	a, err := r.serveLocal(ctx, req)
	if err != nil {
		return "", nil, err
	}
	switch op {
	case opMetadata:
		b, err := json.Marshal(a.meta)
		return "application/json", b, err
	case opExemplars:
		b, err := json.Marshal(a.exemplars)
		return "application/json", b, err
	case opLabelNames, opLabelValues:
		b, err := json.Marshal(a.strings)
		return "application/json", b, err
	}
	res := prompb.QueryResult{Timeseries: make([]*prompb.TimeSeries, len(a.series))}
	for i, s := range a.series {
		ts := &prompb.TimeSeries{Labels: prompb.FromLabels(s.lset, nil)}
		for _, p := range s.pts {
			if p.h != nil {
				ts.Histograms = append(ts.Histograms, prompb.FromFloatHistogram(p.t, p.h))
			} else {
				ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: p.t, Value: p.f})
			}
		}
		res.Timeseries[i] = ts
	}
	raw, err := res.Marshal()
	if err != nil {
		return "", nil, err
	}
	return "application/x-protobuf", snappy.Encode(nil, raw), nil
}

// askPeer puts req to node m over HTTP.
func (r *Reader) askPeer(ctx context.Context, m member, req peerRequest) (answer, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return answer{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL+"/internal/v1/"+req.Op, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if r.cfg.Secret != "" {
		hr.Header.Set(SecretHeader, r.cfg.Secret)
	}
	start := time.Now()
	resp, err := r.hc.Do(hr)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r.m.peerDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		return answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = string(b)
		}
		return answer{}, &peerError{status: resp.StatusCode, msg: e.Error}
	}
	var a answer
	switch req.Op {
	case opSelect:
		return decodeSelect(b)
	case opMetadata:
		err = json.Unmarshal(b, &a.meta)
	case opExemplars:
		err = json.Unmarshal(b, &a.exemplars)
	default:
		err = json.Unmarshal(b, &a.strings)
	}
	if err != nil {
		return answer{}, fmt.Errorf("decode the answer: %w", err)
	}
	return a, nil
}

func decodeSelect(b []byte) (answer, error) {
	raw, err := snappy.Decode(nil, b)
	if err != nil {
		return answer{}, fmt.Errorf("decode the answer: %w", err)
	}
	var res prompb.QueryResult
	if err := res.Unmarshal(raw); err != nil {
		return answer{}, fmt.Errorf("decode the answer: %w", err)
	}
	out := make([]memSeries, len(res.Timeseries))
	var sb labels.ScratchBuilder
	for i, ts := range res.Timeseries {
		pts := make([]point, 0, len(ts.Samples)+len(ts.Histograms))
		for _, s := range ts.Samples {
			pts = append(pts, point{t: s.Timestamp, f: s.Value})
		}
		for _, h := range ts.Histograms {
			pts = append(pts, point{t: h.Timestamp, h: h.ToFloatHistogram()})
		}
		if len(ts.Histograms) > 0 && len(ts.Samples) > 0 {
			slices.SortStableFunc(pts, func(a, b point) int { return int(min(max(a.t-b.t, -1), 1)) })
		}
		out[i] = memSeries{lset: ts.ToLabels(&sb, nil), pts: pts}
	}
	return answer{series: out}, nil
}
