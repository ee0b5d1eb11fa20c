package apptest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// SMTPServer is a real SMTP server on 127.0.0.1 (Python's aiosmtpd from
// Debian's python3-aiosmtpd) that stores every message it takes in a
// Maildir.
type SMTPServer struct {
	*Proc
	Dir string
}

// StartSMTP starts aiosmtpd on a free port; it stops when the test ends.
// A missing aiosmtpd fails the test, saying which package to install.
func StartSMTP(t testing.TB) *SMTPServer {
	t.Helper()
	py := "/usr/bin/python3" // Debian's, where python3-aiosmtpd installs
	if _, err := os.Stat(py); err != nil {
		py = NeedBinary(t, "python3", "python3")
	}
	if out, err := exec.Command(py, "-c", "import aiosmtpd").CombinedOutput(); err != nil {
		t.Fatalf("aiosmtpd is not installed for %s: install Debian package python3-aiosmtpd "+
			"(apt-get install -y --no-install-recommends python3-aiosmtpd; .ci/run installs every peer the tests use): %s", py, out)
	}
	addr := FreePort(t)
	dir := filepath.Join(t.TempDir(), "maildir")
	cmd := exec.Command(py, "-m", "aiosmtpd", "-n", "-l", addr, "-c", "aiosmtpd.handlers.Mailbox", dir)
	p := startProc(t, "aiosmtpd", addr, cmd, 20*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	return &SMTPServer{Proc: p, Dir: dir}
}

// Messages returns the raw messages received so far.
func (s *SMTPServer) Messages(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(s.Dir, sub, "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatalf("read message: %v", err)
			}
			out = append(out, string(b))
		}
	}
	return out
}
