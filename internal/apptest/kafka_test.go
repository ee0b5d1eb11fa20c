package apptest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafka starts the real broker the cluster tests use, creates a topic
// of three partitions, produces with acks=all through an idempotent
// producer, reads everything back through a consumer group, kills the
// broker with SIGKILL, starts it again on the same folder and reads every
// acknowledged record once more.
func TestKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker")
	}
	k := StartKafka(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	admin, err := kgo.NewClient(kgo.SeedBrokers(k.Addr))
	require.NoError(t, err)
	defer admin.Close()
	resp, err := kadm.NewClient(admin).CreateTopic(ctx, 3, 1, nil, "samples")
	require.NoError(t, err)
	require.NoError(t, resp.Err)

	const n = 1000
	prod, err := kgo.NewClient(kgo.SeedBrokers(k.Addr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic("samples"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	for i := range n {
		r := &kgo.Record{Value: fmt.Appendf(nil, "sample %d", i), Partition: int32(i % 3)}
		require.NoError(t, prod.ProduceSync(ctx, r).FirstErr())
	}
	prod.Close()

	require.Equal(t, n, consumeAll(ctx, t, k.Addr, "zone-a", n))

	k.Kill()
	k.Start(t)
	require.Equal(t, n, consumeAll(ctx, t, k.Addr, "zone-b", n), "records acknowledged before kill -9 of the broker")
}

// consumeAll reads the topic from the start through consumer group group
// until it has want distinct records, and returns how many it read.
func consumeAll(ctx context.Context, t *testing.T, addr, group string, want int) int {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics("samples"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer c.Close()
	seen := map[string]bool{}
	for len(seen) < want {
		fs := c.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d records", len(seen), want)
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	return len(seen)
}
