// Command kpiaccuracy runs the KPI breach-warning accuracy suite (see
// package kpiaccuracy) for one or more seeds and writes the reports as
// JSON and Markdown.
//
//	go run ./benchmarks/cmd/kpiaccuracy --seeds 1,2,3 --cases 20 --out benchmarks/results/kpi-accuracy
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emsdb/tsdb/benchmarks/kpiaccuracy"
	"github.com/emsdb/tsdb/internal/duration"
)

func main() {
	seeds := flag.String("seeds", "1", "comma-separated seeds")
	cases := flag.Int("cases", 20, "cases of each kind, per cadence and seed")
	out := flag.String("out", "", "directory for report.json and report.md (default: stdout only)")
	frontier := flag.Bool("frontier", false, "add what other warn probabilities and confirms would have done with the same forecasts")
	flag.Parse()
	var md strings.Builder
	fmt.Fprintf(&md, "# KPI breach-warning accuracy\n\n%s; %d cases of each kind per cadence and seed, half of them ceilings (mirrored). Warn at p ≥ 0.8; a warning counts when it stands at least an hour before the first sample on the wrong side (outside holidays), and is false when no breach follows within the horizon (the samples go on for a horizon after the window, so that a warning late in it is judged as any other; a breach there is not one of the window's); \"early\" false warnings are those of a breach that came later than the horizon, \"standing\" the early ones still open when it came.\n\n",
		time.Now().UTC().Format("2006-01-02"), *cases)
	md.WriteString("| cadence | history | evaluated over | every | horizon | confirm | kinds |\n|---|---|---|---|---|---|---|\n")
	for _, w := range kpiaccuracy.Worlds {
		confirm := w.Confirm
		if confirm == 0 {
			confirm = 2
		}
		fmt.Fprintf(&md, "| %s | %s | %s | %s | %s | %d | %s |\n", w.Name, duration.String(w.History), duration.String(w.Window),
			duration.String(time.Duration(w.EvalEvery)*w.Step), duration.String(w.Horizon), confirm, strings.Join(w.Kinds, ", "))
	}
	md.WriteString("\n")
	reports := map[string]kpiaccuracy.Report{}
	traced := map[uint64][]kpiaccuracy.Traced{}
	ours, ref := map[uint64]kpiaccuracy.Report{}, map[uint64]kpiaccuracy.Report{}
	clair := map[uint64][]kpiaccuracy.Traced{}
	for _, s := range strings.Split(*seeds, ",") {
		seed, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad seed:", s)
			os.Exit(2)
		}
		t0 := time.Now()
		tr, err := kpiaccuracy.TraceAll(seed, *cases)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		traced[seed] = tr
		rep, _ := kpiaccuracy.Judged(seed, tr, nil)
		reports[s] = rep
		ours[seed] = rep
		clair[seed] = kpiaccuracy.ClairvoyantAll(seed, *cases)
		ref[seed], _ = kpiaccuracy.Judged(seed, clair[seed], nil)
		fmt.Fprintf(&md, "## Seed %d (%s)\n\n%s\n", seed, time.Since(t0).Round(time.Second), rep.Markdown())
	}
	md.WriteString("## Against a clairvoyant\n\nThe same cases evaluated by a forecaster that knows each case's mean path and noise (`kpiaccuracy.Clairvoyant`: its breach probability is exact), judged by the same warn probability and confirm: what it misses and warns falsely is what the noise of the cases leaves to any forecaster — a breach by an excursion while the mean is still a σ or two away cannot be seen coming, and a warning at p is right only with probability p. Bold: the issue's target (≥ 95 % warned, ≤ 5 % false) met.\n\n")
	md.WriteString(kpiaccuracy.Against(ours, ref))
	md.WriteString("\n")
	if *frontier {
		md.WriteString("## Thresholds\n\nThe same forecasts judged by other warn probabilities and confirms (every cadence's KPIs alike), over all seeds: what an owner could trade between warnings in time and false ones without better forecasts.\n\n")
		md.WriteString(kpiaccuracy.Frontier(traced, []float64{0.6, 0.7, 0.8, 0.9, 0.95}, []int{1, 2, 3}))
		md.WriteString("\nThe clairvoyant's, by the same thresholds: the best any forecaster could do on these cases.\n\n")
		md.WriteString(kpiaccuracy.Frontier(clair, []float64{0.5, 0.6, 0.7, 0.8, 0.9, 0.95}, []int{1, 2, 3}))
	}
	fmt.Print(md.String())
	if *out == "" {
		return
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	js, _ := json.MarshalIndent(reports, "", "  ")
	for name, body := range map[string][]byte{"report.json": js, "report.md": []byte(md.String())} {
		if err := os.WriteFile(filepath.Join(*out, name), body, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
