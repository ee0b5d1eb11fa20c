package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/alerting/kpi"
	"github.com/emsdb/tsdb/ingest/kafka"
	"github.com/emsdb/tsdb/ingest/mqtt"
	"github.com/emsdb/tsdb/ingest/otlp"
	"github.com/emsdb/tsdb/ingest/relabel"
	"github.com/emsdb/tsdb/ingest/snmp"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/internal/limits"
)

// fileConfig is the optional --config.file (alias --config): what flags
// cannot say well. Every duration in it is in Prometheus's syntax (30d,
// 1h30m; package duration), as on the command line.
type fileConfig struct {
	MQTT   []mqtt.Config `yaml:"mqtt"`
	SNMP   *snmp.Config  `yaml:"snmp"`
	Ingest ingestRules   `yaml:"ingest"`
	// OTLP is how OpenTelemetry metrics are translated (Prometheus 3's
	// otlp: section); absent means Prometheus 3's defaults.
	OTLP *otlp.Config `yaml:"otlp"`
	ITSM *itsm.Config `yaml:"itsm"`
	// Auth: users with hashed secrets, roles and tenants (docs/security.md).
	Auth *auth.Config `yaml:"auth"`
	// Limits per tenant (docs/security.md).
	Limits *limits.Config `yaml:"limits"`
	// KPIs are forecast against their targets (see docs/kpi.md).
	KPIs []kpi.Definition `yaml:"kpis"`
	// Calendars are the tenants' business calendars (holidays) the KPIs
	// of each tenant are forecast with (see docs/kpi.md).
	Calendars []kpi.Calendar `yaml:"calendars"`
	// Cluster turns the node into a member of a cluster on Apache Kafka
	// (docs/cluster.md); absent, tsdb is the single node.
	Cluster *kafka.Config `yaml:"cluster"`
}

// ingestRules are the per-source labels and relabeling rules.
type ingestRules struct {
	RemoteWrite      relabel.Rules `yaml:"remote_write"`
	Influx           relabel.Rules `yaml:"influx"`
	PrometheusImport relabel.Rules `yaml:"prometheus_import"`
	JSONL            relabel.Rules `yaml:"jsonl"` // POST /api/v1/import
	MQTT             relabel.Rules `yaml:"mqtt"`
	SNMP             relabel.Rules `yaml:"snmp"`
	OTLP             relabel.Rules `yaml:"otlp"`
}

// loadConfig reads and checks the config file; unknown keys are errors.
func loadConfig(path string) (*fileConfig, error) {
	c := &fileConfig{}
	if path == "" {
		return c, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, nameField(b, err))
	}
	for name, r := range map[string]*relabel.Rules{"remote_write": &c.Ingest.RemoteWrite, "influx": &c.Ingest.Influx,
		"prometheus_import": &c.Ingest.PrometheusImport, "jsonl": &c.Ingest.JSONL, "mqtt": &c.Ingest.MQTT, "snmp": &c.Ingest.SNMP, "otlp": &c.Ingest.OTLP} {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("config %s: ingest.%s: %w", path, name, err)
		}
	}
	if c.ITSM != nil {
		if err := c.ITSM.Validate(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if c.Limits != nil {
		if err := c.Limits.Validate(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if c.Auth != nil {
		if err := c.Auth.Validate(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	for i := range c.KPIs {
		if err := c.KPIs[i].Validate(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	for i := range c.Calendars {
		if err := c.Calendars[i].Validate(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if c.OTLP == nil {
		d := otlp.DefaultConfig()
		c.OTLP = &d
	}
	if err := c.OTLP.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if c.SNMP != nil {
		if err := c.SNMP.Validate(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	for i := range c.MQTT {
		if err := c.MQTT[i].Validate(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if c.Cluster != nil {
		if err := c.Cluster.Validate(); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	return c, nil
}

// nameField puts the path of the field (itsm.sla.P1.acknowledge) in front
// of a duration error, which knows only the line and column of its value.
func nameField(doc []byte, err error) error {
	var de *duration.Error
	if !errors.As(err, &de) {
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil {
		return err
	}
	if p := yamlPath(&root, de.Line, de.Column); p != "" {
		return fmt.Errorf("%s: %w", p, err)
	}
	return err
}

// yamlPath is the path (mqtt[0].session_expiry) of the value node at
// line:col under n, or "" if there is none.
func yamlPath(n *yaml.Node, line, col int) string {
	join := func(parent, child string) string {
		if child == "" || strings.HasPrefix(child, "[") {
			return parent + child
		}
		return parent + "." + child
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := yamlPath(c, line, col); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Line == line && v.Column == col {
				return k.Value
			}
			if p := yamlPath(v, line, col); p != "" {
				return join(k.Value, p)
			}
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			idx := fmt.Sprintf("[%d]", i)
			if v.Line == line && v.Column == col {
				return idx
			}
			if p := yamlPath(v, line, col); p != "" {
				return join(idx, p)
			}
		}
	}
	return ""
}
