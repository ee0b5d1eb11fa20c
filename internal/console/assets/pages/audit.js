// Audit log (#/audit): who changed what through the ITSM, ruler and admin
// APIs, when and from where; newest first, filtered by user, action or
// object. Admins only (the API answers 403 to others).
//
// Data: GET /api/v1/audit?user=&action=&object=&limit=
import { h, table, row, errorBox, empty, fmtTime, fmtAgo } from '../dom.js';
import * as api from '../api.js';
import { t } from '../i18n.js';

export async function render(el, ctx) {
  const q = ctx.route.query;
  el.append(h('div', { class: 'page-head' }, h('h1', null, t('nav.audit'))));
  const field = (name, label) => h('label', null, h('span', null, label),
    h('input', { type: 'text', name, value: q.get(name) || '', 'data-testid': 'audit-' + name, size: 14, autocomplete: 'off' }));
  const form = h('form', {
    class: 'filters', 'data-testid': 'audit-filters',
    onsubmit: (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      for (const n of ['user', 'action', 'object']) {
        const v = form.elements[n].value.trim();
        if (v) p.set(n, v);
      }
      location.hash = '#/audit' + (p.toString() ? '?' + p : '');
    },
  }, field('user', t('audit.user')), field('action', t('audit.action')), field('object', t('audit.object')),
  h('button', { type: 'submit' }, t('audit.filter')));
  el.append(form);
  let list;
  try {
    const params = { limit: '500' };
    for (const n of ['user', 'action', 'object']) if (q.get(n)) params[n] = q.get(n);
    list = (await api.get('/api/v1/audit', params)) || [];
  } catch (e) {
    el.append(errorBox(e, 'error'));
    return;
  }
  if (!ctx.alive()) return;
  if (!list.length) {
    const filtered = ['user', 'action', 'object'].some((n) => q.get(n));
    el.append(empty(t(filtered ? 'audit.noMatch' : 'audit.none')));
    return;
  }
  el.append(h('section', { class: 'panel' }, table(
    [t('audit.when'), t('audit.user'), t('audit.action'), t('audit.object'), t('audit.summary'), t('audit.from')],
    list.map((e) => row([
      h('span', { class: 'nowrap', title: fmtTime(e.at) }, fmtAgo(e.at)), e.user, h('code', null, e.action),
      e.object ? (e.kind === 'incident' ? h('a', { href: '#/incidents/' + encodeURIComponent(e.object) }, e.object) : e.object) : '—',
      e.summary, e.forwarded_for ? `${e.addr} (${e.forwarded_for})` : e.addr,
    ], { 'data-audit-action': e.action })), { 'data-testid': 'audit-table' })));
}
