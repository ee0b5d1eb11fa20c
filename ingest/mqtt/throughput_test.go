package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/emsdb/tsdb/internal/apptest"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// BenchmarkEndToEnd publishes b.N QoS 1 messages from 4 publishers to a
// real mosquitto and waits until the subscriber has stored every one
// durably (and acknowledged it): messages/s end to end, per protocol.
func BenchmarkEndToEnd(b *testing.B) {
	for _, proto := range []string{"5", "3.1.1"} {
		b.Run("mqtt"+proto, func(b *testing.B) { benchEndToEnd(b, proto) })
	}
}

func benchEndToEnd(b *testing.B, proto string) {
	addr := apptest.FreePort(b)
	// Mosquitto queues 1000 messages per client by default and drops the
	// rest: a benchmark must not lose any.
	apptest.StartMosquittoConf(b, addr, b.TempDir(), "max_queued_messages 0\n")
	db := st.Open(b, nil)
	s, err := Start(context.Background(), Config{Broker: "mqtt://" + addr, ClientID: "bench-" + proto, Protocol: proto,
		Subscriptions: []Subscription{{Topic: "bench/+pub/+dev/v", Format: "json", ValuePath: "v", TimestampPath: "ts"}}}, db, NewMetrics(nil), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop(context.Background())
	stored := func() int {
		n := 0
		for _, smp := range st.Read(b, db, "default", 0, math.MaxInt64, st.Eq("__name__", "v")) {
			n += len(smp)
		}
		return n
	}
	// Wait for the subscription: a probe message must arrive.
	probe := apptest.MQTTPublisher(b, addr, "probe")
	deadline := time.Now().Add(20 * time.Second)
	for stored() == 0 {
		if time.Now().After(deadline) {
			b.Fatal("the subscriber never received the probe")
		}
		probe.Publish("bench/probe/d/v", 1, false, fmt.Sprintf(`{"v":1,"ts":%d}`, time.Now().UnixMilli())).Wait()
		time.Sleep(200 * time.Millisecond)
	}
	base := stored()
	const pubs = 4
	clients := make([]pahov3.Client, pubs)
	for i := range clients {
		clients[i] = apptest.MQTTPublisher(b, addr, fmt.Sprintf("pub%d", i))
	}
	t0 := time.Now().UnixMilli()
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last pahov3.Token
			for i := p; i < b.N; i += pubs {
				// One series per publisher and device, distinct timestamps.
				last = clients[p].Publish(fmt.Sprintf("bench/p%d/d%d/v", p, i%10), 1, false, fmt.Sprintf(`{"v":%d,"ts":%d}`, i, t0+int64(i)))
			}
			if last != nil {
				last.Wait()
			}
		}()
	}
	wg.Wait()
	deadline = time.Now().Add(2 * time.Minute)
	for stored() < base+b.N {
		if time.Now().After(deadline) {
			b.Fatalf("stored %d of %d", stored()-base, b.N)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
