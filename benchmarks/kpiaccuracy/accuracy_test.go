package kpiaccuracy

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// floors are what the suite holds on seed 1 (ten cases of each kind):
// recall of warnings ≥ 1 h ahead and the share of false warnings, by
// cadence. They guard against regressions; the target (≥ 95%,
// ≤ 5% on every cadence) is not reached everywhere yet — see
// benchmarks/results/kpi-accuracy for the full runs.
var floors = map[string]struct{ recall, falseShare float64 }{
	"15m": {0.85, 0.09},
	"1h":  {0.92, 0.08}, // 3 of 42 warnings: an early one on a drift, two on sinking troughs
	"1d":  {0.94, 0.06},
}

// TestAccuracy replays the synthetic KPIs of every cadence and kind with
// a fixed seed and holds each cadence to its floor.
func TestAccuracy(t *testing.T) {
	rep, _, err := Run(seedFromEnv(), 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Markdown())
	if rep.Breaches < 80 || rep.Cases-rep.Breaches < 80 {
		t.Fatalf("the suite needs both kinds: %d breaches of %d", rep.Breaches, rep.Cases)
	}
	for _, w := range Worlds {
		x, f := rep.ByWorld[w.Name], floors[w.Name]
		if x.Recall1h() < f.recall {
			t.Errorf("%s: %.1f%% of breaches warned ≥1h ahead, want ≥ %.0f%%", w.Name, 100*x.Recall1h(), 100*f.recall)
		}
		if x.FalseShare() > f.falseShare {
			t.Errorf("%s: %.1f%% of warnings false, want ≤ %.0f%%", w.Name, 100*x.FalseShare(), 100*f.falseShare)
		}
	}
}

func seedFromEnv() uint64 {
	if s, err := strconv.ParseUint(os.Getenv("KPI_SEED"), 10, 64); err == nil {
		return s
	}
	return 1
}

// A warning raised late in the window is judged by the samples of its
// horizon, also those after the window: a breach there makes it right,
// not false, and is not one of the window's breaches.
func TestWarningJudgedOverItsHorizon(t *testing.T) {
	w := &Worlds[2] // 1d: 120 days of history, 28 evaluated, 7 of horizon
	c := Case{World: w, Kind: "drift", Direction: "above", Target: 90, BreachAt: -1}
	hist, end := w.steps(w.History), w.steps(w.History+w.Window)
	for i := range end + w.steps(w.Horizon) {
		v := 100 + 0.3*float64(i%2*2-1)
		if d := i - (hist + 18); d > 0 {
			v -= float64(d)
		}
		c.Values = append(c.Values, v)
		if i >= hist && c.BreachAt < 0 && v < c.Target {
			c.BreachAt = i
		}
	}
	if c.BreachAt < end {
		t.Fatalf("the breach is at %d, want after the window's end %d", c.BreachAt, end)
	}
	o, err := Replay(c)
	if err != nil {
		t.Fatal(err)
	}
	if o.Warnings == 0 || o.False != 0 || o.Breach {
		t.Fatalf("warnings %d, false %d, breach in the window %v: want a warning, none false, no breach", o.Warnings, o.False, o.Breach)
	}
	var r Tally
	r.add(o)
	if r.Breaches != 0 || r.NoBreachCasesWarned != 0 {
		t.Fatalf("tally %+v", r)
	}
}

// Judging traced cases by each KPI's own warn probability and confirm is
// Replay, and Frontier's rows are those judgements: the row of a
// cadence's own thresholds counts what its report counts.
func TestFrontierJudgesTheSameForecasts(t *testing.T) {
	traced, err := TraceAll(7, 1)
	if err != nil {
		t.Fatal(err)
	}
	own, _ := Judged(7, traced, nil)
	for _, tr := range traced[:5] {
		o, err := Replay(tr.Case)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := tr.Case.definition()
		if j := Judge(tr.Case, tr.Evals, d.WarnProbability, d.Confirm); j != o {
			t.Fatalf("%s/%s: judged %+v, replayed %+v", tr.Case.World.Name, tr.Case.Kind, j, o)
		}
	}
	if never, _ := Judged(7, traced, &Threshold{Warn: 1.01, Confirm: 1}); never.Warnings != 0 || own.Warnings == 0 {
		t.Fatalf("warnings at p ≥ 1.01: %d (own thresholds: %d)", never.Warnings, own.Warnings)
	}
	table := Frontier(map[uint64][]Traced{7: traced}, []float64{0.8}, []int{1, 2})
	for _, w := range Worlds {
		confirm := max(w.Confirm, 1)
		if w.Confirm == 0 {
			confirm = 2
		}
		x := own.ByWorld[w.Name]
		row := fmt.Sprintf("| %s | 0.80 | %d | %d of %d (%.1f%%) | %d of %d (%.1f%%) |", w.Name, confirm,
			x.WarnedAhead1h, x.Breaches, 100*x.Recall1h(), x.FalseWarnings, x.Warnings, 100*x.FalseShare())
		if !strings.Contains(table, row) {
			t.Errorf("no row %q in\n%s", row, table)
		}
	}
}

// The clairvoyant's probabilities are what they say: of its evaluations
// at about p, about p are followed by a breach within the horizon. A
// wrong sign, σ or direction of the mirrored cases breaks it.
func TestClairvoyantIsCalibrated(t *testing.T) {
	bins := []float64{0.05, 0.3, 0.7, 0.9, 1.01}
	var sumP, hits, n [4]float64
	for _, tr := range ClairvoyantAll(1, 20) {
		c, h := tr.Case, tr.Case.World.steps(tr.Case.World.Horizon)
		for _, ev := range tr.Evals {
			for b := range 4 {
				if ev.Probability >= bins[b] && ev.Probability < bins[b+1] {
					sumP[b] += ev.Probability
					n[b]++
					if c.BreachAt > ev.At && c.BreachAt-ev.At <= h {
						hits[b]++
					}
				}
			}
		}
	}
	for b := range 4 {
		if n[b] < 100 {
			t.Fatalf("bin [%.2f, %.2f): %v evaluations, too few to judge", bins[b], bins[b+1], n[b])
		}
		mean, freq := sumP[b]/n[b], hits[b]/n[b]
		t.Logf("p in [%.2f, %.2f): mean %.3f, breached within the horizon %.3f (%v evaluations)", bins[b], bins[b+1], mean, freq, n[b])
		if math.Abs(mean-freq) > 0.08 {
			t.Errorf("p in [%.2f, %.2f): mean %.3f but %.3f breached within the horizon", bins[b], bins[b+1], mean, freq)
		}
	}
}

// A warning whose breach comes later than its horizon is false; it
// counts as standing only when no cancellation came between it and the
// breach.
func TestEarlyWarningStandingOrCancelled(t *testing.T) {
	w := &Worlds[2] // 1d: horizon 7 steps, confirm 1
	hist := w.steps(w.History)
	c := Case{World: w, Kind: "drift", Direction: "above", Target: 90, BreachAt: hist + 12}
	c.Values = make([]float64, c.end()+w.steps(w.Horizon))
	evals := func(ps ...float64) []Eval {
		var out []Eval
		for i, p := range ps {
			out = append(out, Eval{At: hist + i, Probability: p, ETA: 3})
		}
		return out
	}
	// Warned at step 1 (breach 11 steps later), standing to the breach.
	o := Judge(c, evals(0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9), 0.8, 1)
	if o.False != 1 || o.Early != 1 || o.Standing != 1 || !o.Warned {
		t.Fatalf("standing: %+v", o)
	}
	// The same warning cancelled, then a second one within the horizon.
	o = Judge(c, evals(0, 0.9, 0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9), 0.8, 1)
	if o.Warnings != 2 || o.False != 1 || o.Early != 1 || o.Standing != 0 || !o.Warned {
		t.Fatalf("cancelled: %+v", o)
	}
	var r Tally
	r.add(o)
	if r.FalseShare() != 0.5 || r.FalseShareStanding() != 0.5 {
		t.Fatalf("tally %+v: false share %.2f, less standing %.2f", r, r.FalseShare(), r.FalseShareStanding())
	}
	r = Tally{}
	r.add(Judge(c, evals(0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9), 0.8, 1))
	if r.FalseShare() != 1 || r.FalseShareStanding() != 0 || r.Met(false) || !r.Met(true) {
		t.Fatalf("tally %+v: false share %.2f, less standing %.2f", r, r.FalseShare(), r.FalseShareStanding())
	}
}
