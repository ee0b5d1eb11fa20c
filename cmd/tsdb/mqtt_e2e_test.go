package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestMQTTSurvivesRestarts: tsdb subscribes to a real mosquitto with a
// persistent QoS 1 session. Messages published while tsdb is killed, and
// after the broker restarts, all arrive: none is lost.
func TestMQTTSurvivesRestarts(t *testing.T) {
	for _, proto := range []string{"5", "3.1.1"} {
		t.Run("mqtt"+proto, func(t *testing.T) { testMQTTRestarts(t, proto) })
	}
}

func testMQTTRestarts(t *testing.T, proto string) {
	pub := apptest.NeedBinary(t, "mosquitto_pub", "mosquitto-clients")
	bin := apptest.Build(t)
	brokerAddr := apptest.FreePort(t)
	brokerDir := t.TempDir()
	broker := apptest.StartMosquitto(t, brokerAddr, brokerDir)

	cfg := filepath.Join(t.TempDir(), "tsdb.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
mqtt:
  - broker: mqtt://%s
    client_id: tsdb-e2e
    protocol: "%s"
    subscriptions:
      - topic: plant/+site/+device/temperature
        format: json
        value_path: reading.celsius
        timestamp_path: ts
        labels: {source: mqtt}
`, brokerAddr, proto)), 0o644))
	data := t.TempDir()
	db := apptest.StartTSDB(t, bin, data, "--config.file", cfg)

	host, port, _ := net.SplitHostPort(brokerAddr)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	n, early := 0, 0
	publish := func(count int) {
		t.Helper()
		for range count {
			payload := fmt.Sprintf(`{"reading":{"celsius":%d.5},"ts":%d}`, n, base.Add(time.Duration(n)*time.Second).UnixMilli())
			out, err := exec.Command(pub, "-h", host, "-p", port, "-V", "mqttv5", "-q", "1",
				"-t", "plant/seoul/d1/temperature", "-m", payload).CombinedOutput()
			require.NoError(t, err, "%s", out)
			n++
		}
	}
	c := &http.Client{Timeout: 10 * time.Second}
	stored := func(db *apptest.Proc) int {
		s, err := apptest.Export(c, db.URL(), `temperature{site="seoul",device="d1",source="mqtt"}`)
		if err != nil || len(s) != 1 {
			return 0
		}
		return len(s[0].Timestamps)
	}
	waitFor := func(db *apptest.Proc, want int) {
		t.Helper()
		ok := assertEventually(func() bool { return stored(db) == want }, 30*time.Second, 200*time.Millisecond)
		if !ok {
			s, _ := apptest.Export(c, db.URL(), `temperature{site="seoul"}`)
			have := map[int64]bool{}
			if len(s) == 1 {
				for _, ts := range s[0].Timestamps {
					have[ts] = true
				}
			}
			var missing []int
			for i := early; i < n; i++ {
				if !have[base.Add(time.Duration(i)*time.Second).UnixMilli()] {
					missing = append(missing, i)
				}
			}
			t.Fatalf("want %d samples, have %d (export: %d series, %d samples, early %d, n %d); missing messages %v\n%s", want, stored(db), len(s), len(have), early, n, missing, db.Log())
		}
	}
	// The subscription is made asynchronously: wait for the first message.
	ok := assertEventually(func() bool {
		if stored(db) > 0 {
			return true
		}
		publish(1)
		return false
	}, 30*time.Second, 500*time.Millisecond)
	require.True(t, ok, "no message arrived\n%s\nbroker:\n%s", db.Log(), broker.Log())
	// Messages published before the subscription existed are not queued
	// for it: count from here.
	time.Sleep(500 * time.Millisecond)
	early = n - stored(db)
	publish(20)
	waitFor(db, n-early)

	// tsdb dies; the broker keeps the session and queues what arrives.
	db.Kill()
	publish(15)
	db = apptest.StartTSDB(t, bin, data, "--config.file", cfg)
	waitFor(db, n-early)

	// The broker restarts (with its persistence); tsdb reconnects.
	broker.Stop(t)
	broker = apptest.StartMosquitto(t, brokerAddr, brokerDir)
	publish(15)
	waitFor(db, n-early)

	// Values and timestamps are the published ones.
	s, err := apptest.Export(c, db.URL(), `temperature{site="seoul"}`)
	require.NoError(t, err)
	require.Equal(t, base.Add(time.Duration(early)*time.Second).UnixMilli(), s[0].Timestamps[0])
	require.Equal(t, float64(early)+0.5, s[0].Value(0))
	_ = broker
}

// assertEventually polls cond until it holds or the time is up.
func assertEventually(cond func() bool, within, every time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(every)
	}
	return cond()
}
