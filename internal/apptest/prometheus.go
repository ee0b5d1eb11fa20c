package apptest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/emsdb/tsdb/internal/apptest/refbin"
)

// FreePort returns a loopback address that was free a moment ago. Peers
// such as Prometheus cannot report the port they bound, so they need one.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartPrometheus starts Debian's prometheus with the given config on addr
// (a free loopback port when empty) and waits until it is ready.
func StartPrometheus(t testing.TB, addr, config string, args ...string) *Proc {
	t.Helper()
	return StartPrometheusBinary(t, NeedBinary(t, "prometheus", "prometheus"), addr, config, args...)
}

// StartPrometheusBinary is StartPrometheus with a given binary.
func StartPrometheusBinary(t testing.TB, bin, addr, config string, args ...string) *Proc {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = FreePort(t)
	}
	all := append([]string{
		"--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--storage.remote.flush-deadline=1s",
	}, args...)
	url := "http://" + addr + "/-/ready"
	return startProc(t, "prometheus", addr, exec.Command(bin, all...), 60*time.Second, func() bool {
		code, _ := tryGet(url)
		return code == 200
	})
}

func tryGet(url string) (int, error) {
	c := httpClient()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *Proc) String() string { return fmt.Sprintf("pid %d at %s", p.PID(), p.Addr) }

// ReferencePrometheusModule and ReferencePrometheusRelease are the
// Prometheus release whose PromQL is our reference: its module version and
// the release it is.
const (
	ReferencePrometheusModule  = refbin.PrometheusModule
	ReferencePrometheusRelease = refbin.PrometheusRelease
)

// ReferencePrometheus returns the path of a Prometheus 3.14 binary built
// from the Go module proxy, building it on first use (a few minutes) into
// a cache folder kept between runs: $TSDB_CACHE_DIR, else the user cache
// folder.
func ReferencePrometheus(t testing.TB) string {
	t.Helper()
	bin, err := refbin.Prometheus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// StartAlertmanager starts Debian's prometheus-alertmanager with the given
// config on a free loopback port, clustering off.
func StartAlertmanager(t testing.TB, config string) *Proc {
	t.Helper()
	bin := NeedBinary(t, "prometheus-alertmanager", "prometheus-alertmanager")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := FreePort(t)
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	url := "http://" + addr + "/-/ready"
	return startProc(t, "alertmanager", addr, cmd, 60*time.Second, func() bool {
		code, _ := tryGet(url)
		return code == 200
	})
}
