// KPIs: the list (#/kpis) and one KPI (#/kpis/NAME) with its history,
// forecast bands, target and ETA drawn with uPlot.
//
// Data: GET /api/v1/kpis (definitions and last evaluations, without
// points), GET /api/v1/kpis/{name} (last evaluation with history
// [[seconds, value]] and forecast [{t ms, mid, lower80, upper80, lower95, upper95}]).
import { h, table, row, badge, statusBadge, errorBox, empty, fmtAgo, fmtDur, fmtNum, fmtTime, fmtPct, fmtValue } from '../dom.js';
import * as api from '../api.js';
import { kpiChart } from '../chart.js';
import { t } from '../i18n.js';

export function render(el, ctx) {
  const name = ctx.route.parts[0];
  return name ? one(el, ctx, name) : list(el, ctx);
}

const goal = (d) => (d.direction === 'above' ? '≥ ' : '≤ ') + fmtValue(d.target);

// timeToBreach: from the evaluation to the ETA, in this language's units.
export function timeToBreach(last) {
  if (!last) return '—';
  if (last.state === 'breached') return t('kpi.now');
  if (!last.eta) return '—';
  return fmtDur(Math.max(0, (Date.parse(last.eta) - Date.parse(last.at)) / 1000));
}

async function list(el, ctx) {
  el.append(h('div', { class: 'page-head' }, h('h1', null, t('nav.kpis'))));
  let kpis;
  try {
    kpis = await api.get('/api/v1/kpis');
  } catch (e) {
    el.append(errorBox(e));
    return;
  }
  if (!kpis.length) {
    el.append(empty(t('kpi.none')));
    return;
  }
  const open = (name) => { location.hash = '#/kpis/' + encodeURIComponent(name); };
  el.append(h('div', { class: 'kpi-cards' }, kpis.map(({ definition: d, last, failure }) => h('a', {
    class: 'panel kpi-card state-' + (last?.state || 'none'), href: '#/kpis/' + encodeURIComponent(d.name), 'data-kpi': d.name,
  },
  h('div', { class: 'kpi-card-head' }, h('strong', null, d.name), kpiBadge(last, failure)),
  failure ? h('p', { class: 'bad small', 'data-kpi-failure': d.name }, failure.error) : null,
  h('div', { class: 'kpi-card-num' }, last ? fmtValue(last.value) : '—', h('span', { class: 'muted' }, ' ' + goal(d))),
  h('dl', { class: 'facts compact' },
    h('dt', null, t('kpi.probability')), h('dd', null, last ? fmtPct(last.breach_probability, 0) : '—'),
    h('dt', null, t('kpi.timeToBreach')), h('dd', null, timeToBreach(last)),
    h('dt', null, t('kpi.horizon')), h('dd', null, d.horizon))))));
  el.append(h('section', { class: 'panel kpi-table' }, table(
    [t('kpi.name'), t('kpi.state'), t('kpi.value'), t('kpi.target'), t('kpi.probability'), t('kpi.timeToBreach'), t('kpi.model'), t('kpi.evaluated'), t('kpi.expr')],
    kpis.map(({ definition: d, last, failure }) => row([
      h('a', { href: '#/kpis/' + encodeURIComponent(d.name) }, d.name), kpiBadge(last, failure),
      last ? fmtValue(last.value) : '—', goal(d), last ? fmtPct(last.breach_probability, 0) : '—', timeToBreach(last),
      last?.model || '—', last ? fmtAgo(last.at) : '—', h('code', null, d.expr)],
    { class: 'clickable', onclick: (e) => { if (e.target.tagName !== 'A') open(d.name); } })))));
}

async function one(el, ctx, name) {
  el.append(h('p', { class: 'crumbs' }, h('a', { href: '#/kpis' }, '← ' + t('nav.kpis'))));
  let k;
  try {
    k = await api.get('/api/v1/kpis/' + encodeURIComponent(name));
  } catch (e) {
    el.append(errorBox(e, 'error'));
    return;
  }
  const d = k.definition, last = k.last;
  el.append(h('div', { class: 'page-head' }, h('h1', null, d.name), kpiBadge(last, k.failure)));
  if (k.failure) {
    el.append(h('p', { class: 'bad', 'data-testid': 'kpi-failure' }, t('kpi.failingSince', fmtAgo(k.failure.since), k.failure.count, k.failure.error)));
  }
  if (!last) {
    el.append(empty(t('kpi.notYet')));
    return;
  }
  const chartEl = h('div', { class: 'chart', 'data-testid': 'kpi-chart' });
  const swatch = (cls, text) => h('span', { class: 'swatch ' + cls }, text);
  el.append(
    h('div', { class: 'tiles kpi-tiles' },
      tile(t('kpi.value'), fmtValue(last.value), goal(d)),
      tile(t('kpi.probability'), fmtPct(last.breach_probability, 0), t('kpi.within', d.horizon)),
      tile(t('kpi.timeToBreach'), timeToBreach(last), last.eta ? fmtTime(last.eta) : ''),
      tile(t('kpi.model'), last.model || '—', t('kpi.evaluatedAgo', fmtAgo(last.at)), 'tile-word')),
    h('section', { class: 'panel' },
      h('h2', null, t('kpi.chart')),
      h('div', { class: 'legend' }, swatch('sw-value', t('kpi.value')), swatch('sw-forecast', t('kpi.forecast')),
        swatch('sw-b80', t('kpi.band80')), swatch('sw-b95', t('kpi.band95')), swatch('sw-target', t('kpi.target')),
        last.eta ? swatch('sw-eta', t('kpi.etaRange')) : null),
      chartEl,
      last.deadline ? h('p', { 'data-testid': 'kpi-deadline' }, t('kpi.deadlineText', d.deadline, fmtTime(last.deadline))) : null,
      last.eta && !last.deadline ? h('p', null, t('kpi.etaText', fmtTime(last.eta), fmtTime(last.eta_early), fmtTime(last.eta_late))) : null,
      last.incident ? h('p', null, t('kpi.incident'), ' ', h('a', { href: '#/incidents/' + encodeURIComponent(last.incident) }, last.incident)) : null),
    h('div', { class: 'cols' },
      h('section', { class: 'panel' }, h('h2', null, t('kpi.definition')), h('dl', { class: 'facts' },
        [[t('kpi.expr'), h('code', null, d.expr)], [t('kpi.target'), goal(d)], [t('kpi.horizon'), d.horizon],
          [t('kpi.step'), d.step], [t('kpi.history'), d.history], [t('kpi.interval'), d.interval],
          [t('kpi.seasonality'), d.seasonality], [t('kpi.warnAt'), fmtPct(d.warn_probability, 0)],
          [t('kpi.labels'), Object.entries(d.labels || {}).map(([a, b]) => `${a}=${b}`).join(', ') || '—'],
          d.impact_expr ? [t('kpi.impact'), [h('code', null, d.impact_expr), last.impact != null ? ' = ' + fmtValue(last.impact) : '']] : null]
          .filter(Boolean).map(([a, b]) => [h('dt', null, a), h('dd', null, b)]))),
      h('section', { class: 'panel' }, h('h2', null, t('kpi.scores')),
        table([t('kpi.model'), 'MAE', 'MAPE', ''], (last.scores || []).map((sc) => row([
          sc.model === last.model ? h('strong', null, sc.model + ' ✓') : sc.model,
          fmtValue(sc.mae), sc.mape == null ? '—' : fmtNum(sc.mape, 2) + '%', sc.error || '']))))));
  kpiChart(chartEl, last, d.target, ctx, {
    value: t('kpi.value'), forecast: t('kpi.forecast'), target: t('kpi.target'), now: t('kpi.nowMark'), eta: 'ETA',
  });
}

function tile(label, num, sub, cls = '') {
  return h('div', { class: 'tile' }, h('span', { class: 'tile-label' }, label),
    h('span', { class: 'tile-num ' + cls }, num), h('span', { class: 'tile-sub' }, sub || '\u00a0'));
}

// kpiBadge shows a KPI's state, or that its evaluations fail (the error
// on hover), or that none ran yet.
export function kpiBadge(last, failure) {
  if (failure) {
    return h('span', { class: 'badge bad', title: failure.error }, t('kpi.failing'));
  }
  return last ? statusBadge(last.state) : badge(t('kpi.notYet'), '');
}
