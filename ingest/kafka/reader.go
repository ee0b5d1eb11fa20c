package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/storage"
)

// Reader is the read path of a cluster node (docs/cluster.md): a
// storage.Reader over the whole cluster's data. Each read plans which
// node of which zone answers for each partition (the local zone first,
// another zone for a partition the local one cannot answer for whole),
// asks those nodes (this node through its local storage, the others
// through their internal read API), and merges their answers into one
// sorted set. A partition no zone can answer for fails the read with
// storage.ErrUnavailable unless the request's storage.ReadOptions accept
// a partial answer; a read with ReadOptions.Strong first waits until the
// owners have consumed every record produced before it began.
//
// Reader also serves the internal read API (ServePeer) and the cluster's
// status (Status). It is safe for concurrent use.
type Reader struct {
	cfg   Config
	local storage.Reader
	reg   *Registry
	cons  *Consumer
	hc    *http.Client
	log   *slog.Logger
	m     *Metrics
	// leader, when set, adds the leadership to Status.
	leader atomic.Pointer[Leader]
}

var _ storage.Reader = (*Reader)(nil)

// SetLeader makes Status say who leads.
func (r *Reader) SetLeader(l *Leader) { r.leader.Store(l) }

// NewReader reads the cluster through reg's membership, this node's
// own data through local, and waits for read-your-writes reads on cons.
func NewReader(cfg Config, local storage.Reader, reg *Registry, cons *Consumer, opts *Options) *Reader {
	o := opts.orDefault()
	return &Reader{cfg: cfg, local: local, reg: reg, cons: cons, log: o.Logger, m: o.Metrics,
		hc: &http.Client{Timeout: time.Duration(cfg.PeerTimeout), Transport: &http.Transport{
			MaxIdleConnsPerHost: 32, IdleConnTimeout: time.Minute, ResponseHeaderTimeout: time.Duration(cfg.PeerTimeout),
		}}}
}

// Tenants lists the tenants with data on this node (the console offers
// them).
func (r *Reader) Tenants() []string {
	if l, ok := r.local.(interface{ Tenants() []string }); ok {
		return l.Tenants()
	}
	return nil
}

// Querier implements storage.Reader.
func (r *Reader) Querier(_ context.Context, tenant string, mint, maxt int64) (storage.Querier, error) {
	return &querier{r: r, tenant: tenant, mint: mint, maxt: maxt}, nil
}

type querier struct {
	r          *Reader
	tenant     string
	mint, maxt int64
}

func (q *querier) Close() error { return nil }

func (q *querier) Select(ctx context.Context, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	req := peerRequest{Op: opSelect, Tenant: q.tenant, Start: q.mint, End: q.maxt, Matchers: toWireMatchers(ms)}
	if hints != nil {
		req.Start, req.End, req.Limit = max(hints.Start, q.mint), min(hints.End, q.maxt), hints.Limit
	}
	answers, err := q.r.fanout(ctx, req)
	if err != nil {
		return &seriesSet{err: err}
	}
	var all []memSeries
	for _, a := range answers {
		all = append(all, a.series...)
	}
	ss := &seriesSet{i: -1, list: mergeSeries(all)}
	if req.Limit > 0 && len(ss.list) > req.Limit {
		ss.list, ss.truncated = ss.list[:req.Limit], true
	}
	return ss
}

func (q *querier) LabelNames(ctx context.Context, ms ...*labels.Matcher) ([]string, error) {
	return q.strings(ctx, peerRequest{Op: opLabelNames, Tenant: q.tenant, Start: q.mint, End: q.maxt, Matchers: toWireMatchers(ms)})
}

func (q *querier) LabelValues(ctx context.Context, name string, ms ...*labels.Matcher) ([]string, error) {
	return q.strings(ctx, peerRequest{Op: opLabelValues, Tenant: q.tenant, Start: q.mint, End: q.maxt, Name: name, Matchers: toWireMatchers(ms)})
}

// strings unions the nodes' lists. NB: a node answers from all its local
// data, not only the partitions it was asked for; what it adds is still
// data of the cluster, so the union is exact.
func (q *querier) strings(ctx context.Context, req peerRequest) ([]string, error) {
	answers, err := q.r.fanout(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range answers {
		out = append(out, a.strings...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// maxAttempts bounds the plans tried for one read: a node that fails is
// avoided and the read planned again.
const maxAttempts = 4

// fanout plans req over the cluster, asks every node of the plan at
// once, and returns their answers.
func (r *Reader) fanout(ctx context.Context, req peerRequest) ([]answer, error) {
	ro := storage.ReadOptionsFrom(ctx)
	var ends map[int32]int64
	if ro != nil && ro.Strong {
		var err error
		if ends, err = r.reg.EndOffsets(ctx); err != nil {
			return nil, fmt.Errorf("%w: read-your-writes: %v", storage.ErrUnavailable, err)
		}
	}
	start := time.Now()
	defer func() { r.m.fanoutDuration.Observe(time.Since(start).Seconds()) }()
	var lastErr error
	for attempt := range maxAttempts {
		nodes, owners := r.reg.members()
		targets, missing := plan(r.cfg.Partitions, r.cfg.Zone, nodes, owners)
		if len(missing) > 0 && attempt < maxAttempts-1 {
			// The view may be a moment old (a rebalance, a node that just
			// announced itself): look again before giving up.
			lastErr = fmt.Errorf("%w: %s no healthy owner in any zone", storage.ErrUnavailable, partitionList(missing))
			r.reg.Refresh(ctx)
			if !sleepCtx(ctx, time.Duration(attempt+1)*200*time.Millisecond) {
				return nil, ctx.Err()
			}
			continue
		}
		if len(missing) > 0 {
			msg := fmt.Sprintf("%s no healthy owner in any zone", partitionList(missing))
			if ro == nil || !ro.Partial {
				r.m.unavailable.Inc()
				return nil, fmt.Errorf("%w: %s; retry shortly, or ask for partial_response=true", storage.ErrUnavailable, msg)
			}
			r.m.partial.Inc()
			ro.Warn(msg + ": the answer is partial, without the series of these partitions")
		}
		answers := make([]answer, len(targets))
		errs := make([]error, len(targets))
		var wg sync.WaitGroup
		for i, t := range targets {
			treq := req
			treq.Partitions = t.Partitions
			if ends != nil {
				treq.MinOffsets = map[int32]int64{}
				for _, p := range t.Owns {
					treq.MinOffsets[p] = ends[p]
				}
			}
			wg.Go(func() { answers[i], errs[i] = r.ask(ctx, t.member, treq) })
		}
		wg.Wait()
		failed := false
		for i, err := range errs {
			if err == nil {
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var pe *peerError
			if errors.As(err, &pe) && pe.status == http.StatusBadRequest {
				return nil, fmt.Errorf("node %s: %w", targets[i].key(), err)
			}
			if !errors.Is(err, storage.ErrUnavailable) { // the node itself failed: avoid it for a while
				r.reg.markFailed(targets[i].key())
			}
			r.m.peerErrors.Inc()
			r.log.Warn("cluster: a node did not answer a read; planning again", "node", targets[i].key(), "url", targets[i].URL, "err", err)
			lastErr = fmt.Errorf("node %s: %w", targets[i].key(), err)
			failed = true
		}
		if !failed {
			return answers, nil
		}
	}
	// The last plan failed on a node, now avoided: when that leaves
	// partitions without a healthy owner, say so rather than name the
	// node (the caller learns what to retry or to ask partially).
	if ro == nil || !ro.Partial {
		nodes, owners := r.reg.members()
		if _, missing := plan(r.cfg.Partitions, r.cfg.Zone, nodes, owners); len(missing) > 0 {
			r.m.unavailable.Inc()
			return nil, fmt.Errorf("%w: %s no healthy owner in any zone; retry shortly, or ask for partial_response=true (last error: %v)",
				storage.ErrUnavailable, partitionList(missing), lastErr)
		}
	}
	if errors.Is(lastErr, storage.ErrUnavailable) {
		return nil, lastErr
	}
	return nil, fmt.Errorf("%w: %v", storage.ErrUnavailable, lastErr)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// partitionList says "partition 3 has" or "partitions 1, 4 have".
func partitionList(ps []int32) string {
	if len(ps) == 1 {
		return fmt.Sprintf("partition %d has", ps[0])
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return "partitions " + strings.Join(s, ", ") + " have"
}

// ask puts req to node m: this node reads its local storage, another is
// asked over HTTP.
func (r *Reader) ask(ctx context.Context, m member, req peerRequest) (answer, error) {
	if m.Local {
		return r.serveLocal(ctx, req)
	}
	return r.askPeer(ctx, m, req)
}

// serveLocal answers req from this node's storage: it first waits for
// the offsets req asks for, then reads the series of req's partitions.
func (r *Reader) serveLocal(ctx context.Context, req peerRequest) (answer, error) {
	if len(req.MinOffsets) > 0 {
		if r.cons == nil {
			return answer{}, fmt.Errorf("%w: this node consumes no partition", storage.ErrUnavailable)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Duration(r.cfg.PeerTimeout))
		defer cancel()
		for p, off := range req.MinOffsets {
			if err := r.cons.WaitConsumed(wctx, p, off); err != nil {
				if errors.Is(err, ErrNotOwner) {
					return answer{}, fmt.Errorf("%w: node %s no longer consumes partition %d", storage.ErrUnavailable, r.cfg.Node, p)
				}
				return answer{}, fmt.Errorf("%w: read-your-writes: node %s has not consumed partition %d up to offset %d in time: %v",
					storage.ErrUnavailable, r.cfg.Node, p, off, err)
			}
		}
	}
	ms, err := fromWireMatchers(req.Matchers)
	if err != nil {
		return answer{}, err
	}
	q, err := r.local.Querier(ctx, req.Tenant, req.Start, req.End)
	if err != nil {
		return answer{}, err
	}
	defer q.Close()
	switch req.Op {
	case opLabelNames:
		v, err := q.LabelNames(ctx, ms...)
		return answer{strings: v}, err
	case opLabelValues:
		v, err := q.LabelValues(ctx, req.Name, ms...)
		return answer{strings: v}, err
	case opMetadata:
		return r.localMetadata(req)
	case opExemplars:
		return r.localExemplars(ctx, req)
	case opSelect:
	default:
		return answer{}, fmt.Errorf("%w: unknown internal operation %q", errBadPeerRequest, req.Op)
	}
	want := r.wanted(req)
	hints := &storage.SelectHints{Start: req.Start, End: req.End}
	if want == nil {
		hints.Limit = req.Limit // the first Limit of the union are among each node's first Limit
	}
	ss := q.Select(ctx, hints, ms...)
	var out []memSeries
	var it storage.Iterator
	for ss.Next() {
		if req.Limit > 0 && len(out) == req.Limit {
			break
		}
		s := ss.At()
		lset := s.Labels()
		if want != nil && !want[Partition(req.Tenant, lset, r.cfg.Partitions)] {
			continue
		}
		it = s.Iterator(it)
		hit, _ := it.(storage.HistogramIterator)
		ms := memSeries{lset: lset}
		for it.Next() {
			t, v := it.At()
			var h *histogram.FloatHistogram
			if hit != nil {
				h = hit.AtHistogram()
			}
			ms.pts = append(ms.pts, point{t: t, f: v, h: h})
		}
		if err := it.Err(); err != nil {
			return answer{}, fmt.Errorf("read series %s: %w", lset, err)
		}
		out = append(out, ms)
	}
	return answer{series: out}, ss.Err()
}

// answer is one node's answer to a read.
type answer struct {
	series    []memSeries // sorted by labels
	strings   []string
	meta      []storage.Metadata
	exemplars []storage.SeriesExemplars
}

// point is one sample: a float, or a native histogram when h is set.
type point struct {
	t int64
	f float64
	h *histogram.FloatHistogram
}

type memSeries struct {
	lset labels.Labels
	pts  []point // ascending by t
}

// mergeSeries sorts the nodes' series by labels and merges those with
// equal labels (the same series from two nodes of a zone that both
// consumed some of its records): their samples, by timestamp, one per
// timestamp.
func mergeSeries(all []memSeries) []memSeries {
	slices.SortStableFunc(all, func(a, b memSeries) int { return labels.Compare(a.lset, b.lset) })
	out := all[:0]
	for _, s := range all {
		if n := len(out); n > 0 && labels.Equal(out[n-1].lset, s.lset) {
			out[n-1].pts = mergePoints(out[n-1].pts, s.pts)
			continue
		}
		out = append(out, s)
	}
	return out
}

// mergePoints merges two ascending runs; at an equal timestamp it keeps
// a's sample.
func mergePoints(a, b []point) []point {
	out := make([]point, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch {
		case a[0].t < b[0].t:
			out, a = append(out, a[0]), a[1:]
		case b[0].t < a[0].t:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// seriesSet is a merged answer.
type seriesSet struct {
	list      []memSeries
	i         int
	err       error
	truncated bool
}

func (s *seriesSet) Next() bool {
	if s.err != nil || s.i+1 >= len(s.list) {
		return false
	}
	s.i++
	return true
}

func (s *seriesSet) At() storage.Series { return &s.list[s.i] }
func (s *seriesSet) Err() error         { return s.err }

// Truncated reports whether the hints' Limit cut the set short.
func (s *seriesSet) Truncated() bool { return s.truncated }

func (m *memSeries) Labels() labels.Labels { return m.lset }

func (m *memSeries) Iterator(reuse storage.Iterator) storage.Iterator {
	if it, ok := reuse.(*pointIterator); ok {
		*it = pointIterator{pts: m.pts, i: -1}
		return it
	}
	return &pointIterator{pts: m.pts, i: -1}
}

// pointIterator walks a memSeries.
type pointIterator struct {
	pts []point
	i   int
}

var _ storage.HistogramIterator = (*pointIterator)(nil)

func (it *pointIterator) Next() bool {
	if it.i+1 >= len(it.pts) {
		it.i = len(it.pts)
		return false
	}
	it.i++
	return true
}

func (it *pointIterator) SeekTo(t int64) bool {
	if it.i < 0 {
		it.i = 0
	}
	if it.i < len(it.pts) && it.pts[it.i].t >= t {
		return true
	}
	j, _ := slices.BinarySearchFunc(it.pts[it.i:], t, func(p point, t int64) int {
		switch {
		case p.t < t:
			return -1
		case p.t > t:
			return 1
		}
		return 0
	})
	it.i += j
	return it.i < len(it.pts)
}

func (it *pointIterator) At() (int64, float64) { return it.pts[it.i].t, it.pts[it.i].f }

func (it *pointIterator) AtHistogram() *histogram.FloatHistogram {
	if h := it.pts[it.i].h; h != nil {
		return h.Copy() // the caller's, as the contract says
	}
	return nil
}

func (it *pointIterator) Err() error { return nil }

// wanted is the set of req's partitions, nil when it is all of them.
func (r *Reader) wanted(req peerRequest) map[int32]bool {
	if len(req.Partitions) >= r.cfg.Partitions {
		return nil
	}
	want := make(map[int32]bool, len(req.Partitions))
	for _, p := range req.Partitions {
		want[p] = true
	}
	return want
}

// metadataReader and exemplarReader are storage.DB's optional reads
// that the API looks for (web/metadata.go).
type metadataReader interface {
	Metadata(tenant, metric string, limit, limitPerMetric int) ([]storage.Metadata, error)
}

type exemplarReader interface {
	Exemplars(ctx context.Context, tenant string, mint, maxt int64, matcherSets [][]*labels.Matcher) ([]storage.SeriesExemplars, error)
}

func (r *Reader) localMetadata(req peerRequest) (answer, error) {
	mr, ok := r.local.(metadataReader)
	if !ok {
		return answer{}, nil
	}
	ms, err := mr.Metadata(req.Tenant, req.Name, -1, req.Limit)
	if err != nil {
		return answer{}, err
	}
	if want := r.wanted(req); want != nil { // a family's metadata goes to the partition of {__name__=<family>}
		ms = slices.DeleteFunc(ms, func(m storage.Metadata) bool {
			return !want[Partition(req.Tenant, labels.FromStrings(model.MetricNameLabel, m.Family), r.cfg.Partitions)]
		})
	}
	return answer{meta: ms}, nil
}

func (r *Reader) localExemplars(ctx context.Context, req peerRequest) (answer, error) {
	er, ok := r.local.(exemplarReader)
	if !ok {
		return answer{}, nil
	}
	sets := make([][]*labels.Matcher, len(req.Sets))
	for i, s := range req.Sets {
		var err error
		if sets[i], err = fromWireMatchers(s); err != nil {
			return answer{}, err
		}
	}
	es, err := er.Exemplars(ctx, req.Tenant, req.Start, req.End, sets)
	if err != nil {
		return answer{}, err
	}
	if want := r.wanted(req); want != nil {
		es = slices.DeleteFunc(es, func(s storage.SeriesExemplars) bool { return !want[Partition(req.Tenant, s.Labels, r.cfg.Partitions)] })
	}
	return answer{exemplars: es}, nil
}

// Metadata is the metadata of the whole cluster (the API's
// /api/v1/metadata): every zone's answer for its partitions, sorted by
// family, at most limit families when limit >= 0.
func (r *Reader) Metadata(tenant, metric string, limit, limitPerMetric int) ([]storage.Metadata, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.cfg.PeerTimeout))
	defer cancel()
	answers, err := r.fanout(ctx, peerRequest{Op: opMetadata, Tenant: tenant, Name: metric, Limit: limitPerMetric})
	if err != nil {
		return nil, err
	}
	var out []storage.Metadata
	for _, a := range answers {
		out = append(out, a.meta...)
	}
	slices.SortStableFunc(out, func(a, b storage.Metadata) int { return strings.Compare(a.Family, b.Family) })
	out = slices.CompactFunc(out, func(a, b storage.Metadata) bool { return a == b })
	if limit >= 0 {
		families := 0
		for i := range out {
			if i == 0 || out[i].Family != out[i-1].Family {
				if families++; families > limit {
					return out[:i], nil
				}
			}
		}
	}
	return out, nil
}

// Exemplars are the exemplars of the whole cluster (the API's
// /api/v1/query_exemplars), by series sorted by labels.
func (r *Reader) Exemplars(ctx context.Context, tenant string, mint, maxt int64, matcherSets [][]*labels.Matcher) ([]storage.SeriesExemplars, error) {
	req := peerRequest{Op: opExemplars, Tenant: tenant, Start: mint, End: maxt}
	for _, s := range matcherSets {
		req.Sets = append(req.Sets, toWireMatchers(s))
	}
	answers, err := r.fanout(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []storage.SeriesExemplars
	for _, a := range answers {
		out = append(out, a.exemplars...)
	}
	slices.SortStableFunc(out, func(a, b storage.SeriesExemplars) int { return labels.Compare(a.Labels, b.Labels) })
	merged := out[:0]
	for _, s := range out {
		if n := len(merged); n > 0 && labels.Equal(merged[n-1].Labels, s.Labels) {
			merged[n-1].Exemplars = append(merged[n-1].Exemplars, s.Exemplars...)
			slices.SortStableFunc(merged[n-1].Exemplars, func(a, b storage.Exemplar) int { return cmp.Compare(a.T, b.T) })
			merged[n-1].Exemplars = slices.CompactFunc(merged[n-1].Exemplars, func(a, b storage.Exemplar) bool {
				return a.T == b.T && a.V == b.V && labels.Equal(a.Labels, b.Labels)
			})
			continue
		}
		merged = append(merged, s)
	}
	return merged, nil
}
