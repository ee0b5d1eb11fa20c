package kafka

import (
	"fmt"
	"maps"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/emsdb/tsdb/storage"
)

// TenantHeader is the record header that names the tenant of a record.
const TenantHeader = "tenant"

// SeriesHash is the stable hash of a tenant's label set that picks the
// series' partition: xxhash64 of the tenant, 0xff, then for each label
// with a non-empty value in order, its name, 0xfe, its value and 0xff.
// Labels with empty values are left out, as storage leaves them out of a
// series. NB: it must never change, or series would change partitions;
// it is not labels.Hash, whose value may change between Prometheus
// releases (DEPENDENCIES.md).
func SeriesHash(tenant string, lset labels.Labels) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(tenant)
	_, _ = d.Write([]byte{0xff})
	lset.Range(func(l labels.Label) {
		if l.Value == "" {
			return
		}
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write([]byte{0xfe})
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write([]byte{0xff})
	})
	return d.Sum64()
}

// Partition is the partition, of n, of the series lset of tenant.
func Partition(tenant string, lset labels.Labels, n int) int32 {
	return int32(SeriesHash(tenant, lset) % uint64(n))
}

// Bounds of one record; a part of a batch larger than them becomes
// several records of its partition, produced in order.
const (
	// recordTargetBytes is the estimated size after which a record is
	// closed and the next series goes into a new one.
	recordTargetBytes = 512 << 10
	// seriesChunk and histogramChunk bound the samples of one series in
	// one record; a series with more is split over records.
	seriesChunk    = 16384
	histogramChunk = 64
	// MaxRecordBytes is what the topic (max.message.bytes) and the
	// producer accept. One record can exceed recordTargetBytes only by a
	// series' chunk: 64 histograms of at most 32768 buckets.
	MaxRecordBytes = 32 << 20
)

// recordBuilder builds the remote-write 2.0 message of one record.
type recordBuilder struct {
	st   writev2.SymbolsTable
	req  writev2.Request
	size int // an estimate of the encoded size
}

func newRecordBuilder() *recordBuilder {
	return &recordBuilder{st: writev2.NewSymbolTable()}
}

func (rb *recordBuilder) empty() bool { return len(rb.req.Timeseries) == 0 }

// add appends a series holding samples or histograms (the 2.0 spec wants
// them in separate TimeSeries) and exemplars.
func (rb *recordBuilder) add(lset labels.Labels, ss []storage.Sample, hs []storage.HSample, es []storage.Exemplar) {
	ts := writev2.TimeSeries{LabelsRefs: rb.st.SymbolizeLabels(lset, nil)}
	rb.size += 8 * lset.Len()
	if len(ss) > 0 {
		ts.Samples = make([]writev2.Sample, len(ss))
		for i, s := range ss {
			ts.Samples[i] = writev2.Sample{Value: s.V, Timestamp: s.T}
		}
		rb.size += 20 * len(ss)
	}
	for _, e := range es {
		ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: rb.st.SymbolizeLabels(e.Labels, nil), Value: e.V, Timestamp: e.T})
		rb.size += 24 + 8*e.Labels.Len()
	}
	if len(ss) > 0 || len(es) > 0 {
		rb.req.Timeseries = append(rb.req.Timeseries, ts)
	}
	if len(hs) > 0 {
		ht := writev2.TimeSeries{LabelsRefs: ts.LabelsRefs, Histograms: make([]writev2.Histogram, len(hs))}
		for i, h := range hs {
			ht.Histograms[i] = writev2.FromFloatHistogram(0, h.T, h.H)
			rb.size += 64 + 10*(len(h.H.PositiveBuckets)+len(h.H.NegativeBuckets)+len(h.H.CustomValues)+len(h.H.PositiveSpans)+len(h.H.NegativeSpans))
		}
		rb.req.Timeseries = append(rb.req.Timeseries, ht)
	}
}

// addMetadata appends a series that carries only the metadata of a
// family: its labels are {__name__=family}, its type, help and unit are
// the series' metadata, as remotewrite.Decoder reads them back.
func (rb *recordBuilder) addMetadata(m storage.Metadata) {
	rb.req.Timeseries = append(rb.req.Timeseries, writev2.TimeSeries{
		LabelsRefs: []uint32{rb.st.Symbolize(model.MetricNameLabel), rb.st.Symbolize(m.Family)},
		Metadata: writev2.Metadata{
			Type:    writev2.FromMetadataType(model.MetricType(m.Type)),
			HelpRef: rb.st.Symbolize(m.Help),
			UnitRef: rb.st.Symbolize(m.Unit),
		},
	})
	rb.size += 32 + len(m.Family) + len(m.Help) + len(m.Unit)
}

// record marshals the message into a record of partition p and resets rb.
func (rb *recordBuilder) record(tenant string, p int32) (*kgo.Record, error) {
	rb.req.Symbols = rb.st.Symbols()
	v, err := rb.req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode record of partition %d: %w", p, err)
	}
	rb.st.Reset()
	rb.req = writev2.Request{}
	rb.size = 0
	return &kgo.Record{
		Partition: p,
		Value:     v,
		Headers:   []kgo.RecordHeader{{Key: TenantHeader, Value: []byte(tenant)}},
	}, nil
}

// Encode splits a tenant's batch into the records of its partitions, of
// partitions in all: every series goes to Partition(tenant, labels), a
// family's metadata to the partition of {__name__=family}. The records of
// one partition keep the batch's order. The records own their bytes: b may
// be reused once Encode returns.
func Encode(tenant string, b *storage.Batch, partitions int) ([]*kgo.Record, error) {
	parts := map[int32]*recordBuilder{}
	var recs []*kgo.Record
	builder := func(p int32) *recordBuilder {
		rb := parts[p]
		if rb == nil {
			rb = newRecordBuilder()
			parts[p] = rb
		}
		return rb
	}
	closeFull := func(p int32, rb *recordBuilder) error {
		if rb.size < recordTargetBytes {
			return nil
		}
		r, err := rb.record(tenant, p)
		if err == nil {
			recs = append(recs, r)
		}
		return err
	}
	for i := range b.Series {
		lset, err := b.LabelsOf(i)
		if err != nil {
			return nil, fmt.Errorf("%w: series %d: %v", storage.ErrInvalidSeries, i, err)
		}
		lset = lset.WithoutEmpty()
		p := Partition(tenant, lset, partitions)
		rb := builder(p)
		s := &b.Series[i]
		ss, hs, es := s.Samples, s.Histograms, s.Exemplars
		for first := true; first || len(ss) > 0 || len(hs) > 0; first = false {
			cs, ch := ss[:min(len(ss), seriesChunk)], hs[:min(len(hs), histogramChunk)]
			ss, hs = ss[len(cs):], hs[len(ch):]
			rb.add(lset, cs, ch, es)
			es = nil
			if err := closeFull(p, rb); err != nil {
				return nil, err
			}
		}
	}
	for _, m := range b.Metadata {
		p := Partition(tenant, labels.FromStrings(model.MetricNameLabel, m.Family), partitions)
		rb := builder(p)
		rb.addMetadata(m)
		if err := closeFull(p, rb); err != nil {
			return nil, err
		}
	}
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		if rb := parts[p]; !rb.empty() {
			r, err := rb.record(tenant, p)
			if err != nil {
				return nil, err
			}
			recs = append(recs, r)
		}
	}
	return recs, nil
}
