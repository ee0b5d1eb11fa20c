// Explore (#/explore?q=…&range=1h): a MetricsQL/PromQL query drawn over a
// range with uPlot plus its instant result as a table, and the
// cardinality explorer.
//
// Data: GET /api/v1/query_range (start, end, step), GET /api/v1/query,
// GET /api/v1/status/tsdb?limit=15.
import { h, table, row, errorBox, errText, empty, labelsText, bar, fmtNum, fmtTime, fmtValue } from '../dom.js';
import * as api from '../api.js';
import { lineChart } from '../chart.js';
import { t } from '../i18n.js';

const RANGES = { '15m': 900, '1h': 3600, '6h': 21600, '24h': 86400, '7d': 604800 };
const MAX_SERIES = 50; // drawn; the table shows all

export async function render(el, ctx) {
  const q = ctx.route.query;
  const range = RANGES[q.get('range')] ? q.get('range') : '1h';
  const input = h('textarea', {
    'data-testid': 'query-input', rows: 2, spellcheck: 'false', autocomplete: 'off', 'aria-label': t('ex.query'),
    placeholder: t('ex.placeholder'), value: q.get('q') || '',
    // Enter runs; Shift+Enter is a new line.
    onkeydown: (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        run();
      }
    },
  });
  const rangeSel = h('select', { 'data-testid': 'range-select', 'aria-label': t('ex.range'), onchange: () => run() },
    Object.keys(RANGES).map((r) => h('option', { value: r, selected: r === range }, t('range.' + r))));
  const errEl = h('div', { 'data-testid': 'query-error', class: 'error', role: 'alert', hidden: true });
  const chartEl = h('div', { 'data-testid': 'query-chart', class: 'chart' });
  const note = h('p', { class: 'muted' });
  const tableEl = h('div', { 'data-testid': 'query-table' });
  const cardEl = h('div', { class: 'cardinality' });

  el.append(
    h('div', { class: 'page-head' }, h('h1', null, t('nav.explore'))),
    h('form', { class: 'query-bar panel', onsubmit: (e) => { e.preventDefault(); run(); } },
      input,
      h('div', { class: 'query-tools' }, rangeSel,
        h('button', { type: 'submit', class: 'primary', 'data-testid': 'query-run' }, t('ex.run')))),
    errEl,
    h('section', { class: 'panel' }, h('h2', null, t('ex.graph')), chartEl, note),
    h('section', { class: 'panel' }, h('h2', null, t('ex.table')), tableEl),
    h('section', { class: 'panel' }, h('h2', null, t('ex.cardinality')), cardEl));

  let chartCleanup = [];
  const chartCtx = { onCleanup: (f) => chartCleanup.push(f) };
  ctx.onCleanup(() => chartCleanup.forEach((f) => f()));

  async function run() {
    const expr = input.value.trim();
    const r = rangeSel.value;
    // Keep the query in the address without re-rendering the page.
    const hash = '#/explore?' + new URLSearchParams({ q: expr, range: r });
    if (location.hash !== hash) history.replaceState(null, '', hash);
    errEl.hidden = true;
    errEl.textContent = '';
    if (!expr) {
      tableEl.replaceChildren(empty(t('ex.enter')));
      return;
    }
    ctx.loading(true);
    const end = Math.floor(Date.now() / 1000), span = RANGES[r];
    const step = Math.max(1, Math.round(span / 300));
    const [rng, inst] = await Promise.allSettled([
      api.get('/api/v1/query_range', { query: expr, start: end - span, end, step }),
      api.get('/api/v1/query', { query: expr, time: end }),
    ]);
    if (!ctx.alive()) return;
    const fail = rng.status === 'rejected' ? rng.reason : inst.status === 'rejected' ? inst.reason : null;
    if (fail) {
      errEl.hidden = false;
      errEl.textContent = errText(fail);
    }
    chartCleanup.forEach((f) => f());
    chartCleanup = [];
    chartEl.replaceChildren();
    note.textContent = '';
    if (rng.status === 'fulfilled') drawRange(rng.value);
    tableEl.replaceChildren(inst.status === 'fulfilled' ? instantTable(inst.value) : empty('—'));
    ctx.loading(false);
  }

  function drawRange(res) {
    let series = res.result || [];
    if (res.resultType === 'scalar' || res.resultType === 'string') series = [];
    if (!series.length) {
      chartEl.replaceChildren(empty(t('ex.noData')));
      return;
    }
    if (series.length > MAX_SERIES) note.textContent = t('ex.capped', MAX_SERIES, series.length);
    series = series.slice(0, MAX_SERIES);
    // Align every series on the union of their timestamps.
    const xs = [...new Set(series.flatMap((sr) => sr.values.map((v) => v[0])))].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const lines = series.map((sr) => {
      const values = new Array(xs.length).fill(null);
      for (const [ts, v] of sr.values) {
        const n = parseFloat(v);
        values[index.get(ts)] = isFinite(n) ? n : null;
      }
      return { label: seriesName(sr.metric), values };
    });
    lineChart(chartEl, xs, lines, chartCtx);
  }

  async function cardinality() {
    let st;
    try {
      st = await api.get('/api/v1/status/tsdb', { limit: 15 });
    } catch (e) {
      cardEl.replaceChildren(errorBox(e));
      return;
    }
    const total = st.headStats?.numSeries || 0;
    // Each block: the name (wraps anywhere), what is counted (named for
    // what it counts: series, values or bytes) and a bar. The count column
    // never wraps and the name column gives way, so counts stay in view.
    const block = (testid, title, list, head, counted, link) => {
      const most = Math.max(1, ...(list || []).map((x) => x.value));
      return h('div', { class: 'card-block', 'data-testid': testid }, h('h3', null, title),
        (list || []).length ? table([head, counted, h('span', { class: 'sr-only' }, t('ex.share'))], list.map((x) => h('tr', null,
          h('td', { class: 'card-name' },
            link ? h('a', { href: '#', onclick: (e) => { e.preventDefault(); link(x.name); } }, x.name) : h('span', { class: 'labels' }, x.name)),
          h('td', { class: 'card-count num' }, fmtNum(x.value, 0)),
          h('td', { class: 'card-bar' }, bar(x.value / most)))), { class: 'card-table' }) : empty('—'));
    };
    const query = (name) => {
      input.value = name;
      run();
      input.scrollIntoView({ block: 'center' });
    };
    cardEl.replaceChildren(
      h('p', null, t('ex.totals', fmtNum(total, 0), fmtNum(st.headStats?.numLabelPairs || 0, 0))),
      h('div', { class: 'card-grid' },
        block('card-metric', t('ex.byMetric'), st.seriesCountByMetricName, t('ex.metric'), t('ex.series'), query),
        block('card-label', t('ex.byLabel'), st.labelValueCountByLabelName, t('ex.label'), t('ex.values')),
        block('card-pair', t('ex.byPair'), st.seriesCountByLabelValuePair, t('ex.pair'), t('ex.series')),
        block('card-memory', t('ex.byMemory'), st.memoryInBytesByLabelName, t('ex.label'), t('ex.bytes'))));
  }

  await Promise.all([q.get('q') ? run() : Promise.resolve(tableEl.replaceChildren(empty(t('ex.enter')))), cardinality()]);
  input.focus();
}

// seriesName renders a series as name{label="value", …}.
function seriesName(metric) {
  const name = metric?.__name__ || '';
  const rest = labelsText(metric);
  return rest ? `${name}{${rest}}` : name || '{}';
}

function instantTable(res) {
  const type = res.resultType;
  const list = res.result;
  if (type === 'scalar' || type === 'string') {
    return table([t('ex.value'), t('ex.time')], [row([fmtValue(list[1]), fmtTime(list[0])])]);
  }
  if (!list || !list.length) return empty(t('ex.noData'));
  if (type === 'matrix') {
    return table([t('ex.series'), t('ex.samples'), t('ex.last')], list.map((sr) => {
      const last = sr.values[sr.values.length - 1];
      return row([h('span', { class: 'labels' }, seriesName(sr.metric)), sr.values.length, last ? `${fmtValue(last[1])} @ ${fmtTime(last[0])}` : '—']);
    }));
  }
  return table([t('ex.series'), t('ex.value')], list.map((sr) => row([
    h('span', { class: 'labels' }, seriesName(sr.metric)), h('span', { class: 'num' }, sr.value ? sr.value[1] : '—')])));
}
