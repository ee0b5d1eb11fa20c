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
	return startProc(t, "mosquitto", addr, exec.Command(bin, "-c", cfg), 20*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
