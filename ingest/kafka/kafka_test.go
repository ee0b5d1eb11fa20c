package kafka

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func testConfig(addr, node string) Config {
	c := Config{Brokers: []string{addr}, Partitions: 4, ReplicationFactor: 1, Node: node,
		ProduceTimeout: duration.Duration(3 * time.Second), SessionTimeout: duration.Duration(3 * time.Second)}
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

// countSamples is the number of float samples of tenant in db.
func countSamples(t *testing.T, db storage.Reader, tenant string) int {
	t.Helper()
	n := 0
	for _, ss := range st.Read(t, db, tenant, math.MinInt64, math.MaxInt64, labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")) {
		n += len(ss)
	}
	return n
}

// Writes through the Producer reach a node's storage through its
// Consumer, also after the consumer stops and a new one resumes from the
// committed offsets; a record that does not decode is skipped; with the
// broker down a write fails with a 503-able error that says when to retry.
func TestProduceConsume(t *testing.T) {
	k := apptest.StartKafka(t, &apptest.KafkaOptions{Partitions: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := testConfig(k.Addr, "n1")
	db := st.Open(t, nil)
	p, err := NewProducer(ctx, cfg, &Options{Validate: db.Validate})
	require.NoError(t, err)
	defer p.Close()

	// The topic was created with the configured partitions.
	adm, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	require.NoError(t, err)
	defer adm.Close()
	require.Eventually(t, func() bool { // metadata of a new topic takes a moment
		td, err := kadm.NewClient(adm).ListTopics(ctx, cfg.Topic)
		return err == nil && len(td[cfg.Topic].Partitions) == 4
	}, 30*time.Second, 100*time.Millisecond)

	write := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			var b storage.Batch
			for s := range 10 {
				b.Add(labels.FromStrings("__name__", "m", "s", fmt.Sprint(s)), storage.Sample{T: int64(i) * 1000, V: float64(i)})
			}
			require.NoError(t, p.Write(ctx, "acme", &b))
		}
	}
	// An invalid batch is refused before producing, as storage would.
	bad := storage.Batch{Series: []storage.SeriesSamples{{Labels: labels.FromStrings("", "x"), Samples: []storage.Sample{{T: 1, V: 1}}}}}
	require.ErrorIs(t, p.Write(ctx, "acme", &bad), storage.ErrInvalidSeries)
	// A record that does not decode is skipped by the consumer.
	require.NoError(t, p.cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte{0xff, 0xff}, Headers: []kgo.RecordHeader{{Key: TenantHeader, Value: []byte("acme")}}}).FirstErr())
	write(0, 50)

	m := NewMetrics(nil)
	consume := func(want int) {
		t.Helper()
		c, err := NewConsumer(cfg, db, &Options{Metrics: m})
		require.NoError(t, err)
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(cctx) }()
		require.Eventually(t, func() bool { return countSamples(t, db, "acme") >= want }, time.Minute, 50*time.Millisecond)
		// Samples are visible before their write is durable, and a write
		// whose wait for durability the cancellation ends is not committed
		// (its records are consumed again): stop once every record up to
		// each partition's end is durably written.
		ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, cfg.Topic)
		require.NoError(t, err)
		ends.Each(func(o kadm.ListedOffset) {
			require.NoError(t, o.Err)
			require.Eventually(t, func() bool { return c.Position(o.Partition) >= o.Offset }, time.Minute, 50*time.Millisecond,
				"partition %d written up to its end %d", o.Partition, o.Offset)
		})
		ccancel()
		require.NoError(t, <-done)
		c.Close()
		require.Equal(t, want, countSamples(t, db, "acme"))
	}
	consume(500)
	require.Equal(t, 1.0, testCounter(m.skipped.WithLabelValues("malformed")))

	// A new consumer resumes after what the first committed: it skips the
	// bad record no more and writes only the new samples.
	write(50, 80)
	consume(800)
	require.Equal(t, 1.0, testCounter(m.skipped.WithLabelValues("malformed")), "the committed bad record is not read again")

	k.Kill()
	var b storage.Batch
	b.Add(labels.FromStrings("__name__", "m", "s", "0"), storage.Sample{T: 1e9, V: 1})
	start := time.Now()
	err = p.Write(ctx, "acme", &b)
	require.ErrorIs(t, err, ErrUnavailable)
	require.Equal(t, retryAfter, storage.RetryAfter(err))
	require.Less(t, time.Since(start), 10*time.Second)
	k.Start(t)
	require.Eventually(t, func() bool { return p.Write(ctx, "acme", &b) == nil }, time.Minute, time.Second)
}
