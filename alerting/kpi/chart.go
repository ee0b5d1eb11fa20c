package kpi

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"time"

	"github.com/emsdb/tsdb/query"
)

// Chart renders an evaluation as an SVG: the recent history, the mid
// forecast with its 80% and 95% bands, the target line, now and the ETA.
func Chart(d *Definition, ev *Evaluation) []byte {
	const w, h, left, right, top, bottom = 900.0, 320.0, 70.0, 20.0, 30.0, 40.0
	// Show as much history as the horizon is long (at least a quarter of
	// the history), then the forecast.
	from := ev.At.Add(-max(d.Horizon, d.History/4)).UnixMilli()
	var hist []query.Point
	for _, p := range ev.History {
		if p.T >= from {
			hist = append(hist, p)
		}
	}
	t0, t1 := from, ev.At.UnixMilli()
	if n := len(ev.Forecast); n > 0 {
		t1 = ev.Forecast[n-1].T
	}
	lo, hi := d.Target, d.Target
	for _, p := range hist {
		lo, hi = math.Min(lo, p.F), math.Max(hi, p.F)
	}
	for _, f := range ev.Forecast {
		lo, hi = math.Min(lo, f.Lower95), math.Max(hi, f.Upper95)
	}
	if hi == lo {
		hi, lo = hi+1, lo-1
	}
	pad := (hi - lo) * 0.05
	lo, hi = lo-pad, hi+pad
	x := func(t int64) float64 { return left + (w-left-right)*float64(t-t0)/float64(max(t1-t0, 1)) }
	y := func(v float64) float64 { return top + (h-top-bottom)*(hi-v)/(hi-lo) }
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`, w, h, w, h)
	fmt.Fprintf(&b, `<title>%s forecast</title><rect width="100%%" height="100%%" fill="#fff"/>`, html.EscapeString(d.Name))
	band := func(lower, upper func(ForecastPoint) float64, fill string) {
		if len(ev.Forecast) == 0 {
			return
		}
		b.WriteString(`<path fill="` + fill + `" d="`)
		for i, f := range ev.Forecast {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&b, "%s%.1f %.1f ", cmd, x(f.T), y(upper(f)))
		}
		for i := len(ev.Forecast) - 1; i >= 0; i-- {
			f := ev.Forecast[i]
			fmt.Fprintf(&b, "L%.1f %.1f ", x(f.T), y(lower(f)))
		}
		b.WriteString(`Z"/>`)
	}
	band(func(f ForecastPoint) float64 { return f.Lower95 }, func(f ForecastPoint) float64 { return f.Upper95 }, "#dbe6f7")
	band(func(f ForecastPoint) float64 { return f.Lower80 }, func(f ForecastPoint) float64 { return f.Upper80 }, "#b3c9ee")
	line := func(pts [][2]float64, attrs string) {
		if len(pts) == 0 {
			return
		}
		b.WriteString(`<polyline fill="none" ` + attrs + ` points="`)
		for _, p := range pts {
			fmt.Fprintf(&b, "%.1f,%.1f ", p[0], p[1])
		}
		b.WriteString(`"/>`)
	}
	var hp, fp [][2]float64
	for _, p := range hist {
		hp = append(hp, [2]float64{x(p.T), y(p.F)})
	}
	for _, f := range ev.Forecast {
		fp = append(fp, [2]float64{x(f.T), y(f.Mid)})
	}
	line(hp, `stroke="#222" stroke-width="1.5"`)
	line(fp, `stroke="#2456b3" stroke-width="2" stroke-dasharray="6 4"`)
	fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#c00" stroke-width="1.5"/>`, left, w-right, y(d.Target), y(d.Target))
	fmt.Fprintf(&b, `<text x="%g" y="%.1f" fill="#c00">target %g</text>`, w-right-90, y(d.Target)-4, d.Target)
	nx := x(ev.At.UnixMilli())
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%g" y2="%g" stroke="#888" stroke-dasharray="2 3"/><text x="%.1f" y="%g" fill="#555">now</text>`, nx, nx, top, h-bottom, nx+3, top+12)
	if ev.ETA != nil {
		ex := x(ev.ETA.UnixMilli())
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%g" y2="%g" stroke="#c00" stroke-dasharray="4 3"/><text x="%.1f" y="%g" fill="#c00">ETA %s</text>`,
			ex, ex, top, h-bottom, ex+3, top+26, ev.ETA.UTC().Format("01-02 15:04"))
	}
	// Axes: value range and time range.
	fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%g" y2="%g" stroke="#444"/><line x1="%g" x2="%g" y1="%g" y2="%g" stroke="#444"/>`,
		left, left, top, h-bottom, left, w-right, h-bottom, h-bottom)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end">%.4g</text><text x="%g" y="%g" text-anchor="end">%.4g</text>`, left-4, top+4, hi, left-4, h-bottom, lo)
	ft := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("01-02 15:04") }
	fmt.Fprintf(&b, `<text x="%g" y="%g">%s</text><text x="%g" y="%g" text-anchor="end">%s</text>`, left, h-bottom+16, ft(t0), w-right, h-bottom+16, ft(t1))
	fmt.Fprintf(&b, `<text x="%g" y="18" font-weight="bold">%s — %s, breach probability %.0f%%</text>`, left, html.EscapeString(d.Name), html.EscapeString(ev.Model), 100*ev.Probability)
	b.WriteString(`</svg>`)
	return b.Bytes()
}
