package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/prometheus/model/labels"
)

// Crash closes db the way a crash would leave it: nothing is sealed or
// flushed beyond what writes already made durable, and the WAL is kept.
func Crash(db *DB) error {
	db.closed.Store(true)
	close(db.quit)
	db.wg.Wait()
	var errs []error
	for _, sh := range db.shards {
		close(sh.quit)
		sh.wg.Wait()
		errs = append(errs, sh.wal.Close(), sh.closePebble())
	}
	db.cache.Close()
	db.blocks.Unref()
	return errors.Join(errs...)
}

// Maintain runs every shard's periodic maintenance once.
func Maintain(db *DB) error {
	var errs []error
	for _, sh := range db.shards {
		errs = append(errs, sh.maintain(false))
	}
	return errors.Join(errs...)
}

// WALBytes returns the WAL bytes on disk.
func WALBytes(db *DB) int64 {
	var n int64
	for _, sh := range db.shards {
		n += sh.wal.Size()
	}
	return n
}

// KeyCacheLen returns the number of keys the key cache holds.
func KeyCacheLen(db *DB) int { return db.keys.len() }

// TierKeys returns every tier key (blocks, series ranges, progress) of
// every shard with its value, as hex, for comparing two builds.
func TierKeys(db *DB) map[string]string {
	out := map[string]string{}
	for _, sh := range db.shards {
		it, err := sh.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTier}, UpperBound: []byte{prefixTierBuilt + 1}})
		if err != nil {
			panic(err)
		}
		for valid := it.First(); valid; valid = it.Next() {
			out[fmt.Sprintf("%d/%x", sh.id, it.Key())] = fmt.Sprintf("%x", it.Value())
		}
		_ = it.Close()
	}
	return out
}

// TierBuilt returns, per tier, the last day every shard has built.
func TierBuilt(db *DB) []int32 {
	out := make([]int32, len(db.opts.Tiers))
	for i := range out {
		out[i] = math.MaxInt32
		for _, sh := range db.shards {
			out[i] = min(out[i], sh.tiers.builtDay(i))
		}
	}
	return out
}

// FlushPebble flushes every shard's memtables to tables.
func FlushPebble(db *DB) error {
	var errs []error
	for _, sh := range db.shards {
		errs = append(errs, sh.flushPebble())
	}
	return errors.Join(errs...)
}

// TierDirty returns the days marked dirty in any shard.
func TierDirty(db *DB) []int32 {
	var out []int32
	for _, sh := range db.shards {
		sh.tiers.mu.Lock()
		for d := range sh.tiers.mu.dirty {
			out = append(out, d)
		}
		sh.tiers.mu.Unlock()
	}
	return out
}

// SeriesID returns the shard and ref of a series, or -1.
func SeriesID(db *DB, tenant string, lset labels.Labels) (int, uint64) {
	for _, sh := range db.shards {
		sh.idxMu.RLock()
		ti := sh.tenants[tenant]
		if ti != nil {
			for _, ref := range ti.all {
				if ms := ti.get(ref); ms != nil && labels.Equal(ms.lset, lset) {
					sh.idxMu.RUnlock()
					return sh.id, ref
				}
			}
		}
		sh.idxMu.RUnlock()
	}
	return -1, 0
}

// TierKeysOf counts the tier keys (blocks and range) of a series.
func TierKeysOf(db *DB, shardID int, tenant string, ref uint64) int {
	sh := db.shards[shardID]
	sh.idxMu.RLock()
	tid := sh.tenants[tenant].id
	sh.idxMu.RUnlock()
	n := 0
	it, err := sh.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTier}, UpperBound: []byte{prefixTierRange + 1}})
	if err != nil {
		panic(err)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if string(k[len(k)-12:]) == string(seriesKey(tid, ref)[1:]) {
			n++
		}
	}
	return n
}

// SetTierFormat1 writes every tier's progress as format 1 did (the day
// only), as a data folder of that format has it.
func SetTierFormat1(db *DB) error {
	for _, sh := range db.shards {
		for i, t := range db.opts.Tiers {
			var v [4]byte
			putDay(v[:], sh.tiers.builtDay(i))
			if err := sh.db.Set(tierBuiltKey(t.Resolution.Milliseconds()), v[:], pebble.NoSync); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendSamplesEntry is how format 1 logged samples (entrySamples), before
// the block entries of issue 18: replay still reads it.
func appendSamplesEntry(dst []byte, ref uint64, samples []Sample) []byte {
	dst = append(dst, entrySamples)
	dst = binary.AppendUvarint(dst, ref)
	dst = binary.AppendUvarint(dst, uint64(len(samples)))
	prev := int64(0)
	for i, s := range samples {
		if i == 0 {
			dst = binary.AppendVarint(dst, s.T)
		} else {
			dst = binary.AppendVarint(dst, s.T-prev)
		}
		prev = s.T
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(s.V))
	}
	return dst
}

// OldFormatRecord is a WAL record as format 1 wrote it: a new tenant (id
// tenantID) with one new series (ref) and its samples.
func OldFormatRecord(tenantID uint32, tenant string, ref uint64, lset labels.Labels, samples []Sample) []byte {
	rec := appendTenantEntry(nil, tenantID, tenant)
	rec = appendSeriesEntry(rec, ref, tenantID, appendLabels(nil, lset))
	return appendSamplesEntry(rec, ref, samples)
}

// ZstdBlockRecords are records as binaries before 2026-12 wrote them: a
// 0x07 block entry (no bitmap of repeated values), zstd-compressed, one
// record per sample of samples, for one series, the first record also
// naming the tenant and the series.
func ZstdBlockRecords(tenantID uint32, tenant string, ref uint64, lset labels.Labels, samples []Sample) [][]byte {
	enc := newZstdEncoder()
	defer enc.Close()
	var pred walPred
	var out [][]byte
	for i, s := range samples {
		var rec []byte
		if i == 0 {
			rec = appendTenantEntry(nil, tenantID, tenant)
			rec = appendSeriesEntry(rec, ref, tenantID, appendLabels(nil, lset))
		}
		rec = appendBlockEntry07(rec, []blockSeries{{ref: ref, samples: []Sample{s}, pred: &pred}}, 1)
		for len(rec) < minCompress { // large enough to be compressed, as such records were
			rec = appendUsageEntry(rec, tenantID, 0, []UsageDelta{{Name: "padding", Value: 0}})
		}
		out = append(out, zstdRecord(enc, nil, rec))
	}
	return out
}
