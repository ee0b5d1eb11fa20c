package web

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/query"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

// slowQuery evaluates for a minute or more: a one-hour subquery at
// millisecond resolution at each of the 10,800 steps of another.
const slowQuery = `sum_over_time(sum_over_time(vector(time())[1h:1ms])[3h:1s])`

// TestClientHangupCancelsQuery: a query whose client closes the
// connection stops, and gives its slot back, over plain TCP and TLS
// (whose close_notify precedes the FIN). With one query slot, a second
// client waiting for it gets its answer within its own 20-second timeout
// only if the first query was cancelled when its client left (it runs
// for a minute or more otherwise).
func TestClientHangupCancelsQuery(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tls"}[useTLS], func(t *testing.T) {
			now := time.Now()
			db := st.Open(t, nil)
			api := New(Deps{Reader: db, Engine: query.NewEngine(db, nil), Now: func() time.Time { return now },
				MaxConcurrentQueries: 1, QueryTimeout: 10 * time.Minute})
			srv := NewServer(api, ServerOptions{})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			addr := ln.Addr().String()
			client := http.DefaultClient
			dial := func() (net.Conn, error) { return net.Dial("tcp", addr) }
			scheme := "http"
			if useTLS {
				certFile, keyFile := apptest.SelfSignedCert(t, t.TempDir())
				cert, err := tls.LoadX509KeyPair(certFile, keyFile)
				require.NoError(t, err)
				ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
				pem, err := os.ReadFile(certFile)
				require.NoError(t, err)
				pool := x509.NewCertPool()
				require.True(t, pool.AppendCertsFromPEM(pem))
				ccfg := &tls.Config{RootCAs: pool}
				client = &http.Client{Transport: &http.Transport{TLSClientConfig: ccfg}}
				dial = func() (net.Conn, error) { return tls.Dial("tcp", addr, ccfg) }
				scheme = "https"
			}
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })

			// The slow query, on a connection closed once it runs.
			c, err := dial()
			require.NoError(t, err)
			v := url.Values{"query": {slowQuery}, "time": {fmt.Sprint(now.Unix())}}
			_, err = fmt.Fprintf(c, "GET /api/v1/query?%s HTTP/1.1\r\nHost: tsdb\r\n\r\n", v.Encode())
			require.NoError(t, err)
			time.Sleep(500 * time.Millisecond) // it holds the only slot now
			require.NoError(t, c.Close())

			resp, err := client.Get(scheme + "://" + addr + "/api/v1/query?query=vector(2)&timeout=20s")
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "the query after a hung-up one: %s", body)
			var env envelope
			require.NoError(t, json.Unmarshal(body, &env))
			require.Equal(t, "success", env.Status)
		})
	}
}
