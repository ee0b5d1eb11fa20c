package apptest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Snmpd credentials of StartSnmpd's agent.
const (
	SnmpCommunity = "public"
	SnmpV3User    = "tsdbuser"
	SnmpV3Auth    = "authpass123"
	SnmpV3Priv    = "privpass123"
)

// FreeUDPPort returns a loopback UDP address that was free a moment ago.
func FreeUDPPort(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}

// StartSnmpd starts Debian's net-snmp agent on a private loopback UDP port
// with v2c community public and a v3 authPriv user (SHA-256, AES).
func StartSnmpd(t testing.TB) *Proc {
	t.Helper()
	bin := NeedBinary(t, "snmpd", "snmpd")
	dir := t.TempDir()
	addr := FreeUDPPort(t)
	conf := fmt.Sprintf("agentAddress udp:%s\nrocommunity %s 127.0.0.1\ncreateUser %s SHA-256 %s AES %s\nrouser %s authpriv\nsysName tsdb-test-agent\n",
		addr, SnmpCommunity, SnmpV3User, SnmpV3Auth, SnmpV3Priv, SnmpV3User)
	cfg := filepath.Join(dir, "snmpd.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	persist := filepath.Join(dir, "persist")
	if err := os.MkdirAll(persist, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", "-C", "-c", cfg, "-Lf", filepath.Join(dir, "snmpd.log"))
	cmd.Env = append(os.Environ(), "MIBS=", "SNMP_PERSISTENT_DIR="+persist)
	// snmpd is ready in well under a second; a GET proves it.
	get := NeedBinary(t, "snmpget", "snmp")
	return startProc(t, "snmpd", addr, cmd, 20*time.Second, func() bool {
		c := exec.Command(get, "-v2c", "-c", SnmpCommunity, "-t", "0.3", "-r", "0", addr, "1.3.6.1.2.1.1.3.0")
		c.Env = append(os.Environ(), "MIBS=", "SNMP_PERSISTENT_DIR="+persist)
		return c.Run() == nil
	})
}
