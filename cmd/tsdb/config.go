package main

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/emsdb/tsdb/ingest/mqtt"
	"github.com/emsdb/tsdb/ingest/snmp"
)

// fileConfig is the optional --config.file: what flags cannot say well.
type fileConfig struct {
	MQTT []mqtt.Config `yaml:"mqtt"`
	SNMP *snmp.Config  `yaml:"snmp"`
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
	if err := dec.Decode(c); err != nil && err.Error() != "EOF" {
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
	return c, nil
}
