package ruler

import (
	"context"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/emsdb/tsdb/alerting/rulefmt"
	"github.com/emsdb/tsdb/storage"
)

// Group is a running rule group.
type Group struct {
	Name        string
	File        string
	Tenant      string // whose data it reads and writes; "": the Ruler's
	Interval    time.Duration
	QueryOffset time.Duration
	Limit       int
	Labels      map[string]string
	Rules       []*Rule

	r    *Ruler
	stop chan struct{}
	done chan struct{}
	// started is set once run was started (halt waits for it then).
	started atomic.Bool
	mu      sync.Mutex
	last    time.Time
	dur     time.Duration
	missed  int64
	// restored holds ALERTS_FOR_STATE read at start, by alert labels,
	// until the first evaluation has used it.
	restored map[string]time.Time
}

// Rule is a rule with its evaluation state.
type Rule struct {
	Def  rulefmt.Rule
	Kind string // "recording" or "alerting"

	mu       sync.Mutex
	health   string
	lastErr  string
	lastEval time.Time
	evalDur  time.Duration
	active   map[string]*Alert // by labels
	// written are the series the last evaluation wrote; those missing
	// from the next one get a stale marker, as Prometheus writes.
	written map[string]labels.Labels
}

// markStale adds stale markers for the series written last time and not
// now, and remembers now's series.
func (rl *Rule) markStale(b *storage.Batch, now map[string]labels.Labels, ts int64) {
	stale := math.Float64frombits(storage.StaleNaN)
	for k, ls := range rl.written {
		if _, ok := now[k]; !ok {
			b.Add(ls, storage.Sample{T: ts, V: stale})
		}
	}
	rl.written = now
}

// start runs the group in its goroutine, once.
func (g *Group) start() {
	if g.started.CompareAndSwap(false, true) {
		go g.run()
	}
}

// halt stops the group and waits for its goroutine, if it was started; a
// halted group cannot start again (fresh makes a copy that can).
func (g *Group) halt() {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	if g.started.Load() {
		<-g.done
	}
}

// fresh returns a copy of the group's definition that is not running
// and has no state: its first evaluation restores `for` state.
func (g *Group) fresh() *Group {
	out := &Group{Name: g.Name, File: g.File, Tenant: g.Tenant, Interval: g.Interval, QueryOffset: g.QueryOffset, Limit: g.Limit,
		Labels: g.Labels, r: g.r, stop: make(chan struct{}), done: make(chan struct{}), restored: map[string]time.Time{}}
	for _, rl := range g.Rules {
		out.Rules = append(out.Rules, &Rule{Def: rl.Def, Kind: rl.Kind, health: "unknown", active: map[string]*Alert{}})
	}
	return out
}

func (g *Group) tenant() string {
	if g.Tenant != "" {
		return g.Tenant
	}
	return g.r.opts.Tenant
}

// key names the group in metrics: file;name, as Prometheus does.
func (g *Group) key() string { return g.File + ";" + g.Name }

// metricKey is key as a metric label value: valid UTF-8 even when a
// file name is not (a label value that is not would panic the metrics).
func (g *Group) metricKey() string { return strings.ToValidUTF8(g.key(), "\uFFFD") }

// offset spreads groups over their interval, stably by file and name.
func (g *Group) offset() time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(g.File + "\x00" + g.Name))
	// Whole milliseconds: evaluation times are sample timestamps.
	return time.Duration(h.Sum64()%uint64(max(1, g.Interval.Milliseconds()))) * time.Millisecond
}

// nextEval is the first aligned evaluation time at or after t.
func (g *Group) nextEval(t time.Time) time.Time {
	off := g.offset()
	base := t.Add(-off).Truncate(g.Interval).Add(off)
	if base.Before(t) {
		base = base.Add(g.Interval)
	}
	return base
}

func (g *Group) run() {
	defer close(g.done)
	// Stopping the group cancels the evaluation in flight.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-g.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	next := g.nextEval(g.r.opts.Now())
	first := true
	for {
		wait := next.Sub(g.r.opts.Now())
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-g.stop:
				t.Stop()
				return
			case <-t.C:
			}
		} else {
			select {
			case <-g.stop:
				return
			default:
			}
		}
		if first {
			g.restore(ctx, next)
			first = false
		}
		g.Eval(ctx, next)
		if ctx.Err() != nil {
			return
		}
		next = next.Add(g.Interval)
		if now := g.r.opts.Now(); now.After(next) {
			missed := int64(now.Sub(next)/g.Interval) + 1
			g.mu.Lock()
			g.missed += missed
			g.mu.Unlock()
			g.r.m.missed.WithLabelValues(g.metricKey()).Add(float64(missed))
			g.r.opts.Logger.Warn("rule group missed evaluations", "group", g.Name, "missed", missed)
			next = next.Add(time.Duration(missed) * g.Interval)
		}
	}
}

// Eval evaluates every rule of the group, in order, at ts.
func (g *Group) Eval(ctx context.Context, ts time.Time) {
	start := time.Now()
	var b storage.Batch
	var toSend []*Alert
	evaluated, sent := 0, 0
	if f := g.r.opts.Evaluated; f != nil {
		defer func() { f(g.tenant(), evaluated, sent) }()
	}
	for _, rl := range g.Rules {
		t0 := time.Now()
		var err error
		if rl.Kind == "recording" {
			err = g.evalRecording(ctx, rl, ts, &b)
		} else {
			var send []*Alert
			send, err = g.evalAlerting(ctx, rl, ts, &b)
			toSend = append(toSend, send...)
		}
		g.r.m.evals.WithLabelValues(g.metricKey()).Inc()
		evaluated++
		if ctx.Err() != nil {
			return // stopped: the rest of the group is not evaluated
		}
		rl.mu.Lock()
		rl.lastEval, rl.evalDur = ts, time.Since(t0)
		if err != nil {
			g.r.m.failures.WithLabelValues(g.metricKey()).Inc()
			rl.health, rl.lastErr = "err", err.Error()
			g.r.opts.Logger.Warn("rule evaluation failed", "group", g.Name, "rule", rl.Def.Name(), "err", err)
		} else {
			rl.health, rl.lastErr = "ok", ""
		}
		rl.mu.Unlock()
		// Later rules of the group read what earlier ones recorded.
		if len(b.Series) > 0 {
			if err := g.r.w.Write(ctx, g.tenant(), &b); err != nil {
				g.r.opts.Logger.Error("writing rule results", "group", g.Name, "err", err)
			}
			b = storage.Batch{}
		}
	}
	g.mu.Lock()
	g.last, g.dur = ts, time.Since(start)
	g.restored = nil
	g.mu.Unlock()
	g.r.m.duration.WithLabelValues(g.metricKey()).Set(g.dur.Seconds())
	g.r.m.last.WithLabelValues(g.metricKey()).Set(float64(ts.UnixMilli()) / 1000)
	if len(toSend) > 0 && g.r.notifier != nil {
		g.r.notifier.Send(toSend)
		sent = len(toSend)
	}
}
