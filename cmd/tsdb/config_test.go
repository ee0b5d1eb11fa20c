package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExampleConfigLoads(t *testing.T) {
	c, err := loadConfig("../../examples/tsdb.yml")
	require.NoError(t, err)
	require.Len(t, c.MQTT, 1)
	require.Len(t, c.MQTT[0].Subscriptions, 2)
	require.NotNil(t, c.SNMP)
	require.Len(t, c.SNMP.Targets, 2)
	require.Equal(t, "mqtt", c.Ingest.MQTT.Labels["source"])
	require.Len(t, c.Ingest.RemoteWrite.Relabel, 1)
}

func TestBadConfigsAreRejected(t *testing.T) {
	for _, bad := range []string{
		"mqtt:\n  - broker: mqtt://x:1\n    client_id: a\n    subscriptions: [{topic: a}]\n    bogus: 1\n",
		"snmp:\n  targets: [{address: x, version: '1'}]\n",
		"ingest:\n  influx:\n    relabel_configs: [{action: hashmod, target_label: x}]\n",
		"mqtt: [{broker: 'mqtt://x:1', subscriptions: [{topic: a}]}]\n",
		"unknown: 1\n",
	} {
		p := filepath.Join(t.TempDir(), "c.yml")
		require.NoError(t, os.WriteFile(p, []byte(bad), 0o644))
		_, err := loadConfig(p)
		require.Error(t, err, bad)
	}
	_, err := loadConfig("/nonexistent.yml")
	require.Error(t, err)
}
