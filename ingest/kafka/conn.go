package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TLSConfig is how a node reaches Kafka over TLS (the brokers' SSL or
// SASL_SSL listener). The section's presence turns TLS on; an empty one
// verifies the brokers against the system's roots.
type TLSConfig struct {
	// CAFile holds the PEM certificates the brokers' are verified
	// against (default: the system's roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are this node's certificate and key (PEM),
	// for brokers that require client certificates (ssl.client.auth).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the brokers' certificates must carry
	// (default: each broker's host as the cluster advertises it).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify does not verify the brokers' certificates (a
	// test bed only: anyone on the path can read and change the data).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASLConfig is how a node authenticates to Kafka (the brokers'
// SASL_PLAINTEXT or SASL_SSL listener).
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512. NB: PLAIN sends
	// the password as it is: use it over TLS.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password, or PasswordFile: a file holding it (one trailing newline
	// is ignored), read when the node connects.
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// validate checks the TLS section: its files are read and parsed now, so
// that a mistake fails the start with its name.
func (t *TLSConfig) validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("cluster: tls: cert_file and key_file go together (this node's client certificate and its key)")
	}
	_, err := t.build()
	return err
}

// build makes the tls.Config the clients dial with.
func (t *TLSConfig) build() (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the operator's choice, documented as unsafe
	}
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: tls: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("cluster: tls: ca_file %s: no PEM certificate in it", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cluster: tls: cert_file %s and key_file %s: %w", t.CertFile, t.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// validate checks the SASL section and normalizes its mechanism's name.
func (s *SASLConfig) validate() error {
	s.Mechanism = strings.ToUpper(strings.TrimSpace(s.Mechanism))
	switch s.Mechanism {
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	case "":
		return fmt.Errorf("cluster: sasl: mechanism: required: %s, %s or %s", SASLPlain, SASLScramSHA256, SASLScramSHA512)
	default:
		return fmt.Errorf("cluster: sasl: mechanism %q: want %s, %s or %s", s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	if s.Username == "" {
		return errors.New("cluster: sasl: username: required")
	}
	if (s.Password == "") == (s.PasswordFile == "") {
		return errors.New("cluster: sasl: give exactly one of password and password_file")
	}
	_, err := s.password()
	return err
}

// password is the password, read from its file when it has one.
func (s *SASLConfig) password() (string, error) {
	if s.PasswordFile == "" {
		return s.Password, nil
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("cluster: sasl: password_file: %w", err)
	}
	p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if p == "" {
		return "", fmt.Errorf("cluster: sasl: password_file %s is empty", s.PasswordFile)
	}
	return p, nil
}

// mechanism is franz-go's SASL mechanism for the section.
func (s *SASLConfig) mechanism() (sasl.Mechanism, error) {
	pw, err := s.password()
	if err != nil {
		return nil, err
	}
	switch s.Mechanism {
	case SASLPlain:
		return plain.Auth{User: s.Username, Pass: pw}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: s.Username, Pass: pw}.AsSha256Mechanism(), nil
	case SASLScramSHA512:
		return scram.Auth{User: s.Username, Pass: pw}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("cluster: sasl: mechanism %q: want %s, %s or %s", s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
}

// clientOpts are the options every Kafka client of the node starts with:
// the brokers, the client id, TLS and SASL as configured. extra follow.
func (c *Config) clientOpts(extra ...kgo.Opt) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID("tsdb-" + c.Node)}
	if c.TLS != nil {
		tc, err := c.TLS.build()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL != nil {
		m, err := c.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return append(opts, extra...), nil
}

// newClient is kgo.NewClient with clientOpts.
func (c *Config) newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.clientOpts(extra...)
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(opts...)
}
