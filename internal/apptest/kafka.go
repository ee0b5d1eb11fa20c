package apptest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// KafkaVersion is the Apache Kafka release the tests run: broker and
// controller in one JVM (KRaft), assembled from Maven Central.
const KafkaVersion = "4.4.0"

// kafkaPOM lists the jars of a broker: Kafka, its tools (the storage
// formatter) and a log4j2 binding for its SLF4J 2 logging (slf4j-api 2 is
// named so that Maven's nearest-wins picks it over the 1.7 a dependency
// asks for, which would silence the log the tests wait on).
const kafkaPOM = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tsdb.test</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>` + KafkaVersion + `</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>` + KafkaVersion + `</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.16</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
`

const kafkaLog4j = `status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.org.name = org.apache.kafka
logger.org.level = warn
`

// cacheDir is where peers built or fetched for the tests are kept between
// runs: $TSDB_CACHE_DIR, else the user cache folder.
func cacheDir() string {
	if d := os.Getenv("TSDB_CACHE_DIR"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "tsdb")
}

// KafkaLib returns the folder of the broker's jars, fetching them from
// Maven Central with Debian's maven on first use (about 10 s, 54 MB) into
// the cache folder. A missing java or mvn fails the test saying what to
// install.
func KafkaLib(t testing.TB) string {
	t.Helper()
	NeedBinary(t, "java", "openjdk-17-jre-headless")
	dir := filepath.Join(cacheDir(), "kafka-"+KafkaVersion)
	lib := filepath.Join(dir, "lib")
	if _, err := os.Stat(filepath.Join(lib, "kafka_2.13-"+KafkaVersion+".jar")); err == nil {
		return lib
	}
	mvn := NeedBinary(t, "mvn", "maven")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Fetch into a private folder and rename it into place, so that test
	// binaries running at once never see half a lib folder.
	scratch, err := os.MkdirTemp(dir, "fetch-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(scratch)
	if err := os.WriteFile(filepath.Join(scratch, "pom.xml"), []byte(kafkaPOM), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mvn, "-q", "-B", "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
		"-DincludeScope=runtime", "-DoutputDirectory=lib")
	cmd.Dir = scratch
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fetching Kafka %s from Maven Central: %v\n%s", KafkaVersion, err, out)
	}
	if err := os.Rename(filepath.Join(scratch, "lib"), lib); err != nil {
		if _, serr := os.Stat(lib); serr != nil { // not another binary's win
			t.Fatal(err)
		}
	}
	return lib
}

// Kafka is a single-node Apache Kafka (broker and controller in one JVM)
// on loopback, with its data in a private folder. Stop and Start keep the
// data and ports: the same broker comes back.
type Kafka struct {
	Addr string // bootstrap address, host:port
	// SASLAddr and TLSAddr are the SASL_PLAINTEXT and SSL listeners'
	// addresses, when KafkaOptions asked for them.
	SASLAddr, TLSAddr string
	*Proc

	lib, dir, props string
}

// KafkaOptions tune a test broker; the zero value is a sensible default.
type KafkaOptions struct {
	// Partitions is the default partition count of auto-created topics
	// (default 1).
	Partitions int
	// Extra lines appended to server.properties.
	Extra []string
	// SASLUsers, when set, opens a SASL_PLAINTEXT listener (SASLAddr)
	// taking PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for these users
	// (name -> password).
	SASLUsers map[string]string
	// TLSCertFile and TLSKeyFile (PEM), when set, open an SSL listener
	// (TLSAddr) with this certificate. With TLSClientCAFile it requires a
	// client certificate signed by one of that file's.
	TLSCertFile, TLSKeyFile, TLSClientCAFile string
}

// StartKafka formats and starts a Kafka broker on free loopback ports and
// waits until it serves (about 3 s and 340 MB of memory here). It is
// killed when the test ends.
func StartKafka(t testing.TB, opts *KafkaOptions) *Kafka {
	t.Helper()
	var o KafkaOptions
	if opts != nil {
		o = *opts
	}
	if o.Partitions == 0 {
		o.Partitions = 1
	}
	lib := KafkaLib(t)
	dir := t.TempDir()
	addr, ctrl := FreePort(t), FreePort(t)
	props := []string{
		"process.roles=broker,controller",
		"node.id=1",
		"controller.quorum.voters=1@" + ctrl,
		"listeners=PLAINTEXT://" + addr + ",CONTROLLER://" + ctrl,
		"advertised.listeners=PLAINTEXT://" + addr,
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"inter.broker.listener.name=PLAINTEXT",
		"log.dirs=" + filepath.Join(dir, "data"),
		"offsets.topic.replication.factor=1",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		// Failover tests must not wait the 45 s default for a dead
		// member's session to end (classic and KIP-848 groups).
		"group.min.session.timeout.ms=1000",
		"group.consumer.min.session.timeout.ms=1000",
		"group.consumer.session.timeout.ms=6000",
		"group.consumer.min.heartbeat.interval.ms=500",
		"group.consumer.heartbeat.interval.ms=1000",
		fmt.Sprintf("num.partitions=%d", o.Partitions),
	}
	k := &Kafka{Addr: addr, lib: lib, dir: dir, props: filepath.Join(dir, "server.properties")}
	var formatArgs []string
	if len(o.SASLUsers) > 0 || o.TLSCertFile != "" {
		listeners := []string{"PLAINTEXT://" + addr}
		protocols := []string{"PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"}
		if len(o.SASLUsers) > 0 {
			k.SASLAddr = FreePort(t)
			listeners = append(listeners, "SASL_PLAINTEXT://"+k.SASLAddr)
			protocols = append(protocols, "SASL_PLAINTEXT:SASL_PLAINTEXT")
			plain := "org.apache.kafka.common.security.plain.PlainLoginModule required"
			for _, u := range slices.Sorted(maps.Keys(o.SASLUsers)) {
				plain += fmt.Sprintf(" user_%s=%q", u, o.SASLUsers[u])
				for _, m := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
					formatArgs = append(formatArgs, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", m, u, o.SASLUsers[u]))
				}
			}
			props = append(props,
				"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
				"listener.name.sasl_plaintext.plain.sasl.jaas.config="+plain+";",
				"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
				"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;")
		}
		if o.TLSCertFile != "" {
			k.TLSAddr = FreePort(t)
			listeners = append(listeners, "SSL://"+k.TLSAddr)
			protocols = append(protocols, "SSL:SSL")
			cert, key := pemKeystore(t, o.TLSCertFile, o.TLSKeyFile)
			props = append(props,
				"listener.name.ssl.ssl.keystore.type=PEM",
				"listener.name.ssl.ssl.keystore.certificate.chain="+cert,
				"listener.name.ssl.ssl.keystore.key="+key)
			if o.TLSClientCAFile != "" {
				ca, err := os.ReadFile(o.TLSClientCAFile)
				if err != nil {
					t.Fatal(err)
				}
				props = append(props,
					"listener.name.ssl.ssl.client.auth=required",
					"listener.name.ssl.ssl.truststore.type=PEM",
					"listener.name.ssl.ssl.truststore.certificates="+oneLine(ca))
			}
		}
		for i, p := range props {
			switch {
			case strings.HasPrefix(p, "listeners="):
				props[i] = "listeners=" + strings.Join(listeners, ",") + ",CONTROLLER://" + ctrl
			case strings.HasPrefix(p, "advertised.listeners="):
				props[i] = "advertised.listeners=" + strings.Join(listeners, ",")
			case strings.HasPrefix(p, "listener.security.protocol.map="):
				props[i] = "listener.security.protocol.map=" + strings.Join(protocols, ",")
			}
		}
	}
	props = append(props, o.Extra...)
	files := map[string]string{
		k.props:                                 strings.Join(props, "\n") + "\n",
		filepath.Join(dir, "log4j2.properties"): kafkaLog4j,
	}
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	format := exec.Command("java", append([]string{"-cp", filepath.Join(lib, "*"), "kafka.tools.StorageTool",
		"format", "-t", "dHNkYi10ZXN0LWNsdXN0ZXI", "-c", k.props, "--ignore-formatted"}, formatArgs...)...)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("formatting Kafka storage: %v\n%s", err, out)
	}
	k.Start(t)
	return k
}

// DataDir is the broker's log folder (its partitions' segments).
func (k *Kafka) DataDir() string { return filepath.Join(k.dir, "data") }

// Start starts the broker (again, after Stop or Kill) and waits until its
// log says it started and its port answers.
func (k *Kafka) Start(t testing.TB) {
	t.Helper()
	cmd := exec.Command("java", "-Xmx512m", "-XX:+UseSerialGC",
		"-Dlog4j2.configurationFile="+filepath.Join(k.dir, "log4j2.properties"),
		"-cp", filepath.Join(k.lib, "*"), "kafka.Kafka", k.props)
	k.Proc = startProcLog(t, "kafka", k.Addr, cmd, 90*time.Second, func(p *Proc) bool {
		if !strings.Contains(p.Log(), "Kafka Server started") {
			return false
		}
		c, err := net.DialTimeout("tcp", k.Addr, time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

// pemKeystore returns a certificate chain and its key as Kafka's PEM
// keystore takes them inline in server.properties: one line each, the
// key in PKCS #8.
func pemKeystore(t testing.TB, certFile, keyFile string) (cert, key string) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var chain []byte
	for _, der := range pair.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	k8, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return oneLine(chain), oneLine(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k8}))
}

// oneLine joins PEM's lines with spaces, which Kafka's PEM parser skips.
func oneLine(b []byte) string {
	return strings.Join(strings.Fields(string(b)), " ")
}
