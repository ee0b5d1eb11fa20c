package storage

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/labels"
)

// Key prefixes of a shard's Pebble keyspace; doc.go explains the layout.
const (
	prefixMeta      byte = 0x01 // 0x01 name -> value
	prefixTenant    byte = 0x02 // 0x02 tenant-name -> tenant id (u32)
	prefixSeries    byte = 0x03 // 0x03 tenant(u32) ref(u64) -> labels
	prefixChunk     byte = 0x04 // 0x04 day(u32) tenant(u32) ref(u64) maxT(u64) -> dense chunk
	prefixSeriesDay byte = 0x05 // 0x05 day(u32) tenant(u32) ref(u64) -> empty
	prefixHistChunk byte = 0x09 // 0x09 day(u32) tenant(u32) ref(u64) maxT(u64) -> histogram chunk
)

// dayMillis is the width of a time partition. Chunks never span partitions,
// so retention drops whole partitions with one range deletion.
const dayMillis = int64(24 * 60 * 60 * 1000)

// Bounds of storable timestamps: the day number must fit in an int32.
const (
	minStorableT = int64(math.MinInt32+1) * dayMillis
	maxStorableT = int64(math.MaxInt32-1) * dayMillis
)

// dayOf returns the partition holding timestamp t (floor division, so
// negative timestamps before 1970 land in negative days).
func dayOf(t int64) int32 {
	d := t / dayMillis
	if t%dayMillis < 0 {
		d--
	}
	// Query bounds may be the extremes of int64; clamp them to the day
	// range (storable samples are well inside it).
	return int32(max(math.MinInt32, min(d, math.MaxInt32)))
}

// dayStart returns the first millisecond of day d.
func dayStart(d int32) int64 { return int64(d) * dayMillis }

// dayEnd returns the last millisecond of day d.
func dayEnd(d int32) int64 { return int64(d)*dayMillis + dayMillis - 1 }

// Sortable encodings: flipping the sign bit makes signed integers sort
// correctly as big-endian unsigned bytes.
func putDay(b []byte, d int32) { binary.BigEndian.PutUint32(b, uint32(d)^(1<<31)) }
func getDay(b []byte) int32    { return int32(binary.BigEndian.Uint32(b) ^ (1 << 31)) }
func putTime(b []byte, t int64) {
	binary.BigEndian.PutUint64(b, uint64(t)^(1<<63))
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

func tenantKey(name string) []byte { return append([]byte{prefixTenant}, name...) }

const seriesKeyLen = 1 + 4 + 8

func seriesKey(tenant uint32, ref uint64) []byte {
	k := make([]byte, seriesKeyLen)
	k[0] = prefixSeries
	binary.BigEndian.PutUint32(k[1:], tenant)
	binary.BigEndian.PutUint64(k[5:], ref)
	return k
}

const chunkKeyLen = 1 + 4 + 4 + 8 + 8

// chunkKey is the key of a sealed chunk, ordered so that the chunks of one
// series within one day are adjacent and sorted by their last timestamp.
func chunkKey(dst []byte, day int32, tenant uint32, ref uint64, maxT int64) []byte {
	var k [chunkKeyLen]byte
	k[0] = prefixChunk
	putDay(k[1:], day)
	binary.BigEndian.PutUint32(k[5:], tenant)
	binary.BigEndian.PutUint64(k[9:], ref)
	putTime(k[17:], maxT)
	return append(dst, k[:]...)
}

// chunkSeriesPrefix is the prefix of every chunk of one series in one day.
func chunkSeriesPrefix(day int32, tenant uint32, ref uint64) []byte {
	return chunkKey(nil, day, tenant, ref, 0)[:chunkKeyLen-8]
}

// chunkDayPrefix is the prefix of every chunk of day d, all tenants.
func chunkDayPrefix(d int32) []byte {
	k := []byte{prefixChunk, 0, 0, 0, 0}
	putDay(k[1:], d)
	return k
}

const seriesDayKeyLen = 1 + 4 + 4 + 8

func seriesDayKey(dst []byte, day int32, tenant uint32, ref uint64) []byte {
	var k [seriesDayKeyLen]byte
	k[0] = prefixSeriesDay
	putDay(k[1:], day)
	binary.BigEndian.PutUint32(k[5:], tenant)
	binary.BigEndian.PutUint64(k[9:], ref)
	return append(dst, k[:]...)
}

func seriesDayPrefix(d int32) []byte {
	k := []byte{prefixSeriesDay, 0, 0, 0, 0}
	putDay(k[1:], d)
	return k
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// appendLabels appends the canonical encoding of lset: for each label, in
// order, uvarint(len(name)) name uvarint(len(value)) value. It does not
// depend on the labels package's build-tag-selected internal layout.
func appendLabels(dst []byte, lset labels.Labels) []byte {
	lset.Range(func(l labels.Label) {
		dst = binary.AppendUvarint(dst, uint64(len(l.Name)))
		dst = append(dst, l.Name...)
		dst = binary.AppendUvarint(dst, uint64(len(l.Value)))
		dst = append(dst, l.Value...)
	})
	return dst
}

// decodeLabels decodes appendLabels' encoding.
func decodeLabels(b []byte, sb *labels.ScratchBuilder) (labels.Labels, error) {
	sb.Reset()
	for len(b) > 0 {
		var name, value string
		var err error
		if name, b, err = readString(b); err != nil {
			return labels.EmptyLabels(), err
		}
		if value, b, err = readString(b); err != nil {
			return labels.EmptyLabels(), err
		}
		sb.Add(name, value)
	}
	return sb.Labels(), nil
}

func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, fmt.Errorf("%w: label encoding", ErrCorrupt)
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// histChunkKey is the key of a sealed histogram chunk: as chunkKey, under
// prefixHistChunk.
func histChunkKey(dst []byte, day int32, tenant uint32, ref uint64, maxT int64) []byte {
	n := len(dst)
	dst = chunkKey(dst, day, tenant, ref, maxT)
	dst[n] = prefixHistChunk
	return dst
}

// histSeriesPrefix is the prefix of every histogram chunk of one series
// in one day.
func histSeriesPrefix(day int32, tenant uint32, ref uint64) []byte {
	return histChunkKey(nil, day, tenant, ref, 0)[:chunkKeyLen-8]
}

// histDayPrefix is the prefix of every histogram chunk of day d.
func histDayPrefix(d int32) []byte {
	k := chunkDayPrefix(d)
	k[0] = prefixHistChunk
	return k
}
