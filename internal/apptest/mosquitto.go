package apptest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartMosquitto starts Debian's mosquitto on addr (host:port) with its
// persistence in dir, anonymous access, and waits until it listens. Start
// it again with the same addr and dir to restart it with its sessions.
func StartMosquitto(t testing.TB, addr, dir string) *Proc {
	t.Helper()
	bin := NeedBinary(t, "mosquitto", "mosquitto")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "mosquitto.conf")
	conf := fmt.Sprintf("listener %s %s\nallow_anonymous true\npersistence true\npersistence_location %s/\nautosave_interval 1\nuser root\n",
		port, host, strings.TrimSuffix(dir, "/"))
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cfg)
	p := &Proc{cmd: cmd, Addr: addr, log: &logBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.Kill()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("mosquitto exited: %v\n%s", p.err, p.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("mosquitto not listening within 20s\n%s", p.Log())
	return nil
}
