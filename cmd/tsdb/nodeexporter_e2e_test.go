package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestNodeExporterThroughPrometheus: Debian's prometheus scrapes a real
// prometheus-node-exporter and remote-writes to tsdb, which then answers
// rate(node_cpu_seconds_total[1m]) for every CPU.
func TestNodeExporterThroughPrometheus(t *testing.T) {
	neBin := apptest.NeedBinary(t, "prometheus-node-exporter", "prometheus-node-exporter")
	bin := apptest.Build(t)
	db := apptest.StartTSDB(t, bin, t.TempDir())

	neAddr := apptest.FreePort(t)
	ne := exec.Command(neBin, "--web.listen-address="+neAddr, "--collector.disable-defaults",
		"--collector.cpu", "--collector.meminfo", "--collector.loadavg")
	require.NoError(t, ne.Start())
	t.Cleanup(func() { _ = ne.Process.Kill(); _, _ = ne.Process.Wait() })
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", neAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 20*time.Second, 100*time.Millisecond)

	promAddr := apptest.FreePort(t)
	apptest.StartPrometheus(t, promAddr, fmt.Sprintf(`
global: {scrape_interval: 1s}
scrape_configs:
  - {job_name: node, static_configs: [{targets: ['%s']}]}
remote_write:
  - url: '%s/api/v1/write'
    queue_config: {batch_send_deadline: 1s}
`, neAddr, db.URL()))

	// node_exporter reports the CPUs /proc/stat lists.
	stat, err := os.ReadFile("/proc/stat")
	require.NoError(t, err)
	want := len(regexp.MustCompile(`(?m)^cpu[0-9]+ `).FindAll(stat, -1))
	require.Positive(t, want)

	c := &http.Client{Timeout: 10 * time.Second}
	var cpus map[string]bool
	require.Eventually(t, func() bool {
		resp, err := c.PostForm(db.URL()+"/api/v1/query", url.Values{"query": {`rate(node_cpu_seconds_total{mode="idle"}[1m])`}})
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  []any             `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil {
			return false
		}
		cpus = map[string]bool{}
		for _, s := range r.Data.Result {
			if s.Metric["job"] == "node" && s.Metric["instance"] == neAddr {
				cpus[s.Metric["cpu"]] = true
			}
		}
		return len(cpus) >= want
	}, 60*time.Second, time.Second, "rate over every CPU")
	require.Len(t, cpus, want)
}
