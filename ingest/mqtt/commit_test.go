package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/limits"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// TestGroupCommit: a fast burst is stored in groups; a message that does
// not decode and one the storage refuses for good (here a label over the
// tenant's length limit) do not spoil the others' group; every message is
// acknowledged, so a new session on the same client ID receives nothing
// again.
func TestGroupCommit(t *testing.T) {
	addr := apptest.FreePort(t)
	apptest.StartMosquittoConf(t, addr, t.TempDir(), "max_queued_messages 0\n")
	db := st.Open(t, nil)
	w := limits.New(&limits.Config{Default: limits.Limits{MaxLabelValueLength: 8}}, nil).Wrap(db)
	cfg := Config{Broker: "mqtt://" + addr, ClientID: "group-commit",
		Subscriptions: []Subscription{{Topic: "t/+dev/v", Format: "json", ValuePath: "v", TimestampPath: "ts"}}}
	m := NewMetrics(nil)
	s, err := Start(context.Background(), cfg, w, m, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	stored := func() int {
		n := 0
		for _, smp := range st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "v")) {
			n += len(smp)
		}
		return n
	}
	pub := apptest.MQTTPublisher(t, addr, "pub")
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	require.Eventually(t, func() bool {
		pub.Publish("t/probe/v", 1, false, fmt.Sprintf(`{"v":0,"ts":%d}`, time.Now().UnixMilli())).Wait()
		return stored() > 0
	}, 20*time.Second, 200*time.Millisecond, "subscribed")
	time.Sleep(500 * time.Millisecond) // probes still on their way
	base := stored()
	const n = 600
	good, bad := 0, 0
	for i := range n {
		topic, payload := fmt.Sprintf("t/d%d/v", i%3), fmt.Sprintf(`{"v":%d,"ts":%d}`, i, t0+int64(i))
		switch {
		case i%50 == 7:
			topic, bad = "t/a-very-long-device/v", bad+1 // refused by the label limit
		case i%70 == 3:
			payload, bad = "not json", bad+1
		default:
			good++
		}
		pub.Publish(topic, 1, false, payload)
	}
	require.Eventually(t, func() bool { return stored() == base+good }, 30*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		return counterValue(m.Messages.WithLabelValues("mqtt://"+addr, "bad")) == float64(bad)
	}, 10*time.Second, 50*time.Millisecond, "bad messages counted and acknowledged")
	require.Equal(t, float64(base+good), counterValue(m.Messages.WithLabelValues("mqtt://"+addr, "stored")))
	require.NoError(t, s.Stop(context.Background()))

	// Everything was acknowledged: the session has nothing to redeliver.
	m2 := NewMetrics(nil)
	s2, err := Start(context.Background(), cfg, w, m2, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer s2.Stop(context.Background())
	pub.Publish("t/d0/v", 1, false, fmt.Sprintf(`{"v":1,"ts":%d}`, t0+n)).Wait()
	require.Eventually(t, func() bool { return stored() == base+good+1 }, 20*time.Second, 50*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, float64(1), counterValue(m2.Messages.WithLabelValues("mqtt://"+addr, "stored")), "only the new message")
	require.Zero(t, counterValue(m2.Messages.WithLabelValues("mqtt://"+addr, "bad")), "no bad message came back")
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return math.NaN()
	}
	return m.GetCounter().GetValue()
}
