package kafka

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/emsdb/tsdb/internal/duration"
)

// Config is the cluster: section of the config file.
type Config struct {
	// Brokers are the Kafka bootstrap addresses, host:port.
	Brokers []string `yaml:"brokers"`
	// Topic holds the samples (default tsdb-samples). It is created at
	// start when missing.
	Topic string `yaml:"topic"`
	// Partitions is how many partitions series are spread over (default
	// 16). It is fixed for the life of the cluster: the partition of a
	// series depends on it. An existing topic with fewer is an error.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor of a topic created at start (default 3, capped to
	// the number of brokers).
	ReplicationFactor int `yaml:"replication_factor"`
	// Zone is this node's zone (default zone-a); its consumer group is
	// tsdb-<zone>. Each zone holds a full copy of the data.
	Zone string `yaml:"zone"`
	// Node names this node in its zone (default: the host name). It must
	// be unique in the zone: it is the node's static membership in the
	// consumer group, so a restarted node gets its partitions back at once.
	Node string `yaml:"node"`
	// ProduceTimeout bounds how long a write waits for Kafka's
	// acknowledgement before it fails with 503 (default 10s).
	ProduceTimeout duration.Duration `yaml:"produce_timeout"`
	// SessionTimeout is how long the group waits for a silent node before
	// moving its partitions to the others (default 10s).
	SessionTimeout duration.Duration `yaml:"session_timeout"`
	// AdvertiseURL is this node's HTTP address for its peers, e.g.
	// http://10.0.0.5:8428 (default: http:// and the --listen address,
	// which must then name a host). Peers send it the internal reads.
	AdvertiseURL string `yaml:"advertise_url"`
	// Secret authenticates the nodes' internal read requests to each
	// other (the same on every node). Required when auth: is on; without
	// it the internal API is as open as the rest of the node.
	Secret string `yaml:"secret"`
	// PeerTimeout bounds one internal read of a peer (default 30s); the
	// query's own timeout bounds it too.
	PeerTimeout duration.Duration `yaml:"peer_timeout"`
	// TLS, when set, reaches the brokers over TLS.
	TLS *TLSConfig `yaml:"tls"`
	// SASL, when set, authenticates to the brokers.
	SASL *SASLConfig `yaml:"sasl"`
}

// kafkaName is what Kafka accepts in a topic name, and what we accept in a
// zone (it becomes part of a group name).
var kafkaName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

// Validate checks the config and fills in defaults.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("cluster: brokers: at least one Kafka broker address is required")
	}
	for _, b := range c.Brokers {
		if b == "" {
			return errors.New("cluster: brokers: empty address")
		}
	}
	if c.Topic == "" {
		c.Topic = "tsdb-samples"
	}
	if !kafkaName.MatchString(c.Topic) {
		return fmt.Errorf("cluster: topic %q: Kafka takes letters, digits, '.', '_' and '-'", c.Topic)
	}
	if c.Partitions == 0 {
		c.Partitions = 16
	}
	if c.Partitions < 1 || c.Partitions > 10000 {
		return fmt.Errorf("cluster: partitions %d: want 1 to 10000", c.Partitions)
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 3
	}
	if c.ReplicationFactor < 1 || c.ReplicationFactor > 32767 {
		return fmt.Errorf("cluster: replication_factor %d: want at least 1", c.ReplicationFactor)
	}
	if c.Zone == "" {
		c.Zone = "zone-a"
	}
	if !kafkaName.MatchString(c.Zone) {
		return fmt.Errorf("cluster: zone %q: use letters, digits, '.', '_' and '-'", c.Zone)
	}
	if "tsdb-"+c.Zone == LeaderGroup {
		return fmt.Errorf("cluster: zone %q: the name is taken by the leader election's group %s", c.Zone, LeaderGroup)
	}
	if c.Node == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			return fmt.Errorf("cluster: node: no host name to default to (%v); name the node", err)
		}
		c.Node = h
	}
	if c.ProduceTimeout == 0 {
		c.ProduceTimeout = duration.Duration(10 * time.Second)
	}
	if c.ProduceTimeout < 0 {
		return fmt.Errorf("cluster: produce_timeout %s: must be positive", c.ProduceTimeout)
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = duration.Duration(10 * time.Second)
	}
	if c.SessionTimeout < duration.Duration(time.Second) {
		return fmt.Errorf("cluster: session_timeout %s: at least 1s", c.SessionTimeout)
	}
	if c.AdvertiseURL != "" {
		u, err := url.Parse(c.AdvertiseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("cluster: advertise_url %q: want http://host:port or https://host:port", c.AdvertiseURL)
		}
		c.AdvertiseURL = strings.TrimSuffix(c.AdvertiseURL, "/")
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = duration.Duration(30 * time.Second)
	}
	if c.PeerTimeout < 0 {
		return fmt.Errorf("cluster: peer_timeout %s: must be positive", c.PeerTimeout)
	}
	if c.TLS != nil {
		if err := c.TLS.validate(); err != nil {
			return err
		}
	}
	if c.SASL != nil {
		if err := c.SASL.validate(); err != nil {
			return err
		}
	}
	return nil
}

// RegistryTopic is the compacted topic where the nodes announce
// themselves (docs/cluster.md).
func (c *Config) RegistryTopic() string { return c.Topic + "-nodes" }

// LeaderTopic is the one-partition topic whose consumer group
// (LeaderGroup) elects the leader: the node assigned its partition 0.
func (c *Config) LeaderTopic() string { return c.Topic + "-leader" }

// StateTopic is the compacted topic that replicates the leader's state
// (State, StatePrefixes) to every node.
func (c *Config) StateTopic() string { return c.Topic + "-state" }

// Group is the consumer group of the config's zone.
func (c *Config) Group() string { return "tsdb-" + c.Zone }
