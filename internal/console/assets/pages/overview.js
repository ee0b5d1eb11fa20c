// Overview: the operations-room wall. Open incidents by priority, SLA
// breaches, firing alerts, KPIs at risk, ingest rate, active series, the
// ingest sources and, in a cluster, its nodes, partition owners and
// consumer lag, refreshed every 10 s while the tab is visible.
//
// Data: GET /api/v1/incidents?status=open and ?status=acknowledged
// (incidents, SLA breaches), /api/v1/alerts, /api/v1/kpis,
// /api/v1/status/ingest (ingest, sources), /api/v1/status/cluster (the
// cluster section; hidden where it answers 404, a single node, or 401/403,
// a user without the metrics role). Each section fails on its own.
import { h, table, row, badge, priorityBadge, errorBox, empty, labelChips,
  fmtAgo, fmtDur, fmtNum, fmtPct, fmtValue, fmtTime } from '../dom.js';
import * as api from '../api.js';
import { t } from '../i18n.js';
import { timeToBreach, kpiBadge } from './kpis.js';

const REFRESH_MS = 10000;
const PRIORITIES = ['P1', 'P2', 'P3', 'P4', 'P5'];

function section(testid, title, link) {
  const body = h('div', { class: 'section-body' });
  const el = h('section', { class: 'panel', 'data-testid': testid },
    h('h2', null, link ? h('a', { href: link }, title) : title), body);
  return { el, set: (...nodes) => body.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false)) };
}

export async function render(el, ctx) {
  const s = {
    incidents: section('overview-incidents', t('ov.incidents'), '#/incidents'),
    sla: section('overview-sla', t('ov.sla'), '#/sla'),
    alerts: section('overview-alerts', t('ov.alerts'), '#/rules'),
    kpis: section('overview-kpis', t('ov.kpis'), '#/kpis'),
    ingest: section('overview-ingest', t('ov.ingest'), '#/explore'),
    sources: section('overview-sources', t('ov.sources')),
    cluster: section('overview-cluster', t('ov.cluster')),
  };
  s.cluster.el.hidden = true;
  const stamp = h('span', { class: 'muted stamp', 'aria-live': 'polite' });
  el.append(
    h('div', { class: 'page-head' }, h('h1', null, t('nav.overview')), stamp),
    h('div', { class: 'overview-grid' }, Object.values(s).map((x) => x.el)));

  const refresh = async () => {
    await Promise.all([incidents(s), alerts(s), kpis(s), ingest(s), cluster(s)]);
    if (ctx.alive()) stamp.textContent = t('ov.updated', fmtTime(Date.now()));
  };
  await refresh();

  // Live: every 10 s while the tab is visible, at once when it shows again.
  let timer = null;
  const start = () => {
    if (!timer) timer = setInterval(() => { if (ctx.alive()) refresh(); }, REFRESH_MS);
  };
  const stop = () => { clearInterval(timer); timer = null; };
  const onVisibility = () => {
    if (document.hidden) stop();
    else { refresh(); start(); }
  };
  document.addEventListener('visibilitychange', onVisibility);
  if (!document.hidden) start();
  ctx.onCleanup(() => {
    stop();
    document.removeEventListener('visibilitychange', onVisibility);
  });
}

// incidents fills the priority tiles and the SLA breaches.
async function incidents(s) {
  let open;
  try {
    const [a, b] = await Promise.all([
      api.get('/api/v1/incidents', { status: 'open' }),
      api.get('/api/v1/incidents', { status: 'acknowledged' }),
    ]);
    open = [...(a || []), ...(b || [])];
  } catch (e) {
    s.incidents.set(errorBox(e));
    s.sla.set(errorBox(e));
    return;
  }
  const tiles = PRIORITIES.map((p) => {
    const list = open.filter((i) => i.priority === p);
    const unacked = list.filter((i) => i.status === 'open').length;
    return h('a', { class: 'tile prio-tile prio-' + p.toLowerCase() + (list.length ? ' hot' : ''),
      href: '#/incidents?status=active&priority=' + p, 'data-priority': p },
    h('span', { class: 'tile-label' }, p),
    h('span', { class: 'tile-num' }, String(list.length)),
    h('span', { class: 'tile-sub' }, unacked ? t('ov.unacked', unacked) : '\u00a0'));
  });
  s.incidents.set(h('div', { class: 'tiles' }, tiles),
    h('p', { class: 'muted' }, t('ov.openTotal', open.length)));

  const breached = open.filter((i) => i.sla && (i.sla.acknowledge_breached || i.sla.resolve_breached));
  const which = (i) => [i.sla.acknowledge_breached ? t('sla.ack') : null, i.sla.resolve_breached ? t('sla.resolve') : null]
    .filter(Boolean).join(', ');
  s.sla.set(
    h('div', { class: 'big-line' }, h('span', { class: 'big ' + (breached.length ? 'bad' : 'good') }, String(breached.length)),
      h('span', null, t('ov.breaches'))),
    breached.length ? table([t('inc.id'), t('inc.priority'), t('inc.title'), t('ov.breachedClock'), t('inc.elapsed')],
      breached.slice(0, 8).map((i) => row([
        h('a', { class: 'nowrap', href: '#/incidents/' + encodeURIComponent(i.id) }, i.id), priorityBadge(i.priority),
        h('span', { class: 'clamp' }, i.title), h('span', { class: 'bad' }, which(i)), fmtDur(i.sla.elapsed_seconds)]))) : empty(t('ov.noBreaches')));
}

async function alerts(s) {
  let list;
  try {
    list = (await api.get('/api/v1/alerts')).alerts || [];
  } catch (e) {
    s.alerts.set(errorBox(e));
    return;
  }
  const firing = list.filter((a) => a.state === 'firing');
  const pending = list.filter((a) => a.state === 'pending');
  firing.sort((a, b) => Date.parse(b.activeAt || 0) - Date.parse(a.activeAt || 0));
  s.alerts.set(
    h('div', { class: 'big-line' },
      h('span', { class: 'big ' + (firing.length ? 'bad' : 'good'), 'data-testid': 'alerts-firing' }, String(firing.length)),
      h('span', null, t('ov.firing')),
      h('span', { class: 'big small warn' }, String(pending.length)), h('span', null, t('ov.pending'))),
    firing.length ? table([t('alert.name'), t('alert.severity'), t('alert.since')],
      firing.slice(0, 8).map((a) => row([
        [h('strong', null, a.labels.alertname), ' ', labelChips(a.labels, ['alertname', 'severity'])],
        severity(a.labels.severity), fmtAgo(a.activeAt)]))): empty(t('ov.noAlerts')),
    firing.length > 8 ? h('p', { class: 'muted' }, h('a', { href: '#/rules' }, t('ov.more', firing.length - 8))) : null);
}

export function severity(sev) {
  if (!sev) return '—';
  const kind = { critical: 'bad', warning: 'warn', info: 'info' }[sev] || '';
  return badge(sev, kind);
}

async function kpis(s) {
  let list;
  try {
    list = await api.get('/api/v1/kpis');
  } catch (e) {
    s.kpis.set(errorBox(e));
    return;
  }
  // Every KPI, the riskiest first: breached, predicted, then by probability.
  const rank = { breached: 0, predicted_breach: 1, ok: 2 };
  const atRisk = (k) => k.last && (k.last.state !== 'ok' || k.last.breach_probability >= 0.5);
  const risky = list.filter(atRisk).length;
  const order = (k) => (k.last ? rank[k.last.state] ?? 3 : 4); // not evaluated yet: last
  const sorted = [...list].sort((a, b) => order(a) - order(b) ||
    (b.last?.breach_probability ?? 0) - (a.last?.breach_probability ?? 0));
  s.kpis.set(
    h('div', { class: 'big-line' }, h('span', { class: 'big ' + (risky ? 'warn' : 'good') }, String(risky)),
      h('span', null, t('ov.kpisAtRisk', list.length))),
    !list.length ? empty(t('kpi.none')) : !risky ? h('p', { class: 'good' }, t('ov.kpisOk')) : null,
    sorted.length ? table([t('kpi.name'), t('kpi.state'), t('kpi.value'), t('kpi.probability'), t('kpi.timeToBreach')],
      sorted.slice(0, 8).map((k) => row([
        h('a', { href: '#/kpis/' + encodeURIComponent(k.definition.name) }, k.definition.name),
        kpiBadge(k.last, k.failure),
        [k.last ? fmtValue(k.last.value) : '—', h('div', { class: 'muted small' }, `${k.definition.direction === 'above' ? '≥' : '≤'} ${fmtValue(k.definition.target)}`)],
        k.last ? fmtPct(k.last.breach_probability, 0) : '—',
        h('strong', null, timeToBreach(k.last))], { class: atRisk(k) ? 'risk' : '' }))) : null,
    sorted.length > 8 ? h('p', { class: 'muted' }, h('a', { href: '#/kpis' }, t('ov.more', sorted.length - 8))) : null);
}

async function ingest(s) {
  let st;
  try {
    st = await api.get('/api/v1/status/ingest');
  } catch (e) {
    s.ingest.set(errorBox(e));
    s.sources.set(errorBox(e));
    return;
  }
  const rate = st.ingest?.samples_per_second ?? 0;
  const protos = Object.entries(st.ingest?.by_protocol || {}).filter(([, v]) => v.samples_total > 0);
  s.ingest.set(
    h('div', { class: 'tiles two' },
      h('div', { class: 'tile' }, h('span', { class: 'tile-label' }, t('ov.rate')),
        // The test reads these two as plain numbers: no grouping separators.
        h('span', { class: 'tile-num', 'data-testid': 'ingest-rate' }, rate < 100 ? rate.toFixed(1) : String(Math.round(rate))),
        h('span', { class: 'tile-sub' }, t('ov.perSecond'))),
      h('div', { class: 'tile' }, h('span', { class: 'tile-label' }, t('ov.series')),
        h('span', { class: 'tile-num', 'data-testid': 'active-series' }, String(st.active_series ?? 0)),
        h('span', { class: 'tile-sub' }, t('ov.tenant', st.tenant)))),
    protos.length ? table([t('ov.protocol'), t('ov.samplesPerSec'), t('ov.samplesTotal')],
      protos.map(([p, v]) => row([t('proto.' + p), fmtNum(v.samples_per_second, 1), fmtNum(v.samples_total, 0)]))) : empty(t('ov.noIngest')),
    h('p', { class: 'muted' }, t('ov.uptime', fmtDur(st.uptime_seconds))));

  const src = st.sources || [];
  const down = src.filter((x) => !x.up).length;
  s.sources.set(
    src.length ? h('p', { class: down ? 'bad' : 'good' }, down ? t('ov.sourcesDown', down, src.length) : t('ov.sourcesUp', src.length)) : null,
    src.length ? table([t('src.state'), t('src.name'), t('src.reason'), t('src.lastSeen'), t('src.requests'), t('src.failures')],
      src.map((x) => row([
        badge(x.up ? t('src.up') : t('src.down'), x.up ? 'good' : 'bad'),
        [badge(x.kind, 'plain'), ' ', h('span', { title: [x.user_agent, x.address].filter(Boolean).join(' · ') }, x.name)],
        h('span', { class: 'reason', 'data-source-reason': x.reason || '' }, x.up ? '' : (x.reason || '—')),
        h('span', { class: 'nowrap' }, x.last_seen ? fmtAgo(x.last_seen) : (x.since ? fmtAgo(x.since) : '—')),
        x.requests ?? '—', x.failures ?? '—'], { 'data-source-up': String(!!x.up) }))) : empty(t('ov.noSources')));
}

// cluster fills the cluster section: the leader, each node's health and
// partitions, and per zone how many partitions it can answer for whole
// and its consumer lag (docs/cluster.md). Hidden on a single node.
async function cluster(s) {
  let st;
  try {
    st = await api.get('/api/v1/status/cluster');
  } catch (e) {
    // 404: a single node; 401/403: a user without the metrics role.
    if ([401, 403, 404].includes(e.status)) {
      s.cluster.el.hidden = true;
      return;
    }
    s.cluster.el.hidden = false;
    s.cluster.set(errorBox(e));
    return;
  }
  s.cluster.el.hidden = false;
  const nodes = st.nodes || [];
  const zones = st.zones || [];
  const down = nodes.filter((n) => !n.healthy).length;
  const parts = (list) => (list && list.length ? list.join(', ') : '—');
  s.cluster.set(
    h('p', { class: down ? 'bad' : 'good', 'data-testid': 'cluster-health' },
      down ? t('ov.nodesDown', down, nodes.length) : t('ov.nodesUp', nodes.length, st.partitions)),
    h('p', { 'data-testid': 'cluster-leader' }, st.leader && st.leader.node
      ? t('ov.leader', st.leader.node, st.leader.since ? fmtAgo(st.leader.since) : '—')
      : h('span', { class: 'bad' }, t('ov.noLeader'))),
    table([t('ov.node'), t('src.state'), t('ov.owned'), t('ov.held'), t('src.lastSeen')],
      nodes.map((n) => row([
        [n.zone + '/' + n.node, n.zone + '/' + n.node === st.self ? h('span', { class: 'muted small' }, ' ' + t('ov.self')) : null],
        badge(n.healthy ? t('src.up') : t('src.down'), n.healthy ? 'good' : 'bad'),
        parts(n.owned), parts(n.held),
        h('span', { class: 'nowrap' }, n.last_seen ? fmtAgo(n.last_seen) : '—')], { 'data-node': n.zone + '/' + n.node }))),
    table([t('ov.zone'), t('ov.groupState'), t('ov.readable'), t('ov.lag')],
      zones.map((z) => {
        const ps = z.partitions || [];
        const readable = ps.filter((p) => p.readable).length;
        const lags = ps.map((p) => p.lag).filter((l) => l >= 0);
        const lag = lags.reduce((a, b) => a + b, 0);
        return row([
          z.zone,
          z.error ? badge(z.error, 'bad') : (z.state || '—'),
          h('span', { class: readable === ps.length ? 'good' : 'bad' }, `${readable} / ${ps.length}`),
          lags.length ? t('ov.lagRecords', fmtNum(lag, 0), fmtNum(Math.max(...lags), 0)) : '—',
        ], { 'data-zone': z.zone });
      })));
}
