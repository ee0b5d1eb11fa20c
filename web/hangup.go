package web

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
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
	stop := func() { cancelTimeout(); cancelCause(context.Canceled) }
	rc := rawConn(r.Ctx.Conn())
	if rc == nil || !canSeeHangup(rc) {
		return ctx, stop
	}
	go func() {
		t := time.NewTicker(hangupPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if hungUp(rc) {
					cancelCause(errClientGone)
					return
				}
			}
		}
	}()
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
