// DOM and formatting helpers. Everything that comes from the API goes into
// the page through h() (text nodes and attributes), never through
// innerHTML.
import { t, tOr, lang } from './i18n.js';

// h builds an element: h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', child…).
// Attributes starting with "on" and holding a function become listeners;
// value, checked, disabled and selected are set as properties; null,
// undefined and false attributes and children are skipped; arrays of
// children are flattened; strings and numbers become text nodes.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

// s is h for SVG elements.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// table builds a horizontally scrollable table from a header row and rows
// of cells (each cell: a node, text, or an array of them).
export function table(headers, rows, attrs = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', null, h('tr', null, headers.map((x) => h('th', null, x)))),
      h('tbody', null, rows)));
}

// row makes a <tr> of cells; attrs go on the row.
export function row(cells, attrs) {
  return h('tr', attrs, cells.map((c) => h('td', null, c)));
}

// badge is a coloured label; kind picks the colour class.
export function badge(text, kind) {
  return h('span', { class: 'badge ' + (kind || '') }, text);
}

// priorityBadge shows P1…P5 in their colours.
export function priorityBadge(p) {
  return h('span', { class: 'badge prio prio-' + String(p || '').toLowerCase() }, p || '—');
}

// statusBadge shows an incident or problem status, translated.
export function statusBadge(status) {
  return badge(tOr('status.' + status, status), 'st-' + String(status).replace(/[^a-z_]/g, ''));
}

// errorBox shows an API error in place of what could not be loaded.
// A 404 (e.g. "ITSM is not configured") is a notice rather than an alarm.
export function errorBox(err, testid) {
  return h('div', { class: err && err.status === 404 ? 'error notice' : 'error', role: 'alert', 'data-testid': testid || null }, errText(err));
}

export function errText(err) {
  if (!err) return '';
  if (err.status === 403) return t('err.forbidden') + ': ' + err.message;
  return err.message || String(err);
}

export function empty(text) {
  return h('p', { class: 'muted empty' }, text);
}

// labelsText renders {a: "b"} as a="b", c="d" (without __name__).
export function labelsText(labels, skip = []) {
  return Object.entries(labels || {})
    .filter(([k]) => k !== '__name__' && !skip.includes(k))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v}"`).join(', ');
}

// labelChips renders labels as small chips that wrap between, not inside, pairs.
export function labelChips(labels, skip = []) {
  const pairs = Object.entries(labels || {})
    .filter(([k]) => k !== '__name__' && !skip.includes(k))
    .sort(([a], [b]) => a.localeCompare(b));
  return h('span', { class: 'chips' }, pairs.map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`)));
}

// ---- formatting ----

function toDate(v) {
  if (v === null || v === undefined || v === '') return null;
  const d = typeof v === 'number' ? new Date(v < 1e12 ? v * 1000 : v) : new Date(v);
  // Go's zero time (0001-01-01) means "never".
  if (isNaN(d) || d.getFullYear() < 1971) return null;
  return d;
}

const pad = (n) => String(n).padStart(2, '0');

// fmtTime: local "YYYY-MM-DD HH:MM:SS"; accepts RFC 3339, seconds or ms.
export function fmtTime(v) {
  const d = toDate(v);
  if (!d) return '—';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// fmtMinute: local "YYYY-MM-DD HH:MM", what parseLocalTime reads back.
export function fmtMinute(v) {
  const full = fmtTime(v);
  return full === '—' ? '' : full.slice(0, 16);
}

const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$/;

// parseLocalTime reads an ISO date typed by a person, in local time and
// 24-hour clock: "2025-03-14", "2025-03-14 09:30", "2025-03-14T09:30:15".
// It returns Unix seconds, or NaN for anything else, including dates that
// do not exist (2025-02-30, 24:00).
export function parseLocalTime(text) {
  const m = LOCAL_TIME.exec(String(text || '').trim());
  if (!m) return NaN;
  const [y, mo, d, hh = 0, mm = 0, ss = 0] = m.slice(1).map((x) => (x === undefined ? undefined : Number(x)));
  const date = new Date(y, mo - 1, d, hh, mm, ss);
  if (date.getFullYear() !== y || date.getMonth() !== mo - 1 || date.getDate() !== d ||
    date.getHours() !== hh || date.getMinutes() !== mm || date.getSeconds() !== ss) return NaN;
  return Math.floor(date.getTime() / 1000);
}

// fmtAgo: "3m ago" / "3분 전"; future times are "in 3m" / "3분 후".
export function fmtAgo(v) {
  const d = toDate(v);
  if (!d) return '—';
  const secs = (Date.now() - d.getTime()) / 1000;
  if (Math.abs(secs) < 5) return t('time.now');
  return secs >= 0 ? t('time.ago', fmtDur(secs)) : t('time.in', fmtDur(-secs));
}

// fmtDur: the two largest units of a duration in seconds, e.g. "1h 8m".
export function fmtDur(secs) {
  if (secs === null || secs === undefined || isNaN(secs)) return '—';
  // Down to the smallest unit, as the API: 1d 7h 20m, 1m 30s (zero units
  // left out).
  let n = Math.round(Math.abs(secs));
  const units = [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]];
  const parts = [];
  for (const [u, size] of units) {
    if (n >= size || (u === 's' && parts.length === 0)) {
      parts.push(Math.floor(n / size) + t('unit.' + u));
      n %= size;
    }
  }
  return (secs < 0 ? '-' : '') + parts.join(' ');
}

// fmtNum: a number in the current language, at most `digits` decimals.
export function fmtNum(v, digits = 2) {
  if (v === null || v === undefined || v === '' || isNaN(Number(v))) return '—';
  return new Intl.NumberFormat(lang(), { maximumFractionDigits: digits }).format(Number(v));
}

// fmtValue: a sample value, compact but exact enough (3 significant
// decimals for small numbers).
export function fmtValue(v) {
  const n = Number(v);
  if (v === null || v === undefined || isNaN(n)) return String(v ?? '—');
  if (!isFinite(n)) return String(v);
  const a = Math.abs(n);
  if (a !== 0 && (a < 0.001 || a >= 1e15)) return n.toExponential(3);
  return fmtNum(n, a < 1 ? 4 : a < 100 ? 3 : 2);
}

export function fmtPct(v, digits = 1) {
  if (v === null || v === undefined || isNaN(v)) return '—';
  return fmtNum(v * 100, digits) + '%';
}

// bar is a small horizontal bar for tables: share in [0, 1].
export function bar(share, kind) {
  const w = Math.max(0, Math.min(1, share || 0)) * 100;
  return h('span', { class: 'bar ' + (kind || '') }, h('span', { style: `width:${w.toFixed(1)}%` }));
}
