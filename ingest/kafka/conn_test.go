package kafka

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// The tls: and sasl: sections are checked at start, files included, and
// say what is wrong; a mechanism's name is taken in any case.
func TestSecurityConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key := apptest.SelfSignedCert(t, dir)
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("secret\n"), 0o600))
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	for _, tc := range []struct {
		name string
		tls  *TLSConfig
		sasl *SASLConfig
		err  string
	}{
		{name: "plain", sasl: &SASLConfig{Mechanism: "plain", Username: "u", Password: "p"}},
		{name: "scram file", sasl: &SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "u", PasswordFile: pw}},
		{name: "mtls", tls: &TLSConfig{CAFile: cert, CertFile: cert, KeyFile: key}},
		{name: "system roots", tls: &TLSConfig{}},
		{name: "mechanism", sasl: &SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"}, err: `mechanism "GSSAPI": want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512`},
		{name: "user", sasl: &SASLConfig{Mechanism: "PLAIN", Password: "p"}, err: "username: required"},
		{name: "no password", sasl: &SASLConfig{Mechanism: "PLAIN", Username: "u"}, err: "exactly one of password and password_file"},
		{name: "empty file", sasl: &SASLConfig{Mechanism: "PLAIN", Username: "u", PasswordFile: empty}, err: "is empty"},
		{name: "key alone", tls: &TLSConfig{KeyFile: key}, err: "cert_file and key_file go together"},
		{name: "not a CA file", tls: &TLSConfig{CAFile: pw}, err: "no PEM certificate"},
		{name: "key mismatch", tls: &TLSConfig{CertFile: cert, KeyFile: pw}, err: "cluster: tls: cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Brokers: []string{"127.0.0.1:9092"}, Node: "n1", TLS: tc.tls, SASL: tc.sasl}
			err := c.Validate()
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			opts, err := c.clientOpts()
			require.NoError(t, err)
			require.Len(t, opts, 2+btoi(tc.tls != nil)+btoi(tc.sasl != nil))
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
