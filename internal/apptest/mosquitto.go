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
	return startMosquitto(t, addr, dir, "")
}

// StartMosquittoAuth is StartMosquitto accepting only user with password.
func StartMosquittoAuth(t testing.TB, addr, dir, user, password string) *Proc {
	t.Helper()
	tool := NeedBinary(t, "mosquitto_passwd", "mosquitto")
	pw := filepath.Join(dir, "passwords")
	if out, err := exec.Command(tool, "-c", "-b", pw, user, password).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	return startMosquitto(t, addr, dir, pw)
}

func startMosquitto(t testing.TB, addr, dir, passwordFile string) *Proc {
	t.Helper()
	bin := NeedBinary(t, "mosquitto", "mosquitto")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "mosquitto.conf")
	conf := fmt.Sprintf("listener %s %s\npersistence true\npersistence_location %s/\nautosave_interval 1\nuser root\n",
		port, host, strings.TrimSuffix(dir, "/"))
	if passwordFile != "" {
		conf += "allow_anonymous false\npassword_file " + passwordFile + "\n"
	} else {
		conf += "allow_anonymous true\n"
	}
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
