// Package peer starts the systems a benchmark compares — our tsdb, Debian's
// prometheus, VictoriaMetrics, or any Prometheus-API-compatible binary — on
// loopback with a fresh data folder, and reads what they cost: CPU time,
// RSS and bytes on disk, both while running and in final form.
package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Kind selects how a peer is started and how its compacted size is read.
type Kind string

const (
	// TSDB is our binary: `tsdb serve`; its graceful stop seals every sample
	// into Pebble, so the data folder after stop is the compacted size.
	TSDB Kind = "tsdb"
	// Prometheus is a Prometheus server with its remote-write receiver; the
	// compacted size is a snapshot of the head into a block, index included.
	Prometheus Kind = "prometheus"
	// VictoriaMetrics is a VictoriaMetrics single-node binary; it buffers
	// fresh samples in memory for a second or two (RunningBytes forces a
	// flush) and merges its parts in the background (CompactedBytes forces
	// a merge of every partition and waits for it, while running).
	VictoriaMetrics Kind = "victoriametrics"
	// Custom is any binary given with its arguments, in which {listen} and
	// {data} are replaced; its size is its data folder after stop.
	Custom Kind = "custom"
)

// Spec describes a peer to start.
type Spec struct {
	Name      string
	Kind      Kind
	Bin       string
	Args      []string // extra arguments (Custom: all arguments)
	WritePath string   // remote-write path; default /api/v1/write
	Version   string   // when the binary cannot tell (VictoriaMetrics built from the module proxy)
}

// Peer is a running peer.
type Peer struct {
	Spec    Spec
	Addr    string
	DataDir string
	Version string

	cmd  *exec.Cmd
	log  *os.File
	done chan error
	args []string
}

// Start starts the peer with a fresh data folder under workDir and waits
// until it answers /-/ready.
func Start(ctx context.Context, s Spec, workDir string) (*Peer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(workDir, s.Name)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	var args []string
	switch s.Kind {
	case TSDB:
		args = []string{"serve", "--listen", addr, "--data", data, "--log.level", "warn"}
	case Prometheus:
		cfg := filepath.Join(dir, "prometheus.yml")
		// The out-of-order window lets the backfill workload in, as a
		// Prometheus set up for backfilling through remote write would be.
		if err := os.WriteFile(cfg, []byte("global: {}\nstorage:\n  tsdb:\n    out_of_order_time_window: 31d\n"), 0o644); err != nil {
			return nil, err
		}
		args = []string{"--config.file=" + cfg, "--storage.tsdb.path=" + data,
			"--web.listen-address=" + addr, "--web.enable-remote-write-receiver",
			"--web.enable-admin-api", "--log.level=warn"}
	case VictoriaMetrics:
		// Keep everything, answer from the newest samples (the harness
		// queries right after writing), otherwise its defaults: its
		// rollup result cache stays on, as in production.
		args = []string{"-httpListenAddr=" + addr, "-storageDataPath=" + data,
			"-retentionPeriod=100y", "-search.latencyOffset=0", "-loggerLevel=WARN"}
	case Custom:
	default:
		return nil, fmt.Errorf("peer %s: unknown kind %q", s.Name, s.Kind)
	}
	for _, a := range s.Args {
		a = strings.ReplaceAll(a, "{listen}", addr)
		args = append(args, strings.ReplaceAll(a, "{data}", data))
	}
	if s.WritePath == "" {
		s.WritePath = "/api/v1/write"
	}
	p := &Peer{Spec: s, Addr: addr, DataDir: data, args: args}
	p.Version = version(s)
	if p.Version == "" {
		p.Version = s.Version
	}
	return p, p.launch(ctx)
}

// Restart stops the peer gracefully and starts it again on the same data,
// for cold-cache measurements.
func (p *Peer) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.launch(ctx)
}

// Revive starts the peer again on the same data after Kill (a kill -9
// drill): no graceful stop first.
func (p *Peer) Revive(ctx context.Context) error {
	p.log.Close()
	return p.launch(ctx)
}

// PID is the process id of the peer's running process.
func (p *Peer) PID() int { return p.cmd.Process.Pid }

func (p *Peer) launch(ctx context.Context) error {
	s := p.Spec
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(p.DataDir), "log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.Bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	p.cmd, p.log, p.done = cmd, logf, make(chan error, 1)
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if code, _, err := p.get(ctx, "/-/ready"); err == nil && code == http.StatusOK {
			return nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited before ready: %v; log %s", s.Name, err, logf.Name())
		case <-ctx.Done():
			p.Kill()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			return fmt.Errorf("%s not ready after 5m; log %s", s.Name, logf.Name())
		}
	}
}

func version(s Spec) string {
	var out []byte
	switch s.Kind {
	case TSDB:
		out, _ = exec.Command(s.Bin, "version").CombinedOutput()
	case Prometheus:
		out, _ = exec.Command(s.Bin, "--version").CombinedOutput()
	case VictoriaMetrics:
		out, _ = exec.Command(s.Bin, "-version").CombinedOutput()
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// WriteURL is where to remote-write.
func (p *Peer) WriteURL() string { return "http://" + p.Addr + p.Spec.WritePath }

// URL is the peer's base URL.
func (p *Peer) URL() string { return "http://" + p.Addr }

// RSS returns the resident set size now and its peak, in bytes.
func (p *Peer) RSS() (now, peak int64, err error) { return ProcRSS(p.cmd.Process.Pid) }

// ProcRSS reads a process's resident memory and its peak (VmRSS, VmHWM)
// from /proc, in bytes.
func ProcRSS(pid int) (now, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 1 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			now = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return now, peak, nil
}

// CPUSeconds returns the user plus system CPU time the peer's process has
// used so far, from /proc/<pid>/stat.
func (p *Peer) CPUSeconds() (float64, error) { return ProcCPUSeconds(p.cmd.Process.Pid) }

// ProcCPUSeconds reads a process's user plus system CPU time from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s: Linux's
// USER_HZ on every architecture Go supports).
func ProcCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// NB: the command name (field 2) may hold spaces and parentheses; the
	// fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short: %q", pid, b)
	}
	// f[0] is field 3 (state), so utime (14) and stime (15) are f[11], f[12].
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return float64(ut+st) / 100, nil
}

// RunningBytes returns the size of the peer's data folder while it runs,
// write-ahead logs included. VictoriaMetrics is first made to flush the
// samples it buffers (/internal/force_flush) and waited for until its
// in-memory parts are on disk, so that its figure is its flushed size.
func (p *Peer) RunningBytes(ctx context.Context) (int64, error) {
	if p.Spec.Kind == VictoriaMetrics {
		if err := p.Flush(ctx); err != nil {
			return 0, err
		}
		if err := p.waitOnDisk(ctx); err != nil {
			return 0, err
		}
	}
	return p.dataSize()
}

// vmInMemory are VictoriaMetrics' gauges of what it holds only in memory:
// rows not yet in a part, and in-memory parts, which it writes to disk
// every -inmemoryDataFlushInterval (5 s).
var vmInMemory = []string{
	`vm_pending_rows{type="storage"}`, `vm_pending_rows{type="indexdb"}`,
	`vm_parts{type="storage/inmemory"}`, `vm_parts{type="indexdb/inmemory"}`,
}

// waitOnDisk waits, for at most a minute, until VictoriaMetrics holds
// nothing only in memory, so that its data folder is its flushed size.
func (p *Peer) waitOnDisk(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		held := 0.0
		for _, m := range vmInMemory {
			n, err := p.Metric(ctx, m)
			if err != nil {
				return err
			}
			held += n
		}
		if held == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("victoria-metrics still holds %v rows/parts in memory after 1m", held)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Flush makes a VictoriaMetrics peer write the samples it buffers and
// make them searchable (/internal/force_flush); the others need nothing.
func (p *Peer) Flush(ctx context.Context) error {
	if p.Spec.Kind != VictoriaMetrics {
		return nil
	}
	code, body, err := p.get(ctx, "/internal/force_flush")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("force_flush: %d %s", code, body)
	}
	return nil
}

// FinalWhileRunning reports whether CompactedBytes is read while the peer
// runs (Prometheus, VictoriaMetrics) rather than after Stop.
func (p *Peer) FinalWhileRunning() bool {
	return p.Spec.Kind == Prometheus || p.Spec.Kind == VictoriaMetrics
}

// CompactedBytes flushes what the peer holds in memory to its compacted
// on-disk form and returns its size: for Prometheus a snapshot of the head
// into a block, for VictoriaMetrics its data folder after a forced flush
// and a forced merge of every partition (both taken while running); for
// the others, call after Stop.
func (p *Peer) CompactedBytes(ctx context.Context) (int64, error) {
	switch p.Spec.Kind {
	case Prometheus:
	case VictoriaMetrics:
		return p.forceMerge(ctx)
	default:
		return p.dataSize()
	}
	code, body, err := p.post(ctx, "/api/v1/admin/tsdb/snapshot")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("snapshot: %d %s", code, body)
	}
	var r struct {
		Data struct{ Name string } `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("snapshot answer %q: %w", body, err)
	}
	return DirSize(filepath.Join(p.DataDir, "snapshots", r.Data.Name))
}

// forceMerge flushes VictoriaMetrics, merges every partition and returns
// its data folder's size once no forced merge is active any more. The
// merge runs in the background after /internal/force_merge answers, so it
// polls vm_active_force_merges, bounded by ten minutes.
func (p *Peer) forceMerge(ctx context.Context) (int64, error) {
	if err := p.Flush(ctx); err != nil {
		return 0, err
	}
	code, body, err := p.get(ctx, "/internal/force_merge")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("force_merge: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Minute)
	idle := 0
	for idle < 3 {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		n, err := p.Metric(ctx, "vm_active_force_merges")
		if err != nil {
			return 0, err
		}
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("force_merge still running after 10m")
		}
	}
	if err := p.waitOnDisk(ctx); err != nil {
		return 0, err
	}
	return p.dataSize()
}

// Metric reads a metric from the peer's /metrics, summed over its label
// sets; a name with its labels in braces reads that series only.
func (p *Peer) Metric(ctx context.Context, name string) (float64, error) {
	code, body, err := p.get(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %d", code)
	}
	sum, found := 0.0, false
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if i := bytes.LastIndexByte(rest, ' '); i >= 0 {
			if v, err := strconv.ParseFloat(string(bytes.TrimSpace(rest[i:])), 64); err == nil {
				sum, found = sum+v, true
			}
		}
	}
	if !found {
		return 0, fmt.Errorf("/metrics has no %s", name)
	}
	return sum, nil
}

// Stop asks the peer to shut down gracefully and waits for it.
func (p *Peer) Stop() error {
	defer p.log.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			return fmt.Errorf("%s exited: %w; log %s", p.Spec.Name, err, p.log.Name())
		}
		return nil
	case <-time.After(5 * time.Minute):
		p.Kill()
		return fmt.Errorf("%s did not stop within 5m", p.Spec.Name)
	}
}

// Kill stops the peer at once.
func (p *Peer) Kill() {
	_ = p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err
}

func (p *Peer) get(ctx context.Context, path string) (int, []byte, error) {
	return p.do(ctx, http.MethodGet, path)
}

func (p *Peer) post(ctx context.Context, path string) (int, []byte, error) {
	return p.do(ctx, http.MethodPost, path)
}

func (p *Peer) do(ctx context.Context, method, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, p.URL()+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// dataSize is the size of the peer's data folder. VictoriaMetrics's cache
// folder and tsdb's query-cache.gob are left out: they hold caches saved
// at shutdown for a faster start (they may be deleted at will), not data.
func (p *Peer) dataSize() (int64, error) {
	n, err := DirSize(p.DataDir)
	if err != nil {
		return n, err
	}
	var c int64
	switch p.Spec.Kind {
	case VictoriaMetrics:
		c, err = DirSize(filepath.Join(p.DataDir, "cache"))
	case TSDB:
		var fi os.FileInfo
		if fi, err = os.Stat(filepath.Join(p.DataDir, "query-cache.gob")); err == nil {
			c = fi.Size()
		}
	default:
		return n, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return n, nil
	}
	return n - c, err
}

// DirSize is the sum of the sizes of the regular files under dir.
func DirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
