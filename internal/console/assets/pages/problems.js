// Problems (#/problems): recurring incidents of one CI and alert, moved
// along registered → root cause identified → workaround/solution →
// verified → closed.
//
// Data: GET /api/v1/problems, POST /api/v1/problems/{id}/{root_cause|
// workaround|solution|verify|close} with the form value text=.
import { h, table, row, statusBadge, errorBox, errText, empty, fmtTime, fmtAgo } from '../dom.js';
import * as api from '../api.js';
import { t, tOr } from '../i18n.js';

const STEPS = ['registered', 'root_cause_identified', 'workaround', 'solution', 'verified', 'closed'];
const ACTIONS = ['root_cause', 'workaround', 'solution', 'verify', 'close'];

export async function render(el, ctx) {
  el.append(h('div', { class: 'page-head' }, h('h1', null, t('nav.problems'))));
  let list;
  try {
    list = (await api.get('/api/v1/problems')) || [];
  } catch (e) {
    el.append(errorBox(e, 'error'));
    return;
  }
  if (!list.length) {
    el.append(empty(t('prb.none')));
    return;
  }
  // Open problems first, newest first.
  list.sort((a, b) => (a.status === 'closed') - (b.status === 'closed') || Date.parse(b.opened_at) - Date.parse(a.opened_at));
  el.append(h('section', { class: 'panel' }, table(
    [t('prb.id'), t('prb.status'), t('inc.ci'), t('alert.name'), t('prb.incidents'), t('inc.opened')],
    list.map((p) => row([h('a', { href: '#problem-' + p.id, onclick: (e) => { e.preventDefault(); document.getElementById('problem-' + p.id)?.scrollIntoView(); } }, p.id),
      statusBadge(p.status), p.ci || '—', p.alertname || '—', (p.incidents || []).length, fmtAgo(p.opened_at)])))));
  for (const p of list) el.append(card(p, ctx));
}

function card(p, ctx) {
  const errEl = h('div', { class: 'error', role: 'alert', 'data-testid': 'error', hidden: true });
  const input = h('input', { type: 'text', 'data-testid': 'problem-input', placeholder: t('prb.textHint'), 'aria-label': t('prb.text') });
  const act = async (action) => {
    errEl.hidden = true;
    ctx.loading(true);
    try {
      const updated = await api.post(`/api/v1/problems/${encodeURIComponent(p.id)}/${action}`, { text: input.value.trim() });
      if (ctx.alive()) el.replaceWith(card(updated, ctx));
    } catch (e) {
      errEl.hidden = false;
      errEl.textContent = errText(e);
    } finally {
      ctx.loading(false);
    }
  };
  const at = STEPS.indexOf(p.status);
  const el = h('section', { class: 'panel problem', id: 'problem-' + p.id, 'data-problem-id': p.id, 'data-status': p.status },
    h('h2', null, p.id, ' ', statusBadge(p.status)),
    h('p', null, t('prb.about', p.alertname || '—', p.ci || '—'), ' · ', t('prb.openedAt', fmtTime(p.opened_at))),
    h('ol', { class: 'steps' }, STEPS.map((st, i) => h('li', { class: i < at ? 'done' : i === at ? 'current' : '' }, tOr('status.' + st, st)))),
    h('p', null, t('prb.incidents'), ': ', (p.incidents || []).map((id, i) => [i ? ', ' : '', h('a', { href: '#/incidents/' + encodeURIComponent(id) }, id)])),
    p.status === 'closed' || !api.may('operator') ? null : h('form', { class: 'action-form', onsubmit: (e) => e.preventDefault() },
      input, ACTIONS.map((a) => h('button', { type: 'button', 'data-action': a, onclick: () => act(a) }, t('prb.' + a)))),
    errEl,
    table([t('tl.when'), t('tl.who'), t('tl.what'), t('tl.detail')],
      [...(p.timeline || [])].reverse().map((e) => row([fmtTime(e.at), e.who, tOr('status.' + e.what, e.what), e.detail || '']))));
  return el;
}
