package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/alerting/kpi"
	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/ingest/influx"
	"github.com/emsdb/tsdb/ingest/mqtt"
	"github.com/emsdb/tsdb/ingest/promtext"
	"github.com/emsdb/tsdb/ingest/relabel"
	"github.com/emsdb/tsdb/ingest/remotewrite"
	"github.com/emsdb/tsdb/ingest/snmp"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/console"
	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/query/api"
	"github.com/emsdb/tsdb/storage"
)

// serveConfig is everything `tsdb serve` is told on the command line.
type serveConfig struct {
	listen         string
	dataDir        string
	retention      time.Duration
	shards         int
	maxSeries      int
	enableAdmin    bool
	maxBodyBytes   int
	logLevel       string
	logFormat      string
	shutdownWait   time.Duration
	readTimeout    time.Duration
	maxConnections int
	memoryBudget   int64
	queryTimeout   time.Duration
	queryMaxConc   int
	queryLookback  time.Duration
	queryMaxSample int
	queryCache     int64
	queryMaxSeries int
	queryMaxLength int
	queryMaxDepth  int
	queryMaxTerms  int
	configFile     string
	ruleGlobs      stringList
	alertmanagers  stringList
	evalInterval   time.Duration
	externalURL    string
	tlsCert        string
	tlsKey         string
	tlsClientCA    string
	influxTCP      string
	influxUDP      string
	queryCacheOff  time.Duration
	consoleDir     string
}

func parseServeFlags(args []string) (*serveConfig, error) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:9090", "`HOST:PORT` to serve the HTTP API on")
	fs.StringVar(&c.dataDir, "data", "data", "data `folder`; created if missing")
	fs.Var(durationFlag{&c.retention}, "retention", "how long to keep samples, from the wall clock (e.g. 30d, 1y); 0 keeps everything")
	fs.IntVar(&c.shards, "shards", 0, "number of storage shards for a new data folder; 0 means one per CPU core")
	fs.IntVar(&c.maxSeries, "storage.max-series", 0, "most series the database may hold; writes creating more get 400; 0 is unlimited")
	fs.BoolVar(&c.enableAdmin, "web.enable-admin-api", false, "enable /api/v1/admin/* (delete_series, snapshot)")
	fs.IntVar(&c.maxBodyBytes, "remote-write.max-body-bytes", 32<<20, "largest compressed remote-write body accepted, in bytes")
	fs.StringVar(&c.logLevel, "log.level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.logFormat, "log.format", "logfmt", "log format: logfmt or json")
	fs.DurationVar(&c.shutdownWait, "shutdown.timeout", 30*time.Second, "how long a graceful shutdown waits for requests in flight")
	fs.DurationVar(&c.readTimeout, "http.read-timeout", time.Minute, "longest time to read one request")
	fs.IntVar(&c.maxConnections, "http.max-connections", 2048, "most concurrent HTTP connections")
	fs.Int64Var(&c.memoryBudget, "memory.budget-bytes", 0, "memory budget: over it writes and queries get 503 with Retry-After until memory falls back (0: none)")
	fs.DurationVar(&c.queryTimeout, "query.timeout", 2*time.Minute, "longest time one query may run")
	fs.IntVar(&c.queryMaxConc, "query.max-concurrency", 20, "most queries running at once; others wait")
	fs.DurationVar(&c.queryLookback, "query.lookback-delta", 5*time.Minute, "how far back an instant selector looks for a sample")
	fs.IntVar(&c.queryMaxSample, "query.max-samples", 50_000_000, "most samples one query may hold in memory")
	fs.IntVar(&c.queryMaxSeries, "query.max-series", 1_000_000, "most series one query may select (0: no limit)")
	fs.IntVar(&c.queryMaxLength, "query.max-length", query.DefaultMaxQueryLength, "longest query text accepted, in bytes")
	fs.IntVar(&c.queryMaxDepth, "query.max-depth", query.DefaultMaxDepth, "deepest nesting of parentheses, brackets and braces a query may have")
	fs.IntVar(&c.queryMaxTerms, "query.max-terms", query.DefaultMaxTerms, "most terms (names, numbers, strings, operators, brackets) a query may have once its WITH templates are expanded")
	fs.Var(&c.ruleGlobs, "rules", "rule `files` (glob; repeatable), Prometheus format")
	fs.Var(&c.alertmanagers, "alertmanager.url", "Alertmanager base `URL` to send alerts to (repeatable)")
	fs.DurationVar(&c.evalInterval, "rules.evaluation-interval", time.Minute, "interval of rule groups that set none")
	fs.StringVar(&c.externalURL, "web.external-url", "", "URL tsdb is reached at, for alert links")
	fs.StringVar(&c.tlsCert, "web.tls-cert-file", "", "serve HTTPS with this certificate `file` (PEM)")
	fs.StringVar(&c.tlsKey, "web.tls-key-file", "", "the certificate's private key `file` (PEM)")
	fs.StringVar(&c.tlsClientCA, "web.tls-client-ca-file", "", "require client certificates signed by this CA `file` (PEM)")
	fs.StringVar(&c.configFile, "config.file", "", "YAML `file` with MQTT subscriptions (see README)")
	fs.StringVar(&c.influxTCP, "influx.listen-tcp", "", "`HOST:PORT` for InfluxDB line protocol over TCP (off when empty)")
	fs.StringVar(&c.influxUDP, "influx.listen-udp", "", "`HOST:PORT` for InfluxDB line protocol over UDP (off when empty)")
	fs.Int64Var(&c.queryCache, "query.cache-bytes", 256<<20, "memory for cached range-query results (0 turns the cache off)")
	fs.DurationVar(&c.queryCacheOff, "query.cache-offset", 5*time.Minute, "results newer than this are not cached, as samples may still arrive for them")
	fs.StringVar(&c.consoleDir, "web.console-dir", "", "serve the web console from this `folder` instead of the embedded copy (for working on it)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runServer(ctx, cfg, log, nil)
}

// runServer serves until ctx is done, then shuts down gracefully. ready,
// when non-nil, receives the bound address once the server accepts.
func runServer(ctx context.Context, cfg *serveConfig, log *slog.Logger, ready chan<- string) error {
	fcfg, err := loadConfig(cfg.configFile)
	if err != nil {
		return err
	}
	start := time.Now()
	limiter := limits.New(fcfg.Limits, nil)
	db, err := storage.Open(cfg.dataDir, &storage.Options{
		Shards:          cfg.shards,
		Retention:       cfg.retention,
		MaxSeries:       cfg.maxSeries,
		TenantMaxSeries: func(t string) int { return limiter.Config().For(t).MaxSeries },
		WarmBytes:       64 << 20, // the newest chunks into the block cache after a restart
		Logger:          log.With("component", "storage"),
	})
	if err != nil {
		return fmt.Errorf("open storage in %s: %w", cfg.dataDir, err)
	}
	log.Info("storage opened", "dir", cfg.dataDir, "took", time.Since(start), "retention", cfg.retention)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(newStorageCollector(db))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tsdb_build_info", Help: "Build information.", ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))

	ingestW := limiter.Wrap(db) // per-tenant label limits and ingestion rate
	ingested := newIngestStats(reg)
	go ingested.run(ctx)
	rw := remotewrite.New(relabel.Wrap(ingested.wrap("remote_write", ingestW), &fcfg.Ingest.RemoteWrite), &remotewrite.Options{
		MaxBodyBytes: cfg.maxBodyBytes,
		Logger:       log.With("component", "remotewrite"),
		Registerer:   reg,
	})
	eng := query.NewEngine(db, &query.Options{
		LookbackDelta:  cfg.queryLookback,
		MaxSamples:     cfg.queryMaxSample,
		Timeout:        cfg.queryTimeout,
		MaxSeries:      cfg.queryMaxSeries,
		MaxQueryLength: cfg.queryMaxLength,
		MaxDepth:       cfg.queryMaxDepth,
		MaxTerms:       cfg.queryMaxTerms,
	})
	var rc *query.ResultCache
	if cfg.queryCache > 0 {
		if rc, err = query.NewResultCache(cfg.queryCache, cfg.queryCacheOff, nil); err != nil {
			db.Close()
			return fmt.Errorf("query cache: %w", err)
		}
		defer rc.Close()
	}
	a := api.New(db, eng, db, &api.Options{
		Cache:                rc,
		EnableAdmin:          cfg.enableAdmin,
		SnapshotDir:          filepath.Join(cfg.dataDir, "snapshots"),
		Logger:               log.With("component", "api"),
		QueryTimeout:         cfg.queryTimeout,
		MaxConcurrentQueries: cfg.queryMaxConc,
		TenantQueryLimit:     func(t string) int { return limiter.Config().For(t).MaxQueryConcurrency },
		Version:              version,
	})
	ifx := influx.New(relabel.Wrap(ingested.wrap("influx", ingestW), &fcfg.Ingest.Influx), &influx.Options{MaxBodyBytes: cfg.maxBodyBytes, Logger: log.With("component", "influx"), Registerer: reg})
	if cfg.influxTCP != "" {
		ln, err := net.Listen("tcp", cfg.influxTCP)
		if err != nil {
			db.Close()
			return fmt.Errorf("influx tcp listener: %w", err)
		}
		defer ln.Close()
		go func() { _ = ifx.ServeTCP(ln) }()
		log.Info("influx line protocol over tcp", "addr", ln.Addr().String())
	}
	if cfg.influxUDP != "" {
		pc, err := net.ListenPacket("udp", cfg.influxUDP)
		if err != nil {
			db.Close()
			return fmt.Errorf("influx udp listener: %w", err)
		}
		defer pc.Close()
		go func() { _ = ifx.ServeUDP(pc) }()
		log.Info("influx line protocol over udp", "addr", pc.LocalAddr().String())
	}
	mqttMetrics := mqtt.NewMetrics(reg)
	var subs []*mqtt.Subscriber
	stopSubs := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, sub := range subs {
			_ = sub.Stop(sctx)
		}
	}
	mqttW := ingested.wrap("mqtt", ingestW)
	for _, mc := range fcfg.MQTT {
		sub, err := mqtt.Start(context.Background(), mc, relabel.Wrap(mqttW, &fcfg.Ingest.MQTT), mqttMetrics, log.With("component", "mqtt"))
		if err != nil {
			stopSubs()
			db.Close()
			return err
		}
		subs = append(subs, sub)
	}
	var poller *snmp.Poller
	if fcfg.SNMP != nil {
		if poller, err = snmp.Start(*fcfg.SNMP, relabel.Wrap(ingested.wrap("snmp", ingestW), &fcfg.Ingest.SNMP), snmp.NewMetrics(reg), log.With("component", "snmp")); err != nil {
			stopSubs()
			db.Close()
			return err
		}
	}
	files, err := ruleFiles(cfg.ruleGlobs)
	if err != nil {
		stopSubs()
		db.Close()
		return err
	}
	var am *ruler.Alertmanagers
	var notifier ruler.Notifier
	if len(cfg.alertmanagers) > 0 {
		am = ruler.NewAlertmanagers(cfg.alertmanagers, nil, log.With("component", "notifier"))
		am.Register(reg)
		notifier = am
	}
	rl := ruler.New(eng, db, notifier, &ruler.Options{
		DefaultInterval: cfg.evalInterval, ExternalURL: cfg.externalURL, Logger: log.With("component", "ruler"), Registerer: reg,
	})
	var incidents *itsm.Manager
	if fcfg.ITSM != nil {
		if incidents, err = itsm.New(*fcfg.ITSM, db, log.With("component", "itsm"), nil); err != nil {
			stopSubs()
			db.Close()
			return err
		}
		rl.OnEvent(incidents.HandleAlert)
		incidents.Register(reg)
		go func() {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					incidents.Tick()
				}
			}
		}()
	}
	var kpis *kpi.Engine
	if len(fcfg.KPIs) > 0 {
		var inc kpi.Incidents // stays a nil interface without ITSM
		if incidents != nil {
			inc = incidents
		}
		if kpis, err = kpi.New(fcfg.KPIs, eng, db, inc, &kpi.Options{Logger: log.With("component", "kpi"), ExternalURL: cfg.externalURL}); err != nil {
			stopSubs()
			db.Close()
			return err
		}
		go kpis.Run(ctx)
		log.Info("KPIs forecast", "kpis", len(fcfg.KPIs), "incidents", incidents != nil)
	}
	loadRules := func() error {
		if err := rl.Load(files); err != nil {
			log.Error("rules not reloaded; the previous rules keep running", "err", err)
			return err
		}
		log.Info("rules loaded", "files", len(files), "groups", len(rl.Groups()))
		return nil
	}
	if err := loadRules(); err != nil {
		stopSubs()
		db.Close()
		return err
	}
	if err := rl.LoadStored(db); err != nil {
		log.Error("rule groups stored through the API not loaded", "err", err)
	}
	var authn atomic.Pointer[auth.Authenticator]
	if fcfg.Auth != nil && len(fcfg.Auth.Users) > 0 {
		a, err := auth.New(*fcfg.Auth)
		if err != nil {
			stopSubs()
			db.Close()
			return err
		}
		authn.Store(a)
		log.Info("authentication on", "users", len(fcfg.Auth.Users))
	} else if host, _, _ := net.SplitHostPort(cfg.listen); !isLoopback(host) {
		log.Warn("no auth: configured in --config.file, and --listen is not a loopback address: anyone who reaches it can read, write and delete data", "listen", cfg.listen)
	} else {
		log.Info("no auth: configured: serving on loopback only", "listen", cfg.listen)
	}
	// reload re-reads the rule files and the config file (SIGHUP, POST
	// /-/reload): rules, auth and limits change in place; all or nothing.
	baseline, _ := loadConfig(cfg.configFile) // as read, before Start filled in defaults
	var reloadMu sync.Mutex
	reload := func() ([]string, error) {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		next, err := loadConfig(cfg.configFile)
		if err != nil {
			log.Error("config not reloaded; the previous config stays", "err", err)
			return nil, err
		}
		var a *auth.Authenticator
		if next.Auth != nil && len(next.Auth.Users) > 0 {
			if a, err = auth.New(*next.Auth); err != nil {
				return nil, err
			}
		} else if authn.Load() != nil {
			err := errors.New("the config no longer has auth: users; turning authentication off needs a restart, so nothing was reloaded")
			log.Error("config not reloaded", "err", err)
			return nil, err
		}
		if err := loadRules(); err != nil {
			return nil, err
		}
		if a != nil {
			authn.Store(a)
		}
		limiter.SetConfig(next.Limits)
		restart := restartNeeded(baseline, next)
		if len(restart) > 0 {
			log.Warn("config reloaded; these sections changed but take effect only after a restart", "sections", restart)
		} else {
			log.Info("config reloaded", "auth_users", len(authUsers(next)))
		}
		return restart, nil
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			_, _ = reload()
		}
	}()
	cons, err := console.New(cfg.consoleDir)
	if err != nil {
		stopSubs()
		db.Close()
		return fmt.Errorf("--web.console-dir: %w", err)
	}
	var shuttingDown atomic.Bool
	h := newRouter(routes{
		remoteWrite: func(ctx *fasthttp.RequestCtx) {
			rw.Serve(ctx)
			ingested.sawRequest(ctx)
		},
		console:      cons,
		status:       statusHandler(ingested, db, fcfg, reg, start),
		export:       a.Export,
		api:          a,
		influx:       ifx,
		ruler:        rl,
		store:        db,
		itsm:         incidents,
		kpis:         kpis,
		auth:         &authn,
		mem:          newMemoryGuard(ctx, cfg.memoryBudget, log),
		reload:       reload,
		promImport:   promtext.New(relabel.Wrap(ingested.wrap("prometheus_import", ingestW), &fcfg.Ingest.PrometheusImport), cfg.maxBodyBytes, nil).Serve,
		deleteSeries: a.DeleteSeries,
		snapshot:     a.Snapshot,
		metrics:      metricsHandler(reg),
		ready:        func() bool { return !shuttingDown.Load() },
	}, reg)

	srv := &fasthttp.Server{
		Handler:               h,
		Name:                  "tsdb",
		MaxRequestBodySize:    cfg.maxBodyBytes + 1<<20,
		ReadTimeout:           cfg.readTimeout,
		WriteTimeout:          5 * time.Minute,
		IdleTimeout:           2 * time.Minute,
		Concurrency:           cfg.maxConnections,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{log},
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		db.Close()
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	if cfg.tlsCert != "" || cfg.tlsKey != "" {
		tcfg, err := tlsConfig(cfg.tlsCert, cfg.tlsKey, cfg.tlsClientCA)
		if err != nil {
			ln.Close()
			db.Close()
			return err
		}
		ln = tls.NewListener(ln, tcfg)
		log.Info("serving HTTPS", "client_certificates", cfg.tlsClientCA != "")
	}
	log.Info("serving", "addr", ln.Addr().String(), "version", version)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err = <-errc:
		log.Error("http server stopped", "err", err)
	case <-ctx.Done():
		log.Info("shutting down")
	}
	shuttingDown.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownWait)
	defer cancel()
	if serr := srv.ShutdownWithContext(sctx); serr != nil {
		log.Warn("http shutdown", "err", serr)
	}
	rl.Stop()
	if incidents != nil {
		incidents.Close()
	}
	if am != nil {
		actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
		am.Close(actx)
		acancel()
	}
	stopSubs() // unacknowledged messages stay with the broker
	if poller != nil {
		poller.Stop()
	}
	t := time.Now()
	if cerr := db.Close(); cerr != nil {
		return fmt.Errorf("close storage: %w", cerr)
	}
	log.Info("storage flushed and closed", "took", time.Since(t))
	return err
}

type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "http")
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
