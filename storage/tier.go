package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/emsdb/tsdb/storage/chunkenc"
)

// Downsampling tiers (storage/docs/format.md has the bytes, docs/retention.md
// the rules). A tier of resolution R keeps, per series and per bucket
// (End-R, End] with End a multiple of R, one Bucket: what the rollup
// functions need to answer exactly for windows made of whole buckets. The
// buckets are built in the background from days no longer written (see
// tier_build.go) and kept under their own retention, so a series can be
// answered from its tiers long after its raw samples are gone.
//
// Buckets are left-open and right-closed, as Prometheus' range windows
// (ref-rng, ref] are, so that a window whose ends are multiples of R is
// exactly a union of buckets. Day d's buckets are those ending in
// (dayStart(d), dayStart(d+1)]: the samples of (dayStart(d),
// dayStart(d+1)], which is raw day d without its first millisecond, plus
// the first millisecond of day d+1. A block holds the buckets of the days
// of a period (blockDays).

// Tier is one downsampling tier: buckets of Resolution, kept for
// Retention.
type Tier struct {
	// Resolution is the width of a bucket. It must divide 24h and be at
	// least one minute.
	Resolution time.Duration
	// Retention is how long the tier's buckets are kept, back from the
	// wall clock; zero keeps them forever.
	Retention time.Duration
}

// RetentionPolicy overrides the retention of one tenant (see
// Options.TenantRetention). A zero duration means the DB's default; a
// negative one keeps that data forever.
type RetentionPolicy struct {
	// Raw is how long raw samples are kept.
	Raw time.Duration
	// Tiers maps a tier's resolution to how long its buckets are kept.
	Tiers map[time.Duration]time.Duration
}

// Bucket is the aggregate of one series' float samples in (End-R, End]
// for a tier of resolution R. Stale markers are not counted: Count, Sum,
// Min, Max, First and Last are over the other samples, as range
// functions see them; Stale says the bucket's newest sample was a stale
// marker. A bucket holding only stale markers has Count 0.
type Bucket struct {
	End   int64 // the bucket's last millisecond, a multiple of R
	Count int64
	Sum   float64
	// Min and Max follow Prometheus' min_over_time: NaN only when every
	// sample is NaN.
	Min, Max      float64
	FirstT, LastT int64 // first and last sample (not stale markers)
	First, Last   float64
	// Inc is the counter increase between consecutive samples of the
	// bucket, a decrease counting as a reset to zero: the sum of v[i] -
	// v[i-1], or v[i] where v[i] < v[i-1]. Adding the same between the
	// last sample of one bucket and the first of the next gives the
	// increase over any run of buckets exactly as increase() sees it.
	Inc   float64
	Stale bool
}

// bucketEnd is the end of the bucket of resolution res (ms) holding t.
func bucketEnd(t, res int64) int64 {
	q := t / res
	if t%res > 0 {
		q++
	}
	return q * res
}

// tierDayOf is the day whose block holds the bucket ending at end.
func tierDayOf(end int64) int32 {
	if end == math.MinInt64 {
		return dayOf(end)
	}
	return dayOf(end - 1)
}

// bucketAgg folds time-ordered samples into the buckets of one
// resolution.
type bucketAgg struct {
	res  int64
	out  []Bucket
	cur  Bucket
	open bool
	comp float64 // Kahan compensation of cur.Sum
}

func (a *bucketAgg) add(t int64, v float64) {
	end := bucketEnd(t, a.res)
	if !a.open || end != a.cur.End {
		a.flush()
		a.cur, a.open, a.comp = Bucket{End: end}, true, 0
	}
	b := &a.cur
	if IsStaleNaN(v) {
		b.Stale = true
		return
	}
	b.Stale = false
	if b.Count == 0 {
		b.FirstT, b.First, b.Min, b.Max = t, v, v, v
	} else {
		b.Inc += counterStep(b.Last, v)
		if v < b.Min || math.IsNaN(b.Min) {
			b.Min = v
		}
		if v > b.Max || math.IsNaN(b.Max) {
			b.Max = v
		}
	}
	b.Count++
	b.Sum, a.comp = kahanAdd(v, b.Sum, a.comp)
	b.LastT, b.Last = t, v
}

func (a *bucketAgg) flush() {
	if !a.open {
		return
	}
	if !math.IsInf(a.cur.Sum, 0) {
		a.cur.Sum += a.comp
	}
	a.out = append(a.out, a.cur)
	a.open = false
}

// buckets returns the buckets folded so far and starts afresh.
func (a *bucketAgg) buckets() []Bucket {
	a.flush()
	out := a.out
	a.out = nil
	return out
}

// counterStep is the increase from a counter value prev to the next, v:
// a decrease is a reset to zero, so the increase is v itself.
func counterStep(prev, v float64) float64 {
	if v < prev {
		return v
	}
	return v - prev
}

// kahanAdd adds inc to sum with Neumaier's compensation c.
func kahanAdd(inc, sum, c float64) (float64, float64) {
	t := sum + inc
	switch {
	case math.IsInf(t, 0):
		c = 0
	case math.Abs(sum) >= math.Abs(inc):
		c += (sum - t) + inc
	default:
		c += (inc - t) + sum
	}
	return t, c
}

// Tier block layout (docs/format.md, "Tier blocks"). A block holds one
// series' buckets of a run of blockDays(res) days (a period), so that a
// coarse tier costs a query one seek and one decode for many buckets, not
// one per day:
//
//	version(1)=2 uvarint(n) uvarint(res seconds)
//	n bucket indexes: uvarint(first), then uvarint(gap to the previous);
//	  bucket i ends at dayStart(period) + (index+1)*res
//	9 columns, each uvarint(len) and a dense chunk (package chunkenc) of n
//	  values at timestamps 0..n-1: count, sum, min, max, first, last, inc,
//	  end-firstT, end-lastT
//	stale bitmap: ceil(n/8) bytes, bit i%8 of byte i/8
//
// The columns' lengths let a reader skip the columns it does not need
// (BucketFields).
const tierBlockVersion = 2

const tierColumns = 9

// tierBlockBuckets is about how many buckets a block of a coarse tier
// holds: blockDays gives a tier as many days per block as keep it near
// this, at most tierMaxBlockDays.
const (
	tierBlockBuckets = 256
	tierMaxBlockDays = 32
)

// blockDays is how many days one block of the tier of resolution res
// (ms) spans: a power of two, 1 for tiers of 5m and finer, 8 for 1h, 32
// for 1d. Periods start at day numbers that are multiples of it.
func blockDays(res int64) int32 {
	perDay := dayMillis / res
	n := int32(1)
	for n*2 <= tierMaxBlockDays && int64(n*2)*perDay <= tierBlockBuckets {
		n *= 2
	}
	return n
}

// periodOf is the first day of the period of n days holding day d.
func periodOf(d, n int32) int32 {
	p := d / n
	if d%n < 0 {
		p--
	}
	return p * n
}

// BucketFields is a set of Bucket fields, for a reader of tiers to say
// which it needs (SelectHints.Fields): the others are left zero and their
// columns not decoded. End and Stale are always set.
type BucketFields uint16

// The fields of a Bucket, one bit each, in the order of the block's
// columns.
const (
	FieldCount BucketFields = 1 << iota
	FieldSum
	FieldMin
	FieldMax
	FieldFirst
	FieldLast
	FieldInc
	FieldFirstT
	FieldLastT

	// AllFields is every field.
	AllFields BucketFields = 1<<tierColumns - 1
)

// encodeTierBlock appends the encoding of bs (buckets of one series in
// the period starting at day period, ascending, at least one) to dst.
func encodeTierBlock(dst []byte, period int32, res int64, bs []Bucket) []byte {
	n := len(bs)
	dst = append(dst, tierBlockVersion)
	dst = binary.AppendUvarint(dst, uint64(n))
	dst = binary.AppendUvarint(dst, uint64(res/1000))
	base := dayStart(period)
	prev := int64(-1)
	for _, b := range bs {
		idx := (b.End-base)/res - 1
		dst = binary.AppendUvarint(dst, uint64(idx-prev))
		prev = idx
	}
	ts := make([]int64, n)
	col := make([]float64, n)
	for i := range ts {
		ts[i] = int64(i)
	}
	var chunk []byte
	for c := range tierColumns {
		for i := range bs {
			col[i] = bucketColumn(&bs[i], c)
		}
		chunk = chunkenc.EncodeDense(chunk[:0], ts, col)
		dst = binary.AppendUvarint(dst, uint64(len(chunk)))
		dst = append(dst, chunk...)
	}
	bits := make([]byte, (n+7)/8)
	for i := range bs {
		if bs[i].Stale {
			bits[i/8] |= 1 << (i % 8)
		}
	}
	return append(dst, bits...)
}

func bucketColumn(b *Bucket, c int) float64 {
	switch c {
	case 0:
		return float64(b.Count)
	case 1:
		return b.Sum
	case 2:
		return b.Min
	case 3:
		return b.Max
	case 4:
		return b.First
	case 5:
		return b.Last
	case 6:
		return b.Inc
	case 7:
		return float64(b.End - b.FirstT)
	default:
		return float64(b.End - b.LastT)
	}
}

// setColumn sets column c of bs from vs, a loop per column rather than
// a switch per value.
func setColumn(bs []Bucket, c int, vs []float64) {
	switch c {
	case 0:
		for i := range bs {
			bs[i].Count = int64(vs[i])
		}
	case 1:
		for i := range bs {
			bs[i].Sum = vs[i]
		}
	case 2:
		for i := range bs {
			bs[i].Min = vs[i]
		}
	case 3:
		for i := range bs {
			bs[i].Max = vs[i]
		}
	case 4:
		for i := range bs {
			bs[i].First = vs[i]
		}
	case 5:
		for i := range bs {
			bs[i].Last = vs[i]
		}
	case 6:
		for i := range bs {
			bs[i].Inc = vs[i]
		}
	case 7:
		for i := range bs {
			bs[i].FirstT = bs[i].End - int64(vs[i])
		}
	default:
		for i := range bs {
			bs[i].LastT = bs[i].End - int64(vs[i])
		}
	}
}

// tierScratch is the decoder's reusable memory.
type tierScratch struct {
	ts []int64
	vs []float64
}

// decodeTierBlock appends the buckets of a block of the period starting
// at day period to dst, with every field.
func decodeTierBlock(dst []Bucket, period int32, b []byte) ([]Bucket, error) {
	return decodeTierBlockFields(dst, period, b, AllFields, math.MinInt64, math.MaxInt64, nil)
}

// decodeTierBlockFields appends the buckets of a block of the period
// starting at day period that end in [mint, maxt] to dst, with the
// fields of want set (the others zero). sc may be nil.
func decodeTierBlockFields(dst []Bucket, period int32, b []byte, want BucketFields, mint, maxt int64, sc *tierScratch) ([]Bucket, error) {
	bad := func(what string) ([]Bucket, error) {
		return dst, fmt.Errorf("%w: tier block of period %d: %s", ErrCorrupt, period, what)
	}
	if len(b) < 1 || b[0] != tierBlockVersion {
		return bad("unknown version")
	}
	if sc == nil {
		sc = &tierScratch{}
	}
	r := recReader{b: b[1:]}
	n, resS := r.uvarint(), r.uvarint()
	if r.err != nil || n == 0 || n > uint64(len(r.b)) || resS == 0 || resS > 86400 {
		return bad("bad header")
	}
	res := int64(resS) * 1000
	base := dayStart(period)
	first := len(dst)
	// The buckets in [mint, maxt] are the ones at [lo, hi) of the block.
	lo, hi := -1, 0
	idx := int64(-1)
	for i := range int(n) {
		idx += int64(r.uvarint())
		end := base + (idx+1)*res
		if end < mint || end > maxt {
			continue
		}
		if lo < 0 {
			lo = i
		}
		hi = i + 1
		dst = append(dst, Bucket{End: end})
	}
	if r.err != nil {
		return bad("bad bucket indexes")
	}
	if lo < 0 {
		return dst, nil // none in range
	}
	out := dst[first:]
	if len(out) != hi-lo {
		return bad("bucket indexes out of order")
	}
	for c := range tierColumns {
		chunk := r.bytes(r.uvarint())
		if r.err != nil {
			return bad("truncated column")
		}
		if want&(1<<c) == 0 {
			continue
		}
		var err error
		sc.ts, sc.vs, err = chunkenc.DecodeDense(chunk, sc.ts[:0], sc.vs[:0])
		if err != nil || len(sc.vs) != int(n) {
			return bad(fmt.Sprintf("column %d: %v", c, err))
		}
		setColumn(out, c, sc.vs[lo:hi])
	}
	bits := r.bytes((n + 7) / 8)
	if r.err != nil {
		return bad("truncated stale bitmap")
	}
	for i := range out {
		j := lo + i
		out[i].Stale = bits[j/8]&(1<<(j%8)) != 0
	}
	return dst, nil
}

// Tier keys. Resolutions are in seconds.
const (
	prefixTier      byte = 0x0B // 0x0B res(u32) period(u32) tenant(u32) ref(u64) -> tier block
	prefixTierRange byte = 0x0C // 0x0C tenant(u32) ref(u64) -> minDay(u32) maxDay(u32) of tier buckets
	prefixTierBuilt byte = 0x0D // 0x0D res(u32) -> day(u32) version(u8) samples buckets: every day up to it is built
	prefixTierDirty byte = 0x0E // 0x0E day(u32) -> generation(u64): the day's raw data changed
)

const tierKeyLen = 1 + 4 + 4 + 4 + 8

func tierKey(dst []byte, res int64, day int32, tenant uint32, ref uint64) []byte {
	var k [tierKeyLen]byte
	k[0] = prefixTier
	binary.BigEndian.PutUint32(k[1:], uint32(res/1000))
	putDay(k[5:], day)
	binary.BigEndian.PutUint32(k[9:], tenant)
	binary.BigEndian.PutUint64(k[13:], ref)
	return append(dst, k[:]...)
}

// tierDayPrefix is the prefix of every block of day d in the tier of res.
func tierDayPrefix(res int64, d int32) []byte {
	return tierKey(nil, res, d, 0, 0)[:1+4+4]
}

// tierTenantDayPrefix is the prefix of one tenant's blocks of day d.
func tierTenantDayPrefix(res int64, d int32, tenant uint32) []byte {
	return tierKey(nil, res, d, tenant, 0)[:1+4+4+4]
}

// tierResPrefix is the prefix of every block of the tier of res.
func tierResPrefix(res int64) []byte { return tierKey(nil, res, 0, 0, 0)[:1+4] }

func tierRangeKey(tenant uint32, ref uint64) []byte {
	k := seriesKey(tenant, ref)
	k[0] = prefixTierRange
	return k
}

func tierBuiltKey(res int64) []byte {
	k := []byte{prefixTierBuilt, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(k[1:], uint32(res/1000))
	return k
}

func tierDirtyKey(day int32) []byte {
	k := []byte{prefixTierDirty, 0, 0, 0, 0}
	putDay(k[1:], day)
	return k
}

func appendDays(dst []byte, a, b int32) []byte {
	var k [8]byte
	putDay(k[:], a)
	putDay(k[4:], b)
	return append(dst, k[:]...)
}

// validateTiers checks tiers: each resolution divides a day and is at
// least a minute, resolutions ascend, retentions are whole days or zero.
func validateTiers(ts []Tier) error {
	for i, t := range ts {
		switch {
		case t.Resolution < time.Minute || t.Resolution%time.Second != 0 || (24*time.Hour)%t.Resolution != 0:
			return fmt.Errorf("storage: tier resolution %s: a whole number of seconds, at least 1m, dividing 24h", t.Resolution)
		case i > 0 && t.Resolution <= ts[i-1].Resolution:
			return fmt.Errorf("storage: tier %s after %s: tiers must be listed finest first, each once", t.Resolution, ts[i-1].Resolution)
		case t.Retention < 0:
			return fmt.Errorf("storage: tier %s: negative retention %s", t.Resolution, t.Retention)
		case t.Retention > 0 && t.Retention < 24*time.Hour:
			return fmt.Errorf("storage: tier %s: retention %s: at least 24h (data is dropped by whole days)", t.Resolution, t.Retention)
		}
	}
	return nil
}

// tierIndex returns the index of the tier of resolution res, or -1.
func (o *Options) tierIndex(res time.Duration) int {
	return slices.IndexFunc(o.Tiers, func(t Tier) bool { return t.Resolution == res })
}

// cutoffOf turns a retention into a cutoff timestamp: MinInt64 keeps
// everything.
func cutoffOf(o *Options, keep time.Duration) int64 {
	if keep <= 0 {
		return math.MinInt64
	}
	return o.Now().Add(-keep).UnixMilli()
}

// rawRetention is how long tenant's raw samples are kept (0: forever).
func (o *Options) rawRetention(tenant string) time.Duration {
	if o.TenantRetention != nil {
		if p := o.TenantRetention(tenant); p.Raw != 0 {
			return max(p.Raw, 0)
		}
	}
	return o.Retention
}

// tierRetention is how long tenant's buckets of tier i are kept (0:
// forever).
func (o *Options) tierRetention(tenant string, i int) time.Duration {
	t := o.Tiers[i]
	if o.TenantRetention != nil {
		if d, ok := o.TenantRetention(tenant).Tiers[t.Resolution]; ok && d != 0 {
			return max(d, 0)
		}
	}
	return t.Retention
}

// DiskUsage estimates the bytes on disk of the raw samples (float and
// histogram chunks) and of each tier, by resolution.
func (db *DB) DiskUsage() (raw int64, tiers map[time.Duration]int64, err error) {
	tiers = map[time.Duration]int64{}
	for _, sh := range db.shards {
		n, err := sh.db.EstimateDiskUsage([]byte{prefixChunk}, []byte{prefixChunk + 1})
		if err != nil {
			return 0, nil, err
		}
		raw += int64(n)
		if n, err = sh.db.EstimateDiskUsage([]byte{prefixHistChunk}, []byte{prefixHistChunk + 1}); err != nil {
			return 0, nil, err
		}
		raw += int64(n)
		for _, t := range db.opts.Tiers {
			p := tierResPrefix(t.Resolution.Milliseconds())
			if n, err = sh.db.EstimateDiskUsage(p, prefixEnd(p)); err != nil {
				return 0, nil, err
			}
			tiers[t.Resolution] += int64(n)
		}
	}
	return raw, tiers, nil
}
