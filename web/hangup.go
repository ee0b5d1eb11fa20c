package web

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// errClientGone is the cause of a request context cancelled because the
// client closed its connection: the query it asked for is stopped, since
// nobody will read its answer (Prometheus's net/http server does the
// same through the request's context).
var errClientGone = errors.New("the client closed the connection")

// hangupPoll is how often a running request looks at its connection.
const hangupPoll = 100 * time.Millisecond

// requestContext returns a context for work done on r's behalf, bounded
// by timeout and cancelled (cause errClientGone) when the client closes
// the connection. fasthttp does not read a connection while its handler
// runs, so the connection's state is polled: the kernel's TCP state
// (TCP_INFO) leaves ESTABLISHED when the peer sends its FIN or a reset,
// which works alike for TLS, whose close_notify alert a peek at the
// socket would mistake for the next request's bytes. Outside a server
// (tests calling handlers directly), or on a connection whose state
// cannot be read, only the timeout applies.
func requestContext(r *Request, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancelCause := context.WithCancelCause(context.Background())
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	rc := rawConn(r.Ctx.Conn())
	if rc == nil {
		return ctx, func() { cancelTimeout(); cancelCause(context.Canceled) }
	}
	// NB: the first look comes when a timer first fires, and each look
	// arms the next: a request done within hangupPoll — most queries,
	// some in a tenth of a millisecond — starts no goroutine, ticker or
	// system call for it (a goroutine and a TCP_INFO read per request
	// were a sixth of the CPU of `1` as a query).
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	look := func() {
		if ctx.Err() != nil || !canSeeHangup(rc) {
			return // done, or only the timeout applies
		}
		if hungUp(rc) {
			cancelCause(errClientGone)
			return
		}
		mu.Lock()
		if !stopped {
			t.Reset(hangupPoll)
		}
		mu.Unlock()
	}
	mu.Lock()
	t = time.AfterFunc(hangupPoll, look)
	mu.Unlock()
	stop := func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
		cancelTimeout()
		cancelCause(context.Canceled)
	}
	return ctx, stop
}

// clientGone reports whether ctx was cancelled because its client hung up.
func clientGone(ctx context.Context) bool { return errors.Is(context.Cause(ctx), errClientGone) }

// rawConn returns the socket under nc: through the connection limiter's
// wrappers and TLS, down to the TCP connection. Nil when there is none.
func rawConn(nc net.Conn) syscall.RawConn {
	for range 4 {
		switch c := nc.(type) {
		case *conn:
			nc = c.Conn
		case *tlsConn:
			nc = c.conn.Conn
		case *tls.Conn:
			nc = c.NetConn()
		case *net.TCPConn:
			rc, err := c.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		default:
			return nil
		}
	}
	return nil
}
