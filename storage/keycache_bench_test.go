package storage

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// BenchmarkKeyCacheID hashes a remote-write label set's wire bytes into
// its key id, as a write does with its tenant's part worked out once
// (issue 18: 32 ns with maphash.Hash, 16 with maphash.Bytes, 11 without
// hashing the tenant per key).
func BenchmarkKeyCacheID(b *testing.B) {
	c := newKeyCache(1000)
	key := fmt.Appendf(nil, "\n\x08__name__\x12\x10node_cpu_seconds\n\x08instance\x12\x0ehost-%06d:9100\n\x03job\x12\x04node\n\x04mode\x12\x04idle\n\x03cpu\x12\x02%d", 17, 3)
	var sink keyID
	th := c.tenantHash("default")
	for b.Loop() {
		sink = c.idIn(th, key)
	}
	_ = sink
}

// BenchmarkKeyCacheGetMany looks up batches of 2,000 keys, as a
// remote-write request carries them, among 100k and 1M series: the hashing
// of the writers' keys and the lookups, whose cost is mostly waiting on
// memory once the cache outgrows the CPU's.
// (Issue 18, 2,000 keys of a request among 100k / 1M: 70 / 155 ns a key
// with Go maps and maphash.Hash, 47 / 93 with keyTable and maphash.Bytes.)
func BenchmarkKeyCacheGetMany(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := newKeyCache(2 * n)
			keys := make([][]byte, n)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "\n\x08__name__\x12\x10node_cpu_seconds\n\x08instance\x12\x0ehost-%06d:9100\n\x03job\x12\x04node\n\x04mode\x12\x04idle\n\x03cpu\x12\x02%d", i/500, i%500)
				ms := newMemSeries(uint64(i), 1, labels.EmptyLabels())
				c.put(c.id("default", keys[i]), keyEntry{ms: ms})
			}
			c.live.Store(int64(n))
			var l keyLookup
			ids := make([]keyID, 0, 2000)
			next := 0
			for b.Loop() {
				ids = ids[:0]
				for range 2000 {
					ids = append(ids, c.id("default", keys[next]))
					next = (next + 1) % n
				}
				c.getMany(ids, &l)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2000), "ns/key")
		})
	}
}
