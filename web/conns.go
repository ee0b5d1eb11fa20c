package web

import (
	"crypto/tls"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// Connection bounds. fasthttp's own Concurrency refuses a connection only
// when every slot is taken, and by then slow or idle clients may hold them
// all: one client opening 2,100 connections and sending a header byte
// every few seconds once kept every other client out for minutes. So the
// server accepts through a connLimiter, which
//
//   - bounds the connections of one client address (an IPv4 address, an
//     IPv6 /64), refusing more with 429;
//   - under pressure (three quarters of the slots taken) closes idle
//     keep-alive connections and answers with Connection: close, so that
//     idle clients give their slots back;
//   - keeps the last slots (the reserve) for probes and authenticated
//     requests: a connection accepted into the reserve must deliver its
//     first request quickly, and that request must be /-/healthy,
//     /-/ready or authenticated, else it gets 503 and the connection is
//     closed;
//   - refuses any connection over the total with 503.
//
// Reading a request's header is bounded separately and tightly (fasthttp's
// ReadTimeout is the header timeout; HeaderReceived then gives the body
// the longer read timeout), see NewServer.

// connLimiter counts the open connections, in total and per client
// address, and the idle ones.
type connLimiter struct {
	max, reserve, pressureAt, perIP int
	// reserveTimeout bounds the first request (header and body) of a
	// connection accepted into the reserve.
	reserveTimeout time.Duration
	now            func() time.Time

	mu struct {
		sync.Mutex
		open    int
		closing int // idle connections cut and not yet closed
		byAddr  map[netip.Addr]int
		idle    map[*conn]struct{}
	}
	refused    *prometheus.CounterVec
	idleClosed prometheus.Counter
}

func newConnLimiter(o ServerOptions) *connLimiter {
	l := &connLimiter{max: o.MaxConnections, reserve: o.ReservedConnections, perIP: o.MaxConnectionsPerIP,
		reserveTimeout: min(o.HeaderReadTimeout, 2*time.Second), now: time.Now}
	l.pressureAt = l.max * 3 / 4
	l.mu.byAddr = map[netip.Addr]int{}
	l.mu.idle = map[*conn]struct{}{}
	l.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tsdb_http_connections_refused_total",
		Help: "Connections refused: per_ip (over --http.max-connections-per-ip, 429), capacity (over --http.max-connections, 503), reserve (a request on a reserved slot that was neither a probe nor authenticated, 503).",
	}, []string{"reason"})
	for _, r := range []string{"per_ip", "capacity", "reserve"} {
		l.refused.WithLabelValues(r)
	}
	l.idleClosed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tsdb_http_idle_connections_closed_total",
		Help: "Idle keep-alive connections closed early because most connection slots were taken.",
	})
	if o.Registerer != nil {
		o.Registerer.MustRegister(l.refused, l.idleClosed, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tsdb_http_open_connections",
			Help: "Open HTTP connections (bounded by --http.max-connections).",
		}, func() float64 { return float64(l.open()) }))
	}
	return l
}

func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.open
}

// underPressure reports whether most slots are taken: idle connections
// are then closed.
func (l *connLimiter) underPressure() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.open-l.mu.closing >= l.pressureAt
}

// clientKey is the address a client's connections are counted under: its
// IPv4 address, or its IPv6 /64 (one host's share of a network). ok is
// false for addresses that are not IP (tests' in-memory pipes).
func clientKey(a net.Addr) (netip.Addr, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip, true
}

// admit counts c in, or refuses it and returns nil.
func (l *connLimiter) admit(nc net.Conn) net.Conn {
	key, keyed := clientKey(nc.RemoteAddr())
	var refuse string
	var idle []*conn
	l.mu.Lock()
	if keyed && l.perIP > 0 && l.mu.byAddr[key] >= l.perIP {
		refuse = "per_ip"
	} else {
		if l.mu.open-l.mu.closing+1 >= l.pressureAt {
			idle = l.takeIdleLocked()
		}
		// Idle connections being closed do not count: they are gone in
		// a moment, and a server full of idle connections must not
		// refuse the client that needs one.
		if l.mu.open-l.mu.closing >= l.max {
			refuse = "capacity"
		}
	}
	var reserve bool
	if refuse == "" {
		l.mu.open++
		if keyed {
			l.mu.byAddr[key]++
		}
		reserve = l.mu.open-l.mu.closing > l.max-l.reserve
	}
	l.mu.Unlock()
	now := l.now()
	l.cutIdle(idle, now)
	if refuse != "" {
		l.refused.WithLabelValues(refuse).Inc()
		refuseConn(nc, refuse)
		return nil
	}
	c := &conn{Conn: nc, l: l, key: key, keyed: keyed}
	if reserve {
		c.mu.unproven = true
		c.mu.limit = now.Add(l.reserveTimeout)
		_ = nc.SetReadDeadline(c.mu.limit)
	}
	if _, ok := nc.(*tls.Conn); ok {
		return &tlsConn{c}
	}
	return c
}

// takeIdleLocked takes every idle connection out of the idle set, marked
// as closing.
func (l *connLimiter) takeIdleLocked() []*conn {
	out := make([]*conn, 0, len(l.mu.idle))
	for c := range l.mu.idle {
		out = append(out, c)
		c.closing = true
	}
	l.mu.closing += len(out)
	clear(l.mu.idle)
	return out
}

// cutIdle closes the idle connections cs; one that has meanwhile started
// a request stays open and counts again.
func (l *connLimiter) cutIdle(cs []*conn, now time.Time) {
	for _, c := range cs {
		if c.cutIdle(now) {
			l.idleClosed.Inc()
			continue
		}
		l.mu.Lock()
		if c.closing {
			c.closing = false
			l.mu.closing--
		}
		l.mu.Unlock()
	}
}

// release counts c out.
func (l *connLimiter) release(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.open--
	if c.closing {
		c.closing = false
		l.mu.closing--
	}
	if c.keyed {
		if n := l.mu.byAddr[c.key] - 1; n > 0 {
			l.mu.byAddr[c.key] = n
		} else {
			delete(l.mu.byAddr, c.key)
		}
	}
	delete(l.mu.idle, c)
}

// connState follows fasthttp's connection states: idle connections are
// closed under pressure, or remembered to be closed when pressure comes.
func (l *connLimiter) connState(nc net.Conn, s fasthttp.ConnState) {
	c := limited(nc)
	if c == nil {
		return
	}
	switch s {
	case fasthttp.StateIdle:
		c.mu.Lock()
		c.mu.idle = true
		c.mu.Unlock()
		l.mu.Lock()
		l.mu.idle[c] = struct{}{}
		var idle []*conn
		if l.mu.open-l.mu.closing >= l.pressureAt {
			idle = l.takeIdleLocked()
		}
		l.mu.Unlock()
		l.cutIdle(idle, l.now())
	case fasthttp.StateActive:
		l.mu.Lock()
		delete(l.mu.idle, c)
		l.mu.Unlock()
		c.active()
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		l.mu.Lock()
		delete(l.mu.idle, c)
		l.mu.Unlock()
	}
}

// refuseConn answers a connection that is not admitted and closes it. A
// TLS connection is only closed: answering would mean a handshake.
func refuseConn(c net.Conn, reason string) {
	defer c.Close()
	if _, ok := c.(*tls.Conn); ok {
		return
	}
	// NB: a fresh socket's send buffer takes this without blocking; the
	// deadline is for the pathological case, as Accept waits on it.
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	msg := "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
	body := "tsdb: too many connections (--http.max-connections); retry shortly\n"
	if reason == "per_ip" {
		msg = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
		body = "tsdb: too many connections from your address (--http.max-connections-per-ip)\n"
	}
	_, _ = c.Write([]byte(msg + "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body))
}

// limitedListener accepts through a connLimiter.
type limitedListener struct {
	net.Listener
	l *connLimiter
}

func (ln *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := ln.l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// conn is an admitted connection. It can cut its reads short: every read
// deadline fasthttp sets is capped at mu.limit while one is set (an idle
// connection closed under pressure, a reserved connection's first
// request).
type conn struct {
	net.Conn
	l      *connLimiter
	key    netip.Addr
	keyed  bool
	closed atomic.Bool
	// closing is set while c, cut when idle, is counted in
	// connLimiter.mu.closing; guarded by connLimiter.mu.
	closing bool

	// NB: mu is held while the deadline is set on the socket, so that a
	// cut from another goroutine cannot be undone by a deadline fasthttp
	// computed before it.
	mu struct {
		sync.Mutex
		asked, limit time.Time // the deadline fasthttp asked for; the cap
		unproven     bool      // a reserved connection before its first request is admitted
		idle         bool      // between requests (fasthttp's StateIdle)
	}
}

// limited returns the conn under nc, or nil.
func limited(nc net.Conn) *conn {
	switch c := nc.(type) {
	case *conn:
		return c
	case *tlsConn:
		return c.conn
	}
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.asked = t
	return c.Conn.SetReadDeadline(c.cappedLocked(t))
}

func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *conn) cappedLocked(t time.Time) time.Time {
	if !c.mu.limit.IsZero() && (t.IsZero() || c.mu.limit.Before(t)) {
		return c.mu.limit
	}
	return t
}

// cutIdle makes reads fail from at on if c is idle, and reports whether
// it was: fasthttp then closes the connection quietly.
func (c *conn) cutIdle(at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.mu.idle {
		return false // a request arrived meanwhile
	}
	if c.mu.limit.IsZero() || at.Before(c.mu.limit) {
		c.mu.limit = at
	}
	_ = c.Conn.SetReadDeadline(c.cappedLocked(c.mu.asked))
	return true
}

// active is called when a request's first byte arrived: an idle cut no
// longer applies; a reserved connection stays capped until its request
// is admitted.
func (c *conn) active() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.idle = false
	if c.mu.unproven {
		return
	}
	c.mu.limit = time.Time{}
}

// admitRequest decides whether a request may be served on c: on a
// reserved connection, the first request must be a probe or
// authenticated; it then lifts the cap. Otherwise it is refused.
func (c *conn) admitRequest(probeOrAuthenticated bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.mu.unproven {
		return true
	}
	if !probeOrAuthenticated {
		return false
	}
	c.mu.unproven = false
	c.mu.limit = time.Time{}
	return true
}

func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c)
	}
	return c.Conn.Close()
}

// tlsConn keeps a TLS connection recognisable to fasthttp (IsTLS,
// TLSConnectionState, the handshake under the read deadline).
type tlsConn struct{ *conn }

func (c *tlsConn) Handshake() error { return c.Conn.(*tls.Conn).Handshake() }

func (c *tlsConn) ConnectionState() tls.ConnectionState {
	return c.Conn.(*tls.Conn).ConnectionState()
}
