package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// ServerOptions bounds the HTTP server. A zero field means its default.
type ServerOptions struct {
	// MaxBodyBytes is the largest request body read; default 33 MiB.
	// fasthttp refuses a larger one before any handler runs: the server
	// answers 413 with TooLargeMessage.
	MaxBodyBytes int
	// TooLargeMessage is the text of the 413 for a body over
	// MaxBodyBytes; it should name the limit and how to change it.
	// Default: the limit in bytes.
	TooLargeMessage string
	// MaxHeaderBytes is the largest request line and headers (a GET
	// query's URL included); default 256 KiB. NB: fasthttp gives each
	// connection reading a request a buffer of this size up front, so
	// the worst case is MaxConnections times it.
	MaxHeaderBytes int
	// HeaderReadTimeout bounds reading a request's header (and the TLS
	// handshake): from the connection's first byte, or a keep-alive
	// request's first byte; default 10s.
	HeaderReadTimeout time.Duration
	// ReadTimeout bounds reading a request's body once its header is in;
	// default 1m.
	ReadTimeout time.Duration
	// IdleTimeout is how long an idle keep-alive connection is kept;
	// default 2m. Under pressure (three quarters of MaxConnections open)
	// idle connections are closed at once.
	IdleTimeout time.Duration
	// MaxConnections bounds concurrent connections; default 2048.
	MaxConnections int
	// ReservedConnections of MaxConnections serve only probes and
	// authenticated requests; default MaxConnections/16, at least 1, at
	// most half.
	ReservedConnections int
	// MaxConnectionsPerIP bounds the connections of one client address
	// (IPv6: one /64); default 256; negative: no bound.
	MaxConnectionsPerIP int
	// Registerer takes the connection metrics; nil: none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// DefaultServerOptions are the bounds a zero ServerOptions gets.
func DefaultServerOptions() ServerOptions {
	return ServerOptions{
		MaxBodyBytes:        33 << 20,
		MaxHeaderBytes:      256 << 10,
		HeaderReadTimeout:   10 * time.Second,
		ReadTimeout:         time.Minute,
		IdleTimeout:         2 * time.Minute,
		MaxConnections:      2048,
		MaxConnectionsPerIP: 256,
	}
}

func (o *ServerOptions) ensureDefaults() {
	d := DefaultServerOptions()
	for _, f := range []struct{ v, d *int }{
		{&o.MaxBodyBytes, &d.MaxBodyBytes}, {&o.MaxHeaderBytes, &d.MaxHeaderBytes},
		{&o.MaxConnections, &d.MaxConnections}, {&o.MaxConnectionsPerIP, &d.MaxConnectionsPerIP},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *time.Duration }{
		{&o.HeaderReadTimeout, &d.HeaderReadTimeout}, {&o.ReadTimeout, &d.ReadTimeout}, {&o.IdleTimeout, &d.IdleTimeout},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	if o.ReservedConnections <= 0 {
		o.ReservedConnections = max(1, o.MaxConnections/16)
	}
	o.ReservedConnections = min(o.ReservedConnections, o.MaxConnections/2)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server serves an API on listeners.
type Server struct {
	srv   *fasthttp.Server
	conns *connLimiter
}

// NewServer returns a server of a.
func NewServer(a *API, o ServerOptions) *Server {
	o.ensureDefaults()
	if o.TooLargeMessage == "" {
		o.TooLargeMessage = fmt.Sprintf("request body is larger than the limit of %d bytes", o.MaxBodyBytes)
	}
	conns := newConnLimiter(o)
	bodyTimeout := fasthttp.RequestConfig{ReadTimeout: o.ReadTimeout}
	return &Server{conns: conns, srv: &fasthttp.Server{
		Handler:        a.Handler,
		ErrorHandler:   requestError(o.TooLargeMessage),
		Name:           "tsdb",
		ReadBufferSize: o.MaxHeaderBytes,
		// NB: with ReduceMemoryUsage an idle keep-alive connection gives
		// its read buffer back; without it, every connection would keep
		// MaxHeaderBytes.
		ReduceMemoryUsage:  true,
		MaxRequestBodySize: o.MaxBodyBytes,
		// fasthttp's ReadTimeout runs from the connection's (or a
		// keep-alive request's) first byte to the end of the header: the
		// header timeout. HeaderReceived then gives the body its own.
		ReadTimeout:    o.HeaderReadTimeout,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig { return bodyTimeout },
		WriteTimeout:   5 * time.Minute,
		IdleTimeout:    o.IdleTimeout,
		// The connLimiter is the bound; fasthttp's is a backstop that
		// must not refuse first (it counts a connection a little longer).
		Concurrency:           2*o.MaxConnections + 64,
		ConnState:             conns.connState,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{o.Logger},
	}}
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(&limitedListener{Listener: ln, l: s.conns})
}

// Shutdown stops accepting and waits for requests in flight until ctx is
// done.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

// requestError answers a request fasthttp could not read, as its default
// handler does, except that a body over the limit is a 413 that says
// which limit (fasthttp's default answers "400 Error when parsing
// request", which senders retry or drop without a clue).
func requestError(tooLarge string) func(*fasthttp.RequestCtx, error) {
	return func(ctx *fasthttp.RequestCtx, err error) {
		var small *fasthttp.ErrSmallBuffer
		var netErr net.Error
		switch {
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			ctx.Error(tooLarge+"\n", fasthttp.StatusRequestEntityTooLarge)
		case errors.As(err, &small):
			ctx.Error("Too big request header", fasthttp.StatusRequestHeaderFieldsTooLarge)
		case errors.As(err, &netErr) && netErr.Timeout():
			ctx.Error("Request timeout", fasthttp.StatusRequestTimeout)
		default:
			ctx.Error("Error when parsing request", fasthttp.StatusBadRequest)
		}
	}
}

type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "http")
}
