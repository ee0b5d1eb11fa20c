package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestTLSAndClientCertificates: with a certificate tsdb speaks only HTTPS;
// with a client CA it also requires a client certificate signed by it.
func TestTLSAndClientCertificates(t *testing.T) {
	dir := t.TempDir()
	cert, key := apptest.SelfSignedCert(t, dir)
	pemBytes, err := os.ReadFile(cert)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pemBytes))
	pair, err := tls.LoadX509KeyPair(cert, key)
	require.NoError(t, err)
	bin := apptest.Build(t)

	db := apptest.StartTSDB(t, bin, t.TempDir(), "--web.tls-cert-file", cert, "--web.tls-key-file", key)
	https := "https://" + strings.TrimPrefix(db.URL(), "http://")
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(https + "/-/healthy")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	resp, err = (&http.Client{Timeout: 5 * time.Second}).Get(db.URL() + "/-/healthy")
	if err == nil {
		resp.Body.Close()
		require.NotEqual(t, 200, resp.StatusCode, "plain HTTP is not served")
	}

	mtls := apptest.StartTSDB(t, bin, t.TempDir(), "--web.tls-cert-file", cert, "--web.tls-key-file", key, "--web.tls-client-ca-file", cert)
	https = "https://" + strings.TrimPrefix(mtls.URL(), "http://")
	_, err = c.Get(https + "/-/healthy")
	require.Error(t, err, "no client certificate: the handshake fails")
	withCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	resp, err = withCert.Get(https + "/-/healthy")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
}
