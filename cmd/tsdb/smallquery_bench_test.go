package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emsdb/tsdb/internal/apptest"
)

// BenchmarkSmallQuery is queries answered in microseconds by the real
// server, from a kept-alive client in this process: what a request costs
// besides reading data (HTTP, routing, limits, the hang-up watch — armed
// only for requests that last — and, for a dashboard's query over no
// series, parsing and checking it, done once per text). Reported besides
// the time per request: the server's own CPU time per request
// (server-cpu-ns/op), which the client's share of the machine does not
// move.
func BenchmarkSmallQuery(b *testing.B) {
	srv := apptest.StartTSDB(b, apptest.Build(b), b.TempDir())
	for _, q := range []struct{ name, expr string }{
		{"one", "1"},
		{"dashboard", `sum by (mode) (rate(node_cpu_seconds_total{job="node", mode!="idle"}[5m])) / on() group_left count(node_cpu_seconds_total{mode="idle"})`},
	} {
		b.Run(q.name, func(b *testing.B) { smallQuery(b, srv, q.expr) })
	}
}

func smallQuery(b *testing.B, srv *apptest.Proc, expr string) {
	u := srv.URL() + "/api/v1/query?time=1000&query=" + url.QueryEscape(expr)
	c := &http.Client{}
	get := func() {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
	for range 100 {
		get() // the connection and the server's pools
	}
	cpu0 := procCPU(b, srv.PID())
	for b.Loop() {
		get()
	}
	b.ReportMetric(float64(procCPU(b, srv.PID())-cpu0)/float64(b.N), "server-cpu-ns/op")
}

// procCPU is a process's user and system CPU time (/proc/PID/stat, in
// clock ticks of 10 ms).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("read %s: %v %v", raw, err1, err2)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
