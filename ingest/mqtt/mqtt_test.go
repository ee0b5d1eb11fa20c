package mqtt

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func sub(t *testing.T, s Subscription) *Subscription {
	t.Helper()
	c := Config{Broker: "mqtt://127.0.0.1:1883", ClientID: "x", Subscriptions: []Subscription{s}}
	require.NoError(t, c.Validate())
	return &c.Subscriptions[0]
}

func TestDecodeJSON(t *testing.T) {
	s := sub(t, Subscription{Topic: "plant/+site/+device/temperature", ValuePath: "r.c", TimestampPath: "ts", Labels: map[string]string{"src": "mqtt"}})
	require.Equal(t, "plant/+/+/temperature", s.filter)
	require.True(t, s.matches("plant/a/b/temperature"))
	require.False(t, s.matches("plant/a/b/humidity"))
	require.False(t, s.matches("plant/a/temperature"))

	var b storage.Batch
	require.NoError(t, s.Decode("plant/a/b/temperature", []byte(`[{"r":{"c":21.5},"ts":1700000000},{"r":{"c":"22"},"ts":1700000001500}]`), 9, &b))
	want := labels.FromStrings("__name__", "temperature", "site", "a", "device", "b", "src", "mqtt")
	require.Len(t, b.Series, 2)
	require.Equal(t, want, b.Series[0].Labels)
	require.Equal(t, []storage.Sample{{T: 1700000000000, V: 21.5}}, b.Series[0].Samples, "seconds")
	require.Equal(t, []storage.Sample{{T: 1700000001500, V: 22}}, b.Series[1].Samples, "milliseconds")

	for _, bad := range []string{`{"r":{}}`, `not json`, `{"r":{"c":"x"},"ts":1}`, `{"r":{"c":1},"ts":"yesterday"}`} {
		require.Error(t, s.Decode("plant/a/b/temperature", []byte(bad), 0, &b), bad)
	}
}

func TestDecodeValueAndInflux(t *testing.T) {
	s := sub(t, Subscription{Topic: "sensors/+id/pressure", Format: "value"})
	var b storage.Batch
	require.NoError(t, s.Decode("sensors/7/pressure", []byte(" 1013.2\n"), 42, &b))
	require.Equal(t, labels.FromStrings("__name__", "pressure", "id", "7"), b.Series[0].Labels)
	require.Equal(t, []storage.Sample{{T: 42, V: 1013.2}}, b.Series[0].Samples)
	require.Error(t, s.Decode("sensors/7/pressure", []byte("high"), 42, &b))

	s = sub(t, Subscription{Topic: "telegraf/+host/#", Format: "influx"})
	b = storage.Batch{}
	require.NoError(t, s.Decode("telegraf/h1/cpu", []byte("cpu,core=0 usage=0.5 1700000000000000000\n"), 0, &b))
	require.Equal(t, labels.FromStrings("__name__", "cpu_usage", "core", "0", "host", "h1"), b.Series[0].Labels)
	require.Equal(t, int64(1700000000000), b.Series[0].Samples[0].T)
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Broker: "http://x:1", ClientID: "a", Subscriptions: []Subscription{{Topic: "a"}}},
		{Broker: "mqtt://x:1", Subscriptions: []Subscription{{Topic: "a"}}},
		{Broker: "mqtt://x:1", ClientID: "a"},
		{Broker: "mqtt://x:1", ClientID: "a", Subscriptions: []Subscription{{Topic: "a/#/b"}}},
		{Broker: "mqtt://x:1", ClientID: "a", Subscriptions: []Subscription{{Topic: "a/+x"}}},
		{Broker: "mqtt://x:1", ClientID: "a", Subscriptions: []Subscription{{Topic: "a", Format: "xml"}}},
	} {
		require.Error(t, c.Validate(), "%+v", c)
	}
}

// A broker that wants a password: the right one gets data in, a wrong one
// does not; neither shows up in logs or metrics.
func TestUsernamePassword(t *testing.T) {
	pub := apptest.NeedBinary(t, "mosquitto_pub", "mosquitto-clients")
	addr := apptest.FreePort(t)
	apptest.StartMosquittoAuth(t, addr, t.TempDir(), "tsdb", "s3cret")
	db := st.Open(t, nil)
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := NewMetrics(nil)
	start := func(pw, id string) *Subscriber {
		s, err := Start(context.Background(), Config{Broker: "mqtt://" + addr, ClientID: id, Username: "tsdb", Password: pw,
			Subscriptions: []Subscription{{Topic: "t/+dev/v", Format: "value"}}}, db, m, log)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		return s
	}
	start("wrong", "bad-client")
	start("s3cret", "good-client")
	host, port, _ := net.SplitHostPort(addr)
	require.Eventually(t, func() bool {
		_ = exec.Command(pub, "-h", host, "-p", port, "-u", "tsdb", "-P", "s3cret", "-q", "1", "-t", "t/d1/v", "-m", "7").Run()
		return len(st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "v"))) == 1
	}, 20*time.Second, 300*time.Millisecond)
	require.NotContains(t, logs.String(), "s3cret")
	require.NotContains(t, logs.String(), "wrong")
}

func TestTLS(t *testing.T) {
	pub := apptest.NeedBinary(t, "mosquitto_pub", "mosquitto-clients")
	dir := t.TempDir()
	cert, key := apptest.SelfSignedCert(t, dir)
	addr := apptest.FreePort(t)
	apptest.StartMosquittoTLS(t, addr, t.TempDir(), cert, key)
	db := st.Open(t, nil)
	s, err := Start(context.Background(), Config{Broker: "tls://" + addr, ClientID: "tls-client", TLS: TLSConfig{CAFile: cert},
		Subscriptions: []Subscription{{Topic: "t/+dev/v", Format: "value"}}}, db, NewMetrics(nil), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer func() { _ = s.Stop(context.Background()) }()
	host, port, _ := net.SplitHostPort(addr)
	require.Eventually(t, func() bool {
		_ = exec.Command(pub, "-h", host, "-p", port, "--cafile", cert, "-q", "1", "-t", "t/d1/v", "-m", "9").Run()
		return len(st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "v"))) == 1
	}, 20*time.Second, 300*time.Millisecond)
}

// lockedBuffer is a bytes.Buffer safe for the subscriber's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
