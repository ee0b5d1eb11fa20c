// Package kpiaccuracy measures how well KPI breach warnings work: it
// generates synthetic KPI series (trend, daily seasonality, noise, level
// shifts; genuine breaches and none) with a fixed seed, replays each one
// through the production path (kpi.Predict and kpi.Tracker, exactly what
// the KPI engine runs), and reports recall of warnings at least an hour
// ahead, the share of false warnings and the median lead time.
package kpiaccuracy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/emsdb/tsdb/alerting/forecast"
	"github.com/emsdb/tsdb/alerting/kpi"
)

// The simulated world: 15-minute samples, 7 days of history before a
// 2-day evaluation window, evaluated every 30 minutes with a 12-hour
// horizon.
const (
	Step      = 15 * time.Minute
	History   = 7 * 24 * time.Hour
	Window    = 2 * 24 * time.Hour
	EvalEvery = 2 // steps
	Horizon   = 12 * time.Hour
	day       = int(24 * time.Hour / Step)
	histN     = int(History / Step)
	total     = histN + int(Window/Step)
)

// Case is one synthetic KPI.
type Case struct {
	Kind      string
	Direction string
	Target    float64
	Values    []float64 // total points
	// BreachAt is the index of the first sample on the wrong side within
	// the evaluation window, or -1.
	BreachAt int
}

// Kinds of cases, each generated Cases/len(Kinds) times.
var Kinds = []string{"stable", "noisy", "drift", "seasonal_trend", "shift_ok", "shift_drift", "slow_drift"}

// Generate builds n cases with a fixed seed.
func Generate(seed uint64, n int) []Case {
	r := rand.New(rand.NewPCG(seed, 42))
	var out []Case
	for i := range n {
		out = append(out, gen(r, Kinds[i%len(Kinds)], i%2 == 1))
	}
	return out
}

func gen(r *rand.Rand, kind string, below bool) Case {
	const level = 100.0
	amp := 0.0
	if r.Float64() < 0.7 {
		amp = 2 + 4*r.Float64()
	}
	phase := 2 * math.Pi * r.Float64()
	sigma := 0.3 + 0.7*r.Float64()
	if kind == "noisy" {
		sigma = 2
	}
	gap := 6*sigma + 4*r.Float64() // from the seasonal trough to the target
	target := level - amp - gap
	start := histN + int((6*time.Hour+time.Duration(r.Float64()*float64(24*time.Hour)))/Step) // in the window, ≥ 6h in
	// cross is how many steps a drift takes to eat the gap.
	cross := int((4*time.Hour + time.Duration(r.Float64()*float64(12*time.Hour))) / Step)
	shift := 0.3 + 0.3*r.Float64()
	slow := int((24*time.Hour + time.Duration(r.Float64()*float64(24*time.Hour))) / Step)
	reach := histN + int((24*time.Hour+time.Duration(r.Float64()*float64(16*time.Hour)))/Step)
	v := make([]float64, total)
	for i := range v {
		x := level + amp*math.Sin(2*math.Pi*float64(i)/float64(day)+phase) + sigma*r.NormFloat64()
		switch kind {
		case "drift":
			if i > start {
				x -= gap * float64(i-start) / float64(cross)
			}
		case "seasonal_trend":
			// From 12 hours before the window the level sinks so that the
			// mean troughs reach the target 24 to 40 hours into it; noise
			// breaches a little earlier.
			if sink := histN - day/2; i > sink {
				x -= gap * float64(i-sink) / float64(reach-sink)
			}
		case "shift_ok":
			if i > start {
				x -= shift * gap
			}
		case "shift_drift":
			if i > start {
				x -= 0.4 * gap
			}
			if i > start+8 {
				x -= 0.6 * gap * float64(i-start-8) / float64(cross)
			}
		case "slow_drift":
			// A drift that would take 24 to 48 hours to reach the target
			// (beyond the horizon) and stops after eating 40% of the gap.
			if i > start {
				x -= math.Min(gap*float64(i-start)/float64(slow), 0.4*gap)
			}
		}
		v[i] = x
	}
	c := Case{Kind: kind, Direction: "above", Target: target, Values: v, BreachAt: -1}
	if below { // mirror: a ceiling instead of a floor
		for i := range c.Values {
			c.Values[i] = 2*level - c.Values[i]
		}
		c.Direction, c.Target = "below", 2*level-target
	}
	for i := histN; i < total; i++ {
		if wrong(c.Direction, c.Target, c.Values[i]) {
			c.BreachAt = i
			break
		}
	}
	return c
}

func wrong(dir string, target, v float64) bool {
	if dir == "below" {
		return v > target
	}
	return v < target
}

// Outcome is what the warnings did on one case.
type Outcome struct {
	Kind     string
	Breach   bool
	Warned   bool          // a warning was standing when the breach came
	Lead     time.Duration // breach time − start of that warning
	Warnings int           // warnings raised
	False    int           // warnings not followed by a breach within the horizon
}

// Replay runs a case through kpi.Predict and kpi.Tracker.
func Replay(c Case) (Outcome, error) {
	d := kpi.Definition{Name: "k", Expr: "k", Target: c.Target, Direction: c.Direction, Interval: EvalEvery * Step,
		Horizon: Horizon, Step: Step, History: History, Seasonality: "auto"}
	if err := d.Validate(); err != nil {
		return Outcome{}, err
	}
	tr := kpi.NewTracker(d.WarnProbability, d.Confirm)
	o := Outcome{Kind: c.Kind, Breach: c.BreachAt >= 0}
	t0 := time.Unix(0, 0)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * Step) }
	var warnStart int = -1
	var warns []int
	for e := histN; e < total; e += EvalEvery {
		if o.Breach && e >= c.BreachAt {
			// What happens after the breach is the breach incident's
			// business; a warning standing now was a warning in time.
			if warnStart >= 0 {
				o.Warned, o.Lead = true, at(c.BreachAt).Sub(at(warnStart))
			}
			break
		}
		y := c.Values[e-histN+1 : e+1]
		_, a, _, err := kpi.Predict(&d, y)
		if err != nil {
			return o, err
		}
		var eta time.Time
		if a.ETA > 0 {
			eta = at(e + a.ETA)
		}
		switch tr.Observe(at(e), wrong(c.Direction, c.Target, c.Values[e]), a.Probability, eta) {
		case kpi.Warn:
			warns = append(warns, e)
			warnStart = e
		case kpi.Cancel:
			warnStart = -1
		}
	}
	o.Warnings = len(warns)
	h := int(Horizon / Step)
	for _, w := range warns {
		if c.BreachAt < 0 || c.BreachAt-w > h {
			o.False++
		}
	}
	return o, nil
}

// Report sums up a run.
type Report struct {
	Cases, Breaches, WarnedAhead1h int
	Warnings, FalseWarnings        int
	NoBreachCasesWarned            int
	Recall1h, FalseShare           float64
	MedianLead                     time.Duration
	ByKind                         map[string][3]int // cases, breaches warned ≥1h, false warnings
}

// Run generates and replays n cases.
func Run(seed uint64, n int) (Report, []Outcome, error) {
	rep := Report{ByKind: map[string][3]int{}}
	var leads []float64
	var outs []Outcome
	for _, c := range Generate(seed, n) {
		o, err := Replay(c)
		if err != nil {
			return rep, nil, err
		}
		outs = append(outs, o)
		k := rep.ByKind[o.Kind]
		k[0]++
		rep.Cases++
		rep.Warnings += o.Warnings
		rep.FalseWarnings += o.False
		k[2] += o.False
		if o.Breach {
			rep.Breaches++
			if o.Warned && o.Lead >= time.Hour {
				rep.WarnedAhead1h++
				k[1]++
			}
			if o.Warned {
				leads = append(leads, o.Lead.Hours())
			}
		} else if o.Warnings > 0 {
			rep.NoBreachCasesWarned++
		}
		rep.ByKind[o.Kind] = k
	}
	if rep.Breaches > 0 {
		rep.Recall1h = float64(rep.WarnedAhead1h) / float64(rep.Breaches)
	}
	if rep.Warnings > 0 {
		rep.FalseShare = float64(rep.FalseWarnings) / float64(rep.Warnings)
	}
	rep.MedianLead = time.Duration(forecast.Median(leads) * float64(time.Hour)).Round(time.Minute)
	return rep, outs, nil
}

// Markdown renders the report as a table.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| cases | breaches | warned ≥1h ahead | recall | warnings | false | false share | no-breach cases warned | median lead |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %.1f%% | %d | %d | %.1f%% | %d | %s |\n\n", r.Cases, r.Breaches, r.WarnedAhead1h, 100*r.Recall1h,
		r.Warnings, r.FalseWarnings, 100*r.FalseShare, r.NoBreachCasesWarned, r.MedianLead)
	fmt.Fprintf(&b, "| kind | cases | breaches warned ≥1h | false warnings |\n|---|---|---|---|\n")
	kinds := make([]string, 0, len(r.ByKind))
	for k := range r.ByKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		v := r.ByKind[k]
		fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", k, v[0], v[1], v[2])
	}
	return b.String()
}
