package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/emsdb/tsdb/alerting/kpi"
	"github.com/emsdb/tsdb/internal/duration"
	"github.com/emsdb/tsdb/internal/tenancy"
	"github.com/emsdb/tsdb/query"
	"github.com/emsdb/tsdb/storage"
)

// kpisBacktest is `tsdb kpis backtest`: replay a configured KPI over the
// history in a data folder (the server must be stopped, or give it a
// copy: tsdb backup) exactly as the engine runs it, and report when it
// would have warned, how early, the false warnings and the missed
// breaches — so that warn_probability and confirm can be tuned before
// relying on them. It writes nothing.
func kpisBacktest(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("kpis backtest", flag.ContinueOnError)
	cfgFile := fs.String("config.file", "", "YAML `file` with the kpis: (and calendars:) sections, as tsdb serve reads it")
	data := fs.String("data", "data", "data `folder` (tsdb must not be running on it)")
	name := fs.String("kpi", "", "the KPI's `name`")
	tenant := fs.String("tenant", tenancy.Default, "the KPI's `tenant`")
	from := fs.String("from", "", "start `time` (RFC 3339 or Unix seconds; default --to minus 7d)")
	to := fs.String("to", "", "end `time` (default now)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	end, err := parseWhen(*to, time.Now())
	if err != nil {
		return fmt.Errorf("--to: want a time, got %q", *to)
	}
	start, err := parseWhen(*from, end.Add(-7*24*time.Hour))
	if err != nil || start.After(end) {
		return fmt.Errorf("--from: want a time not after --to, got %q", *from)
	}
	fcfg, err := loadConfig(*cfgFile)
	if err != nil {
		return err
	}
	if *name == "" {
		return errors.New("--kpi: name the KPI to replay")
	}
	db, err := storage.Open(*data, &storage.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("open %s (is tsdb still running on it?): %w", *data, err)
	}
	defer db.Close()
	eng, err := kpi.New(fcfg.KPIs, query.NewEngine(db, nil), db, nil, &kpi.Options{Calendars: fcfg.Calendars})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := eng.Backtest(ctx, *tenant, *name, start, end)
	if errors.Is(err, kpi.ErrUnknown) {
		return fmt.Errorf("no KPI %q for tenant %q in %s", *name, *tenant, *cfgFile)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	writeBacktest(out, rep)
	return nil
}

// writeBacktest prints a report for people.
func writeBacktest(out io.Writer, r *kpi.Report) {
	d := r.Definition
	fmt.Fprintf(out, "KPI %s (%s %s %g), %s to %s: %d evaluations every %s, %d without a forecast\n",
		r.KPI, d.Expr, d.Direction, d.Target, r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339),
		r.Evaluations, duration.String(d.Interval), r.Failed)
	falses := 0
	for _, w := range r.Warnings {
		switch {
		case w.False:
			falses++
			fmt.Fprintf(out, "  warned %s: false warning\n", w.At.UTC().Format(time.RFC3339))
		case w.Breach != nil:
			fmt.Fprintf(out, "  warned %s: breached %s, %s ahead\n", w.At.UTC().Format(time.RFC3339), w.Breach.UTC().Format(time.RFC3339), duration.String(w.Lead.Round(time.Second)))
		default:
			fmt.Fprintf(out, "  warned %s: still open at the end\n", w.At.UTC().Format(time.RFC3339))
		}
	}
	for _, m := range r.Missed {
		fmt.Fprintf(out, "  breached %s without a warning\n", m.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(out, "warnings %d (false %d), breaches %d (missed %d), median lead %s\n",
		len(r.Warnings), falses, len(r.Breaches), len(r.Missed), duration.String(r.MedianLead.Round(time.Second)))
}
