package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/ingest/kafka"
	"github.com/emsdb/tsdb/internal/duration"
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
	require.Len(t, c.ITSM.EscalationPolicies, 1)
	require.Equal(t, itsm.Delay(5*time.Minute), c.ITSM.EscalationPolicies[0].Steps[1].After)
	require.Equal(t, "Asia/Seoul", c.ITSM.Rotations[0].Timezone)
	require.Len(t, c.ITSM.Rotations[0].Overrides, 1)
	require.Equal(t, []string{"core-sw1"}, c.ITSM.CIs[2].DependsOn)
	require.Equal(t, "child", c.ITSM.Correlation.Mode)
}

func TestBadConfigsAreRejected(t *testing.T) {
	for _, bad := range []string{
		"mqtt:\n  - broker: mqtt://x:1\n    client_id: a\n    subscriptions: [{topic: a}]\n    bogus: 1\n",
		"snmp:\n  targets: [{address: x, version: '1'}]\n",
		"ingest:\n  influx:\n    relabel_configs: [{action: hashmod, target_label: x}]\n",
		"mqtt: [{broker: 'mqtt://x:1', subscriptions: [{topic: a}]}]\n",
		"unknown: 1\n",
		"otlp:\n  translation_strategy: Bogus\n",
		"otlp:\n  promote_resource_attributes: [a]\n  promote_all_resource_attributes: true\n",
		"otlp:\n  ignore_resource_attributes: [a]\n",
		"otlp:\n  bogus: 1\n",
		"itsm:\n  rotations: [{name: r, group: g, participants: [a], timezone: Mars/Olympus}]\n",
		"itsm:\n  rotations: [{name: r, group: g, participant: [a]}]\n",
		"itsm:\n  escalation_policies: [{name: p, steps: [{after: 5 minutes, group: g}]}]\n",
		"itsm:\n  escalation_policies: [{name: p, repeat: 1, steps: [{group: g}]}]\n",
		"itsm:\n  escalation_policies: [{name: p, steps: [{group: g}]}, {name: p, steps: [{group: h}]}]\n",
	} {
		p := filepath.Join(t.TempDir(), "c.yml")
		require.NoError(t, os.WriteFile(p, []byte(bad), 0o644))
		_, err := loadConfig(p)
		require.Error(t, err, bad)
	}
	_, err := loadConfig("/nonexistent.yml")
	require.Error(t, err)
}

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yml")
	require.NoError(t, os.WriteFile(p, []byte(doc), 0o644))
	return p
}

// Every section reads durations in Prometheus's syntax: the itsm section
// refused 3d before (it used Go's syntax) while kpis accepted it.
func TestConfigDurations(t *testing.T) {
	day := 24 * time.Hour
	c, err := loadConfig(writeConfig(t, `
itsm:
  reopen_window: 3d
  sla:
    P1: {acknowledge: 15m, resolve: 3d}
  escalation:
    P1:
      - {after: 1h30m, group: lead}
  problems: {window: 2w}
  receivers:
    - {name: hook, type: webhook, url: 'http://127.0.0.1:1/', timeout: 1m}
mqtt:
  - broker: mqtt://127.0.0.1:1883
    client_id: a
    session_expiry: 3d
    subscriptions: [{topic: a/b, format: value}]
snmp:
  interval: 1m
  timeout: 500ms
  targets: [{name: sw, address: 127.0.0.1:161}]
kpis:
  - {name: k, expr: up, target: 1, direction: above, horizon: 3d, step: 1h, history: 2w, cause_window: 1h30m}
`))
	require.NoError(t, err)
	for _, tc := range []struct {
		field     string
		got, want time.Duration
	}{
		{"itsm.reopen_window", time.Duration(c.ITSM.ReopenWindow), 3 * day},
		{"itsm.sla.P1.acknowledge", time.Duration(c.ITSM.SLA["P1"].Acknowledge), 15 * time.Minute},
		{"itsm.sla.P1.resolve", time.Duration(c.ITSM.SLA["P1"].Resolve), 3 * day},
		{"itsm.escalation.P1[0].after", time.Duration(c.ITSM.Escalation["P1"][0].After), 90 * time.Minute},
		{"itsm.problems.window", time.Duration(c.ITSM.Problems.Window), 14 * day},
		{"itsm.receivers[0].timeout", time.Duration(c.ITSM.Receivers[0].Timeout), time.Minute},
		{"mqtt[0].session_expiry", time.Duration(c.MQTT[0].SessionExpiry), 3 * day},
		{"snmp.interval", time.Duration(c.SNMP.Interval), time.Minute},
		{"snmp.timeout", time.Duration(c.SNMP.Timeout), 500 * time.Millisecond},
		{"kpis[0].horizon", c.KPIs[0].Horizon, 3 * day},
		{"kpis[0].history", c.KPIs[0].History, 14 * day},
		{"kpis[0].cause_window", c.KPIs[0].CauseWindow, 90 * time.Minute},
	} {
		require.Equal(t, tc.want, tc.got, tc.field)
	}
}

// A bad duration is refused with the path of its field, its line and
// the syntax wanted.
func TestConfigDurationErrors(t *testing.T) {
	cases := []struct{ doc, want string }{
		{"itsm:\n  reopen_window: 1.5h\n", `itsm.reopen_window: line 2: unknown unit "." in duration "1.5h"`},
		{"itsm:\n  sla:\n    P1: {acknowledge: 15m, resolve: soon}\n", `itsm.sla.P1.resolve: line 3: not a valid duration string: "soon"`},
		{"itsm:\n  escalation:\n    P1:\n      - {after: 10m, group: a}\n      - {after: 30, group: b}\n", `itsm.escalation.P1[1].after: line 5: not a valid duration string: "30"`},
		{"itsm:\n  problems: {window: 1m1h}\n", `itsm.problems.window: line 2: not a valid duration string: "1m1h"`},
		{"itsm:\n  receivers:\n    - {name: a, type: webhook, url: 'http://x/', timeout: [1s]}\n", "itsm.receivers[0].timeout: line 3: a YAML sequence is not a duration"},
		{"mqtt:\n  - broker: mqtt://x:1\n    session_expiry: 1 day\n", `mqtt[0].session_expiry: line 3: unknown unit " day" in duration "1 day"`},
		{"snmp:\n  timeout: 5\n", `snmp.timeout: line 2: not a valid duration string: "5"`},
		{"kpis:\n  - name: k\n    horizon: 3x\n", `kpis[0].horizon: kpi: line 3: unknown unit "x" in duration "3x"`},
	}
	for _, tc := range cases {
		p := writeConfig(t, tc.doc)
		_, err := loadConfig(p)
		require.EqualError(t, err, "config "+p+": "+tc.want+"; want integers with units, largest first: 30d, 2w, 1h30m, 500ms (units y w d h m s ms)", tc.doc)
	}
}

// A tenant's business calendar is read with its time zone and holidays;
// a bad date or zone, or an unknown key, is refused.
func TestConfigCalendars(t *testing.T) {
	c, err := loadConfig(writeConfig(t, "calendars:\n  - {tenant: acme, timezone: Asia/Seoul, holidays: [2026-01-01, 2026-02-17]}\n"))
	require.NoError(t, err)
	require.Len(t, c.Calendars, 1)
	require.True(t, c.Calendars[0].Holiday(time.Date(2026, 2, 16, 16, 0, 0, 0, time.UTC)), "01:00 on the 17th in Seoul")
	require.False(t, c.Calendars[0].Holiday(time.Date(2026, 2, 17, 16, 0, 0, 0, time.UTC)))
	for _, doc := range []string{
		"calendars:\n  - {holidays: [2026-13-01]}\n",
		"calendars:\n  - {timezone: Mars/Olympus}\n",
		"calendars:\n  - {holiday: [2026-01-01]}\n",
	} {
		_, err := loadConfig(writeConfig(t, doc))
		require.Error(t, err, doc)
	}
}

func TestOTLPConfig(t *testing.T) {
	c, err := loadConfig("")
	require.NoError(t, err)
	require.Nil(t, c.OTLP, "no config file: the server takes Prometheus' defaults")

	c, err = loadConfig(writeConfig(t, "otlp:\n  promote_resource_attributes: [' service.version ', k8s.pod.name]\n  convert_histograms_to_nhcb: true\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"service.version", "k8s.pod.name"}, c.OTLP.PromoteResourceAttributes)
	require.True(t, c.OTLP.ConvertHistogramsToNHCB)
	require.Equal(t, "UnderscoreEscapingWithSuffixes", string(c.OTLP.TranslationStrategy), "an absent key keeps its default")
	require.True(t, c.OTLP.LabelNameUnderscoreSanitization)

	c, err = loadConfig(writeConfig(t, "otlp:\n  translation_strategy: NoUTF8EscapingWithSuffixes\n  label_name_underscore_sanitization: false\n"))
	require.NoError(t, err)
	require.Equal(t, "NoUTF8EscapingWithSuffixes", string(c.OTLP.TranslationStrategy))
	require.False(t, c.OTLP.LabelNameUnderscoreSanitization)

	c, err = loadConfig(writeConfig(t, "ingest:\n  remote_write: {}\n"))
	require.NoError(t, err)
	require.Equal(t, "UnderscoreEscapingWithSuffixes", string(c.OTLP.TranslationStrategy), "a file without otlp: has the defaults")
}

func TestClusterConfig(t *testing.T) {
	c, err := loadConfig(writeConfig(t, "cluster:\n  brokers: [k1:9092, k2:9092]\n  node: n1\n"))
	require.NoError(t, err)
	require.Equal(t, &kafka.Config{
		Brokers: []string{"k1:9092", "k2:9092"}, Topic: "tsdb-samples", Partitions: 16, ReplicationFactor: 3,
		Zone: "zone-a", Node: "n1", ProduceTimeout: duration.Duration(10 * time.Second), SessionTimeout: duration.Duration(10 * time.Second),
		PeerTimeout: duration.Duration(30 * time.Second),
	}, c.Cluster)
	require.Equal(t, "tsdb-zone-a", c.Cluster.Group())

	c, err = loadConfig(writeConfig(t, "cluster:\n  brokers: [k1:9092]\n  topic: t\n  partitions: 4\n  replication_factor: 1\n  zone: b\n  produce_timeout: 3s\n"))
	require.NoError(t, err)
	host, _ := os.Hostname()
	require.Equal(t, host, c.Cluster.Node, "the node defaults to the host name")
	require.Equal(t, 4, c.Cluster.Partitions)
	require.Equal(t, duration.Duration(3*time.Second), c.Cluster.ProduceTimeout)

	c, err = loadConfig(writeConfig(t, "otlp: {}\n"))
	require.NoError(t, err)
	require.Nil(t, c.Cluster, "without cluster:, the single node")

	for _, bad := range []string{
		"cluster: {}\n",
		"cluster:\n  brokers: ['']\n",
		"cluster:\n  brokers: [k:1]\n  topic: 'a b'\n",
		"cluster:\n  brokers: [k:1]\n  partitions: -1\n",
		"cluster:\n  brokers: [k:1]\n  zone: 'a/b'\n",
		"cluster:\n  brokers: [k:1]\n  produce_timeout: 1x\n",
		"cluster:\n  brokers: [k:1]\n  session_timeout: 10ms\n",
		"cluster:\n  brokers: [k:1]\n  tls: true\n",
	} {
		_, err := loadConfig(writeConfig(t, bad))
		require.Error(t, err, bad)
	}
}
