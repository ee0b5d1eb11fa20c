// Package kpiaccuracy measures how well KPI breach warnings work: it
// generates synthetic KPI series (trends, daily and weekly seasonality,
// noise, level shifts, holidays; genuine breaches and none) with a fixed
// seed, at the cadences business KPIs are recorded (every 15 minutes,
// hourly, daily), replays each one through the production path
// (Calendar.Ordinary, kpi.Predict and kpi.Tracker, exactly what the KPI
// engine runs), and reports recall of warnings at least an hour ahead,
// the share of false warnings and the median lead time, per cadence and
// kind of scenario.
package kpiaccuracy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emsdb/tsdb/alerting/forecast"
	"github.com/emsdb/tsdb/alerting/kpi"
)

// World is a cadence a KPI is recorded and evaluated at.
type World struct {
	Name      string
	Step      time.Duration // one sample per step
	History   time.Duration // what the models see
	Window    time.Duration // evaluated over, after the history
	EvalEvery int           // steps between evaluations
	Horizon   time.Duration
	// Confirm is the KPIs' confirm: 0 for the default (2).
	Confirm int
	Kinds   []string
}

// Worlds are the cadences of the suite.
var Worlds = []World{
	{Name: "15m", Step: 15 * time.Minute, History: 7 * 24 * time.Hour, Window: 2 * 24 * time.Hour, EvalEvery: 2, Horizon: 12 * time.Hour,
		Kinds: []string{"stable", "noisy", "drift", "noisy_drift", "seasonal_trend", "trough_sink", "shift_ok", "shift_drift", "slow_drift"}},
	{Name: "1h", Step: time.Hour, History: 21 * 24 * time.Hour, Window: 4 * 24 * time.Hour, EvalEvery: 1, Horizon: 24 * time.Hour,
		Kinds: []string{"stable", "weekly", "holiday", "drift", "noisy_drift", "trough_sink", "weekly_drift"}},
	{Name: "1d", Step: 24 * time.Hour, History: 120 * 24 * time.Hour, Window: 28 * 24 * time.Hour, EvalEvery: 1, Horizon: 7 * 24 * time.Hour, Confirm: 1,
		Kinds: []string{"stable", "weekly", "holiday", "drift", "weekly_drift"}},
}

func (w World) steps(d time.Duration) int { return int(d / w.Step) }

// day is a day in steps (at least 1).
func (w World) day() int { return max(w.steps(24*time.Hour), 1) }

// Start is the time of every case's first sample: a Monday, midnight UTC.
var Start = time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)

// Case is one synthetic KPI.
type Case struct {
	World     *World
	Kind      string
	Direction string
	Target    float64
	// Values are the history, the evaluation window and a horizon after
	// it: a warning raised late in the window is judged by the samples
	// its horizon covers, as any other.
	Values []float64
	// Holidays are the days (YYYY-MM-DD, UTC) of the tenant's calendar.
	Holidays []string
	// BreachAt is the index of the first sample on the wrong side after
	// the history outside a holiday (within the window or the horizon
	// after it), or -1.
	BreachAt int
	// Mean is Values without their noise, whose standard deviation is
	// Sigma: what Clairvoyant knows.
	Mean  []float64
	Sigma float64
}

// end is the index after the evaluation window.
func (c *Case) end() int { return c.World.steps(c.World.History + c.World.Window) }

func (c *Case) at(i int) time.Time { return Start.Add(time.Duration(i) * c.World.Step) }

// Generate builds perKind cases of every kind of world w with a fixed
// seed, every other one mirrored (a ceiling instead of a floor).
func Generate(seed uint64, w *World, perKind int) []Case {
	r := rand.New(rand.NewPCG(seed, uint64(w.Step)))
	var out []Case
	for i := range perKind * len(w.Kinds) {
		out = append(out, gen(r, w, w.Kinds[i%len(w.Kinds)], (i/len(w.Kinds))%2 == 1))
	}
	return out
}

func gen(r *rand.Rand, w *World, kind string, below bool) Case {
	const level = 100.0
	hist, end := w.steps(w.History), w.steps(w.History+w.Window)
	total := end + w.steps(w.Horizon)
	day := w.day()
	// The daily cycle (none when a step is a day) and the weekend dip.
	amp := 0.0
	if day > 1 && r.Float64() < 0.7 {
		amp = 2 + 4*r.Float64()
	}
	if kind == "trough_sink" {
		amp = 3 + 3*r.Float64()
	}
	weekend := 0.0
	if strings.HasPrefix(kind, "weekly") || kind == "holiday" {
		weekend = 3 + 3*r.Float64()
	}
	phase := 2 * math.Pi * r.Float64()
	sigma := 0.3 + 0.7*r.Float64()
	if kind == "noisy" || kind == "noisy_drift" {
		sigma = 2
	}
	gap := 6*sigma + 4*r.Float64() // from the lowest ordinary value to the target
	target := level - amp - weekend - gap
	// In steps: when a change starts (≥ 6 hours or 3 days into the window),
	// how long a drift takes to eat the gap, and so on.
	hours := func(lo, hi float64) int {
		return max(int(time.Duration((lo+(hi-lo)*r.Float64())*float64(time.Hour))/w.Step), 1)
	}
	var start, cross int
	switch w.Name {
	case "1d": // the mean reaches the target within the window's 28 days
		start = hist + 3 + r.IntN(6)
		cross = 7 + r.IntN(12)
	default:
		start = hist + hours(6, 30)
		cross = hours(4, 16)
		if w.Name == "1h" {
			cross = hours(8, 36)
		}
		if kind == "noisy_drift" {
			cross = hours(4, 8)
			if w.Name == "1h" {
				cross = hours(6, 12)
			}
		}
	}
	shift := 0.3 + 0.3*r.Float64()
	slow := hours(24, 48)
	reach := hist + hours(24, 40)
	// Holidays: one in the history, one in the window, on weekdays, with
	// a drop past the target.
	var holidays []string
	hol := map[int]bool{}
	if kind == "holiday" {
		for _, d := range []int{(hist/day)/2 + r.IntN(3), (hist+w.steps(w.Window)/2)/day + r.IntN(2)} {
			t := Start.Add(time.Duration(d*day) * w.Step)
			for t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
				t, d = t.Add(24*time.Hour), d+1
			}
			holidays = append(holidays, t.Format(time.DateOnly))
			for i := d * day; i < (d+1)*day; i++ {
				hol[i] = true
			}
		}
	}
	v := make([]float64, total)
	mean := make([]float64, total)
	// The samples after the window draw their noise from a stream of
	// their own, so that the cases before them are the same as when the
	// suite stopped at the window's end.
	noise := r
	for i := range v {
		if i == end {
			noise = rand.New(rand.NewPCG(math.Float64bits(v[end-1]), uint64(end)))
		}
		a := amp
		if kind == "trough_sink" {
			// From half a day before the window the daily cycle deepens
			// so that its troughs reach the target 24 to 40 hours into it.
			if sink := hist - day/2; i > sink {
				a += gap * float64(i-sink) / float64(reach-sink)
			}
		}
		z := sigma * noise.NormFloat64()
		x := level + a*math.Sin(2*math.Pi*float64(i%day)/float64(day)+phase)
		if wd := Start.Add(time.Duration(i) * w.Step).Weekday(); wd == time.Saturday || wd == time.Sunday {
			x -= weekend
		}
		if hol[i] {
			x -= weekend + gap + 2*sigma + 4 // a holiday's low, past the target
		}
		switch kind {
		case "drift", "noisy_drift", "weekly_drift":
			if i > start {
				x -= gap * float64(i-start) / float64(cross)
			}
		case "seasonal_trend":
			// From 12 hours before the window the level sinks so that the
			// mean troughs reach the target 24 to 40 hours into it.
			if sink := hist - day/2; i > sink {
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
		mean[i], v[i] = x, x+z
	}
	c := Case{World: w, Kind: kind, Direction: "above", Target: target, Values: v, Holidays: holidays, BreachAt: -1, Mean: mean, Sigma: sigma}
	if below { // mirror: a ceiling instead of a floor
		for i := range c.Values {
			c.Values[i] = 2*level - c.Values[i]
			c.Mean[i] = 2*level - c.Mean[i]
		}
		c.Direction, c.Target = "below", 2*level-target
	}
	for i := hist; i < total; i++ {
		if !hol[i] && wrong(c.Direction, c.Target, c.Values[i]) {
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
	World, Kind string
	Breach      bool
	Warned      bool          // a warning was standing when the breach came
	Lead        time.Duration // breach time − start of that warning
	Warnings    int           // warnings raised
	False       int           // warnings not followed by a breach within the horizon
	Early       int           // of those, warnings of a breach that came later
	Standing    int           // of those, warnings still standing when it came
}

// Replay runs a case through the calendar, kpi.Predict and kpi.Tracker
// with the KPI's own warn probability and confirm.
func Replay(c Case) (Outcome, error) {
	d, err := c.definition()
	if err != nil {
		return Outcome{}, err
	}
	evals, err := Trace(c)
	if err != nil {
		return Outcome{}, err
	}
	return Judge(c, evals, d.WarnProbability, d.Confirm), nil
}

// definition is the KPI of a case.
func (c *Case) definition() (*kpi.Definition, error) {
	w := c.World
	d := &kpi.Definition{Name: "k", Expr: "k", Target: c.Target, Direction: c.Direction, Interval: time.Duration(w.EvalEvery) * w.Step,
		Horizon: w.Horizon, Step: w.Step, History: w.History, Seasonality: "auto", Confirm: w.Confirm}
	return d, d.Validate()
}

// Eval is one evaluation of a case: its step, the breach probability
// and ETA (steps, 0: the mean forecast does not cross) kpi.Predict gave,
// and whether the KPI was on the wrong side then (outside holidays).
type Eval struct {
	At          int
	Probability float64
	ETA         int
	Breached    bool
}

// Trace evaluates c at every evaluation step of its window until its
// breach, as the KPI engine would: the forecasts, not yet the warnings.
func Trace(c Case) ([]Eval, error) {
	w := c.World
	d, err := c.definition()
	if err != nil {
		return nil, err
	}
	cal := &kpi.Calendar{Holidays: c.Holidays}
	if err := cal.Validate(); err != nil {
		return nil, err
	}
	hist, total := w.steps(w.History), c.end()
	ts := make([]int64, total)
	for i := range ts {
		ts[i] = c.at(i).UnixMilli()
	}
	var out []Eval
	for e := hist; e < total; e += w.EvalEvery {
		if c.BreachAt >= 0 && e >= c.BreachAt {
			break // what comes after is the breach incident's business
		}
		from := e - hist + 1
		y := cal.Ordinary(d, ts[from:e+1], c.Values[from:e+1])
		_, a, _, err := kpi.Predict(d, y)
		if err != nil {
			return out, err
		}
		out = append(out, Eval{At: e, Probability: a.Probability, ETA: a.ETA,
			Breached: wrong(c.Direction, c.Target, c.Values[e]) && !cal.Holiday(c.at(e))})
	}
	return out, nil
}

// Judge runs a case's evaluations through a kpi.Tracker with the given
// warn probability and confirm, and counts what the warnings did.
func Judge(c Case, evals []Eval, warn float64, confirm int) Outcome {
	w := c.World
	tr := kpi.NewTracker(warn, kpi.DefaultWarnAtOnce(warn), confirm)
	// A breach after the window counts only to judge the warnings
	// before it.
	o := Outcome{World: w.Name, Kind: c.Kind, Breach: c.BreachAt >= 0 && c.BreachAt < c.end()}
	warnStart := -1
	var warns []int
	for _, ev := range evals {
		var eta time.Time
		if ev.ETA > 0 {
			eta = c.at(ev.At + ev.ETA)
		}
		switch tr.Observe(c.at(ev.At), ev.Breached, ev.Probability, eta) {
		case kpi.Warn:
			warns = append(warns, ev.At)
			warnStart = ev.At
		case kpi.Cancel:
			warnStart = -1
		}
	}
	// A warning standing at the breach: the trace ends there (a breach
	// after the window: at the window's end, and whether the warning
	// would have stood until the breach is not known).
	standing := o.Breach && warnStart >= 0
	// A warning standing when the breach came was a warning in time.
	if o.Breach && warnStart >= 0 {
		o.Warned, o.Lead = true, c.at(c.BreachAt).Sub(c.at(warnStart))
	}
	o.Warnings = len(warns)
	h := w.steps(w.Horizon)
	for _, x := range warns {
		if c.BreachAt < 0 || c.BreachAt-x > h {
			o.False++
			if c.BreachAt >= 0 {
				o.Early++
				if standing && x == warnStart {
					o.Standing++
				}
			}
		}
	}
	return o
}

// Clairvoyant evaluates c as a forecaster that knows its mean path and
// noise would, at the same evaluation steps as Trace: the probability
// that some sample of the horizon is on the wrong side (outside
// holidays), and the first step the mean is. What it warns and misses
// is what the noise of the case leaves to any forecaster: a breach by
// an excursion while the mean is still a σ or two away cannot be seen
// coming, and a warning at p is right only with probability p.
func Clairvoyant(c Case) []Eval {
	w := c.World
	cal := &kpi.Calendar{Holidays: c.Holidays}
	_ = cal.Validate() // the generator's own dates
	hist, total, h := w.steps(w.History), c.end(), w.steps(w.Horizon)
	var out []Eval
	for e := hist; e < total; e += w.EvalEvery {
		if c.BreachAt >= 0 && e >= c.BreachAt {
			break
		}
		q, eta := 1.0, 0
		for j := e + 1; j <= e+h && j < len(c.Mean); j++ {
			if cal.Holiday(c.at(j)) {
				continue
			}
			z := (c.Target - c.Mean[j]) / c.Sigma
			if c.Direction == "below" {
				z = -z
			}
			q *= 1 - 0.5*math.Erfc(-z/math.Sqrt2)
			if eta == 0 && wrong(c.Direction, c.Target, c.Mean[j]) {
				eta = j - e
			}
		}
		out = append(out, Eval{At: e, Probability: 1 - q, ETA: eta,
			Breached: wrong(c.Direction, c.Target, c.Values[e]) && !cal.Holiday(c.at(e))})
	}
	return out
}

// Tally is recall and false warnings over a set of cases.
type Tally struct {
	Cases, Breaches, WarnedAhead1h int
	Warnings, FalseWarnings        int
	EarlyWarnings                  int // false ones of a breach that came, later than the horizon
	StandingWarnings               int // early ones still standing when the breach came
	NoBreachCasesWarned            int
	leads                          []float64
}

func (t *Tally) add(o Outcome) {
	t.Cases++
	t.Warnings += o.Warnings
	t.FalseWarnings += o.False
	t.EarlyWarnings += o.Early
	t.StandingWarnings += o.Standing
	switch {
	case o.Breach:
		t.Breaches++
		if o.Warned && o.Lead >= time.Hour {
			t.WarnedAhead1h++
		}
		if o.Warned {
			t.leads = append(t.leads, o.Lead.Hours())
		}
	case o.False > 0: // (a warning of a breach after the window is not false)
		t.NoBreachCasesWarned++
	}
}

// Recall1h is the share of breaches warned at least an hour ahead (1
// when there are none).
func (t Tally) Recall1h() float64 {
	if t.Breaches == 0 {
		return 1
	}
	return float64(t.WarnedAhead1h) / float64(t.Breaches)
}

// FalseShare is the share of warnings that were false (0 when none).
func (t Tally) FalseShare() float64 {
	if t.Warnings == 0 {
		return 0
	}
	return float64(t.FalseWarnings) / float64(t.Warnings)
}

// FalseShareStanding is FalseShare not counting the early warnings that
// still stood when their breach came: an owner saw the predicted breach
// open until the breach itself, only later than its horizon said.
func (t Tally) FalseShareStanding() float64 {
	if t.Warnings == 0 {
		return 0
	}
	return float64(t.FalseWarnings-t.StandingWarnings) / float64(t.Warnings)
}

// Met is whether t reaches the target (≥ 95 % of breaches warned
// at least an hour ahead, ≤ 5 % of warnings false), with false counted
// strictly or, when standing, without the warnings standing at their
// breach.
func (t Tally) Met(standing bool) bool {
	f := t.FalseShare()
	if standing {
		f = t.FalseShareStanding()
	}
	return t.Recall1h() >= 0.95 && f <= 0.05
}

// MedianLead is the median time from a warning to its breach.
func (t Tally) MedianLead() time.Duration {
	return time.Duration(forecast.Median(append([]float64(nil), t.leads...)) * float64(time.Hour)).Round(time.Minute)
}

// Report sums up a run of one seed.
type Report struct {
	Seed uint64
	Tally
	// ByKind is by world and kind ("1h/holiday"), ByWorld by world.
	ByKind, ByWorld map[string]*Tally
}

// Run generates and replays perKind cases of every kind of every world,
// on every CPU.
func Run(seed uint64, perKind int) (Report, []Outcome, error) {
	traced, err := TraceAll(seed, perKind)
	if err != nil {
		return Report{Seed: seed}, nil, err
	}
	rep, outs := Judged(seed, traced, nil)
	return rep, outs, nil
}

// Traced is a case with its evaluations.
type Traced struct {
	Case  Case
	Evals []Eval
}

// TraceAll generates perKind cases of every kind of every world and
// traces them, on every CPU.
func TraceAll(seed uint64, perKind int) ([]Traced, error) {
	var cases []Case
	for i := range Worlds {
		cases = append(cases, Generate(seed, &Worlds[i], perKind)...)
	}
	out := make([]Traced, len(cases))
	errs := make([]error, len(cases))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				out[i].Case = cases[i]
				out[i].Evals, errs[i] = Trace(cases[i])
			}
		})
	}
	for i := range cases {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, c := range cases {
		if errs[i] != nil {
			return nil, fmt.Errorf("%s/%s: %w", c.World.Name, c.Kind, errs[i])
		}
	}
	return out, nil
}

// ClairvoyantAll generates perKind cases of every kind of every world
// and evaluates them as Clairvoyant does: the reference that TraceAll's
// forecasts are judged against.
func ClairvoyantAll(seed uint64, perKind int) []Traced {
	var out []Traced
	for i := range Worlds {
		for _, c := range Generate(seed, &Worlds[i], perKind) {
			out = append(out, Traced{Case: c, Evals: Clairvoyant(c)})
		}
	}
	return out
}

// Threshold is a warn probability and a confirm to judge by; the zero
// Threshold is each KPI's own.
type Threshold struct {
	Warn    float64
	Confirm int
}

// Judged tallies traced cases judged by th (nil: each KPI's own).
func Judged(seed uint64, traced []Traced, th *Threshold) (Report, []Outcome) {
	rep := Report{Seed: seed, ByKind: map[string]*Tally{}, ByWorld: map[string]*Tally{}}
	outs := make([]Outcome, len(traced))
	for i, t := range traced {
		warn, confirm := 0.0, 0
		if th != nil {
			warn, confirm = th.Warn, th.Confirm
		} else if d, err := t.Case.definition(); err == nil {
			warn, confirm = d.WarnProbability, d.Confirm
		}
		o := Judge(t.Case, t.Evals, warn, confirm)
		outs[i] = o
		rep.add(o)
		tally(rep.ByKind, o.World+"/"+o.Kind).add(o)
		tally(rep.ByWorld, o.World).add(o)
	}
	return rep, outs
}

// Frontier judges the traced cases of every seed by each pair of warn
// probability and confirm and renders, per world, what every pair would
// have warned and how many of its warnings were false (also without
// those standing at their breach), over all seeds, and on how many seeds
// it meets the target (≥ 95 % of breaches warned at least an
// hour ahead, ≤ 5 % of warnings false) by either count: which thresholds
// an owner could choose, from the same forecasts.
func Frontier(traced map[uint64][]Traced, warns []float64, confirms []int) string {
	var b strings.Builder
	b.WriteString("| cadence | warn at p ≥ | confirm | warned ≥1h ahead | false | false, less those standing at their breach | seeds meeting the target | counting false so |\n|---|---|---|---|---|---|---|---|\n")
	seeds := make([]uint64, 0, len(traced))
	for s := range traced {
		seeds = append(seeds, s)
	}
	slices.Sort(seeds)
	// Every pair judges each seed's cases once; the rows come by cadence.
	rows := map[string][]string{}
	for _, p := range warns {
		for _, c := range confirms {
			all := map[string]*Tally{}
			met, metStanding := map[string]int{}, map[string]int{}
			for _, s := range seeds {
				rep, _ := Judged(s, traced[s], &Threshold{Warn: p, Confirm: c})
				for name, x := range rep.ByWorld {
					if x.Met(false) {
						met[name]++
					}
					if x.Met(true) {
						metStanding[name]++
					}
					a := tally(all, name)
					a.Breaches += x.Breaches
					a.WarnedAhead1h += x.WarnedAhead1h
					a.Warnings += x.Warnings
					a.FalseWarnings += x.FalseWarnings
					a.StandingWarnings += x.StandingWarnings
				}
			}
			for name, a := range all {
				rows[name] = append(rows[name], fmt.Sprintf("| %s | %.2f | %d | %d of %d (%.1f%%) | %d of %d (%.1f%%) | %d (%.1f%%) | %d of %d | %d of %d |\n", name, p, c,
					a.WarnedAhead1h, a.Breaches, 100*a.Recall1h(), a.FalseWarnings, a.Warnings, 100*a.FalseShare(),
					a.FalseWarnings-a.StandingWarnings, 100*a.FalseShareStanding(), met[name], len(seeds), metStanding[name], len(seeds)))
			}
		}
	}
	for _, w := range Worlds {
		for _, r := range rows[w.Name] {
			b.WriteString(r)
		}
	}
	return b.String()
}

// Against renders, per cadence and seed, the KPIs' own warnings next to
// a reference's (Clairvoyant's) judged by the same thresholds: warned ≥ 1 h
// ahead and false shares, strict and less those standing at their
// breach, with the target met in bold.
func Against(ours, ref map[uint64]Report) string {
	seeds := make([]uint64, 0, len(ours))
	for s := range ours {
		seeds = append(seeds, s)
	}
	slices.Sort(seeds)
	var b strings.Builder
	b.WriteString("| cadence | forecaster |")
	for _, s := range seeds {
		fmt.Fprintf(&b, " seed %d: warned / false (less standing) |", s)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(seeds)) + "\n")
	cell := func(t *Tally) string {
		if t == nil {
			return " – |"
		}
		f := func(ok bool, s string) string {
			if ok {
				return "**" + s + "**"
			}
			return s
		}
		return fmt.Sprintf(" %s / %s (%s) |", f(t.Recall1h() >= 0.95, fmt.Sprintf("%.1f%%", 100*t.Recall1h())),
			f(t.FalseShare() <= 0.05, fmt.Sprintf("%.1f%%", 100*t.FalseShare())), f(t.FalseShareStanding() <= 0.05, fmt.Sprintf("%.1f%%", 100*t.FalseShareStanding())))
	}
	for _, w := range Worlds {
		for _, row := range []struct {
			name string
			reps map[uint64]Report
		}{{"the KPI engine", ours}, {"clairvoyant", ref}} {
			fmt.Fprintf(&b, "| %s | %s |", w.Name, row.name)
			for _, s := range seeds {
				b.WriteString(cell(row.reps[s].ByWorld[w.Name]))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func tally(m map[string]*Tally, k string) *Tally {
	if m[k] == nil {
		m[k] = &Tally{}
	}
	return m[k]
}

// Markdown renders the report as tables: the whole, by cadence, by kind.
func (r Report) Markdown() string {
	var b strings.Builder
	cols := "cases | breaches | warned ≥1h ahead | recall | warnings | false (early, standing) | false share | no-breach cases warned | median lead |"
	line := func(name string, t Tally) string {
		return fmt.Sprintf("| %s%d | %d | %d | %.1f%% | %d | %d (%d, %d) | %.1f%% | %d | %s |\n", name, t.Cases, t.Breaches, t.WarnedAhead1h, 100*t.Recall1h(),
			t.Warnings, t.FalseWarnings, t.EarlyWarnings, t.StandingWarnings, 100*t.FalseShare(), t.NoBreachCasesWarned, t.MedianLead())
	}
	b.WriteString("| " + cols + "\n|---|---|---|---|---|---|---|---|---|\n")
	b.WriteString(line("", r.Tally))
	b.WriteString("\n| cadence | " + cols + "\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range Worlds {
		if t := r.ByWorld[w.Name]; t != nil {
			b.WriteString(line(w.Name+" | ", *t))
		}
	}
	b.WriteString("\n| scenario | cases | breaches | warned ≥1h | false warnings (early, standing) | no-breach cases warned |\n|---|---|---|---|---|---|\n")
	keys := make([]string, 0, len(r.ByKind))
	for k := range r.ByKind {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t := r.ByKind[k]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d (%d, %d) | %d |\n", k, t.Cases, t.Breaches, t.WarnedAhead1h, t.FalseWarnings, t.EarlyWarnings, t.StandingWarnings, t.NoBreachCasesWarned)
	}
	return b.String()
}
