// Usage (#/usage?month=YYYY-MM, default this month): per tenant the
// month so far — samples ingested, series-hours, bytes stored, queries,
// samples scanned, rule evaluations, notifications — with the tenants
// near a limit (80% or more) shown first, a daily trend chart of one
// figure per tenant, and the month as CSV. Admins see every tenant, anyone
// else their own.
//
// Data: GET /api/v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD (and format=csv).
import { h, table, row, errorBox, errText, empty, fmtNum, bar } from '../dom.js';
import * as api from '../api.js';
import { lineChart } from '../chart.js';
import { t, tOr } from '../i18n.js';

// The figures the trend chart can show: [key, day → value].
const FIGURES = [
  ['samples', (d) => d.samples_ingested],
  ['seriesHours', (d) => d.series_hours],
  ['bytes', (d) => d.bytes_stored],
  ['queries', (d) => d.queries],
  ['scanned', (d) => d.samples_scanned],
  ['ruleEvals', (d) => d.rule_evaluations],
  ['notifications', (d) => d.notifications_sent],
];

const pad = (n) => String(n).padStart(2, '0');

// fmtBytes: bytes in binary units.
export function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = Number(n) || 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return fmtNum(v, i ? 1 : 0) + ' ' + units[i];
}

// monthRange is the UTC days of month "YYYY-MM": the first, and the last
// or today when the month is this one.
function monthRange(month) {
  const now = new Date();
  const [y, m] = month.split('-').map(Number);
  const first = `${y}-${pad(m)}-01`;
  const end = new Date(Date.UTC(y, m, 0)); // the month's last day
  const last = end > now ? now : end;
  return { from: first, to: `${last.getUTCFullYear()}-${pad(last.getUTCMonth() + 1)}-${pad(last.getUTCDate())}` };
}

function shiftMonth(month, by) {
  const [y, m] = month.split('-').map(Number);
  const d = new Date(Date.UTC(y, m - 1 + by, 1));
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}`;
}

function limitText(l) {
  const current = l.name === 'ingest_rate' ? fmtNum(l.current, 0) + ' ' + t('usage.perSecond') : fmtNum(l.current, 0);
  return t('usage.limitUse', t('usage.limit.' + l.name), current, fmtNum(l.limit, 0), fmtNum(l.percent, 1));
}

export async function render(el, ctx) {
  const q = ctx.route.query;
  const now = new Date();
  const thisMonth = `${now.getUTCFullYear()}-${pad(now.getUTCMonth() + 1)}`;
  let month = q.get('month') || thisMonth;
  if (!/^\d{4}-\d{2}$/.test(month) || month > thisMonth) month = thisMonth;
  const { from, to } = monthRange(month);
  const figure = FIGURES.find(([k]) => k === q.get('figure')) || FIGURES[0];
  const go = (m, f) => { location.hash = '#/usage?' + new URLSearchParams({ month: m, figure: f }); };
  const errEl = h('div', { class: 'error', role: 'alert', 'data-testid': 'error', hidden: true });

  const download = async () => {
    try {
      const blob = await api.blob('/api/v1/usage', { from, to, format: 'csv' }, 'text/csv');
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `usage-${from}-${to}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      errEl.hidden = false;
      errEl.textContent = errText(e);
    }
  };

  el.append(
    h('div', { class: 'page-head' }, h('h1', null, t('nav.usage'))),
    h('div', { class: 'filters panel' },
      h('button', { type: 'button', 'data-testid': 'usage-prev', onclick: () => go(shiftMonth(month, -1), figure[0]) }, '← ' + t('usage.prev')),
      h('strong', { 'data-testid': 'usage-month' }, month === thisMonth ? t('usage.monthSoFar', month) : month),
      h('button', { type: 'button', disabled: month === thisMonth, onclick: () => go(shiftMonth(month, 1), figure[0]) }, t('usage.next') + ' →'),
      h('span', { class: 'muted small' }, t('usage.utc', from, to)),
      h('button', { type: 'button', 'data-testid': 'usage-csv', onclick: download }, t('usage.csv') + ' ↓')),
    errEl);

  let rep;
  try {
    rep = await api.get('/api/v1/usage', { from, to });
  } catch (e) {
    el.append(errorBox(e, 'error'));
    return;
  }
  if (!ctx.alive()) return;
  const tenants = rep.tenants || [];
  if (!tenants.length) {
    el.append(empty(t('usage.none')));
    return;
  }

  // Near a limit first: before it is hit.
  const near = tenants.filter((tr) => tr.near_limit);
  if (near.length) {
    el.append(h('section', { class: 'panel usage-warn', 'data-testid': 'usage-warnings', role: 'status' },
      h('h2', null, t('usage.nearLimits')),
      h('ul', null, near.flatMap((tr) => tr.limits.filter((l) => l.near_limit).map((l) =>
        h('li', { 'data-near-tenant': tr.tenant }, h('strong', null, tr.tenant), ': ', limitText(l)))))));
  }

  const most = Math.max(1, ...tenants.map((tr) => tr.total.samples_ingested));
  el.append(h('section', { class: 'panel' }, h('h2', null, t('usage.totals')),
    table([t('tenant.label'), t('usage.samples'), '', t('usage.seriesHours'), t('usage.activeMax'), t('usage.bytes'),
      t('usage.queries'), t('usage.scanned'), t('usage.ruleEvals'), t('usage.notifications'), t('usage.limits')],
    tenants.map((tr) => {
      const u = tr.total;
      const byProto = Object.entries(u.samples_ingested_by_protocol || {})
        .map(([p, n]) => `${tOr('proto.' + p, p)}: ${fmtNum(n, 0)}`).join('\n');
      return row([
        h('strong', null, tr.tenant),
        h('span', { title: byProto }, fmtNum(u.samples_ingested, 0)), bar(u.samples_ingested / most),
        fmtNum(u.series_hours, 1), fmtNum(u.active_series_max, 0), fmtBytes(u.bytes_stored),
        fmtNum(u.queries, 0), fmtNum(u.samples_scanned, 0), fmtNum(u.rule_evaluations, 0),
        h('span', { title: t('usage.alertsSent', fmtNum(u.alerts_sent, 0)) }, fmtNum(u.notifications_sent, 0)),
        tr.limits.length ? h('span', { class: tr.near_limit ? 'bad strong' : 'good' },
          tr.limits.map((l) => `${t('usage.limit.' + l.name)} ${fmtNum(l.percent, 1)}%`).join(', ')) : '—',
      ], { 'data-usage-tenant': tr.tenant, class: tr.near_limit ? 'near-limit' : '' });
    }), { 'data-testid': 'usage-table' })));

  // The daily trend of one figure, a line per tenant.
  const days = tenants[0].days.map((d) => Date.parse(d.date + 'T00:00:00Z') / 1000);
  const chartEl = h('div', { class: 'chart', 'data-testid': 'usage-chart' });
  const pick = h('select', { 'data-testid': 'usage-figure', 'aria-label': t('usage.figure'), onchange: (e) => go(month, e.target.value) },
    FIGURES.map(([k]) => h('option', { value: k, selected: k === figure[0] }, t('usage.' + k))));
  el.append(h('section', { class: 'panel' },
    h('div', { class: 'panel-head' }, h('h2', null, t('usage.trend')), pick), chartEl));
  lineChart(chartEl, days, tenants.map((tr) => ({ label: tr.tenant, values: tr.days.map(figure[1]) })), ctx, { height: 260 });
}
