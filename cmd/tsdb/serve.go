package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/query"
)

// serveConfig is everything `tsdb serve` is told on the command line.
type serveConfig struct {
	flags           map[string]string // every flag and its value, for /api/v1/status/flags
	firstRun        bool
	maxExemplars    int
	maxMetaFamilies int
	selfInterval    time.Duration
	selfTenant      string
	meterFlush      time.Duration
	meterSample     time.Duration
	meterBytes      time.Duration
	listen          string
	dataDir         string
	retention       time.Duration
	retentionTiers  tiersFlag
	maxBytes        int64
	shards          int
	maxSeries       int
	enableAdmin     bool
	maxBodyBytes    int
	logLevel        string
	logFormat       string
	shutdownWait    time.Duration
	readTimeout     time.Duration
	maxConnections  int
	maxConnsPerIP   int
	headerTimeout   time.Duration
	idleTimeout     time.Duration
	maxHeaderBytes  int
	memoryBudget    int64
	queryTimeout    time.Duration
	queryMaxConc    int
	queryLookback   time.Duration
	queryMaxSample  int
	queryCache      int64
	queryMaxSeries  int
	queryMaxLength  int
	queryMaxDepth   int
	queryMaxTerms   int
	enableFeatures  stringList
	queryFeatures   query.Features
	configFile      string
	ruleGlobs       stringList
	alertmanagers   stringList
	evalInterval    time.Duration
	externalURL     string
	tlsCert         string
	tlsKey          string
	tlsClientCA     string
	influxTCP       string
	influxUDP       string
	influxTenant    string
	maxDecoded      int
	maxInFlight     int64
	queryCacheOff   time.Duration
	consoleDir      string
	snapshotMaxAge  time.Duration
}

// rawRetention is the raw samples' retention: --retention, or the raw:
// entry of --retention.tiers.
func (c *serveConfig) rawRetention() time.Duration {
	if c.retentionTiers.hasRaw {
		return c.retentionTiers.raw
	}
	return c.retention
}

// snapshotDir is where the admin API takes snapshots.
func (c *serveConfig) snapshotDir() string { return filepath.Join(c.dataDir, "snapshots") }

// parseServeFlags reads the flags of `tsdb serve`. Every duration flag is
// a durationFlag: Prometheus's syntax (30d, 1h30m), as in the config file.
func parseServeFlags(args []string) (*serveConfig, error) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:9090", "`HOST:PORT` to serve the HTTP API on")
	fs.StringVar(&c.dataDir, "data", "data", "data `folder`; created if missing")
	durationVar(fs, &c.retention, "retention", 0, "how long to keep samples, from the wall clock (e.g. 30d, 1y); 0 keeps everything")
	fs.Var(&c.retentionTiers, "retention.tiers", "downsampling tiers and how long each is kept, finest first, e.g. raw:30d,5m:1y,1h:5y (raw: sets --retention; 0 keeps forever); queries over long ranges read the coarsest tier that answers them exactly")
	fs.Int64Var(&c.maxBytes, "retention.max-bytes", 0, "most bytes the data folder may take: beyond it the oldest whole days (raw and tiers, every tenant) are dropped first, hourly; 0 is unbounded")
	fs.IntVar(&c.shards, "shards", 0, "number of storage shards for a new data folder; 0 means one per CPU core")
	fs.IntVar(&c.maxSeries, "storage.max-series", 0, "most series the database may hold; writes creating more get 400; 0 is unlimited")
	fs.IntVar(&c.maxExemplars, "storage.exemplars.exemplars-limit", 100_000, "exemplars kept per tenant, the newest replacing the oldest (as Prometheus' storage.exemplars.max_exemplars); 0: none kept")
	fs.IntVar(&c.maxMetaFamilies, "storage.metadata.max-families", 100_000, "metric families whose metadata (type, unit, help) is kept per tenant; metadata of more is dropped and counted")
	fs.BoolVar(&c.enableAdmin, "web.enable-admin-api", false, "enable /api/v1/admin/* (delete_series, snapshot)")
	durationVar(fs, &c.snapshotMaxAge, "snapshots.max-age", time.Hour, "at start, delete snapshots in <data>/snapshots older than this (left by a backup that was killed); 0 keeps them")
	fs.IntVar(&c.maxBodyBytes, "remote-write.max-body-bytes", 32<<20, "largest request body accepted by the ingest endpoints (remote write, line protocol, text import) as sent, in bytes; larger gets 413")
	fs.IntVar(&c.maxDecoded, "ingest.max-decoded-bytes", 64<<20, "largest ingest request body after snappy or gzip decoding, in bytes; larger gets 413")
	fs.Int64Var(&c.maxInFlight, "ingest.max-inflight-bytes", limits.DefaultInFlightBytes, "memory all ingest requests together may hold while they are decoded and written (bodies and batches, estimated), in bytes; a request waits up to 1s for room, then gets 503 with Retry-After; one that needs more than all of it gets 413")
	fs.StringVar(&c.logLevel, "log.level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.logFormat, "log.format", "logfmt", "log format: logfmt or json")
	durationVar(fs, &c.shutdownWait, "shutdown.timeout", 30*time.Second, "how long a graceful shutdown waits for requests in flight")
	durationVar(fs, &c.readTimeout, "http.read-timeout", time.Minute, "longest time to read a request's body, once its header is in")
	durationVar(fs, &c.headerTimeout, "http.header-read-timeout", 10*time.Second, "longest time a client may take to start a request, and then to send its whole header (the TLS handshake included); slower clients are cut")
	durationVar(fs, &c.idleTimeout, "http.idle-timeout", 2*time.Minute, "how long an idle keep-alive connection is kept; once three quarters of --http.max-connections are open, idle connections are closed at once")
	fs.IntVar(&c.maxConnections, "http.max-connections", 2048, "most concurrent HTTP connections; the last sixteenth serve only /-/healthy, /-/ready and authenticated requests")
	fs.IntVar(&c.maxConnsPerIP, "http.max-connections-per-ip", 256, "most concurrent HTTP connections from one client address (an IPv6 /64 counts as one); more get 429; 0: no bound (behind a reverse proxy every client has the proxy's address)")
	fs.IntVar(&c.maxHeaderBytes, "http.max-header-bytes", 256<<10, "largest request line and headers, in bytes, a GET query's URL included (Prometheus allows 1 MiB); larger get 431; each connection reading a request holds a buffer of this size")
	fs.Int64Var(&c.memoryBudget, "memory.budget-bytes", 0, "memory budget: over it writes and queries get 503 with Retry-After until memory falls back (0: none)")
	durationVar(fs, &c.queryTimeout, "query.timeout", 2*time.Minute, "longest time one query may run")
	fs.IntVar(&c.queryMaxConc, "query.max-concurrency", 20, "most queries running at once; others wait")
	durationVar(fs, &c.queryLookback, "query.lookback-delta", 5*time.Minute, "how far back an instant selector looks for a sample")
	fs.IntVar(&c.queryMaxSample, "query.max-samples", 50_000_000, "most samples one query may hold in memory")
	fs.IntVar(&c.queryMaxSeries, "query.max-series", 1_000_000, "most series one query may select (0: no limit)")
	fs.IntVar(&c.queryMaxLength, "query.max-length", query.DefaultMaxQueryLength, "longest query text accepted, in bytes")
	fs.IntVar(&c.queryMaxDepth, "query.max-depth", query.DefaultMaxDepth, "deepest nesting of parentheses, brackets and braces a query may have")
	fs.IntVar(&c.queryMaxTerms, "query.max-terms", query.DefaultMaxTerms, "most terms (names, numbers, strings, operators, brackets) a query may have once its WITH templates are expanded")
	fs.Var(&c.enableFeatures, "enable-feature", "experimental PromQL `features` to enable, comma-separated (repeatable), named as Prometheus names them: "+knownFeatures())
	fs.Var(&c.ruleGlobs, "rules", "rule `files` (glob; repeatable), Prometheus format")
	fs.Var(&c.alertmanagers, "alertmanager.url", "Alertmanager base `URL` to send alerts to (repeatable)")
	durationVar(fs, &c.evalInterval, "rules.evaluation-interval", time.Minute, "interval of rule groups that set none")
	durationVar(fs, &c.selfInterval, "self-monitor.interval", 15*time.Second, "store tsdb's own metrics (what /metrics shows) as job=\"tsdb\" this often, as a scrape would; 0 turns it off")
	durationVar(fs, &c.meterFlush, "metering.flush-interval", 10*time.Second, "record the usage counted in memory (queries, samples scanned, rule evaluations, notifications, series-hours) into storage this often: what a crash may lose of it (samples ingested are counted with the write itself and never lost)")
	durationVar(fs, &c.meterSample, "metering.sample-interval", time.Minute, "sample each tenant's active series this often, for the day's maximum and series-hours")
	durationVar(fs, &c.meterBytes, "metering.bytes-interval", 15*time.Minute, "estimate each tenant's bytes stored this often")
	fs.BoolVar(&c.firstRun, "first-run", false, "without --config.file, start with the first-run configuration (written to DATA/first-run.yml): ITSM, KPIs and alert rules about tsdb itself, which need no outside system; what make run does")
	fs.StringVar(&c.selfTenant, "self-monitor.tenant", "tsdb", "`tenant` the self-monitoring metrics are stored in (rules about tsdb run there: a rule group's tenant:)")
	fs.StringVar(&c.externalURL, "web.external-url", "", "URL tsdb is reached at, for alert links")
	fs.StringVar(&c.tlsCert, "web.tls-cert-file", "", "serve HTTPS with this certificate `file` (PEM)")
	fs.StringVar(&c.tlsKey, "web.tls-key-file", "", "the certificate's private key `file` (PEM)")
	fs.StringVar(&c.tlsClientCA, "web.tls-client-ca-file", "", "require client certificates signed by this CA `file` (PEM)")
	fs.StringVar(&c.configFile, "config.file", "", "YAML `file` with what flags cannot say well: MQTT subscriptions (mqtt), SNMP polling and traps (snmp), per-source labels and relabelling (ingest), per-tenant limits (limits), users and roles (auth), incident management (itsm) and KPI forecasts (kpis); see examples/tsdb.yml")
	fs.StringVar(&c.configFile, "config", "", "alias of --config.file")
	fs.StringVar(&c.influxTCP, "influx.listen-tcp", "", "`HOST:PORT` for InfluxDB line protocol over TCP (off when empty)")
	fs.StringVar(&c.influxUDP, "influx.listen-udp", "", "`HOST:PORT` for InfluxDB line protocol over UDP (off when empty)")
	fs.StringVar(&c.influxTenant, "influx.tenant", "", "`tenant` the InfluxDB TCP and UDP listeners write into; they have no authentication, so with auth: users in --config.file a listener needs this set (default without auth: default)")
	fs.Int64Var(&c.queryCache, "query.cache-bytes", 256<<20, "memory for cached range-query results (0 turns the cache off)")
	durationVar(fs, &c.queryCacheOff, "query.cache-offset", 5*time.Minute, "results newer than this are not cached, as samples may still arrive for them")
	fs.StringVar(&c.consoleDir, "web.console-dir", "", "serve the web console from this `folder` instead of the embedded copy (for working on it)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.queryFeatures, err = query.ParseFeatures(c.enableFeatures...); err != nil {
		return nil, fmt.Errorf("--enable-feature: %w", err)
	}
	c.flags = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { c.flags[f.Name] = f.Value.String() })
	if c.maxBodyBytes <= 0 || c.maxDecoded <= 0 || c.maxInFlight <= 0 {
		return nil, errors.New("--remote-write.max-body-bytes, --ingest.max-decoded-bytes and --ingest.max-inflight-bytes must be positive")
	}
	switch {
	case c.maxConnections < 1:
		return nil, errors.New("--http.max-connections must be at least 1")
	case c.maxConnsPerIP < 0:
		return nil, errors.New("--http.max-connections-per-ip must be 0 (no bound) or more")
	case c.maxHeaderBytes < 4<<10:
		return nil, errors.New("--http.max-header-bytes must be at least 4096")
	}
	return c, nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log.level: %w", err)
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch format {
	case "logfmt", "text":
		return slog.New(slog.NewTextHandler(os.Stderr, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, ho)), nil
	}
	return nil, fmt.Errorf("--log.format %q: want logfmt or json", format)
}

func serve(args []string) error {
	cfg, err := parseServeFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := newLogger(cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	if pct, set := gcPercent(os.Getenv); set {
		debug.SetGCPercent(pct)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runServer(ctx, cfg, log, nil)
}

// defaultGCPercent is the collector's target when GOGC is not set: most of
// a server's heap is long-lived series and head chunks, so Go's default 100
// lets garbage grow to the size of everything kept. Measured (issue 18):
// RSS per series at 100k node-exporter series 3,110 B at 100, 2,650–2,770 at
// 50, 2,550 at 30 with CPU per sample unchanged; creating 1M series, CPU
// per sample 1.26 s/1M at 100, 1.42 at 50, 1.71–1.87 at 30
// (VictoriaMetrics' choice) and RSS per series 1,320, 1,180, 1,090–1,120 B.
const defaultGCPercent = 50

// gcPercent returns the target to set at start-up: defaultGCPercent unless
// the operator set GOGC, which the runtime has already applied.
func gcPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	return defaultGCPercent, true
}

// restartNeeded names the config sections that differ between what the
// server started with and next: they take effect only after a restart.
func restartNeeded(started, next *fileConfig) []string {
	if started == nil {
		return nil
	}
	var out []string
	for _, s := range []struct {
		name string
		a, b any
	}{
		{"mqtt", started.MQTT, next.MQTT}, {"snmp", started.SNMP, next.SNMP}, {"ingest", started.Ingest, next.Ingest},
		{"itsm", started.ITSM, next.ITSM}, {"kpis", started.KPIs, next.KPIs},
		{"calendars", started.Calendars, next.Calendars}, {"cluster", started.Cluster, next.Cluster},
	} {
		if !reflect.DeepEqual(s.a, s.b) {
			out = append(out, s.name)
		}
	}
	return out
}

func authUsers(c *fileConfig) []auth.User {
	if c.Auth == nil {
		return nil
	}
	return c.Auth.Users
}

// knownFeatures lists the names --enable-feature accepts.
func knownFeatures() string {
	var names []string
	for _, f := range query.KnownFeatures() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}
