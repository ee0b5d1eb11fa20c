package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/emsdb/tsdb/alerting/itsm"
	"github.com/emsdb/tsdb/alerting/kpi"
	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/ingest/health"
	"github.com/emsdb/tsdb/ingest/influx"
	"github.com/emsdb/tsdb/ingest/jsonl"
	"github.com/emsdb/tsdb/ingest/kafka"
	"github.com/emsdb/tsdb/ingest/mqtt"
	"github.com/emsdb/tsdb/ingest/otlp"
	"github.com/emsdb/tsdb/ingest/promtext"
	"github.com/emsdb/tsdb/ingest/relabel"
	"github.com/emsdb/tsdb/ingest/remotewrite"
	"github.com/emsdb/tsdb/ingest/reqbody"
	"github.com/emsdb/tsdb/ingest/snmp"
	"github.com/emsdb/tsdb/internal/audit"
	"github.com/emsdb/tsdb/internal/auth"
	"github.com/emsdb/tsdb/internal/console"
	"github.com/emsdb/tsdb/internal/limits"
	"github.com/emsdb/tsdb/internal/metering"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
	"github.com/emsdb/tsdb/web"
)

// lifecycle is the composition root's bookkeeping: components register a
// closer as they are opened, background work runs in one errgroup, and
// shutdown stops the goroutines, then closes exactly what was opened, in
// reverse order. A failure at any step of opening therefore closes what
// came before it and nothing else.
type lifecycle struct {
	log     *slog.Logger
	g       *errgroup.Group
	ctx     context.Context // done when the server must stop
	cancel  context.CancelFunc
	closers []namedCloser
}

type namedCloser struct {
	name string
	fn   func() error
}

func newLifecycle(parent context.Context, log *slog.Logger) *lifecycle {
	ctx, cancel := context.WithCancel(parent)
	g, gctx := errgroup.WithContext(ctx)
	return &lifecycle{log: log, g: g, ctx: gctx, cancel: cancel}
}

// onClose registers fn to run at shutdown, before everything registered
// earlier.
func (l *lifecycle) onClose(name string, fn func() error) {
	l.closers = append(l.closers, namedCloser{name, fn})
}

// run runs fn in the group until ctx is done; an error from fn stops the
// server. fn must return soon after ctx is done.
func (l *lifecycle) run(name string, fn func(ctx context.Context) error) {
	l.g.Go(func() error {
		if err := fn(l.ctx); err != nil && l.ctx.Err() == nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// shutdown stops the goroutines, waits for them, then closes in reverse
// order. It returns the first error: of a goroutine, else of a closer.
func (l *lifecycle) shutdown() error {
	l.cancel()
	err := l.g.Wait()
	for i := len(l.closers) - 1; i >= 0; i-- {
		c := l.closers[i]
		if cerr := c.fn(); cerr != nil {
			l.log.Error("close", "component", c.name, "err", cerr)
			if err == nil {
				err = fmt.Errorf("close %s: %w", c.name, cerr)
			}
		}
	}
	return err
}

func noErr(f func()) func() error { return func() error { f(); return nil } }

// runServer serves until ctx is done, then shuts down gracefully. ready,
// when non-nil, receives the bound address once the server accepts.
func runServer(ctx context.Context, cfg *serveConfig, log *slog.Logger, ready chan<- string) (err error) {
	lc := newLifecycle(ctx, log)
	defer func() {
		if serr := lc.shutdown(); err == nil {
			err = serr
		}
	}()
	if err := openServer(lc, cfg, log, ready); err != nil {
		return err
	}
	<-lc.ctx.Done()
	if ctx.Err() != nil {
		log.Info("shutting down")
	}
	return nil
}

// server is what openServer builds: the components of tsdb serve, each
// opened by one step.
type server struct {
	cfg     *serveConfig
	fcfg    *fileConfig
	cstat   *configStatus // the config file as last loaded, for the status API
	log     *slog.Logger
	started time.Time

	ln       net.Listener
	cons     *console.Console
	authn    *atomic.Pointer[auth.Authenticator]
	ruleFile []string
	limiter  *limits.Limiter
	db       *storage.DB
	meter    *metering.Meter
	reg      *prometheus.Registry
	// sink is where ingest writes after relabelling and limits: db, or the
	// cluster's Kafka producer.
	sink storage.Writer
	// reader is what queries read: db, or the cluster's fan-out reader.
	reader storage.Reader
	// kv keeps the state of rules and ITSM: db, or in a cluster the
	// state topic's replicating store over db.
	kv       kafka.KV
	cluster  web.Cluster   // nil: single node
	kc       *clusterParts // nil: single node
	ingested *ingestStats
	ingest   web.Ingest
	eng      *query.Engine
	cache    *query.ResultCache
	ruler    *ruler.Ruler
	itsm     *itsm.Manager
	kpis     *kpi.Engine
	reload   func() ([]string, error)
}

// openServer opens every component in order, registering each one's
// closer and goroutines with lc, and starts serving.
func openServer(lc *lifecycle, cfg *serveConfig, log *slog.Logger, ready chan<- string) error {
	s := &server{cfg: cfg, log: log, started: time.Now()}
	for _, step := range []func(*lifecycle) error{
		s.openFrontDoor, // the port first: when it is taken nothing else has been opened
		s.openStorage,
		s.openMetering,
		s.openCluster,
		s.openIngest,
		s.openQuery,
		s.openAlerting,
		s.openReload,
		s.openLeadership,
		s.openSelfMonitor,
	} {
		if err := step(lc); err != nil {
			return err
		}
	}
	return s.serveHTTP(lc, ready)
}

// openFrontDoor reads the config file, binds the port and prepares what
// needs no storage: TLS, the console's files, authentication.
func (s *server) openFrontDoor(lc *lifecycle) error {
	var err error
	if s.cfg.firstRun && s.cfg.configFile == "" {
		if s.cfg.configFile, err = writeFirstRunConfig(s.cfg.dataDir); err != nil {
			return err
		}
		s.log.Info("first run: ITSM, KPIs and alert rules about tsdb itself; edit the file and reload, or pass --config.file", "config", s.cfg.configFile)
	}
	if s.fcfg, err = loadConfig(s.cfg.configFile); err != nil {
		return err
	}
	s.cstat = &configStatus{path: s.cfg.configFile, started: s.started}
	s.cstat.loaded(nil)
	ln, err := net.Listen("tcp", s.cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.listen, err)
	}
	lc.onClose("listener", func() error {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	})
	s.ln = ln
	if s.cfg.tlsCert != "" || s.cfg.tlsKey != "" {
		tcfg, err := tlsConfig(s.cfg.tlsCert, s.cfg.tlsKey, s.cfg.tlsClientCA)
		if err != nil {
			return err
		}
		s.ln = tls.NewListener(ln, tcfg)
		s.log.Info("serving HTTPS", "client_certificates", s.cfg.tlsClientCA != "")
	}
	if s.ruleFile, err = ruleFiles(s.cfg.ruleGlobs); err != nil {
		return err
	}
	if s.cons, err = console.New(s.cfg.consoleDir); err != nil {
		return fmt.Errorf("--web.console-dir: %w", err)
	}
	s.authn, err = newAuthenticator(s.fcfg, s.cfg, s.log)
	return err
}

// openStorage opens the database and the self-monitoring registry.
func (s *server) openStorage(lc *lifecycle) error {
	cfg, log := s.cfg, s.log
	s.limiter = limits.New(s.fcfg.Limits, nil)
	db, err := storage.Open(cfg.dataDir, &storage.Options{
		Shards:              cfg.shards,
		Retention:           cfg.rawRetention(),
		Tiers:               cfg.retentionTiers.tiers,
		TenantRetention:     func(t string) storage.RetentionPolicy { return s.limiter.Config().For(t).RetentionPolicy() },
		MaxBytes:            cfg.maxBytes,
		MaxSeries:           cfg.maxSeries,
		TenantMaxSeries:     func(t string) int { return s.limiter.Config().For(t).MaxSeries },
		WarmBytes:           64 << 20,                             // the newest chunks into the block cache after a restart
		MaxExemplars:        cmp.Or(max(cfg.maxExemplars, 0), -1), // the flag's 0 is "none", the option's "default"
		MaxMetadataFamilies: cfg.maxMetaFamilies,
		Logger:              log.With("component", "storage"),
	})
	if err != nil {
		return fmt.Errorf("open storage in %s: %w", cfg.dataDir, err)
	}
	lc.onClose("storage", func() error {
		t := time.Now()
		if err := db.Close(); err != nil {
			return err
		}
		log.Info("storage flushed and closed", "took", time.Since(t))
		return nil
	})
	s.db = db
	log.Info("storage opened", "dir", cfg.dataDir, "took", time.Since(s.started), "retention", cfg.rawRetention(), "tiers", cfg.retentionTiers.String(), "max_bytes", cfg.maxBytes)
	if cfg.snapshotMaxAge > 0 { // a killed backup leaves its snapshot, pinning disk space
		gone, err := db.RemoveSnapshots(cfg.snapshotDir(), time.Now().Add(-cfg.snapshotMaxAge))
		for _, si := range gone {
			log.Warn("removed a stale snapshot", "name", si.Name, "written", si.Created, "bytes", si.Size, "max_age", cfg.snapshotMaxAge)
		}
		if err != nil {
			log.Error("stale snapshots not removed", "err", err)
		}
	}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.reg.MustRegister(newStorageCollector(db))
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tsdb_build_info", Help: "Build information.", ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))
	return nil
}

// openMetering starts usage metering per tenant (internal/metering):
// storage counts the samples each write stores itself; the meter counts
// the rest and records it into storage every --metering.flush-interval,
// and once more at shutdown, after everything that counts into it has
// stopped and before storage closes.
func (s *server) openMetering(lc *lifecycle) error {
	cfg, db := s.cfg, s.db
	m := metering.New(metering.Options{
		Store: db,
		ActiveSeries: func() map[string]int {
			out := map[string]int{}
			for _, t := range db.Tenants() {
				out[t] = db.TenantSeries(t)
			}
			return out
		},
		StoredBytes: db.StoredBytes,
		Limits: func(t string) metering.Limits {
			l := s.limiter.Config().For(t)
			return metering.Limits{MaxSeries: l.MaxSeries, IngestRate: l.IngestRate}
		},
		IngestRate: func(t string) float64 {
			if s.ingested == nil {
				return 0
			}
			return s.ingested.rate(t)
		},
		FlushInterval: cfg.meterFlush, SampleInterval: cfg.meterSample, BytesInterval: cfg.meterBytes,
		Logger: s.log.With("component", "metering"),
	})
	lc.onClose("metering", func() error {
		m.SampleSeries()
		return m.Flush(context.Background())
	})
	lc.run("metering", func(ctx context.Context) error { m.Run(ctx); return nil })
	s.reg.MustRegister(m.Collector())
	s.meter = m
	return nil
}

// openCluster, with a cluster: section, makes ingest write to Kafka and
// starts consuming this node's partitions of its zone into storage
// (docs/cluster.md). Without one, ingest writes to storage.
//
// Queries then read the whole cluster through the fan-out reader, which
// also serves the nodes' internal read API and the cluster's status.
//
// It also connects the state topic, through which the leader's rule and
// ITSM state is kept (s.kv); openLeadership starts the election.
//
// Usage metering still writes to each node's local storage (#15);
// self-monitoring goes through the cluster (openSelfMonitor).
func (s *server) openCluster(lc *lifecycle) error {
	s.sink, s.reader, s.kv = s.db, s.db, s.db
	cfg := s.fcfg.Cluster
	if cfg == nil {
		return nil
	}
	log := s.log.With("component", "cluster")
	m := kafka.NewMetrics(s.reg)
	ctx, cancel := context.WithTimeout(lc.ctx, 30*time.Second)
	defer cancel()
	p, err := kafka.NewProducer(ctx, *cfg, &kafka.Options{Validate: s.db.Validate, Logger: log, Metrics: m})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	lc.onClose("kafka producer", noErr(p.Close))
	c, err := kafka.NewConsumer(*cfg, s.db, &kafka.Options{Logger: log, Metrics: m})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	lc.onClose("kafka consumer", noErr(c.Close)) // before storage closes: it commits what storage holds
	lc.run("kafka consumer", c.Run)
	url, err := advertiseURL(cfg.AdvertiseURL, s.ln.Addr(), s.cfg.tlsCert != "")
	if err != nil {
		return err
	}
	if len(authUsers(s.fcfg)) > 0 && cfg.Secret == "" {
		return errors.New("cluster: secret: auth: is on, so the nodes' internal reads need a shared secret; set cluster.secret on every node")
	}
	reg, err := kafka.NewRegistry(ctx, *cfg, url, c, &kafka.Options{Logger: log, Metrics: m})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	lc.onClose("kafka registry", noErr(reg.Close))
	lc.run("kafka registry", reg.Run)
	r := kafka.NewReader(*cfg, s.db, reg, c, &kafka.Options{Logger: log, Metrics: m})
	s.kc = &clusterParts{cfg: *cfg, reg: reg, reader: r, metrics: m, log: log}
	st, err := kafka.NewState(ctx, *cfg, s.db, s.stateChanged, &kafka.Options{Logger: log, Metrics: m})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	lc.onClose("kafka state", noErr(st.Close)) // after the leader stopped: its last changes are produced
	s.kc.state = st
	s.sink, s.reader, s.cluster, s.kv = p, r, r, st
	log.Info("cluster: writes go to Kafka, this node consumes its partitions", "brokers", cfg.Brokers, "topic", cfg.Topic,
		"partitions", cfg.Partitions, "zone", cfg.Zone, "group", cfg.Group(), "node", cfg.Node, "advertise_url", url)
	return nil
}

// advertiseURL is cluster.advertise_url, or else the URL of the bound
// address when it names a host (not 0.0.0.0 or ::).
func advertiseURL(configured string, addr net.Addr, https bool) (string, error) {
	if configured != "" {
		return configured, nil
	}
	ta, ok := addr.(*net.TCPAddr)
	if !ok || ta.IP.IsUnspecified() {
		return "", fmt.Errorf("cluster: advertise_url: --listen %s names no host the other nodes can reach; set cluster.advertise_url", addr)
	}
	scheme := "http://"
	if https {
		scheme = "https://"
	}
	return scheme + ta.String(), nil
}

// openIngest prepares every ingest protocol: each writes through the
// tenant limits, its own relabelling and the ingest counters.
func (s *server) openIngest(lc *lifecycle) error {
	cfg, fcfg, log := s.cfg, s.fcfg, s.log
	ingestW := s.limiter.Wrap(s.sink)
	s.ingested = newIngestStats(s.reg)
	lc.run("ingest stats", func(ctx context.Context) error { s.ingested.run(ctx); return nil })
	writer := func(protocol string, rules *relabel.Rules) storage.Writer {
		return relabel.Wrap(metering.Tag(protocol, s.ingested.wrap(protocol, ingestW)), rules)
	}
	inFlight := limits.NewInFlight(cfg.maxInFlight, 0) // one budget for every protocol
	bodyLimits := reqbody.Limits{MaxBodyBytes: cfg.maxBodyBytes, MaxDecodedBytes: cfg.maxDecoded, InFlight: inFlight}
	rw := remotewrite.New(writer("remote_write", &fcfg.Ingest.RemoteWrite), &remotewrite.Options{
		MaxBodyBytes: cfg.maxBodyBytes, MaxDecodedBytes: cfg.maxDecoded, InFlight: inFlight,
		Logger: log.With("component", "remotewrite"), Registerer: s.reg,
	})
	ifx := influx.New(writer("influx", &fcfg.Ingest.Influx), &influx.Options{
		MaxBodyBytes: cfg.maxBodyBytes, MaxDecodedBytes: cfg.maxDecoded, InFlight: inFlight,
		Logger: log.With("component", "influx"), Registerer: s.reg,
	})
	otlpCfg := otlp.DefaultConfig()
	if fcfg.OTLP != nil {
		otlpCfg = *fcfg.OTLP
	}
	ot := otlp.New(writer("otlp", &fcfg.Ingest.OTLP), &otlp.Options{
		Config: otlpCfg, MaxBodyBytes: cfg.maxBodyBytes, MaxDecodedBytes: cfg.maxDecoded, InFlight: inFlight,
		Logger: log.With("component", "otlp"), Registerer: s.reg,
	})
	s.ingest = web.Ingest{
		OTLP:        ot.Serve,
		RemoteWrite: rw.Serve, SenderDone: s.ingested.sawRequest,
		InfluxV1: ifx.ServeV1, InfluxV2: ifx.ServeV2, InfluxPing: ifx.Ping,
		PrometheusImport: promtext.New(writer("prometheus_import", &fcfg.Ingest.PrometheusImport), &promtext.Options{Limits: bodyLimits}).Serve,
		JSONImport:       jsonl.New(writer("jsonl", &fcfg.Ingest.JSONL), &bodyLimits).Serve,
	}
	if err := openInfluxListeners(lc, cfg, len(authUsers(fcfg)) > 0, ifx, log); err != nil {
		return err
	}
	mqttMetrics := mqtt.NewMetrics(s.reg)
	for _, mc := range fcfg.MQTT {
		sub, err := mqtt.Start(context.Background(), mc, writer("mqtt", &fcfg.Ingest.MQTT), mqttMetrics, log.With("component", "mqtt"))
		if err != nil {
			return err
		}
		s.ingested.addSource("mqtt", sub.Broker(), tenantOr(mc.Tenant), sub.Health)
		lc.onClose("mqtt "+mc.Broker, func() error { // unacknowledged messages stay with the broker
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return sub.Stop(sctx)
		})
	}
	if fcfg.SNMP != nil {
		poller, err := snmp.Start(*fcfg.SNMP, writer("snmp", &fcfg.Ingest.SNMP), snmp.NewMetrics(s.reg), log.With("component", "snmp"))
		if err != nil {
			return err
		}
		lc.onClose("snmp", noErr(poller.Stop))
		for _, name := range poller.Targets() {
			s.ingested.addSource("snmp", name, tenantOr(fcfg.SNMP.Tenant), func() health.State { st, _ := poller.Health(name); return st })
		}
	}
	return nil
}

// openQuery makes the query engine and its range-result cache.
func (s *server) openQuery(lc *lifecycle) error {
	cfg := s.cfg
	s.eng = query.NewEngine(s.meter.Reader(s.reader), &query.Options{
		LookbackDelta:  cfg.queryLookback,
		MaxSamples:     cfg.queryMaxSample,
		Timeout:        cfg.queryTimeout,
		MaxSeries:      cfg.queryMaxSeries,
		MaxQueryLength: cfg.queryMaxLength,
		MaxDepth:       cfg.queryMaxDepth,
		MaxTerms:       cfg.queryMaxTerms,
		Features:       cfg.queryFeatures,
	})
	if cfg.queryCache <= 0 {
		// Results saved by an earlier run would miss what this one writes.
		if err := os.Remove(filepath.Join(cfg.dataDir, queryCacheFile)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove saved query results: %w", err)
		}
	}
	if cfg.queryCache > 0 {
		rc, err := query.NewResultCache(cfg.queryCache, cfg.queryCacheOff, nil)
		if err != nil {
			return fmt.Errorf("query cache: %w", err)
		}
		// The cached ranges outlive a clean restart, so that dashboards
		// are as fast after one as before (VictoriaMetrics keeps its
		// rollup cache so too); a crash leaves none (LoadFile removes the
		// file), and another build's are not loaded.
		path, stamp := filepath.Join(cfg.dataDir, queryCacheFile), buildStamp()
		if n, err := rc.LoadFile(path, stamp); err != nil {
			s.log.Warn("saved query results not loaded", "file", path, "err", err)
		} else if n > 0 {
			s.log.Info("saved query results loaded", "ranges", n)
		}
		lc.onClose("query cache", func() error {
			defer rc.Close()
			// NB: a cache that cannot be saved (a full disk) is lost, not
			// a failed shutdown.
			if n, err := rc.SaveFile(path, stamp); err != nil {
				s.log.Warn("query results not saved", "file", path, "err", err)
			} else {
				s.log.Info("query results saved for the next start", "ranges", n)
			}
			return nil
		})
		s.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tsdb_query_cache_hits_total",
				Help: "Range queries that reused cached steps."}, func() float64 { return float64(rc.Hits.Load()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tsdb_query_cache_steps_reused_total",
				Help: "Steps of range queries answered from the cache instead of computed."}, func() float64 { return float64(rc.Steps.Load()) }))
		s.cache = rc
	}
	return nil
}

// queryCacheFile is where, in the data folder, the query cache's ranges
// wait for the next start.
const queryCacheFile = "query-cache.gob"

// buildStamp tells builds apart: a cached result is only as right as the
// engine that computed it.
func buildStamp() string {
	stamp := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, st := range bi.Settings {
			if st.Key == "vcs.revision" || st.Key == "vcs.modified" {
				stamp += " " + st.Value
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil {
			stamp += " " + fi.ModTime().UTC().Format(time.RFC3339Nano)
		}
	}
	return stamp
}

// openAlerting opens the notifiers, ITSM and KPIs first, then the rules
// that feed them, so that at shutdown the rules stop before what they
// feed.
func (s *server) openAlerting(lc *lifecycle) error {
	cfg, fcfg, log := s.cfg, s.fcfg, s.log
	var notifier ruler.Notifier
	if len(cfg.alertmanagers) > 0 {
		am, err := ruler.OpenAlertmanagers(cfg.alertmanagers, nil, s.db, log.With("component", "notifier"))
		if err != nil {
			return fmt.Errorf("alertmanager notifier: %w", err)
		}
		am.Register(s.reg)
		notifier = am
		lc.onClose("alertmanager notifier", func() error {
			actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			am.Close(actx)
			return nil
		})
	}
	// In a cluster, rules run on the leader alone (openLeadership), and
	// what they record goes through Kafka as every write does.
	clustered := s.kc != nil
	s.ruler = ruler.New(s.eng, metering.Tag("recording_rules", s.sink), notifier, &ruler.Options{
		Paused:          clustered,
		DefaultInterval: cfg.evalInterval, ExternalURL: cfg.externalURL, Logger: log.With("component", "ruler"), Registerer: s.reg,
		Evaluated: func(tenant string, rules, alertsSent int) {
			s.meter.Add(tenant, metering.RuleEvaluations, uint64(rules))
			s.meter.Add(tenant, metering.AlertsSent, uint64(alertsSent))
		},
	})
	if fcfg.ITSM != nil {
		newITSM := itsm.New
		if clustered {
			newITSM = itsm.NewPaused // the leader resumes it
		}
		m, err := newITSM(*fcfg.ITSM, s.kv, log.With("component", "itsm"), nil)
		if err != nil {
			return err
		}
		lc.onClose("itsm", noErr(m.Close))
		m.OnDelivered(func(tenant, _ string) { s.meter.Add(tenant, metering.NotificationsSent, 1) })
		s.ruler.OnEvent(m.HandleAlert)
		m.Register(s.reg)
		if !clustered {
			lc.run("itsm timers", func(ctx context.Context) error { tick(ctx, itsmTick, m.Tick); return nil })
		}
		s.itsm = m
	}
	if err := s.openKPIs(lc); err != nil {
		return err
	}
	lc.onClose("ruler", noErr(s.ruler.Stop)) // before Load: a failed Load may have started groups
	if err := s.loadRules(); err != nil {
		return err
	}
	if err := s.ruler.LoadStored(s.kv); err != nil {
		log.Error("rule groups stored through the API not loaded", "err", err)
	}
	if cfg.firstRun && cfg.selfInterval > 0 {
		if err := s.installFirstRunRules(); err != nil {
			log.Error("first run: alert rules about tsdb not stored", "err", err)
		}
	}
	return nil
}

// openKPIs starts the KPI engine; with no kpis: configured it still
// answers ad hoc forecasts (/api/v1/forecast).
func (s *server) openKPIs(lc *lifecycle) error {
	cfg, fcfg, log := s.cfg, s.fcfg, s.log
	var inc kpi.Incidents // stays a nil interface without ITSM
	if s.itsm != nil {
		inc = s.itsm
	}
	k, err := kpi.New(fcfg.KPIs, s.eng, s.sink, inc, &kpi.Options{Logger: log.With("component", "kpi"), ExternalURL: cfg.externalURL,
		Calendars: fcfg.Calendars, Store: s.kv})
	if err != nil {
		return err
	}
	if s.kc == nil { // in a cluster the leader runs them (openLeadership)
		lc.run("kpis", func(ctx context.Context) error { k.Run(ctx); return nil })
	}
	log.Info("KPIs forecast", "kpis", len(fcfg.KPIs), "incidents", s.itsm != nil)
	s.kpis = k
	return nil
}

func (s *server) loadRules() error {
	if err := s.ruler.Load(s.ruleFile); err != nil {
		s.log.Error("rules not reloaded; the previous rules keep running", "err", err)
		return err
	}
	s.log.Info("rules loaded", "files", len(s.ruleFile), "groups", len(s.ruler.Groups()))
	return nil
}

// openSelfMonitor writes tsdb's own metrics into its storage, in the
// tenant --self-monitor.tenant, as job="tsdb" (off with an interval of 0).
// In a cluster they go through Kafka like any write, as
// instance="<zone>/<node>": every node's metrics are read through any node.
func (s *server) openSelfMonitor(lc *lifecycle) error {
	if s.cfg.selfInterval <= 0 {
		return nil
	}
	instance := s.ln.Addr().String()
	if n := s.nodeName(); n != "" {
		instance = n
	}
	m := &selfMonitor{gather: s.reg, w: metering.Tag("self_monitoring", s.sink), tenant: s.cfg.selfTenant, instance: instance,
		log: s.log.With("component", "self-monitor"), now: time.Now}
	lc.run("self-monitoring", func(ctx context.Context) error { m.run(ctx, s.cfg.selfInterval); return nil })
	s.log.Info("self-monitoring: tsdb's metrics are stored as job=\"tsdb\"", "tenant", s.cfg.selfTenant, "interval", s.cfg.selfInterval)
	return nil
}

// openReload makes the reload function and reloads on SIGHUP.
func (s *server) openReload(lc *lifecycle) error {
	reload := newReloader(s.cfg, s.authn, s.limiter, s.loadRules, s.log)
	s.reload = func() ([]string, error) {
		restart, err := reload()
		s.cstat.loaded(err)
		return restart, err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	lc.onClose("SIGHUP", noErr(func() { signal.Stop(hup) }))
	lc.run("SIGHUP", func(ctx context.Context) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				_, _ = s.reload()
			}
		}
	})
	return nil
}

// serveHTTP starts serving the API on the bound port; at shutdown it
// reports not ready and drains requests in flight.
func (s *server) serveHTTP(lc *lifecycle, ready chan<- string) error {
	cfg, log := s.cfg, s.log
	mem := newMemoryGuard(lc.ctx, cfg.memoryBudget, log)
	var shuttingDown atomic.Bool
	var admin web.Admin
	if cfg.enableAdmin {
		admin = s.db
	}
	// The audit log of changes made through the API, per tenant, in the
	// database (internal/audit: the last 100,000 entries or 90 days).
	auditLog, err := audit.Open(s.db, &audit.Options{Logger: log.With("component", "audit")})
	if err != nil {
		return err
	}
	api := web.New(web.Deps{
		Reader: s.reader, Engine: s.eng, Cluster: s.cluster, Cache: s.cache, Admin: admin, SnapshotDir: cfg.snapshotDir(),
		Ruler: s.ruler, RuleStore: s.kv, ITSM: s.itsm, KPIs: s.kpis, Leader: s.toLeader, Node: s.nodeName(),
		Ingest:       s.ingest,
		IngestStatus: ingestStatus(s.ingested, s.db.TenantSeries, s.started),
		Usage:        s.meter,
		Console:      s.cons,
		Auth:         s.authn.Load,
		Shedding:     mem.shed,
		// Not while shutting down, nor while storage refuses writes (a
		// full disk), nor while the block cache warms after a restart
		// (3 s at most); in a cluster, nor while Kafka is out of reach or
		// this node's partitions are not caught up.
		Ready: func() error {
			if shuttingDown.Load() {
				return errors.New("shutting down")
			}
			if err := s.db.Writable(); err != nil {
				return err
			}
			if err := s.db.Warming(); err != nil {
				return err
			}
			if s.kc != nil {
				return s.kc.reg.Ready()
			}
			return nil
		},
		Reload:       s.reload,
		Audit:        auditLog,
		Gatherer:     s.reg,
		Registerer:   s.reg,
		Logger:       log.With("component", "api"),
		QueryTimeout: cfg.queryTimeout, MaxConcurrentQueries: cfg.queryMaxConc,
		TenantQueryLimit: func(t string) int { return s.limiter.Config().For(t).MaxQueryConcurrency },
		Version:          version,
		Status:           web.Status{Flags: cfg.flags, Config: s.cstat.config, Runtime: s.cstat.runtime(cfg.rawRetention())},
	})
	perIP := cfg.maxConnsPerIP
	if perIP == 0 {
		perIP = -1 // the flag's 0 is "no bound"; the option's is "default"
	}
	srv := web.NewServer(api, web.ServerOptions{
		MaxBodyBytes:        cfg.maxBodyBytes + 1<<20,
		TooLargeMessage:     fmt.Sprintf("request body is larger than the limit of %d bytes (--remote-write.max-body-bytes)", cfg.maxBodyBytes),
		MaxHeaderBytes:      cfg.maxHeaderBytes,
		HeaderReadTimeout:   cfg.headerTimeout,
		ReadTimeout:         cfg.readTimeout,
		IdleTimeout:         cfg.idleTimeout,
		MaxConnections:      cfg.maxConnections,
		MaxConnectionsPerIP: perIP,
		Registerer:          s.reg,
		Logger:              log,
	})
	lc.run("http server", func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(s.ln) }()
		select {
		case err := <-errc:
			log.Error("http server stopped", "err", err)
			return err
		case <-ctx.Done():
		}
		shuttingDown.Store(true)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownWait)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("http shutdown", "err", err)
		}
		return nil
	})
	log.Info("serving", "addr", s.ln.Addr().String(), "version", version)
	if ready != nil {
		ready <- s.ln.Addr().String()
	}
	return nil
}

// tick calls f every d until ctx is done.
func tick(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// openInfluxListeners opens the line-protocol listeners over TCP and UDP
// that cfg asks for. They have no authentication: with authentication on
// they refuse to start unless --influx.tenant names the tenant they write
// into (before #23 they wrote into the default tenant without a word), and
// they say at start that anyone who reaches them writes there.
func openInfluxListeners(lc *lifecycle, cfg *serveConfig, authOn bool, ifx *influx.Handler, log *slog.Logger) error {
	if cfg.influxTCP == "" && cfg.influxUDP == "" {
		return nil
	}
	tenant := cfg.influxTenant
	if tenant == "" {
		if authOn {
			return errors.New("--influx.listen-tcp and --influx.listen-udp take writes without authentication, and auth: is on: " +
				"name the tenant they write into with --influx.tenant (anyone who reaches them can write into it), or turn them off")
		}
		tenant = tenancy.Default
	}
	if _, err := tenancy.Parse(tenant); err != nil {
		return fmt.Errorf("--influx.tenant: %w", err)
	}
	if authOn {
		log.Warn("influx line protocol listeners take writes without authentication: anyone who reaches them writes into their tenant",
			"tenant", tenant, "tcp", cfg.influxTCP, "udp", cfg.influxUDP)
	}
	if cfg.influxTCP != "" {
		ln, err := net.Listen("tcp", cfg.influxTCP)
		if err != nil {
			return fmt.Errorf("influx tcp listener: %w", err)
		}
		lc.run("influx tcp", func(ctx context.Context) error {
			go func() { <-ctx.Done(); ln.Close() }()
			return ifx.ServeTCP(ln, tenant)
		})
		log.Info("influx line protocol over tcp", "addr", ln.Addr().String(), "tenant", tenant)
	}
	if cfg.influxUDP != "" {
		pc, err := net.ListenPacket("udp", cfg.influxUDP)
		if err != nil {
			return fmt.Errorf("influx udp listener: %w", err)
		}
		lc.run("influx udp", func(ctx context.Context) error {
			go func() { <-ctx.Done(); pc.Close() }()
			return ifx.ServeUDP(pc, tenant)
		})
		log.Info("influx line protocol over udp", "addr", pc.LocalAddr().String(), "tenant", tenant)
	}
	return nil
}

// newAuthenticator turns authentication on when the config has users; it
// warns when it is off on an address others can reach.
func newAuthenticator(fcfg *fileConfig, cfg *serveConfig, log *slog.Logger) (*atomic.Pointer[auth.Authenticator], error) {
	var authn atomic.Pointer[auth.Authenticator]
	if fcfg.Auth != nil && len(fcfg.Auth.Users) > 0 {
		a, err := auth.New(*fcfg.Auth)
		if err != nil {
			return nil, err
		}
		authn.Store(a)
		log.Info("authentication on", "users", len(fcfg.Auth.Users))
	} else if host, _, _ := net.SplitHostPort(cfg.listen); !isLoopback(host) {
		log.Warn("no auth: configured in --config.file, and --listen is not a loopback address: anyone who reaches it can read, write and delete data", "listen", cfg.listen)
	} else {
		log.Info("no auth: configured: serving on loopback only", "listen", cfg.listen)
	}
	return &authn, nil
}

// newReloader returns the reload function: it re-reads the rule files and
// the config file; rules, auth and limits change in place, all or
// nothing, and it names the changed sections that need a restart.
func newReloader(cfg *serveConfig, authn *atomic.Pointer[auth.Authenticator], limiter *limits.Limiter,
	loadRules func() error, log *slog.Logger) func() ([]string, error) {
	baseline, _ := loadConfig(cfg.configFile) // as read, before Start filled in defaults
	var mu sync.Mutex
	return func() ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
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
}
