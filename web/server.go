package web

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// ServerOptions bounds the HTTP server. A zero field means its default.
type ServerOptions struct {
	// MaxBodyBytes is the largest request body read; default 33 MiB.
	MaxBodyBytes int
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
	return &Server{srv: &fasthttp.Server{
		Handler:               a.Handler,
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

type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "http")
}
