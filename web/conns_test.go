package web

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/auth"
)

// serveTest serves a on a free loopback port with o and returns the
// server and its address; it stops with the test.
func serveTest(t testing.TB, a *API, o ServerOptions) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := NewServer(a, o)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return srv, ln.Addr().String()
}

// dialFrom connects to addr from the loopback address from (127.0.0.x:
// Linux routes all of 127/8 to the loopback interface), so that one test
// can play several clients.
func dialFrom(t testing.TB, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends one request on c and reads the answer.
func roundTrip(c net.Conn, br *bufio.Reader, method, path, header, body string) (*http.Response, string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: tsdb\r\n%sContent-Length: %d\r\n\r\n%s", method, path, header, len(body), body)
	if _, err := io.WriteString(c, req); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// getFrom makes one request on a new connection from address from, and
// returns its status and how long it took.
func getFrom(t testing.TB, from, addr, path, header string) (int, time.Duration) {
	t.Helper()
	t0 := time.Now()
	c := dialFrom(t, from, addr)
	resp, body, err := roundTrip(c, bufio.NewReader(c), "GET", path, header, "")
	require.NoError(t, err)
	require.NotEmpty(t, body)
	return resp.StatusCode, time.Since(t0)
}

// slowClients opens n connections from address from that send the start
// of a request header and nothing more (slowloris), and returns those the
// server kept open.
func slowClients(t testing.TB, from, addr string, n int) []net.Conn {
	t.Helper()
	var kept []net.Conn
	for range n {
		c := dialFrom(t, from, addr)
		_, err := io.WriteString(c, "GET /api/v1/query?query=up HTTP/1.1\r\nHo")
		require.NoError(t, err)
		kept = append(kept, c)
	}
	return kept
}

// openCount says how many of cs the server has not closed (a closed one
// reads EOF or an error answer at once).
func openCount(cs []net.Conn) int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	n := 0
	for _, c := range cs {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			var b [1]byte
			_, err := c.Read(b[:])
			if isTimeout(err) {
				mu.Lock()
				n++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return n
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSlowClientsFromOneAddress: 300 slow clients from one address take
// at most their per-address share, and a client from another address is
// served at once. Before the bound they took every slot and the client
// got 503 until the read timeout freed them (a minute).
func TestSlowClientsFromOneAddress(t *testing.T) {
	srv, addr := serveTest(t, New(Deps{Version: "test"}), ServerOptions{MaxConnections: 256, MaxConnectionsPerIP: 32})
	slow := slowClients(t, "127.0.0.1", addr, 300)
	require.Equal(t, 32, openCount(slow), "the address's share")
	require.Equal(t, 32, srv.conns.open())
	code, took := getFrom(t, "127.0.0.2", addr, "/api/v1/status/buildinfo", "")
	require.Equal(t, 200, code)
	require.Less(t, took, time.Second)
	t.Logf("a normal client under 300 slow connections: %d in %v", code, took)

	// The refused ones were told why.
	c := dialFrom(t, "127.0.0.1", addr)
	resp, body, err := roundTrip(c, bufio.NewReader(c), "GET", "/-/healthy", "", "")
	if err == nil { // else the server's close raced the request (RST)
		require.Equal(t, 429, resp.StatusCode)
		require.Contains(t, body, "--http.max-connections-per-ip")
	}
}

// TestHeaderReadTimeout: a client that does not finish its header in time
// is cut, however it trickles; the body has its own, longer, timeout.
func TestHeaderReadTimeout(t *testing.T) {
	_, addr := serveTest(t, New(Deps{Version: "test"}), ServerOptions{HeaderReadTimeout: 300 * time.Millisecond, ReadTimeout: 5 * time.Second})
	c := dialFrom(t, "127.0.0.1", addr)
	t0 := time.Now()
	var cut time.Duration
	slow := "GET /-/healthy HTTP/1.1\r\nX-Slow: " + strings.Repeat("a", 40)
	for i := range slow { // a byte every 50 ms: 2.5 s in all
		if _, err := c.Write([]byte{slow[i]}); err != nil {
			cut = time.Since(t0)
			break
		}
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); !isTimeout(err) {
			cut = time.Since(t0) // the server's 408 or its close
			break
		}
	}
	require.NotZero(t, cut, "the slow header was never cut")
	t.Logf("a header trickling a byte every 50ms was cut after %v", cut)
	require.Less(t, cut, 1500*time.Millisecond, "header timeout 300ms: at most 300ms to the first byte and 300ms to the end of the header")

	// A header in time, then a body that takes longer than the header
	// timeout: served.
	c = dialFrom(t, "127.0.0.1", addr)
	body := "query=1"
	_, err := fmt.Fprintf(c, "POST /api/v1/format_query HTTP/1.1\r\nHost: tsdb\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", len(body))
	require.NoError(t, err)
	time.Sleep(600 * time.Millisecond)
	_, err = io.WriteString(c, body)
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
}

// TestIdleConnectionsUnderPressure: keep-alive connections left idle
// cannot fill the slots (before, 64 of them kept every other client out
// for the idle timeout, two minutes): once three quarters are taken the
// idle ones are closed, and a new client is served at once.
func TestIdleConnectionsUnderPressure(t *testing.T) {
	srv, addr := serveTest(t, New(Deps{Version: "test"}), ServerOptions{MaxConnections: 64, MaxConnectionsPerIP: 16})
	var idle []net.Conn
	for i := range 64 {
		c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 3+i/16), addr)
		resp, _, err := roundTrip(c, bufio.NewReader(c), "GET", "/-/healthy", "", "")
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		idle = append(idle, c)
	}
	code, took := getFrom(t, "127.0.0.2", addr, "/api/v1/status/buildinfo", "")
	require.Equal(t, 200, code)
	require.Less(t, took, time.Second)
	require.Eventually(t, func() bool { return srv.conns.open() <= 48 }, 2*time.Second, 10*time.Millisecond,
		"idle connections closed under pressure")
	require.Less(t, openCount(idle), 48)
}

// TestReservedConnections: when slow clients from many addresses (each
// within its share) take every ordinary slot, the reserve still serves
// probes and authenticated requests, and nothing else.
func TestReservedConnections(t *testing.T) {
	authn, err := auth.New(auth.Config{Users: []auth.User{
		{Name: "grafana", TokenSHA256: auth.HashToken("tok"), Roles: []auth.Role{auth.Read}, Tenants: []string{"*"}},
	}})
	require.NoError(t, err)
	for _, authOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth=%v", authOn), func(t *testing.T) {
			d := Deps{Version: "test"}
			if authOn {
				d.Auth = func() *auth.Authenticator { return authn }
			}
			// 64 slots, 8 reserved; header timeout long, so only the
			// reserve keeps the door open.
			srv, addr := serveTest(t, New(d), ServerOptions{MaxConnections: 64, ReservedConnections: 8, MaxConnectionsPerIP: 16, HeaderReadTimeout: time.Minute})
			for i := range 4 {
				slowClients(t, fmt.Sprintf("127.0.0.%d", 3+i), addr, 14)
			}
			require.Eventually(t, func() bool { return srv.conns.open() == 56 }, time.Second, 10*time.Millisecond)

			code, took := getFrom(t, "127.0.0.2", addr, "/-/healthy", "")
			require.Equal(t, 200, code)
			require.Less(t, took, time.Second)
			c := dialFrom(t, "127.0.0.2", addr)
			resp, _, err := roundTrip(c, bufio.NewReader(c), "GET", "/-/healthy", "", "")
			require.NoError(t, err)
			require.True(t, resp.Close, "under pressure no connection is kept alive")
			code, _ = getFrom(t, "127.0.0.2", addr, "/-/ready", "")
			require.Equal(t, 200, code)
			code, _ = getFrom(t, "127.0.0.2", addr, "/api/v1/status/buildinfo", "Authorization: Bearer tok\r\n")
			if authOn {
				require.Equal(t, 200, code, "authenticated")
				code, _ = getFrom(t, "127.0.0.2", addr, "/api/v1/status/buildinfo", "Authorization: Bearer wrong\r\n")
				require.Equal(t, 401, code)
			} else {
				require.Equal(t, 503, code, "without auth, the reserve is the probes'")
			}
			code, _ = getFrom(t, "127.0.0.2", addr, "/", "")
			require.Equal(t, 503, code, "public but not a probe")

			// A reserved connection that sends nothing is cut quickly.
			c = dialFrom(t, "127.0.0.2", addr)
			t0 := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadAll(c)
			require.NoError(t, err)
			require.Less(t, time.Since(t0), 4*time.Second, "reserved slots wait at most 2s for a request")
		})
	}
}

// TestLongGETQuery: a GET query of 100 KiB is served, as Prometheus
// serves up to 1 MiB of headers (fasthttp's default buffer refused
// anything over 4 KiB with 431); one over the bound is refused with 431.
func TestLongGETQuery(t *testing.T) {
	a := newTestAPI(t, time.Now())
	_, addr := serveTest(t, a, ServerOptions{})
	// Long but few terms (--query.max-terms bounds those): a 100 KiB label.
	q := `label_replace(vector(1),"x","` + strings.Repeat("a", 100<<10) + `","","")`
	require.Greater(t, len(q), 100<<10)
	c := dialFrom(t, "127.0.0.1", addr)
	br := bufio.NewReader(c)
	resp, body, err := roundTrip(c, br, "GET", "/api/v1/query?query="+url.QueryEscape(q), "", "")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, body)
	require.Contains(t, body, `"resultType":"vector"`)

	q = strings.Repeat("x", 300<<10)
	c = dialFrom(t, "127.0.0.1", addr)
	resp, _, err = roundTrip(c, bufio.NewReader(c), "GET", "/api/v1/query?query="+q, "", "")
	require.NoError(t, err)
	require.Equal(t, 431, resp.StatusCode)
}
