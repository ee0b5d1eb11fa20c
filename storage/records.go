package storage

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/histogram"

	"github.com/emsdb/tsdb/storage/chunkenc"
)

// A shard's WAL record is a sequence of entries, each a type byte followed
// by a self-delimiting payload (see docs/format.md):
//
//	tenant:  0x01 uvarint(id) uvarint(len) name
//	series:  0x02 uvarint(ref) uvarint(tenant) uvarint(len) labels
//	samples: 0x03 uvarint(ref) uvarint(n) varint(t0) f64(v0) { varint(t-tprev) f64(v) }*(n-1)
//	         (format 1: read, no longer written)
//	delete:  0x04 uvarint(ref) varint(mint) varint(maxt)
//	histograms: 0x05 uvarint(ref) uvarint(len) histogram chunk (the
//	         samples as written, in any order; see docs/format-chunks.md)
//	usage:   0x06 uvarint(tenant) varint(day) uvarint(n)
//	         { uvarint(len) name u8(kind) uvarint(value) }*n
//	block:   0x08 every float sample of a write, in columns, each
//	         predicted from its series' previous sample in the segment,
//	         a bitmap marking the values equal to their base
//	         (appendBlockEntry); 0x07 the same without the bitmap
//	         (read, written before 2026-12)
//
// or, when its first byte is 0x81, such a sequence compressed as an S2
// block (written since 2026-12: with the block's bitmap, within 5 % of
// zstd's size, for a seventh of the CPU), or when it is 0x80, its zstd frame
// (logs written before, still replayed):
//
//	s2:      0x81 S2 block (its header holds the record's length)
//	zstd:    0x80 uvarint(len(record)) zstd frame
//
// f64 is the IEEE 754 bit pattern, little-endian: stale markers survive.
const (
	entryTenant    byte = 0x01
	entrySeries    byte = 0x02
	entrySamples   byte = 0x03
	entryDelete    byte = 0x04
	entryHists     byte = 0x05
	entryUsage     byte = 0x06
	entryBlock     byte = 0x07 // written before 2026-12, replayed
	entryBlockBits byte = 0x08

	recordZstd byte = 0x80
	recordS2   byte = 0x81
)

func appendTenantEntry(dst []byte, id uint32, name string) []byte {
	dst = append(dst, entryTenant)
	dst = binary.AppendUvarint(dst, uint64(id))
	dst = binary.AppendUvarint(dst, uint64(len(name)))
	return append(dst, name...)
}

func appendSeriesEntry(dst []byte, ref uint64, tenant uint32, lsetEnc []byte) []byte {
	dst = append(dst, entrySeries)
	dst = binary.AppendUvarint(dst, ref)
	dst = binary.AppendUvarint(dst, uint64(tenant))
	dst = binary.AppendUvarint(dst, uint64(len(lsetEnc)))
	return append(dst, lsetEnc...)
}

func appendDeleteEntry(dst []byte, ref uint64, mint, maxt int64) []byte {
	dst = append(dst, entryDelete)
	dst = binary.AppendUvarint(dst, ref)
	dst = binary.AppendVarint(dst, mint)
	return binary.AppendVarint(dst, maxt)
}

func appendHistogramsEntry(dst []byte, ref uint64, hs []HSample) []byte {
	ts := make([]int64, len(hs))
	fhs := make([]*histogram.FloatHistogram, len(hs))
	for i, h := range hs {
		ts[i], fhs[i] = h.T, h.H
	}
	chunk := chunkenc.EncodeHistograms(nil, ts, fhs)
	dst = append(dst, entryHists)
	dst = binary.AppendUvarint(dst, ref)
	dst = binary.AppendUvarint(dst, uint64(len(chunk)))
	return append(dst, chunk...)
}

func appendUsageEntry(dst []byte, tenant uint32, day int32, ds []UsageDelta) []byte {
	dst = append(dst, entryUsage)
	dst = binary.AppendUvarint(dst, uint64(tenant))
	dst = binary.AppendVarint(dst, int64(day))
	dst = binary.AppendUvarint(dst, uint64(len(ds)))
	for _, d := range ds {
		dst = binary.AppendUvarint(dst, uint64(len(d.Name)))
		dst = append(dst, d.Name...)
		dst = append(dst, byte(d.Kind))
		dst = binary.AppendUvarint(dst, d.Value)
	}
	return dst
}

// recordVisitor receives the entries of a record in order.
type recordVisitor struct {
	tenant  func(id uint32, name string) error
	series  func(ref uint64, tenant uint32, lsetEnc []byte) error
	samples func(ref uint64, samples []Sample) error
	delete  func(ref uint64, mint, maxt int64) error
	// histograms receives new histograms, the callee's.
	histograms func(ref uint64, ts []int64, hs []*histogram.FloatHistogram) error
	// usage receives changes to usage counters; ds is valid only during
	// the call.
	usage func(tenant uint32, day int32, ds []UsageDelta) error
}

// decodeRecord walks rec with d's prediction bases (which the record's
// block entries update); the slices passed to the visitor are valid only
// during the call.
func decodeRecord(rec []byte, v *recordVisitor, d *recDecoder) error {
	if len(rec) > 0 && (rec[0] == recordZstd || rec[0] == recordS2) {
		raw, err := d.decompress(rec)
		if err != nil {
			return err
		}
		rec = raw
	}
	r := recReader{b: rec}
	for len(r.b) > 0 && r.err == nil {
		typ := r.b[0]
		r.b = r.b[1:]
		var err error
		switch typ {
		case entryTenant:
			id := r.uvarint()
			name := r.bytes(r.uvarint())
			if r.err == nil && id <= math.MaxUint32 {
				err = v.tenant(uint32(id), string(name))
			}
		case entrySeries:
			ref, tenant := r.uvarint(), r.uvarint()
			lset := r.bytes(r.uvarint())
			if r.err == nil && tenant <= math.MaxUint32 {
				err = v.series(ref, uint32(tenant), lset)
			}
		case entrySamples:
			ref, n := r.uvarint(), r.uvarint()
			if n > uint64(len(r.b))/9 { // each sample takes at least 9 bytes
				return fmt.Errorf("%w: wal record claims %d samples in %d bytes", ErrCorrupt, n, len(r.b))
			}
			buf := d.samples[:0]
			t := int64(0)
			for i := uint64(0); i < n && r.err == nil; i++ {
				if i == 0 {
					t = r.varint()
				} else {
					t += r.varint()
				}
				buf = append(buf, Sample{T: t, V: math.Float64frombits(r.u64())})
			}
			d.samples = buf
			if r.err == nil {
				err = v.samples(ref, buf)
			}
		case entryBlock, entryBlockBits:
			err = d.decodeBlock(&r, typ == entryBlockBits, v.samples)
		case entryDelete:
			ref, mint, maxt := r.uvarint(), r.varint(), r.varint()
			if r.err == nil {
				err = v.delete(ref, mint, maxt)
			}
		case entryHists:
			ref := r.uvarint()
			chunk := r.bytes(r.uvarint())
			if r.err != nil {
				break
			}
			ts, hs, derr := chunkenc.DecodeHistograms(chunk, nil, nil)
			if derr != nil {
				return fmt.Errorf("%w: wal histograms of series %d: %v", ErrCorrupt, ref, derr)
			}
			if v.histograms != nil {
				err = v.histograms(ref, ts, hs)
			}
		case entryUsage:
			tenant, day, n := r.uvarint(), r.varint(), r.uvarint()
			if n > uint64(len(r.b))/3 { // each change takes at least 3 bytes
				return fmt.Errorf("%w: wal record claims %d usage changes in %d bytes", ErrCorrupt, n, len(r.b))
			}
			ds := make([]UsageDelta, 0, n)
			for i := uint64(0); i < n && r.err == nil; i++ {
				name := r.bytes(r.uvarint())
				kind := r.bytes(1)
				val := r.uvarint()
				if r.err == nil {
					ds = append(ds, UsageDelta{Name: string(name), Kind: UsageKind(kind[0]), Value: val})
				}
			}
			if r.err == nil && tenant <= math.MaxUint32 && day >= math.MinInt32 && day <= math.MaxInt32 && v.usage != nil {
				err = v.usage(uint32(tenant), int32(day), ds)
			}
		default:
			return fmt.Errorf("%w: wal entry type %#x", ErrCorrupt, typ)
		}
		if err != nil {
			return err
		}
	}
	return r.err
}

type recReader struct {
	b   []byte
	err error
}

func (r *recReader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated wal entry", ErrCorrupt)
	}
	r.b = nil
}

func (r *recReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recReader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *recReader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}
