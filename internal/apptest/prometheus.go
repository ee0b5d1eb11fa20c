package apptest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
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
	bin := NeedBinary(t, "prometheus", "prometheus")
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
	cmd := exec.Command(bin, all...)
	p := &Proc{cmd: cmd, Addr: addr, log: &logBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.Kill()
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("prometheus exited: %v\n%s", p.err, p.Log())
		default:
		}
		if code, _ := tryGet(p.URL() + "/-/ready"); code == 200 {
			return p
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("prometheus not ready within 60s\n%s", p.Log())
	return nil
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
