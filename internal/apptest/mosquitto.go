package apptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// StartMosquitto starts Debian's mosquitto on addr (host:port) with its
// persistence in dir, anonymous access, and waits until it listens. Start
// it again with the same addr and dir to restart it with its sessions.
func StartMosquitto(t testing.TB, addr, dir string) *Proc {
	t.Helper()
	return startMosquitto(t, addr, dir, "")
}

// StartMosquittoAuth is StartMosquitto accepting only user with password.
func StartMosquittoAuth(t testing.TB, addr, dir, user, password string) *Proc {
	t.Helper()
	tool := NeedBinary(t, "mosquitto_passwd", "mosquitto")
	pw := filepath.Join(dir, "passwords")
	if out, err := exec.Command(tool, "-c", "-b", pw, user, password).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	return startMosquitto(t, addr, dir, pw)
}

// StartMosquittoTLS is StartMosquitto with TLS only, serving certFile and
// keyFile (PEM).
func StartMosquittoTLS(t testing.TB, addr, dir, certFile, keyFile string) *Proc {
	t.Helper()
	return startMosquitto(t, addr, dir, "", "certfile "+certFile+"\nkeyfile "+keyFile+"\n")
}

// StartMosquittoConf is StartMosquitto with extra lines of configuration
// (e.g. "max_queued_messages 0\n").
func StartMosquittoConf(t testing.TB, addr, dir, extra string) *Proc {
	t.Helper()
	return startMosquitto(t, addr, dir, "", extra)
}

func startMosquitto(t testing.TB, addr, dir, passwordFile string, extra ...string) *Proc {
	t.Helper()
	bin := NeedBinary(t, "mosquitto", "mosquitto")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "mosquitto.conf")
	conf := fmt.Sprintf("listener %s %s\npersistence true\npersistence_location %s/\nautosave_interval 1\nuser root\n",
		port, host, strings.TrimSuffix(dir, "/"))
	if passwordFile != "" {
		conf += "allow_anonymous false\npassword_file " + passwordFile + "\n"
	} else {
		conf += "allow_anonymous true\n"
	}
	conf += strings.Join(extra, "")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return startProc(t, "mosquitto", addr, exec.Command(bin, "-c", cfg), 20*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// MQTTPublisher connects an MQTT 3.1.1 client to addr for publishing (up
// to 1000 QoS 1 messages in flight), disconnected when the test ends.
func MQTTPublisher(t testing.TB, addr, id string) pahov3.Client {
	t.Helper()
	c := pahov3.NewClient(pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetMaxResumePubInFlight(1000))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt publisher %s: connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// SelfSignedCert writes a self-signed certificate for 127.0.0.1 (usable
// as server and client certificate, and as its own CA)
// and its key into dir and returns their paths.
func SelfSignedCert(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
