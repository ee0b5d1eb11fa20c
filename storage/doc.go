// Package storage is the time-series store: series identity, the label
// index, recent samples in memory, the write-ahead log and compressed
// chunks in Pebble-backed shards, retention, deletion and snapshots.
//
// # Shape
//
// A DB spreads series over N shards (default: one per CPU core) by a
// stable hash of tenant and labels. Each shard is independent: its own
// Pebble instance, write-ahead log (package wal), in-memory series and
// inverted index, so shards take writes in parallel and never contend.
//
//	db, err := storage.Open("data", nil)
//	var b storage.Batch
//	b.Add(labels.FromStrings("__name__", "up", "job", "node"), storage.Sample{T: ts, V: 1})
//	err = db.Write(ctx, "default", &b) // durable when it returns
//	q, err := db.Querier(ctx, "default", mint, maxt)
//	ss := q.Select(ctx, nil, labels.MustNewMatcher(labels.MatchEqual, "job", "node"))
//
// # The write path
//
// Write validates the whole batch first (bad input changes nothing), then
// per shard, under one mutex: it creates missing series, appends ONE log
// record (new series + samples) to the WAL, applies the samples to memory
// and releases the mutex; then it waits for the WAL's group commit: one
// fsync serves every writer waiting at that moment. So an acknowledged
// write is durable, memory always reflects the log's order (which replay
// repeats), and a sample is visible to queries as soon as it is
// acknowledged.
//
// Native histograms are a second lane of a series (histogram.go), present
// only once it has one: a sorted buffer frozen into histogram chunks by
// the float head's rules (size, day, age) and sealed under 0x09 with the
// float chunks' key layout, so retention, deletes and series-day keys
// cover both. Queries merge the lanes by timestamp (HistogramIterator).
//
// In memory each series keeps a Gorilla XOR head chunk for in-order
// samples and a small sorted buffer for out-of-order ones (backfill, or a
// second write to a timestamp, which replaces the first). A full head
// (HeadChunkSamples), a head that would cross a day, or one older than
// MaxHeadAge is frozen and handed to the shard's sealer, which merges it
// with any overlapping chunk on disk and writes dense chunks (package
// chunkenc: integer or decimal deltas or delta-of-deltas with exceptions for
// stale markers, then Pebble's zstd) to
// Pebble. Once nothing unsealed needs an old WAL segment, Pebble's
// memtables are flushed and the segment is deleted: Pebble runs without a
// log of its own, so chunks are written to disk once, and whatever a crash
// takes from a memtable is still in our WAL. On start-up the index is
// rebuilt from Pebble and the WAL is replayed on top.
//
// The log stays small while heads fill (walcodec.go): a write's samples
// are one record entry in columns, each predicted from its series'
// previous sample in the same segment (timestamp by interval, value by
// decimal delta at scales up to 10^15, or XOR), and the record is
// zstd-compressed; about 1.1 bytes per sample on node-exporter-like data
// instead of 16.
//
// Remote-write series arrive with a Key (their raw label bytes): a series
// seen before is found by a 128-bit hash of its key without decoding or
// validating its labels again.
//
// # Keyspace (one Pebble instance per shard; docs/format.md has the bytes)
//
//	0x01 name                              -> meta (next series ref)
//	0x02 tenant-name                       -> tenant id (u32)
//	0x03 tenant(u32) ref(u64)              -> labels
//	0x04 day(u32) tenant(u32) ref(u64) maxT -> dense chunk
//	0x05 day(u32) tenant(u32) ref(u64)     -> (empty) series has data that day
//	0x06 key                               -> KV document (shard 0)
//	0x07 uvarint-len tenant family         -> metadata (shard 0)
//	0x08 uvarint-len tenant slot(u32)      -> exemplar (shard 0)
//	0x09 day(u32) tenant(u32) ref(u64) maxT -> native histogram chunk
//	0x0A 0x00                              -> usage mark (WAL position)
//	0x0A 0x01 day(u32) tenant(u32) name    -> usage counter (usage.go)
//	0x0B res(u32) period(u32) tenant(u32) ref(u64) -> tier block (a period's buckets)
//	0x0C tenant(u32) ref(u64)              -> days of the series' tier blocks
//	0x0D res(u32)                          -> last day the tier has built, samples and buckets
//	0x0E day(u32)                          -> the day is dirty (built, then written)
//
// Why it looks like this:
//
//   - Samples dominate the bytes, so chunk keys lead with the DAY. A day
//     is a time partition: retention deletes every day before the cutoff
//     with one range deletion, and Pebble drops whole files beneath it
//     instead of deleting sample by sample. Queries touch only the days
//     they ask for.
//   - Within a day, tenant then series ref keep one series' chunks
//     adjacent; the chunk's LAST timestamp ends the key, so SeekGE to
//     (series, mint) lands on the first chunk that can overlap the query.
//   - The tenant is in every key: no read can cross tenants, and one
//     tenant's data can be dropped by range.
//   - Series refs are small integers assigned per shard, never reused (the
//     next ref is persisted), so the log can name series by ref and a
//     deleted series cannot be resurrected by an old record.
//   - Series labels are stored once (0x03); the inverted index (label
//     name -> value -> refs) lives in memory and is rebuilt from them at
//     start-up, which keeps each new series to one key instead of one per
//     label. Each label name's values are also kept in order (sorted, plus
//     those added since the last merge), so a regex with a literal prefix
//     looks only at the values under it. Regex matches over label values
//     are cached with ristretto,
//     and so are a selector's series sorted by labels, until the tenant
//     gains or loses a series (querier.match).
//   - An instant selector asks a series for its newest sample only
//     (LastSampler): the head chunk answers when it holds the series'
//     newest sample (exactly known for samples written since start-up);
//     when nothing of the window is in memory (after a restart, or once a
//     full head is sealed) one seek finds the sealed chunk that holds it,
//     since a series' sealed chunks never overlap. Otherwise the window's
//     samples are read as usual.
//   - Series-day keys (0x05) record which days a series has data in: they
//     restore each series' time range at start-up for time-filtered
//     selects, and retention drops them with the chunks.
//
// # Metadata and exemplars
//
// Both live in shard 0, in memory and in Pebble, keyed by tenant name
// (they are few, and need no series ref). Metadata keeps the latest type,
// unit and help per family, written only when it changes, at most
// Options.MaxMetadataFamilies per tenant. Exemplars fill a ring of
// Options.MaxExemplars slots per tenant, as Prometheus' circular exemplar
// storage does: each series links its exemplars through the ring, a new
// one takes the slot of the tenant's oldest, an exemplar identical to its
// series' newest is not stored again and an older one is dropped. Each
// slot is one Pebble key, overwritten in place, so the keys never outgrow
// the ring; its value carries a sequence number that restores the order
// at Open. Both are written without a sync after the batch's samples are
// durable and reach the disk with Pebble's next flush (sealing, Close): a
// clean restart keeps them, a crash may lose the last ones, which senders
// repeat.
//
// # Usage counters
//
// Per tenant and UTC day, usage.go keeps billing-grade counters: the
// samples each write stored, by ingest protocol (WithIngestProtocol),
// counted in the WAL record that stores them, and whatever RecordUsage is
// given. A usage mark in Pebble, moved in the same batch as the counters,
// tells replay which records are already counted, so each counts once.
//
// # Deletes
//
// DeleteSeries records the delete in a synced intent file in the data
// folder, applies it to every shard (each logs its part to its WAL and
// syncs), then removes the file; Open completes a delete that a crash
// interrupted before it returns. So a delete that returned is durable, and
// after a crash any delete is either not begun or complete, on every
// shard.
//
// # Retention and backfill
//
// Retention counts back from the wall clock (as VictoriaMetrics does, not
// from the newest sample as Prometheus does), so backfilled old data does
// not push recent data out. Samples older than the cutoff are dropped on
// write and counted; queries never see data older than the cutoff; whole
// days that ended before it are deleted hourly. Without retention nothing
// is ever dropped and any timestamp is accepted, even 1970.
//
// # Downsampling tiers
//
// Options.Tiers are built in the background from days no longer written:
// per series, per bucket of the tier's resolution, the count, sum, min,
// max, first and last samples, counter increase and a stale flag (tier.go,
// tier_build.go), keyed like the chunks with the first day of a period
// of blockDays days (32 for 1d) after the resolution, so retention drops
// a tier's whole periods with one range deletion.
// Queries read them through TierQuerier (tier_query.go), computing from
// raw samples the days not built yet; docs/retention.md has the rules.
//
// # A full disk
//
// Every file goes through one vfs.FS wrapper (guardFS) that reports a
// failed write (ENOSPC, EDQUOT, EIO, EROFS) to the DB's health. The first
// one stops writes, and is logged once: Write then fails at once with a
// *NotWritableError ("storage: no space left on device: free space in
// DIR"), without touching the disk; each WAL keeps the round it could not
// write; Pebble's flushes and compactions wait before creating a table
// (Pebble retries a failed flush at once, for ever, and would spin);
// sealing and maintenance pause. A probe writes and syncs 1 MiB in the
// data folder after 100ms, then with doubling waits up to
// Options.WriteRetryMax; once one succeeds, the failed logs write their
// round again in place (wal.Retry) and writes resume, logged once too.
// DB.Writable says which state the DB is in. Nothing acknowledged is at
// risk meanwhile: it is in the WAL, which is truncated only after Pebble
// has flushed. Open writes a probe before anything else, so a full disk at
// start-up is a clear error, and a fatal error Pebble reports while
// opening (a MANIFEST it cannot write) becomes Open's error, not a panic.
package storage
