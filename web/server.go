package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// ServerOptions bounds the HTTP server. A zero field means its default.
type ServerOptions struct {
	// MaxBodyBytes is the largest request body read; default 33 MiB.
	// fasthttp refuses a larger one before any handler runs: the server
	// answers 413 with TooLargeMessage.
	MaxBodyBytes int
	// TooLargeMessage is the text of that 413; it should name the limit
	// and how to change it. Default: the limit in bytes.
	TooLargeMessage string
	// ReadTimeout bounds reading one request; default 1m.
	ReadTimeout time.Duration
	// MaxConnections bounds concurrent connections; default 2048.
	MaxConnections int
	Logger         *slog.Logger
}

// Server serves an API on listeners.
type Server struct{ srv *fasthttp.Server }

// NewServer returns a server of a.
func NewServer(a *API, o ServerOptions) *Server {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 33 << 20
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = time.Minute
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 2048
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TooLargeMessage == "" {
		o.TooLargeMessage = fmt.Sprintf("request body is larger than the limit of %d bytes", o.MaxBodyBytes)
	}
	return &Server{srv: &fasthttp.Server{
		Handler:               a.Handler,
		ErrorHandler:          requestError(o.TooLargeMessage),
		Name:                  "tsdb",
		MaxRequestBodySize:    o.MaxBodyBytes,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          5 * time.Minute,
		IdleTimeout:           2 * time.Minute,
		Concurrency:           o.MaxConnections,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{o.Logger},
	}}
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

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
