package web

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"
)

// A body over the server's limit is refused before any handler runs; it
// is a 413 that names the limit, where fasthttp's default answered "400
// Error when parsing request" (#23).
func TestServerAnswers413OverTheBodyLimit(t *testing.T) {
	called := false
	srv := NewServer(New(Deps{Ingest: Ingest{RemoteWrite: func(*fasthttp.RequestCtx) { called = true }}}), ServerOptions{
		MaxBodyBytes:    1024,
		TooLargeMessage: "request body is over the limit of 1000 bytes (--remote-write.max-body-bytes)",
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	url := "http://" + ln.Addr().String() + "/api/v1/write"

	for _, chunked := range []bool{false, true} {
		var body io.Reader = bytes.NewReader(make([]byte, 4096))
		if chunked {
			body = io.MultiReader(body) // no length known: chunked encoding
		}
		resp, err := http.Post(url, "application/x-protobuf", body)
		require.NoError(t, err)
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "chunked %v: %s", chunked, msg)
		require.Equal(t, "request body is over the limit of 1000 bytes (--remote-write.max-body-bytes)\n", string(msg))
	}
	require.False(t, called)
}
