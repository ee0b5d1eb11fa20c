package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestMQTTBurstSurvivesKill: tsdb stores a fast burst of QoS 1 messages in
// groups (one durable write per group, acknowledgements after it) and is
// killed with SIGKILL in the middle of it; after a restart every message
// of the burst is stored, exactly once per timestamp: what was
// acknowledged was durable, and what was not came back from the broker.
func TestMQTTBurstSurvivesKill(t *testing.T) {
	for _, proto := range []string{"5", "3.1.1"} {
		t.Run("mqtt"+proto, func(t *testing.T) { testMQTTBurstKill(t, proto) })
	}
}

func testMQTTBurstKill(t *testing.T, proto string) {
	bin := apptest.Build(t)
	brokerAddr := apptest.FreePort(t)
	apptest.StartMosquittoConf(t, brokerAddr, t.TempDir(), "max_queued_messages 0\n")
	cfg := filepath.Join(t.TempDir(), "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
mqtt:
  - broker: mqtt://%s
    client_id: tsdb-burst
    protocol: "%s"
    subscriptions:
      - {topic: "burst/+dev/v", format: json, value_path: v, timestamp_path: ts}
`, brokerAddr, proto)), 0o644))
	data := t.TempDir()
	db := apptest.StartTSDB(t, bin, data, "--config.file", cfg)
	c := &http.Client{Timeout: 10 * time.Second}
	stored := func(db *apptest.Proc) int {
		s, err := apptest.Export(c, db.URL(), `{__name__="v"}`)
		if err != nil {
			return -1
		}
		n := 0
		for _, x := range s {
			n += len(x.Timestamps)
		}
		return n
	}
	pub := apptest.MQTTPublisher(t, brokerAddr, "burst-pub")

	// The subscription is asynchronous: a probe on its own device first.
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	require.True(t, assertEventually(func() bool {
		pub.Publish("burst/probe/v", 1, false, fmt.Sprintf(`{"v":0,"ts":%d}`, time.Now().UnixMilli())).Wait()
		return stored(db) > 0
	}, 30*time.Second, 300*time.Millisecond), "subscribed\n%s", db.Log())
	time.Sleep(500 * time.Millisecond)
	probes := stored(db)

	const n = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last pahov3.Token
		for i := range n {
			last = pub.Publish(fmt.Sprintf("burst/d%d/v", i%20), 1, false, fmt.Sprintf(`{"v":%d,"ts":%d}`, i, t0+int64(i)))
		}
		last.Wait()
	}()
	// Kill tsdb once part of the burst is in.
	var before int
	require.True(t, assertEventually(func() bool { before = stored(db); return before > probes+n/5 }, 60*time.Second, 10*time.Millisecond))
	db.Kill()
	wg.Wait()
	t.Logf("killed with at least %d of %d stored", before-probes, n)
	require.Less(t, before-probes, n, "killed mid-burst")
	db = apptest.StartTSDB(t, bin, data, "--config.file", cfg)
	ok := assertEventually(func() bool { return stored(db) == probes+n }, 90*time.Second, 200*time.Millisecond)
	require.True(t, ok, "want %d samples, have %d\n%s", probes+n, stored(db), db.Log())
}
