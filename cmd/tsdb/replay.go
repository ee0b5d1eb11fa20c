package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/emsdb/tsdb/alerting/ruler"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// replay is `tsdb rules replay`: evaluate rule groups over history in a
// data folder (the server must be stopped), writing recording results and
// ALERTS, or with --dry-run only reporting what would have fired.
func replay(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rules replay", flag.ContinueOnError)
	var globs stringList
	fs.Var(&globs, "rules", "rule `files` (glob; repeatable)")
	data := fs.String("data", "data", "data `folder` (tsdb must not be running on it)")
	from := fs.String("from", "", "start `time` (RFC 3339 or Unix seconds)")
	to := fs.String("to", "", "end `time` (default now)")
	dry := fs.Bool("dry-run", false, "write nothing; report per rule when it would have fired")
	resend := fs.Duration("resend-delay", time.Minute, "for --dry-run: how often a firing alert is re-notified")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start, err := parseWhen(*from, time.Time{})
	if err != nil || start.IsZero() {
		return fmt.Errorf("--from: want a time, got %q", *from)
	}
	end, err := parseWhen(*to, time.Now())
	if err != nil || end.Before(start) {
		return fmt.Errorf("--to: want a time not before --from, got %q", *to)
	}
	files, err := ruleFiles(globs)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no --rules given")
	}
	db, err := storage.Open(*data, &storage.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("open %s (is tsdb still running on it?): %w", *data, err)
	}
	if !*dry {
		// The replay writes into the past: query results the server saved
		// at its last stop may miss what it records.
		if err := os.Remove(filepath.Join(*data, queryCacheFile)); err != nil && !os.IsNotExist(err) {
			db.Close()
			return err
		}
	}
	if *dry {
		// Later rules read what earlier rules recorded: run on a snapshot
		// (hard links, cheap) and throw it away.
		tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(*data)), ".replay-dry-")
		if err != nil {
			db.Close()
			return err
		}
		defer os.RemoveAll(tmp)
		snap := filepath.Join(tmp, "data")
		if err := db.Snapshot(snap); err != nil {
			db.Close()
			return fmt.Errorf("snapshot for the dry run: %w", err)
		}
		db.Close()
		if db, err = storage.Open(snap, &storage.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true}); err != nil {
			return err
		}
	}
	defer db.Close()
	eng := query.NewEngine(db, nil)
	r := ruler.New(eng, db, nil, &ruler.Options{ResendDelay: *resend})
	groups, err := r.Parse(files)
	if err != nil {
		return err
	}
	bt := newBacktest(*resend)
	r.OnEvent(bt.event)

	// Resume: a checkpoint per rule set and range, kept beside the data.
	ckPath := checkpointPath(*data, files, start, end, *dry)
	done := map[string]int64{}
	if !*dry {
		if b, err := os.ReadFile(ckPath); err == nil {
			_ = json.Unmarshal(b, &done)
		}
	}
	total, evals := 0, 0
	for _, g := range groups {
		_, n := evalTimes(start, end, g.Interval)
		total += n
	}
	t0 := time.Now()
	lastReport := time.Now()
	ctx := context.Background()
	for _, g := range groups {
		key := g.File + ";" + g.Name
		ts, _ := evalTimes(start, end, g.Interval)
		if last, ok := done[key]; ok {
			skipped := int(time.UnixMilli(last).Sub(ts)/g.Interval) + 1
			evals += skipped
			ts = time.UnixMilli(last).Add(g.Interval)
		}
		for ; !ts.After(end); ts = ts.Add(g.Interval) {
			g.Eval(ctx, ts)
			evals++
			if time.Since(lastReport) > 500*time.Millisecond {
				progress(os.Stderr, evals, total, t0)
				lastReport = time.Now()
				if !*dry {
					done[key] = ts.UnixMilli()
					writeCheckpoint(ckPath, done)
				}
			}
		}
		if !*dry {
			done[key] = end.UnixMilli()
			writeCheckpoint(ckPath, done)
		}
	}
	progress(os.Stderr, evals, total, t0)
	fmt.Fprintln(os.Stderr)
	rules := 0
	for _, g := range groups {
		rules += len(g.Rules)
	}
	secs := time.Since(t0).Seconds()
	fmt.Fprintf(out, "replayed %d group evaluations (%d rules) from %s to %s in %.1fs: %.0f rule evaluations/s\n",
		evals, rules, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), secs, float64(evals*rules/max(1, len(groups)))/max(secs, 1e-9))
	bt.report(out, end)
	if !*dry {
		_ = os.Remove(ckPath)
	}
	return nil
}

// evalTimes returns the first evaluation time of a group with the given
// interval in [start, end] (aligned to the interval, as the ruler aligns
// them) and how many evaluations the range holds.
func evalTimes(start, end time.Time, interval time.Duration) (time.Time, int) {
	first := start.Truncate(interval)
	if first.Before(start) {
		first = first.Add(interval)
	}
	if first.After(end) {
		return first, 0
	}
	return first, int(end.Sub(first)/interval) + 1
}

func parseWhen(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	var f float64
	if _, err := fmt.Sscanf(s, "%g", &f); err == nil {
		return time.UnixMilli(int64(f * 1000)), nil
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}

func progress(w io.Writer, n, total int, t0 time.Time) {
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(n) / float64(total)
	}
	bar := strings.Repeat("#", int(pct/5)) + strings.Repeat(".", 20-int(pct/5))
	fmt.Fprintf(w, "\r[%s] %5.1f%% %d/%d group evaluations, %.0f/s", bar, pct, n, total, float64(n)/max(time.Since(t0).Seconds(), 1e-9))
}

func checkpointPath(data string, files []string, from, to time.Time, dry bool) string {
	h := sha256.New()
	for _, f := range files {
		b, _ := os.ReadFile(f)
		h.Write(b)
	}
	fmt.Fprintf(h, "%d %d %v", from.UnixMilli(), to.UnixMilli(), dry)
	return filepath.Join(data, "replay-"+hex.EncodeToString(h.Sum(nil))[:16]+".json")
}

func writeCheckpoint(path string, done map[string]int64) {
	b, _ := json.Marshal(done)
	tmp := path + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, path)
	}
}

// backtest collects alert transitions into firing periods per rule.
type backtest struct {
	resend  time.Duration
	open    map[string]time.Time // alert labels -> firing since
	periods map[string][]period  // alertname -> periods
}

type period struct {
	labels   string
	from, to time.Time
}

func newBacktest(resend time.Duration) *backtest {
	return &backtest{resend: resend, open: map[string]time.Time{}, periods: map[string][]period{}}
}

func (b *backtest) event(e ruler.Event) {
	key := e.Alert.Labels.String()
	name := e.Alert.Labels.Get("alertname")
	switch {
	case e.To == ruler.StateFiring:
		b.open[key] = e.At
	case e.From == ruler.StateFiring:
		b.periods[name] = append(b.periods[name], period{key, b.open[key], e.At})
		delete(b.open, key)
	}
}

func (b *backtest) report(w io.Writer, end time.Time) {
	for key, since := range b.open {
		name := strings.SplitN(strings.SplitN(key, `alertname="`, 2)[1], `"`, 2)[0]
		b.periods[name] = append(b.periods[name], period{key, since, end})
	}
	if len(b.periods) == 0 {
		fmt.Fprintln(w, "no alert would have fired")
		return
	}
	names := make([]string, 0, len(b.periods))
	for n := range b.periods {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ps := b.periods[n]
		var total time.Duration
		notifications := 0
		for _, p := range ps {
			d := p.to.Sub(p.from)
			total += d
			notifications += int(d/b.resend) + 2 // firing, resends, resolved
		}
		fmt.Fprintf(w, "%s: would have fired %d times for %s in all (%d notifications, %d incidents)\n", n, len(ps), total, notifications, len(ps))
		sort.Slice(ps, func(i, j int) bool { return ps[i].from.Before(ps[j].from) })
		for _, p := range ps {
			fmt.Fprintf(w, "  %s  %s → %s (%s)\n", p.labels, p.from.UTC().Format(time.RFC3339), p.to.UTC().Format(time.RFC3339), p.to.Sub(p.from))
		}
	}
}
