// SLA report (#/sla?from=…&to=… in Unix seconds, or ?range=24h|7d|30d):
// per priority the incidents, MTTA, MTTR and SLA compliance, and the CIs
// with the most incidents.
//
// Data: GET /api/v1/reports/sla?from=&to= (JSON); the printable page is
// the same with format=html.
import { h, table, row, priorityBadge, errorBox, errText, empty, bar, fmtNum, fmtTime, fmtMinute, parseLocalTime } from '../dom.js';
import * as api from '../api.js';
import { t } from '../i18n.js';

const PRESETS = { '24h': 86400, '7d': 604800, '30d': 2592000 };

export async function render(el, ctx) {
  const q = ctx.route.query;
  const now = Math.floor(Date.now() / 1000);
  let preset = q.get('range') || (q.get('from') ? '' : '7d');
  let from = Number(q.get('from')) || now - (PRESETS[preset] || PRESETS['7d']);
  let to = Number(q.get('to')) || now;
  if (PRESETS[preset]) { from = now - PRESETS[preset]; to = now; }

  // NB: text, not <input type=datetime-local>: Chromium shows that in the
  // browser's locale (03/14/2025, 09:30 AM), while the console writes ISO
  // dates and 24-hour times everywhere. parseLocalTime checks what is typed.
  const dateInput = (testid, label, secs) => h('input', {
    type: 'text', value: fmtMinute(secs), 'data-testid': testid, 'aria-label': label, 'aria-describedby': 'sla-date-hint',
    placeholder: t('sla.dateHint'), size: 16, maxlength: 19, autocomplete: 'off', spellcheck: 'false',
    oninput: (e) => e.target.removeAttribute('aria-invalid'),
  });
  const fromIn = dateInput('sla-from', t('sla.from'), from);
  const toIn = dateInput('sla-to', t('sla.to'), to);
  const go = (params) => { location.hash = '#/sla?' + new URLSearchParams(params); };
  const errEl = h('div', { class: 'error', role: 'alert', 'data-testid': 'error', hidden: true });
  const params = { from, to };

  const printable = async () => {
    const w = window.open('', '_blank');
    try {
      const url = URL.createObjectURL(await api.html('/api/v1/reports/sla', { ...params, format: 'html' }));
      if (w) w.location.href = url;
      else location.href = url;
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      if (w) w.close();
      errEl.hidden = false;
      errEl.textContent = errText(e);
    }
  };

  el.append(
    h('div', { class: 'page-head' }, h('h1', null, t('nav.sla'))),
    h('form', {
      class: 'filters panel',
      onsubmit: (e) => {
        e.preventDefault();
        const f = parseLocalTime(fromIn.value), tt = parseLocalTime(toIn.value);
        if (isNaN(f) || isNaN(tt) || tt < f) {
          if (isNaN(f) || !isNaN(tt)) fromIn.setAttribute('aria-invalid', 'true');
          if (isNaN(tt) || !isNaN(f)) toIn.setAttribute('aria-invalid', 'true');
          errEl.hidden = false;
          errEl.textContent = t('sla.badRange');
          return;
        }
        go({ from: Math.floor(f), to: Math.floor(tt) });
      },
    },
    Object.keys(PRESETS).map((p) => h('button', { type: 'button', 'data-preset': p, class: p === preset ? 'primary' : '', onclick: () => go({ range: p }) }, t('range.' + p))),
    h('label', null, h('span', null, t('sla.from')), fromIn),
    h('label', null, h('span', null, t('sla.to')), toIn),
    h('span', { id: 'sla-date-hint', class: 'muted small hint' }, t('sla.dateHint')),
    h('button', { type: 'submit', 'data-testid': 'sla-apply' }, t('sla.apply')),
    h('button', { type: 'button', onclick: printable }, t('sla.printable') + ' ↗')),
    errEl);

  let rep;
  try {
    rep = await api.get('/api/v1/reports/sla', params);
  } catch (e) {
    el.append(errorBox(e));
    return;
  }
  const prios = rep.priorities || [];
  const total = prios.reduce((n, p) => n + p.incidents, 0);
  const most = Math.max(1, ...prios.map((p) => p.incidents));
  el.append(h('p', { class: 'muted' }, t('sla.period', fmtTime(rep.from), fmtTime(rep.to), total)));
  el.append(h('section', { class: 'panel', 'data-testid': 'sla-priorities' }, h('h2', null, t('sla.byPriority')),
    prios.length ? table([t('inc.priority'), t('sla.incidents'), '', t('sla.mtta'), t('sla.mttr'), t('sla.compliance')],
      prios.map((p) => row([priorityBadge(p.priority), fmtNum(p.incidents, 0), bar(p.incidents / most),
        p.mtta || '—', p.mttr || '—',
        h('span', { class: p.sla_compliance_percent < 95 ? 'bad strong' : 'good' }, fmtNum(p.sla_compliance_percent, 1) + '%')]))) : empty(t('sla.none'))));
  const cis = rep.top_cis || [];
  const ciMost = Math.max(1, ...cis.map((c) => c.incidents));
  el.append(h('section', { class: 'panel' }, h('h2', null, t('sla.topCis')),
    cis.length ? table([t('inc.ci'), t('sla.incidents'), ''], cis.map((c) => row([
      h('a', { href: '#/incidents?ci=' + encodeURIComponent(c.ci) }, c.ci || '—'), fmtNum(c.incidents, 0), bar(c.incidents / ciMost)]))) : empty(t('sla.none'))));
}
