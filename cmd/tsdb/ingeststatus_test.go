package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/web"
)

// Remote-write senders are told apart and named by what they say of
// themselves; one that never succeeded is forgotten after ten minutes, one
// that wrote is shown as silent and forgotten after an hour.
func TestIngestSendersNamedAndExpired(t *testing.T) {
	s := newIngestStats(nil)
	now := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return now }
	status := ingestStatus(s, func(string) int { return 0 }, now)
	sources := func() map[string]ingestSource {
		out := map[string]ingestSource{}
		for _, src := range status("default").(map[string]any)["sources"].([]ingestSource) {
			out[src.Name] = src
		}
		return out
	}
	s.sawRequest(web.SenderSeen{Protocol: "remote_write", Tenant: "default", Addr: "10.0.0.7", UserAgent: "Prometheus/3.14.0", Code: 204})
	s.sawRequest(web.SenderSeen{Protocol: "remote_write", Tenant: "default", Addr: "10.0.0.7", UserAgent: "vmagent", Code: 204})
	s.sawRequest(web.SenderSeen{Protocol: "remote_write", Tenant: "default", Addr: "10.0.0.7", UserAgent: "Prometheus/3.14.0", Source: "edge-dc2", Code: 204})
	s.sawRequest(web.SenderSeen{Protocol: "remote_write", Tenant: "default", Addr: "10.0.0.9", UserAgent: "curl/8.5.0", Code: 400, Error: "snappy: corrupt input"})
	s.sawRequest(web.SenderSeen{Protocol: "otlp", Tenant: "default", Addr: "10.0.0.8", UserAgent: "OTel-OTLP-Exporter-Go/1.47.0", Code: 200})
	got := sources()
	require.Len(t, got, 5, "%v", got)
	require.Equal(t, "otlp", got["OTel-OTLP-Exporter-Go/1.47.0 at 10.0.0.8"].Kind, "OTLP senders are sources too")
	require.True(t, got["Prometheus/3.14.0 at 10.0.0.7"].Up)
	require.True(t, got["vmagent at 10.0.0.7"].Up)
	require.True(t, got["edge-dc2"].Up, "named by its X-Source-Name header")
	bad := got["curl/8.5.0 at 10.0.0.9"]
	require.False(t, bad.Up)
	require.Equal(t, "HTTP 400: snappy: corrupt input", bad.Reason)

	now = now.Add(3 * time.Minute)
	s.sawRequest(web.SenderSeen{Protocol: "remote_write", Tenant: "default", Addr: "10.0.0.7", UserAgent: "vmagent", Code: 204})
	got = sources()
	require.False(t, got["edge-dc2"].Up, "silent for three minutes")
	require.Equal(t, "silent for 3m0s", got["edge-dc2"].Reason)
	require.True(t, got["vmagent at 10.0.0.7"].Up)

	now = now.Add(8 * time.Minute)
	s.snapshot()
	got = sources()
	require.NotContains(t, got, "curl/8.5.0 at 10.0.0.9", "a sender that never succeeded goes after ten minutes")
	require.False(t, got["OTel-OTLP-Exporter-Go/1.47.0 at 10.0.0.8"].Up, "silent")
	require.Contains(t, got, "edge-dc2", "one that wrote stays listed")
	now = now.Add(time.Hour)
	s.snapshot()
	require.Empty(t, sources(), "silent for an hour: forgotten")
}

// The sources table says why a source is down: an MQTT broker that cannot
// be reached (logged at warn once, not per retry), an SNMP target that
// does not answer, a remote-write request that was refused.
func TestIngestSourcesSayWhyDown(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tsdb.yml")
	deadBroker := apptest.FreePort(t) // nothing listens there
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
mqtt:
  - broker: tcp://%s
    client_id: tsdb-test
    subscriptions: [{topic: "sensors/#", format: influx}]
snmp:
  interval: 1s
  timeout: 200ms
  targets:
    - {name: dead-switch, address: '%s', community: public, modules: [system]}
`, deadBroker, apptest.FreeUDPPort(t))), 0o644))
	db := apptest.StartTSDB(t, apptest.Build(t), filepath.Join(dir, "data"), "--config.file", cfg)

	c := &http.Client{Timeout: 10 * time.Second}
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "up"}},
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}}}}}
	code, body, err := apptest.RemoteWrite(context.Background(), c, db.URL()+"/api/v1/write", req, web.SourceNameHeader, "edge-dc2")
	require.NoError(t, err)
	require.Equal(t, 204, code, body)
	resp, err := c.Post(db.URL()+"/api/v1/write", "application/x-protobuf", strings.NewReader("not snappy"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode)

	var sources map[string]ingestSource
	require.Eventually(t, func() bool {
		resp, err := c.Get(db.URL() + "/api/v1/status/ingest")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			Data struct {
				Sources []ingestSource `json:"sources"`
			} `json:"data"`
		}
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &st) != nil {
			return false
		}
		sources = map[string]ingestSource{}
		for _, s := range st.Data.Sources {
			sources[s.Kind+" "+s.Name] = s
		}
		m := sources["mqtt mqtt://"+deadBroker]
		return !m.Up && strings.Contains(m.Reason, "refused") && sources["snmp dead-switch"].Reason != "not polled yet"
	}, 20*time.Second, 200*time.Millisecond, "%+v", sources)
	require.NotEmpty(t, sources["snmp dead-switch"].Reason)
	require.False(t, sources["snmp dead-switch"].Up)
	require.True(t, sources["remote_write edge-dc2"].Up, "%+v", sources)
	var refused ingestSource
	for _, s := range sources {
		if s.Kind == "remote_write" && s.Address == "127.0.0.1" && !s.Up {
			refused = s
		}
	}
	require.Contains(t, refused.Reason, "HTTP 400", "%+v", sources)

	time.Sleep(3 * time.Second) // the broker is retried every second
	log := db.Log()
	warnings := func(source string) int {
		n := 0
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, `level=WARN msg="source is down"`) && strings.Contains(l, source) {
				n++
			}
		}
		return n
	}
	require.Equal(t, 1, warnings("source=mqtt"), "one warning, not one per retry:\n%s", log)
	require.Equal(t, 1, warnings("source=snmp target=dead-switch"), "one warning, not one per poll:\n%s", log)
}
