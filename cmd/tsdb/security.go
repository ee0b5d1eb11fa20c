package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/emsdb/tsdb/internal/auth"
)

// tlsConfig loads the server certificate and, with a client CA, requires
// client certificates signed by it.
func tlsConfig(certFile, keyFile, clientCA string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both --web.tls-cert-file and --web.tls-key-file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS client CA %s: no PEM certificates", clientCA)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// isLoopback reports whether host (from --listen) is a loopback address
// or name.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authHash prints the hashed form of a token or password for the auth:
// section: tsdb auth hash --token T | --password P (or the secret on
// standard input).
func authHash(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("auth hash", flag.ContinueOnError)
	token := fs.Bool("token", false, "hash a bearer token (SHA-256, for token_sha256)")
	password := fs.Bool("password", false, "hash a password (bcrypt, for password_hash)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == *password {
		return errors.New("say --token or --password, then the secret on standard input")
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	secret := strings.TrimRight(line, "\r\n")
	if secret == "" {
		return errors.New("empty secret on standard input")
	}
	if *token {
		fmt.Fprintln(stdout, auth.HashToken(secret))
		return nil
	}
	h, err := auth.HashPassword(secret)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h)
	return nil
}
