// uPlot helpers: colours follow the theme's CSS variables, charts follow
// their container's width, and are destroyed when the page goes away.
import uPlot from './vendor/uPlot.esm.js';
import { fmtValue, fmtTime } from './dom.js';

// Series colours, readable on the dark and the light theme.
export const PALETTE = ['#4c8dff', '#f2a93b', '#3fb950', '#e5534b', '#a371f7', '#39c5cf',
  '#db61a2', '#c9d1d9', '#d29922', '#8b949e'];

export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// withAlpha turns #rrggbb into rgba() with alpha a.
function withAlpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

function axes() {
  const fg = cssVar('--muted'), grid = cssVar('--grid');
  const y = {
    stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, size: 60,
    values: (u, vals) => vals.map((v) => fmtValue(v)),
  };
  const x = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, space: 70, values: timeTicks };
  return [x, y];
}

const pad = (n) => String(n).padStart(2, '0');

// timeTicks labels the time axis in 24-hour local time, with the date
// under the first tick and wherever the day changes.
function timeTicks(u, splits, axisIdx, space, incr) {
  let lastDay = null;
  return splits.map((v) => {
    const d = new Date(v * 1000);
    const day = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    if (incr >= 86400) return day;
    let text = `${pad(d.getHours())}:${pad(d.getMinutes())}` + (incr < 60 ? `:${pad(d.getSeconds())}` : '');
    if (day !== lastDay) text += '\n' + day;
    lastDay = day;
    return text;
  });
}

// mount draws the chart into el, resizes it with el, and registers its
// teardown with the page (ctx.onCleanup).
function mount(el, opts, data, ctx) {
  el.replaceChildren();
  const width = () => Math.max(240, el.clientWidth || 600);
  const u = new uPlot({ ...opts, width: width() }, data, el);
  const ro = new ResizeObserver(() => {
    if (Math.abs(u.width - width()) > 2) u.setSize({ width: width(), height: opts.height });
  });
  ro.observe(el);
  ctx.onCleanup(() => {
    ro.disconnect();
    u.destroy();
  });
  return u;
}

// lineChart draws series over shared x (Unix seconds). series: [{label, values}].
export function lineChart(el, x, series, ctx, { height = 320 } = {}) {
  const opts = {
    height,
    axes: axes(),
    cursor: { points: { size: 6 } },
    legend: { live: true },
    scales: { x: { time: true } },
    series: [
      { value: (u, v) => (v == null ? '—' : fmtTime(v)) },
      ...series.map((s, i) => ({
        label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5,
        value: (u, v) => (v == null ? '—' : fmtValue(v)), spanGaps: false,
      })),
    ],
  };
  return mount(el, opts, [x, ...series.map((s) => s.values)], ctx);
}

// kpiChart draws a KPI's history, its forecast with the 80% and 95%
// bands, the target, now and the ETA (with its 80% bracket).
// k: the "last" object of GET /api/v1/kpis/{name}; target from the definition.
export function kpiChart(el, k, target, ctx, labels, { height = 340 } = {}) {
  const hist = k.history || []; // [[seconds, value]]
  const fc = k.forecast || []; // [{t (ms), mid, lower80, upper80, lower95, upper95}]
  const x = [], value = [], mid = [], lo80 = [], hi80 = [], lo95 = [], hi95 = [];
  for (const [ts, v] of hist) {
    x.push(ts); value.push(v);
    mid.push(null); lo80.push(null); hi80.push(null); lo95.push(null); hi95.push(null);
  }
  // The forecast starts at the last observed point so the lines join.
  if (hist.length && fc.length) {
    const i = x.length - 1;
    mid[i] = lo80[i] = hi80[i] = lo95[i] = hi95[i] = value[i];
  }
  for (const p of fc) {
    x.push(p.t / 1000); value.push(null);
    mid.push(p.mid); lo80.push(p.lower80); hi80.push(p.upper80); lo95.push(p.lower95); hi95.push(p.upper95);
  }
  const tgt = x.map(() => target);
  const accent = cssVar('--accent') || PALETTE[0], bad = cssVar('--bad') || '#e5534b', fg = cssVar('--muted');
  const fcColor = cssVar('--forecast') || '#a371f7';
  const band = { stroke: 'transparent', width: 0, points: { show: false } };
  const eta = k.eta ? Date.parse(k.eta) / 1000 : null;
  const etaEarly = k.eta_early ? Date.parse(k.eta_early) / 1000 : null;
  const etaLate = k.eta_late ? Date.parse(k.eta_late) / 1000 : null;
  const now = k.at ? Date.parse(k.at) / 1000 : Date.now() / 1000;

  // Vertical markers: now, and the ETA with its bracket.
  const markers = (u) => {
    const c = u.ctx, top = u.bbox.top, hgt = u.bbox.height;
    const X = (v) => u.valToPos(v, 'x', true);
    c.save();
    if (etaEarly && etaLate) {
      c.fillStyle = withAlpha(bad.startsWith('#') ? bad : '#e5534b', 0.12);
      c.fillRect(X(etaEarly), top, X(etaLate) - X(etaEarly), hgt);
    }
    const line = (v, color, text) => {
      const px = X(v);
      if (px < u.bbox.left || px > u.bbox.left + u.bbox.width) return;
      c.strokeStyle = color; c.fillStyle = color; c.lineWidth = 1.5 * devicePixelRatio;
      c.setLineDash([4 * devicePixelRatio, 4 * devicePixelRatio]);
      c.beginPath(); c.moveTo(px, top); c.lineTo(px, top + hgt); c.stroke();
      c.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
      c.fillText(text, px + 4 * devicePixelRatio, top + 14 * devicePixelRatio);
    };
    line(now, fg, labels.now);
    if (eta) line(eta, bad, labels.eta);
    c.restore();
  };

  const opts = {
    height,
    axes: axes(),
    legend: { show: false },
    cursor: { points: { size: 6 } },
    scales: { x: { time: true } },
    series: [
      {},
      { label: labels.value, stroke: accent, width: 2 },
      { label: labels.forecast, stroke: fcColor, width: 2, dash: [6, 4] },
      { label: '80% low', ...band },
      { label: '80% high', ...band },
      { label: '95% low', ...band },
      { label: '95% high', ...band },
      { label: labels.target, stroke: bad, width: 1.5, dash: [10, 5], points: { show: false } },
    ],
    bands: [
      { series: [6, 5], fill: withAlpha(fcColor.startsWith('#') ? fcColor : '#a371f7', 0.13) },
      { series: [4, 3], fill: withAlpha(fcColor.startsWith('#') ? fcColor : '#a371f7', 0.25) },
    ],
    hooks: { draw: [markers] },
  };
  return mount(el, opts, [x, value, mid, lo80, hi80, lo95, hi95, tgt], ctx);
}
