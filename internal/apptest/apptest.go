// Package apptest runs the real tsdb binary and real peers (Debian's
// prometheus) as child processes on 127.0.0.1 for end-to-end tests, in the
// spirit of VictoriaMetrics' apptest.
//
//	bin := apptest.Build(t)
//	p := apptest.StartTSDB(t, bin, t.TempDir())
//	defer p.Stop(t)
//	resp := p.Get(t, "/-/ready")
package apptest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// Build compiles cmd/tsdb once per test binary and returns its path. The
// TSDB_BIN environment variable points at a prebuilt binary instead.
func Build(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TSDB_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "tsdb-apptest-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "tsdb")
		cmd := exec.Command("go", "build", "-tags", "pebblegozstd", "-o", buildBin, "./cmd/tsdb")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Proc is a running child process with an HTTP address.
type Proc struct {
	cmd  *exec.Cmd
	Addr string // host:port
	log  *logBuffer
	done chan struct{}
	err  error
}

// URL returns the base URL of the process.
func (p *Proc) URL() string { return "http://" + p.Addr }

// Log returns what the process has written to stderr so far.
func (p *Proc) Log() string { return p.log.String() }

var servingRe = regexp.MustCompile(`msg=serving addr=(\S+)`)

// StartTSDB starts `tsdb serve` on a free loopback port with data in dir
// and waits until it is ready.
func StartTSDB(t testing.TB, bin, dir string, args ...string) *Proc {
	t.Helper()
	all := append([]string{"serve", "--listen", "127.0.0.1:0", "--data", dir}, args...)
	cmd := exec.Command(bin, all...)
	p := &Proc{cmd: cmd, log: &logBuffer{}, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tsdb: %v", err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.log.Write([]byte(line + "\n"))
			if m := servingRe.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	select {
	case p.Addr = <-addr:
	case <-p.done:
		t.Fatalf("tsdb exited before serving: %v\n%s", p.err, p.Log())
	case <-time.After(60 * time.Second):
		p.Kill()
		t.Fatalf("tsdb did not start within 60s\n%s", p.Log())
	}
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.Kill()
		}
	})
	return p
}

// Kill sends SIGKILL and waits for the process to die.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to a minute for a clean exit.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("process exited with %v\n%s", p.err, p.Log())
		}
	case <-time.After(time.Minute):
		p.Kill()
		t.Errorf("process did not stop within a minute\n%s", p.Log())
	}
}

// Get fetches path and returns status and body.
func (p *Proc) Get(t testing.TB, path string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 4<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// NeedBinary returns the path of a program from a Debian package: from
// PATH, else from /usr/sbin or /sbin (where snmpd lives, outside a
// non-root PATH). When it is missing the test fails, never skips, and says
// which package to install. Tests do not install packages themselves
// (parallel test binaries would race for dpkg's lock): .ci/run installs
// every peer the tests use.
func NeedBinary(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s is not installed (looked in PATH, /usr/sbin and /sbin): install Debian package %s "+
		"(apt-get install -y --no-install-recommends %s; .ci/run installs every peer the tests use)", name, pkg, pkg)
	return ""
}

// startProc starts cmd with its output captured, kills it when the test
// ends, and waits (polling every 100 ms, up to within) until ready reports
// true. name is for messages.
func startProc(t testing.TB, name, addr string, cmd *exec.Cmd, within time.Duration, ready func() bool) *Proc {
	t.Helper()
	return startProcLog(t, name, addr, cmd, within, func(*Proc) bool { return ready() })
}

// startProcLog is startProc with a readiness check that may read the
// process's output.
func startProcLog(t testing.TB, name, addr string, cmd *exec.Cmd, within time.Duration, ready func(*Proc) bool) *Proc {
	t.Helper()
	p := &Proc{cmd: cmd, Addr: addr, log: &logBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.Kill()
		}
	})
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", name, p.err, p.Log())
		default:
		}
		if ready(p) {
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %s\n%s", name, within, p.Log())
	return nil
}
