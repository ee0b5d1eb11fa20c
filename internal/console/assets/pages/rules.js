// Rules (#/rules): the firing and pending alerts, then every rule group
// with its last evaluation, evaluation time and each rule's health.
//
// Data: GET /api/v1/alerts, GET /api/v1/rules.
import { h, table, row, badge, statusBadge, errorBox, empty, labelChips, fmtAgo, fmtDur, fmtTime, fmtValue } from '../dom.js';
import * as api from '../api.js';
import { severity } from './overview.js';
import { t } from '../i18n.js';

// ms renders an evaluation time in seconds as ms.
const ms = (secs) => (secs * 1000 < 1 ? '<1 ms' : fmtValue(secs * 1000) + ' ms');

export async function render(el, ctx) {
  el.append(h('div', { class: 'page-head' }, h('h1', null, t('nav.rules'))));
  const [alerts, rules] = await Promise.allSettled([api.get('/api/v1/alerts'), api.get('/api/v1/rules')]);

  const alertsPanel = h('section', { class: 'panel', 'data-testid': 'rules-alerts' }, h('h2', null, t('rules.active')));
  el.append(alertsPanel);
  if (alerts.status === 'rejected') alertsPanel.append(errorBox(alerts.reason));
  else {
    const list = (alerts.value.alerts || []).slice().sort((a, b) => (a.state === b.state ? 0 : a.state === 'firing' ? -1 : 1));
    alertsPanel.append(list.length ? table([t('alert.name'), t('alert.state'), t('alert.severity'), t('alert.labels'), t('alert.summary'), t('alert.since'), t('alert.value')],
      list.map((a) => row([h('strong', null, a.labels.alertname), statusBadge(a.state), severity(a.labels.severity),
        labelChips(a.labels, ['alertname', 'severity']), a.annotations?.summary || '',
        h('span', { title: fmtTime(a.activeAt) }, fmtAgo(a.activeAt)), fmtValue(a.value)]))) : empty(t('ov.noAlerts')));
  }

  if (rules.status === 'rejected') {
    el.append(errorBox(rules.reason));
    return;
  }
  const groups = rules.value.groups || [];
  const all = groups.flatMap((g) => g.rules);
  const bad = all.filter((r) => r.health === 'err').length;
  el.append(h('p', { class: bad ? 'bad' : 'muted' }, t('rules.summary', groups.length, all.length, bad)));
  if (!groups.length) el.append(empty(t('rules.none')));
  for (const g of groups) {
    el.append(h('section', { class: 'panel', 'data-group': g.name },
      h('h2', null, g.name),
      h('p', { class: 'muted' }, t('rules.groupMeta', g.file, fmtDur(g.interval), fmtAgo(g.lastEvaluation), ms(g.evaluationTime))),
      table([t('rules.name'), t('rules.health'), t('alert.state'), t('rules.query'), t('rules.lastEval'), t('rules.evalTime')],
        g.rules.flatMap((r) => [row([
          h('span', null, badge(r.type === 'alerting' ? t('rules.alert') : t('rules.record'), 'plain'), ' ', h('strong', null, r.name),
            r.duration ? h('span', { class: 'muted' }, ' ' + t('rules.for', fmtDur(r.duration))) : null),
          statusBadge(r.health === 'err' ? 'error' : r.health),
          r.type === 'alerting' ? [statusBadge(r.state), r.alerts?.length ? ` ×${r.alerts.length}` : ''] : '—',
          h('code', { class: 'query' }, r.query),
          h('span', { title: fmtTime(r.lastEvaluation) }, fmtAgo(r.lastEvaluation)), ms(r.evaluationTime)],
        { 'data-health': r.health }),
        // The error gets the whole width under its rule.
        r.lastError ? h('tr', { class: 'rule-error' }, h('td', { colspan: 6 }, h('span', { class: 'bad detail' }, r.lastError))) : null,
        ]))));
  }
}
