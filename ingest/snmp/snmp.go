// Package snmp polls network devices over SNMP (v2c and v3) and receives
// traps. Built-in modules read IF-MIB, HOST-RESOURCES-MIB and SNMPv2-MIB;
// user modules map any scalar or table column to a metric. Every target
// polls on its own schedule with its own timeout, so a slow or dead device
// never delays another.
package snmp

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/ingest/health"
	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/storage"
)

// Config is the snmp section of the config file.
type Config struct {
	Interval duration.Duration `yaml:"interval"` // default 30s; Prometheus syntax (30s, 5m)
	Timeout  duration.Duration `yaml:"timeout"`  // per request, default 5s
	Retries  int               `yaml:"retries"`  // default 1
	Tenant   string            `yaml:"tenant"`
	Targets  []Target          `yaml:"targets"`
	Modules  map[string]Module `yaml:"modules"` // user modules
	// TrapListen is where traps arrive (host:port, UDP); empty: off.
	TrapListen    string `yaml:"trap_listen"`
	TrapCommunity string `yaml:"trap_community"` // v2c traps accepted: default public
}

// Target is one device.
type Target struct {
	Name      string            `yaml:"name"`
	Address   string            `yaml:"address"` // host:port (default port 161)
	Version   string            `yaml:"version"` // 2c (default) or 3
	Community string            `yaml:"community"`
	V3        V3                `yaml:"v3"`
	Modules   []string          `yaml:"modules"` // default: system, if_mib
	Labels    map[string]string `yaml:"labels"`
}

// V3 holds the USM credentials of SNMPv3.
type V3 struct {
	Username      string `yaml:"username"`
	SecurityLevel string `yaml:"security_level"` // noAuthNoPriv, authNoPriv, authPriv
	AuthProtocol  string `yaml:"auth_protocol"`  // MD5, SHA, SHA224, SHA256, SHA384, SHA512
	AuthPassword  string `yaml:"auth_password"`
	PrivProtocol  string `yaml:"priv_protocol"` // DES, AES, AES192, AES256
	PrivPassword  string `yaml:"priv_password"`
}

// Module is a set of metrics.
type Module struct {
	Metrics []Metric `yaml:"metrics"`
}

// Metric maps an OID to a metric: a scalar (Table false, read by GET) or
// a table column (walked; each row is a series labelled by its index).
type Metric struct {
	Name  string `yaml:"name"`
	OID   string `yaml:"oid"`
	Table bool   `yaml:"table"`
	// IndexLabel names the label holding the row index (default "index").
	IndexLabel string `yaml:"index_label"`
	// Lookups add labels taken from other columns of the same row.
	Lookups []Lookup `yaml:"lookups"`
	// Scale multiplies the value (sysUpTime ticks to seconds: 0.01).
	Scale float64 `yaml:"scale"`
}

// Lookup labels a row with another column's value.
type Lookup struct {
	Label string `yaml:"label"`
	OID   string `yaml:"oid"`
}

// Built-in modules, named as in the config.
var builtin = map[string]Module{
	"system": {Metrics: []Metric{
		{Name: "sysUpTime", OID: "1.3.6.1.2.1.1.3.0", Scale: 0.01},
	}},
	"if_mib": {Metrics: ifMetrics()},
	"host_resources": {Metrics: []Metric{
		{Name: "hrStorageSize", OID: "1.3.6.1.2.1.25.2.3.1.5", Table: true, IndexLabel: "hrStorageIndex", Lookups: hrStorageLookups},
		{Name: "hrStorageUsed", OID: "1.3.6.1.2.1.25.2.3.1.6", Table: true, IndexLabel: "hrStorageIndex", Lookups: hrStorageLookups},
		{Name: "hrStorageAllocationUnits", OID: "1.3.6.1.2.1.25.2.3.1.4", Table: true, IndexLabel: "hrStorageIndex", Lookups: hrStorageLookups},
		{Name: "hrProcessorLoad", OID: "1.3.6.1.2.1.25.3.3.1.2", Table: true, IndexLabel: "hrDeviceIndex"},
		{Name: "hrSystemProcesses", OID: "1.3.6.1.2.1.25.1.6.0"},
	}},
}

var hrStorageLookups = []Lookup{{Label: "hrStorageDescr", OID: "1.3.6.1.2.1.25.2.3.1.3"}}

func ifMetrics() []Metric {
	lk := []Lookup{
		{Label: "ifName", OID: "1.3.6.1.2.1.31.1.1.1.1"},
		{Label: "ifDescr", OID: "1.3.6.1.2.1.2.2.1.2"},
	}
	cols := []struct{ name, oid string }{
		{"ifOperStatus", "1.3.6.1.2.1.2.2.1.8"},
		{"ifAdminStatus", "1.3.6.1.2.1.2.2.1.7"},
		{"ifMtu", "1.3.6.1.2.1.2.2.1.4"},
		{"ifInErrors", "1.3.6.1.2.1.2.2.1.14"},
		{"ifOutErrors", "1.3.6.1.2.1.2.2.1.20"},
		{"ifInDiscards", "1.3.6.1.2.1.2.2.1.13"},
		{"ifOutDiscards", "1.3.6.1.2.1.2.2.1.19"},
		{"ifHCInOctets", "1.3.6.1.2.1.31.1.1.1.6"},
		{"ifHCOutOctets", "1.3.6.1.2.1.31.1.1.1.10"},
		{"ifHCInUcastPkts", "1.3.6.1.2.1.31.1.1.1.7"},
		{"ifHCOutUcastPkts", "1.3.6.1.2.1.31.1.1.1.11"},
		{"ifHighSpeed", "1.3.6.1.2.1.31.1.1.1.15"},
	}
	out := make([]Metric, 0, len(cols))
	for _, c := range cols {
		out = append(out, Metric{Name: c.name, OID: c.oid, Table: true, IndexLabel: "ifIndex", Lookups: lk})
	}
	return out
}

// Validate fills in defaults and checks the configuration.
func (c *Config) Validate() error {
	if c.Interval == 0 {
		c.Interval = duration.Duration(30 * time.Second)
	}
	if c.Timeout == 0 {
		c.Timeout = duration.Duration(5 * time.Second)
	}
	if c.Retries == 0 {
		c.Retries = 1
	}
	if c.TrapCommunity == "" {
		c.TrapCommunity = "public"
	}
	seen := map[string]bool{}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.Address == "" {
			return fmt.Errorf("snmp target %d: address is required", i)
		}
		if _, _, err := net.SplitHostPort(t.Address); err != nil {
			t.Address = net.JoinHostPort(t.Address, "161")
		}
		if t.Name == "" {
			t.Name = t.Address
		}
		if seen[t.Name] {
			return fmt.Errorf("snmp target %q: duplicate name", t.Name)
		}
		seen[t.Name] = true
		switch t.Version {
		case "", "2c", "2":
			t.Version = "2c"
			if t.Community == "" {
				t.Community = "public"
			}
		case "3":
			if t.V3.Username == "" {
				return fmt.Errorf("snmp target %q: v3 needs a username", t.Name)
			}
		default:
			return fmt.Errorf("snmp target %q: version %q (want 2c or 3)", t.Name, t.Version)
		}
		if len(t.Modules) == 0 {
			t.Modules = []string{"system", "if_mib"}
		}
		for _, m := range t.Modules {
			if _, ok := c.module(m); !ok {
				return fmt.Errorf("snmp target %q: unknown module %q", t.Name, m)
			}
		}
	}
	for name, m := range c.Modules {
		for _, mt := range m.Metrics {
			if mt.Name == "" || mt.OID == "" {
				return fmt.Errorf("snmp module %q: every metric needs a name and an oid", name)
			}
		}
	}
	return nil
}

func (c *Config) module(name string) (Module, bool) {
	if m, ok := c.Modules[name]; ok {
		return m, true
	}
	m, ok := builtin[name]
	return m, ok
}

// Metrics are the poller's own figures.
type Metrics struct {
	Up       *prometheus.GaugeVec
	Duration *prometheus.GaugeVec
	Errors   *prometheus.CounterVec
	Traps    prometheus.Counter
}

// NewMetrics registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Up:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tsdb_snmp_up", Help: "1 if the last poll of the target succeeded."}, []string{"target"}),
		Duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tsdb_snmp_poll_duration_seconds", Help: "Duration of the last poll."}, []string{"target"}),
		Errors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tsdb_snmp_poll_errors_total", Help: "Failed polls."}, []string{"target"}),
		Traps:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tsdb_snmp_traps_total", Help: "Traps received."}),
	}
	if reg != nil {
		reg.MustRegister(m.Up, m.Duration, m.Errors, m.Traps)
	}
	return m
}

// Poller polls all targets until stopped.
type Poller struct {
	cfg    Config
	w      storage.Writer
	m      *Metrics
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	trap   *gosnmp.TrapListener
	now    func() time.Time
	health map[string]*health.Source // by target name
}

// Targets returns the names of the polled targets.
func (p *Poller) Targets() []string {
	names := make([]string, len(p.cfg.Targets))
	for i, t := range p.cfg.Targets {
		names[i] = t.Name
	}
	return names
}

// Health says whether the last poll of the target named name succeeded
// and, when not, why; ok is false for a name that is not a target.
func (p *Poller) Health(name string) (st health.State, ok bool) {
	h := p.health[name]
	if h == nil {
		return st, false
	}
	return h.State(), true
}

// Start validates cfg and starts polling (and the trap listener).
func Start(cfg Config, w storage.Writer, m *Metrics, log *slog.Logger) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Poller{cfg: cfg, w: w, m: m, log: log, cancel: cancel, now: time.Now, health: map[string]*health.Source{}}
	for _, t := range p.cfg.Targets {
		p.health[t.Name] = health.New(log.With("source", "snmp", "target", t.Name), "not polled yet")
	}
	for _, t := range p.cfg.Targets {
		p.wg.Add(1)
		go p.loop(ctx, t)
	}
	if cfg.TrapListen != "" {
		if err := p.startTraps(); err != nil {
			cancel()
			p.wg.Wait()
			return nil, err
		}
	}
	return p, nil
}

// Stop ends polling and the trap listener.
func (p *Poller) Stop() {
	p.cancel()
	if p.trap != nil {
		p.trap.Close()
	}
	p.wg.Wait()
}

func (p *Poller) loop(ctx context.Context, t Target) {
	defer p.wg.Done()
	tick := time.NewTicker(time.Duration(p.cfg.Interval))
	defer tick.Stop()
	for {
		p.pollOnce(ctx, t)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pollOnce polls a target and stores what it read plus snmp_up and
// snmp_scrape_duration_seconds.
func (p *Poller) pollOnce(ctx context.Context, t Target) {
	start := p.now()
	b, err := p.Poll(ctx, t)
	dur := p.now().Sub(start)
	up := 1.0
	if err != nil {
		up = 0
		p.m.Errors.WithLabelValues(t.Name).Inc()
		p.health[t.Name].Down(err.Error()) // warns once per distinct error
		b = &storage.Batch{}
	} else {
		p.health[t.Name].Up()
	}
	p.m.Up.WithLabelValues(t.Name).Set(up)
	p.m.Duration.WithLabelValues(t.Name).Set(dur.Seconds())
	ts := start.UnixMilli()
	b.Add(p.labels(t, "snmp_up"), storage.Sample{T: ts, V: up})
	b.Add(p.labels(t, "snmp_scrape_duration_seconds"), storage.Sample{T: ts, V: dur.Seconds()})
	b.Metadata = append(b.Metadata,
		storage.Metadata{Family: "snmp_up", Type: "gauge", Help: "1 if the last SNMP poll of the target succeeded, else 0."},
		storage.Metadata{Family: "snmp_scrape_duration_seconds", Type: "gauge", Unit: "seconds", Help: "How long the last SNMP poll of the target took."})
	if err := p.w.Write(ctx, p.tenant(), b); err != nil && ctx.Err() == nil {
		p.log.Error("snmp samples not stored", "target", t.Name, "err", err)
	}
}

func (p *Poller) tenant() string {
	if p.cfg.Tenant == "" {
		return "default"
	}
	return p.cfg.Tenant
}

func (p *Poller) labels(t Target, name string, extra ...labels.Label) labels.Labels {
	b := labels.NewScratchBuilder(8)
	b.Add(model.MetricNameLabel, name)
	b.Add("instance", t.Name)
	b.Add("job", "snmp")
	for k, v := range t.Labels {
		b.Add(k, v)
	}
	for _, l := range extra {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}

func (p *Poller) connect(t Target) (*gosnmp.GoSNMP, error) {
	host, port, _ := net.SplitHostPort(t.Address)
	pn, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", t.Address)
	}
	g := &gosnmp.GoSNMP{
		Target: host, Port: uint16(pn), Timeout: time.Duration(p.cfg.Timeout), Retries: p.cfg.Retries,
		MaxRepetitions: 25, MaxOids: gosnmp.MaxOids,
	}
	if t.Version == "3" {
		g.Version = gosnmp.Version3
		g.SecurityModel = gosnmp.UserSecurityModel
		sp := &gosnmp.UsmSecurityParameters{
			UserName:                 t.V3.Username,
			AuthenticationPassphrase: t.V3.AuthPassword,
			PrivacyPassphrase:        t.V3.PrivPassword,
		}
		if sp.AuthenticationProtocol, err = authProto(t.V3.AuthProtocol); err != nil {
			return nil, err
		}
		if sp.PrivacyProtocol, err = privProto(t.V3.PrivProtocol); err != nil {
			return nil, err
		}
		switch strings.ToLower(t.V3.SecurityLevel) {
		case "", "authpriv":
			g.MsgFlags = gosnmp.AuthPriv
		case "authnopriv":
			g.MsgFlags = gosnmp.AuthNoPriv
		case "noauthnopriv":
			g.MsgFlags = gosnmp.NoAuthNoPriv
		default:
			return nil, fmt.Errorf("unknown v3 security_level %q", t.V3.SecurityLevel)
		}
		g.SecurityParameters = sp
	} else {
		g.Version = gosnmp.Version2c
		g.Community = t.Community
	}
	if err := g.Connect(); err != nil {
		return nil, err
	}
	return g, nil
}

func authProto(s string) (gosnmp.SnmpV3AuthProtocol, error) {
	switch strings.ToUpper(strings.ReplaceAll(s, "-", "")) {
	case "", "SHA256":
		return gosnmp.SHA256, nil
	case "MD5":
		return gosnmp.MD5, nil
	case "SHA", "SHA1":
		return gosnmp.SHA, nil
	case "SHA224":
		return gosnmp.SHA224, nil
	case "SHA384":
		return gosnmp.SHA384, nil
	case "SHA512":
		return gosnmp.SHA512, nil
	}
	return 0, fmt.Errorf("unknown v3 auth_protocol %q", s)
}

func privProto(s string) (gosnmp.SnmpV3PrivProtocol, error) {
	switch strings.ToUpper(s) {
	case "", "AES":
		return gosnmp.AES, nil
	case "DES":
		return gosnmp.DES, nil
	case "AES192":
		return gosnmp.AES192, nil
	case "AES256":
		return gosnmp.AES256, nil
	}
	return 0, fmt.Errorf("unknown v3 priv_protocol %q", s)
}

// Poll reads every metric of the target's modules once.
func (p *Poller) Poll(ctx context.Context, t Target) (*storage.Batch, error) {
	g, err := p.connect(t)
	if err != nil {
		return nil, err
	}
	defer g.Conn.Close()
	ts := p.now().UnixMilli()
	b := &storage.Batch{}
	walked := map[string]map[string]gosnmp.SnmpPDU{} // column oid -> index -> pdu
	walk := func(oid string) (map[string]gosnmp.SnmpPDU, error) {
		if rows, ok := walked[oid]; ok {
			return rows, nil
		}
		pdus, err := g.BulkWalkAll(oid)
		if err != nil {
			return nil, fmt.Errorf("walk %s: %w", oid, err)
		}
		rows := make(map[string]gosnmp.SnmpPDU, len(pdus))
		for _, pdu := range pdus {
			idx := strings.TrimPrefix(strings.TrimPrefix(pdu.Name, "."), oid+".")
			rows[idx] = pdu
		}
		walked[oid] = rows
		return rows, nil
	}
	var scalars []Metric
	meta := map[string]storage.Metadata{} // by family: what the walk told of each metric
	seen := func(m Metric, pdu gosnmp.SnmpPDU) {
		if _, ok := meta[m.Name]; !ok {
			meta[m.Name] = metadataOf(m, pdu)
		}
	}
	for _, mn := range t.Modules {
		mod, _ := p.cfg.module(mn)
		for _, m := range mod.Metrics {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !m.Table {
				scalars = append(scalars, m)
				continue
			}
			rows, err := walk(m.OID)
			if err != nil {
				return nil, err
			}
			idxLabel := m.IndexLabel
			if idxLabel == "" {
				idxLabel = "index"
			}
			for idx, pdu := range rows {
				v, ok := numeric(pdu)
				if !ok {
					continue
				}
				extra := []labels.Label{{Name: idxLabel, Value: idx}}
				for _, lk := range m.Lookups {
					lrows, err := walk(lk.OID)
					if err != nil {
						continue // a device without that column: no label
					}
					if s := text(lrows[idx]); s != "" {
						extra = append(extra, labels.Label{Name: lk.Label, Value: s})
					}
				}
				b.Add(p.labels(t, m.Name, extra...), storage.Sample{T: ts, V: scale(v, m.Scale)})
				seen(m, pdu)
			}
		}
	}
	for i := 0; i < len(scalars); i += gosnmp.MaxOids {
		chunk := scalars[i:min(i+gosnmp.MaxOids, len(scalars))]
		oids := make([]string, len(chunk))
		for j, m := range chunk {
			oids[j] = m.OID
		}
		res, err := g.Get(oids)
		if err != nil {
			return nil, fmt.Errorf("get: %w", err)
		}
		for j, pdu := range res.Variables {
			if j >= len(chunk) {
				break
			}
			if v, ok := numeric(pdu); ok {
				b.Add(p.labels(t, chunk[j].Name), storage.Sample{T: ts, V: scale(v, chunk[j].Scale)})
				seen(chunk[j], pdu)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(meta)) {
		b.Metadata = append(b.Metadata, meta[name])
	}
	return b, nil
}

// metadataOf is the metadata of an SNMP metric, from the type of the
// value the agent answered: counters are counters, everything else a
// gauge; the help names the OID.
func metadataOf(m Metric, pdu gosnmp.SnmpPDU) storage.Metadata {
	typ := "gauge"
	if pdu.Type == gosnmp.Counter32 || pdu.Type == gosnmp.Counter64 {
		typ = "counter"
	}
	return storage.Metadata{Family: m.Name, Type: typ, Help: "SNMP " + strings.TrimPrefix(m.OID, ".")}
}

func scale(v, s float64) float64 {
	if s == 0 {
		return v
	}
	return v * s
}

// numeric is the value of a numeric PDU.
func numeric(pdu gosnmp.SnmpPDU) (float64, bool) {
	switch pdu.Type {
	case gosnmp.Integer, gosnmp.Counter32, gosnmp.Gauge32, gosnmp.TimeTicks, gosnmp.Counter64, gosnmp.Uinteger32:
		f, _ := gosnmp.ToBigInt(pdu.Value).Float64()
		return f, !math.IsNaN(f)
	case gosnmp.OpaqueFloat:
		f, ok := pdu.Value.(float32)
		return float64(f), ok
	case gosnmp.OpaqueDouble:
		f, ok := pdu.Value.(float64)
		return f, ok
	}
	return 0, false
}

// text is the value of a PDU as a label value.
func text(pdu gosnmp.SnmpPDU) string {
	switch v := pdu.Value.(type) {
	case []byte:
		return strings.TrimRight(string(v), "\x00")
	case string:
		return v
	case nil:
		return ""
	}
	if f, ok := numeric(pdu); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(pdu.Value)
}

// startTraps listens for v2c traps and stores each as a sample of
// snmp_trap{snmp_sender, source, trap_oid} = 1, its string varbinds in
// label varbinds. The sender's address is kept in snmp_sender, which the
// per-source labels of the config (often `source: snmp`) do not
// overwrite; a sender that is a configured target also gets the target's
// name as instance, as its polled series have.
func (p *Poller) startTraps() error {
	names := targetNames(p.cfg.Targets)
	tl := gosnmp.NewTrapListener()
	tl.Params = &gosnmp.GoSNMP{Version: gosnmp.Version2c, Community: p.cfg.TrapCommunity, Timeout: time.Duration(p.cfg.Timeout)}
	tl.OnNewTrap = func(pkt *gosnmp.SnmpPacket, addr *net.UDPAddr) {
		p.m.Traps.Inc()
		trapOID := ""
		var vbs []string
		for _, v := range pkt.Variables {
			name := strings.TrimPrefix(v.Name, ".")
			switch name {
			case "1.3.6.1.6.3.1.1.4.1.0": // snmpTrapOID.0
				trapOID = strings.TrimPrefix(text(v), ".")
			case "1.3.6.1.2.1.1.3.0": // sysUpTime.0
			default:
				vbs = append(vbs, name+"="+text(v))
			}
		}
		vb := strings.Join(vbs, "; ")
		if len(vb) > 512 {
			vb = vb[:512]
		}
		b := labels.NewScratchBuilder(7)
		b.Add(model.MetricNameLabel, "snmp_trap")
		sender := addr.IP.String()
		b.Add("snmp_sender", sender)
		b.Add("source", sender)
		if name, ok := names[sender]; ok {
			b.Add("instance", name)
		}
		b.Add("trap_oid", trapOID)
		if vb != "" {
			b.Add("varbinds", vb)
		}
		b.Sort()
		var batch storage.Batch
		batch.Add(b.Labels(), storage.Sample{T: p.now().UnixMilli(), V: 1})
		if err := p.w.Write(context.Background(), p.tenant(), &batch); err != nil {
			p.log.Error("snmp trap not stored", "err", err)
		}
	}
	p.trap = tl
	errc := make(chan error, 1)
	go func() { errc <- tl.Listen(p.cfg.TrapListen) }()
	select {
	case <-tl.Listening():
		p.log.Info("snmp trap listener", "addr", p.cfg.TrapListen)
		return nil
	case err := <-errc:
		return fmt.Errorf("snmp trap listener on %s: %w", p.cfg.TrapListen, err)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("snmp trap listener on %s did not start", p.cfg.TrapListen)
	}
}

// targetNames maps the IP address of each target configured by address
// to its name (targets named by host name are not resolved).
func targetNames(targets []Target) map[string]string {
	out := map[string]string{}
	for _, t := range targets {
		host := t.Address
		if h, _, err := net.SplitHostPort(t.Address); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); ip != nil {
			out[ip.String()] = t.Name
		}
	}
	return out
}
