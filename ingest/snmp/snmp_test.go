package snmp

import (
	"context"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/emsdb/tsdb/ingest/relabel"
	"github.com/emsdb/tsdb/internal/apptest"
	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/storage"
	st "github.com/emsdb/tsdb/storage/storagetest"
)

func TestPollRealSnmpd(t *testing.T) {
	agent := apptest.StartSnmpd(t)
	db := st.Open(t, nil)
	cfg := Config{
		Timeout: duration.Duration(2 * time.Second),
		Targets: []Target{
			{Name: "v2", Address: agent.Addr, Modules: []string{"system", "if_mib", "host_resources", "mine"}},
			{Name: "v3", Address: agent.Addr, Version: "3", Modules: []string{"system"},
				V3: V3{Username: apptest.SnmpV3User, AuthProtocol: "SHA-256", AuthPassword: apptest.SnmpV3Auth, PrivProtocol: "AES", PrivPassword: apptest.SnmpV3Priv}},
		},
		Modules: map[string]Module{"mine": {Metrics: []Metric{{Name: "processes", OID: "1.3.6.1.2.1.25.1.6.0"}}}},
	}
	require.NoError(t, cfg.Validate())
	p := &Poller{cfg: cfg, w: db, m: NewMetrics(nil), log: slog.New(slog.DiscardHandler), now: time.Now}
	ctx := context.Background()

	b, err := p.Poll(ctx, cfg.Targets[0])
	require.NoError(t, err)
	byName := map[string][]labels.Labels{}
	for _, s := range b.Series {
		byName[s.Labels.Get("__name__")] = append(byName[s.Labels.Get("__name__")], s.Labels)
	}
	require.Contains(t, byName, "sysUpTime")
	require.Contains(t, byName, "processes")
	// The loopback interface, labelled by index, name and description.
	found := false
	for _, ls := range byName["ifHCInOctets"] {
		if ls.Get("ifName") == "lo" && ls.Get("ifIndex") != "" && ls.Get("instance") == "v2" {
			found = true
		}
	}
	require.True(t, found, "ifHCInOctets for lo: %v", byName["ifHCInOctets"])
	require.NotEmpty(t, byName["hrStorageSize"])
	require.NotEmpty(t, byName["hrStorageSize"][0].Get("hrStorageDescr"))
	// What the agent told of each metric's type is its metadata.
	meta := map[string]storage.Metadata{}
	for _, m := range b.Metadata {
		meta[m.Family] = m
	}
	require.Equal(t, "counter", meta["ifHCInOctets"].Type, "Counter64")
	require.Equal(t, "gauge", meta["hrStorageSize"].Type, "Integer")
	require.Equal(t, "SNMP 1.3.6.1.2.1.25.1.6.0", meta["processes"].Help)

	b, err = p.Poll(ctx, cfg.Targets[1])
	require.NoError(t, err, "v3 authPriv")
	require.Len(t, b.Series, 1)
	require.Positive(t, b.Series[0].Samples[0].V)

	bad := cfg.Targets[0]
	bad.Community = "wrong"
	_, err = p.Poll(ctx, bad)
	require.Error(t, err)
}

// A dead target times out without delaying a live one.
func TestDeadTargetDoesNotStallOthers(t *testing.T) {
	agent := apptest.StartSnmpd(t)
	db := st.Open(t, nil)
	cfg := Config{
		Interval: duration.Duration(300 * time.Millisecond),
		Timeout:  duration.Duration(3 * time.Second),
		Retries:  1,
		Targets: []Target{
			{Name: "dead", Address: apptest.FreeUDPPort(t), Modules: []string{"system"}},
			{Name: "live", Address: agent.Addr, Modules: []string{"system"}},
		},
	}
	p, err := Start(cfg, db, NewMetrics(nil), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	time.Sleep(2500 * time.Millisecond) // shorter than the dead target's timeout
	p.Stop()
	up := st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "snmp_up"))
	live := up[`{__name__="snmp_up", instance="live", job="snmp"}`]
	require.GreaterOrEqual(t, len(live), 4, "the live target kept its schedule")
	for _, s := range live {
		require.Equal(t, 1.0, s.V)
	}
	// The dead one finished one poll (Stop waits for it): up 0.
	dead := up[`{__name__="snmp_up", instance="dead", job="snmp"}`]
	require.NotEmpty(t, dead)
	require.Equal(t, 0.0, dead[0].V)
}

func TestTrapsAreStored(t *testing.T) {
	trap := apptest.NeedBinary(t, "snmptrap", "snmp")
	db := st.Open(t, nil)
	addr := apptest.FreeUDPPort(t)
	p, err := Start(Config{TrapListen: addr}, db, NewMetrics(nil), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer p.Stop()
	cmd := exec.Command(trap, "-v", "2c", "-c", "public", addr, "", "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.2", "i", "2", "1.3.6.1.2.1.1.5.0", "s", "core-sw1")
	cmd.Env = append(os.Environ(), "MIBS=", "SNMP_PERSISTENT_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Eventually(t, func() bool {
		got := st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "snmp_trap"))
		for k := range got {
			if strings.Contains(k, `trap_oid="1.3.6.1.6.3.1.1.5.3"`) && strings.Contains(k, "core-sw1") && strings.Contains(k, `source="127.0.0.1"`) {
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond)
}

// TestTrapSenderSurvivesSourceLabel: with the per-source label `source:
// snmp` configured (as examples do), a trap still says who sent it —
// snmp_sender, and the configured target's name as instance.
func TestTrapSenderSurvivesSourceLabel(t *testing.T) {
	trap := apptest.NeedBinary(t, "snmptrap", "snmp")
	db := st.Open(t, nil)
	addr := apptest.FreeUDPPort(t)
	w := relabel.Wrap(db, &relabel.Rules{Labels: map[string]string{"source": "snmp"}})
	cfg := Config{TrapListen: addr, Interval: duration.Duration(time.Hour),
		Targets: []Target{{Name: "core-sw1", Address: "127.0.0.1:1", Modules: []string{"system"}}}}
	p, err := Start(cfg, w, NewMetrics(nil), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer p.Stop()
	cmd := exec.Command(trap, "-v", "2c", "-c", "public", addr, "", "1.3.6.1.6.3.1.1.5.3")
	cmd.Env = append(os.Environ(), "MIBS=", "SNMP_PERSISTENT_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Eventually(t, func() bool {
		got := st.Read(t, db, "default", 0, math.MaxInt64, st.Eq("__name__", "snmp_trap"))
		for k := range got {
			if strings.Contains(k, `snmp_sender="127.0.0.1"`) && strings.Contains(k, `instance="core-sw1"`) && strings.Contains(k, `source="snmp"`) {
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond)
}
