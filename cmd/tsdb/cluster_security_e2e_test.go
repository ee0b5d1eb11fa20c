package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/internal/apptest"
)

// TestClusterKafkaTLSAndSASL: one Kafka broker with a SASL_PLAINTEXT
// listener (PLAIN and SCRAM users) and an SSL listener that requires a
// client certificate. Node n1 (zone-a) reaches Kafka with SASL PLAIN, its
// password in a file; node n2 (zone-b) over TLS with a client
// certificate; node n3 (zone-c) with SCRAM-SHA-512. Writes through n1 are
// answered by a strong read through n2 and n3. A wrong password, a
// certificate Kafka does not trust and a bad config stop tsdb at start
// with a message that says so. `tsdb cluster retire-node` (over SASL)
// refuses a running node and retires a stopped one.
func TestClusterKafkaTLSAndSASL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker and three tsdb")
	}
	dir := t.TempDir()
	cert, key := apptest.SelfSignedCert(t, dir)
	k := apptest.StartKafka(t, &apptest.KafkaOptions{
		SASLUsers:   map[string]string{"tsdb": "s3cret-pw"},
		TLSCertFile: cert, TLSKeyFile: key, TLSClientCAFile: cert,
	})
	bin := apptest.Build(t)
	pwFile := filepath.Join(dir, "kafka-password")
	require.NoError(t, os.WriteFile(pwFile, []byte("s3cret-pw\n"), 0o600))
	config := func(node, zone, broker, security string) string {
		p := filepath.Join(dir, node+".yml")
		doc := fmt.Sprintf(`cluster:
  brokers: [%s]
  partitions: 4
  replication_factor: 1
  zone: %s
  node: %s
  produce_timeout: 3s
  session_timeout: 6s
  secret: e2e
%s`, broker, zone, node, security)
		require.NoError(t, os.WriteFile(p, []byte(doc), 0o644))
		return p
	}
	plain := fmt.Sprintf("  sasl: {mechanism: PLAIN, username: tsdb, password_file: %s}\n", pwFile)
	mtls := fmt.Sprintf("  tls: {ca_file: %s, cert_file: %s, key_file: %s}\n", cert, cert, key)
	scram := "  sasl: {mechanism: scram-sha-512, username: tsdb, password: s3cret-pw}\n"
	start := func(node, zone, broker, security string) *apptest.Proc {
		return apptest.StartTSDB(t, bin, t.TempDir(), "--config.file", config(node, zone, broker, security), "--self-monitor.interval", "0")
	}
	t0 := time.Now()
	n1 := start("n1", "zone-a", k.SASLAddr, plain)
	n2 := start("n2", "zone-b", k.TLSAddr, mtls)
	n3 := start("n3", "zone-c", k.SASLAddr, scram)
	for _, n := range []*apptest.Proc{n1, n2, n3} {
		require.Eventually(t, func() bool { code, _ := n.Get(t, "/-/ready"); return code == http.StatusOK }, time.Minute,
			100*time.Millisecond, "node %s ready", n.Addr)
	}
	t.Logf("three nodes (SASL PLAIN, mutual TLS, SCRAM-SHA-512) ready %v after the first started", time.Since(t0).Round(time.Millisecond))

	l := &clusterLedger{acked: []map[int64]bool{{}}, next: []int64{time.Now().Add(-time.Hour).UnixMilli()}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &http.Client{Timeout: 10 * time.Second}
	for range 20 {
		ts := l.next[0]
		l.next[0] += 1000
		code, body, err := apptest.RemoteWrite(ctx, c, n1.URL()+"/api/v1/write", clusterRequest(0, ts))
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, code, body)
		l.acked[0][ts] = true
	}
	l.waitCompleteStrong(t, c, n2, n3)
	t.Logf("%d samples written through n1 (SASL PLAIN), all answered by strong reads through n2 (mTLS) and n3 (SCRAM)", l.count())

	// tsdb cluster retire-node, with n1's config (SASL): a running node
	// is refused, a stopped one retired (--force: it stopped a moment
	// ago) and gone from the other nodes' view; an unknown one is named.
	retire := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"cluster", "retire-node", "--config.file", filepath.Join(dir, "n1.yml")}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := retire("zone-b.n2")
	require.Error(t, err, out)
	require.Contains(t, out, "it is alive or only just stopped")
	_, body := n1.Get(t, "/api/v1/status/cluster")
	require.Contains(t, body, `"node":"n3"`, "n1 knows n3")
	n3.Stop(t)
	out, err = retire("--force", "zone-c.n3")
	require.NoError(t, err, out)
	require.Contains(t, out, "retired zone-c/n3")
	t.Logf("retire-node: %s", strings.TrimSpace(out))
	require.Eventually(t, func() bool {
		_, body := n1.Get(t, "/api/v1/status/cluster")
		return strings.Contains(body, `"zone-b"`) && !strings.Contains(body, `"node":"n3"`)
	}, 20*time.Second, 100*time.Millisecond, "n1 forgets the retired node")
	out, err = retire("zone-c.n9")
	require.Error(t, err, out)
	require.Contains(t, out, "zone-c.n9 is not in tsdb-samples-nodes")

	// What fails at start, and says why.
	fails := func(name, security, want string) {
		t.Helper()
		broker := k.SASLAddr
		if strings.Contains(security, "tls:") {
			broker = k.TLSAddr
		}
		out, err := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(),
			"--config.file", config(name, "zone-x", broker, security)).CombinedOutput()
		require.Error(t, err, "%s: tsdb started\n%s", name, out)
		require.Contains(t, string(out), want, name)
		t.Logf("%s: %s", name, lastLine(string(out), want))
	}
	fails("wrong-password", "  sasl: {mechanism: PLAIN, username: tsdb, password: nope}\n", "SASL")
	other, otherKey := apptest.SelfSignedCert(t, t.TempDir())
	fails("untrusted-client-cert", fmt.Sprintf("  tls: {ca_file: %s, cert_file: %s, key_file: %s}\n", cert, other, otherKey), "tls: unknown certificate")
	fails("no-mechanism", "  sasl: {username: tsdb, password: x}\n", "cluster: sasl: mechanism: required")
	fails("two-passwords", fmt.Sprintf("  sasl: {mechanism: PLAIN, username: tsdb, password: x, password_file: %s}\n", pwFile),
		"exactly one of password and password_file")
	fails("cert-without-key", fmt.Sprintf("  tls: {cert_file: %s}\n", cert), "cert_file and key_file go together")
	fails("missing-ca", "  tls: {ca_file: /nonexistent/ca.pem}\n", "cluster: tls: ca_file")
}

// lastLine is the last line of out that contains s.
func lastLine(out, s string) string {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}
