// Package mqtt subscribes to MQTT brokers (MQTT 5) and stores what IoT
// devices publish. Messages are QoS 1 on a persistent session and each is
// acknowledged only once its samples are durable, so a restart of either
// side loses nothing: the broker redelivers what was not acknowledged.
package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/ingest/health"
	"github.com/emsdb/tsdb/ingest/influx"
	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/storage"
)

// Config is one broker connection.
type Config struct {
	Broker        string            `yaml:"broker"`    // mqtt://host:port or tls://host:port
	ClientID      string            `yaml:"client_id"` // fixed: the broker keeps its session
	Username      string            `yaml:"username"`
	Password      string            `yaml:"password"`
	TLS           TLSConfig         `yaml:"tls"`
	Tenant        string            `yaml:"tenant"`
	SessionExpiry duration.Duration `yaml:"session_expiry"` // default 24h; Prometheus syntax (12h, 3d)
	// Protocol is 5 (default) or 3.1.1.
	Protocol      string         `yaml:"protocol"`
	Subscriptions []Subscription `yaml:"subscriptions"`
}

// TLSConfig holds the client's TLS settings.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Subscription maps a topic's messages to samples.
type Subscription struct {
	// Topic is an MQTT filter in which a segment "+name" matches any one
	// segment and stores it as label name ("plant/+site/+device/temp").
	Topic string `yaml:"topic"`
	// Format is influx (line protocol), json, or value (a bare number).
	Format string `yaml:"format"`
	// Metric names the series of json and value payloads; default: the
	// topic's last segment.
	Metric string `yaml:"metric"`
	// ValuePath and TimestampPath are dotted paths into a JSON object
	// (default "value"; timestamp: none, the arrival time). Timestamps are
	// seconds or milliseconds (told apart by size) or RFC 3339.
	ValuePath     string            `yaml:"value_path"`
	TimestampPath string            `yaml:"timestamp_path"`
	Labels        map[string]string `yaml:"labels"`

	filter string   // the MQTT filter
	names  []string // label names by segment ("" where none)
}

var metricNameRe = regexp.MustCompile(`[^a-zA-Z0-9_:]`)

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Broker)
	if err != nil || u.Host == "" {
		return fmt.Errorf("mqtt broker %q: want mqtt://host:port or tls://host:port", c.Broker)
	}
	switch u.Scheme {
	case "mqtt", "tcp", "tls", "ssl", "mqtts":
	default:
		return fmt.Errorf("mqtt broker %q: unknown scheme %q", c.Broker, u.Scheme)
	}
	if c.ClientID == "" {
		return fmt.Errorf("mqtt broker %q: client_id is required (the broker keeps the session under it)", c.Broker)
	}
	switch c.Protocol {
	case "", "5":
		c.Protocol = "5"
	case "3", "3.1.1", "311":
		c.Protocol = "3.1.1"
	default:
		return fmt.Errorf("mqtt broker %q: protocol %q (want 5 or 3.1.1)", c.Broker, c.Protocol)
	}
	if c.SessionExpiry == 0 {
		c.SessionExpiry = duration.Duration(24 * time.Hour)
	}
	if len(c.Subscriptions) == 0 {
		return fmt.Errorf("mqtt broker %q: no subscriptions", c.Broker)
	}
	for i := range c.Subscriptions {
		s := &c.Subscriptions[i]
		if s.Format == "" {
			s.Format = "json"
		}
		switch s.Format {
		case "influx", "json", "value":
		default:
			return fmt.Errorf("mqtt topic %q: unknown format %q (influx, json, value)", s.Topic, s.Format)
		}
		if s.ValuePath == "" {
			s.ValuePath = "value"
		}
		segs := strings.Split(s.Topic, "/")
		var filter []string
		for j, seg := range segs {
			switch {
			case strings.HasPrefix(seg, "+"):
				filter = append(filter, "+")
				s.names = append(s.names, seg[1:])
			case seg == "#":
				if j != len(segs)-1 {
					return fmt.Errorf("mqtt topic %q: # must be last", s.Topic)
				}
				filter = append(filter, "#")
				s.names = append(s.names, "")
			case strings.ContainsAny(seg, "+#"):
				return fmt.Errorf("mqtt topic %q: bad segment %q", s.Topic, seg)
			default:
				filter = append(filter, seg)
				s.names = append(s.names, "")
			}
		}
		s.filter = strings.Join(filter, "/")
		if s.Format != "influx" && s.Metric == "" && (segs[len(segs)-1] == "#" || strings.HasPrefix(segs[len(segs)-1], "+")) {
			return fmt.Errorf("mqtt topic %q: name the metric (metric:), the last segment is a wildcard", s.Topic)
		}
	}
	return nil
}

// matches reports whether topic fits the subscription's filter.
func (s *Subscription) matches(topic string) bool {
	f := strings.Split(s.filter, "/")
	t := strings.Split(topic, "/")
	for i, seg := range f {
		if seg == "#" {
			return true
		}
		if i >= len(t) || (seg != "+" && seg != t[i]) {
			return false
		}
	}
	return len(t) == len(f)
}

// Decode turns one message into samples added to b (arrival time now, ms).
func (s *Subscription) Decode(topic string, payload []byte, now int64, b *storage.Batch) error {
	segs := strings.Split(topic, "/")
	base := labels.NewScratchBuilder(8)
	for i, n := range s.names {
		if n != "" && i < len(segs) && segs[i] != "" {
			base.Add(n, segs[i])
		}
	}
	for k, v := range s.Labels {
		base.Add(k, v)
	}
	base.Sort()
	withName := func(name string, extra ...labels.Label) labels.Labels {
		lb := labels.NewBuilder(base.Labels())
		lb.Set(model.MetricNameLabel, name)
		for _, l := range extra {
			lb.Set(l.Name, l.Value)
		}
		return lb.Labels()
	}
	metric := s.Metric
	if metric == "" {
		metric = metricNameRe.ReplaceAllString(segs[len(segs)-1], "_")
	}
	switch s.Format {
	case "value":
		v, err := strconv.ParseFloat(strings.TrimSpace(string(payload)), 64)
		if err != nil {
			return fmt.Errorf("payload %.40q is not a number", payload)
		}
		b.Add(withName(metric), storage.Sample{T: now, V: v})
	case "influx":
		pts, errs := influx.Parse(payload)
		if len(errs) > 0 {
			return errs[0]
		}
		for _, p := range pts {
			t := now
			if p.HasTime {
				t = p.Time / 1_000_000
			}
			for _, f := range p.Fields {
				var extra []labels.Label
				for _, tg := range p.Tags {
					extra = append(extra, labels.Label{Name: tg.Key, Value: tg.Value})
				}
				b.Add(withName(p.Measurement+"_"+f.Key, extra...), storage.Sample{T: t, V: f.Value})
			}
		}
	case "json":
		var doc any
		if err := json.Unmarshal(payload, &doc); err != nil {
			return fmt.Errorf("payload is not JSON: %v", err)
		}
		docs := []any{doc}
		if arr, ok := doc.([]any); ok {
			docs = arr
		}
		for _, d := range docs {
			v, err := number(lookup(d, s.ValuePath))
			if err != nil {
				return fmt.Errorf("value at %q: %v", s.ValuePath, err)
			}
			t := now
			if s.TimestampPath != "" {
				if t, err = timestamp(lookup(d, s.TimestampPath)); err != nil {
					return fmt.Errorf("timestamp at %q: %v", s.TimestampPath, err)
				}
			}
			b.Add(withName(metric), storage.Sample{T: t, V: v})
		}
	}
	return nil
}

func lookup(d any, path string) any {
	for _, p := range strings.Split(path, ".") {
		m, ok := d.(map[string]any)
		if !ok {
			return nil
		}
		d = m[p]
	}
	return d
}

func number(x any) (float64, error) {
	switch v := x.(type) {
	case float64:
		return v, nil
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	case string:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", v)
		}
		return f, nil
	case nil:
		return 0, errors.New("missing")
	}
	return 0, fmt.Errorf("%v is not a number", x)
}

func timestamp(x any) (int64, error) {
	switch v := x.(type) {
	case float64:
		if math.Abs(v) < 1e11 {
			return int64(math.Round(v * 1000)), nil // seconds
		}
		return int64(v), nil
	case string:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UnixMilli(), nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a time", v)
		}
		return timestamp(f)
	}
	return 0, errors.New("missing")
}

// Subscriber keeps one broker connection.
type Subscriber struct {
	cfg     Config
	w       storage.Writer
	log     *slog.Logger
	cm      *autopaho.ConnectionManager
	v3      pahov3.Client
	msgs    *prometheus.CounterVec
	up      prometheus.Gauge
	nowFunc func() time.Time
	commits *committer
	health  *health.Source
	broker  string
}

// Broker names the subscriber's broker: its URL without user information.
func (s *Subscriber) Broker() string { return s.broker }

// Health says whether the subscriber is connected to its broker and, when
// not, why (the last connection error).
func (s *Subscriber) Health() health.State { return s.health.State() }

// Metrics are the counters every Subscriber shares.
type Metrics struct {
	Messages *prometheus.CounterVec
	Up       *prometheus.GaugeVec
}

// NewMetrics registers the MQTT metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tsdb_mqtt_messages_total", Help: "MQTT messages by broker and result (stored, bad, failed).",
		}, []string{"broker", "result"}),
		Up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tsdb_mqtt_connected", Help: "1 while connected to the broker.",
		}, []string{"broker"}),
	}
	if reg != nil {
		reg.MustRegister(m.Messages, m.Up)
	}
	return m
}

// Start connects (retrying in the background) and subscribes.
func Start(ctx context.Context, cfg Config, w storage.Writer, m *Metrics, log *slog.Logger) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Broker)
	switch u.Scheme {
	case "tcp":
		u.Scheme = "mqtt"
	case "ssl", "mqtts":
		u.Scheme = "tls"
	}
	s := &Subscriber{cfg: cfg, w: w, log: log.With("broker", u.Redacted()), nowFunc: time.Now,
		msgs: m.Messages.MustCurryWith(prometheus.Labels{"broker": u.Redacted()}), up: m.Up.WithLabelValues(u.Redacted())}
	s.health = health.New(s.log.With("source", "mqtt"), "connecting")
	named := *u
	named.User = nil
	s.broker = named.String()
	var tlsCfg *tls.Config
	if u.Scheme == "tls" {
		var err error
		if tlsCfg, err = cfg.TLS.build(); err != nil {
			return nil, err
		}
	}
	s.commits = newCommitter(s)
	if cfg.Protocol == "3.1.1" {
		if err := s.startV311(u, tlsCfg); err != nil {
			s.commits.stop()
			return nil, err
		}
		return s, nil
	}
	pc := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		TlsCfg:                        tlsCfg,
		KeepAlive:                     30,
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         uint32(time.Duration(cfg.SessionExpiry).Seconds()),
		ReconnectBackoff:              func(int) time.Duration { return time.Second },
		ConnectTimeout:                10 * time.Second,
		ConnectUsername:               cfg.Username,
		ConnectPassword:               []byte(cfg.Password),
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			s.up.Set(1)
			s.health.Up()
			s.log.Info("mqtt connected")
			sub := &paho.Subscribe{}
			for _, x := range cfg.Subscriptions {
				sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{Topic: x.filter, QoS: 1})
			}
			go func() {
				if _, err := cm.Subscribe(ctx, sub); err != nil {
					s.log.Warn("mqtt subscribe", "err", err)
				}
			}()
		},
		OnConnectionDown: func() bool { s.up.Set(0); s.health.Down("connection lost"); return true },
		OnConnectError:   func(err error) { s.health.Down(err.Error()) }, // warns once per distinct error
		ClientConfig: paho.ClientConfig{
			ClientID:                   cfg.ClientID,
			EnableManualAcknowledgment: true,
			SendAcksInterval:           ackInterval,
			OnPublishReceived:          []func(paho.PublishReceived) (bool, error){s.handle},
		},
	}
	cm, err := autopaho.NewConnection(ctx, pc)
	if err != nil {
		s.commits.stop()
		return nil, fmt.Errorf("mqtt %s: %w", cfg.Broker, err)
	}
	s.cm = cm
	return s, nil
}

// handle queues one message for the next durable write; it is
// acknowledged once that write is done (see committer).
func (s *Subscriber) handle(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	s.commits.add(p.Topic, p.Payload, func() {
		if err := pr.Client.Ack(p); err != nil {
			s.log.Warn("mqtt ack", "err", err)
		}
	})
	return true, nil
}

// ackInterval is how often paho sends the acknowledgements marked since
// (MQTT 5; in order, once every earlier message is acknowledged too).
const ackInterval = 10 * time.Millisecond

// Stop stores and acknowledges what was received, then disconnects.
func (s *Subscriber) Stop(ctx context.Context) error {
	s.commits.stop()
	s.up.Set(0)
	if s.v3 != nil {
		s.v3.Disconnect(1000)
		return nil
	}
	time.Sleep(3 * ackInterval) // the last acknowledgements go out
	return s.cm.Disconnect(ctx)
}

func (t TLSConfig) build() (*tls.Config, error) {
	c := &tls.Config{InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // operator's choice
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt tls ca_file %s: no certificates", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
