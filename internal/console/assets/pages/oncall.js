// On call (#/oncall[?at=…]): who is on call for each group now (or at a
// time), since when, until when, who covers by an override, and the next
// hand-overs; then the escalation policies that page them.
//
// Data: GET /api/v1/oncall?at=&next=3, GET /api/v1/escalation_policies.
import { h, table, row, badge, errorBox, empty, fmtTime, fmtAgo, parseLocalTime } from '../dom.js';
import * as api from '../api.js';
import { t } from '../i18n.js';

export async function render(el, ctx) {
  const q = ctx.route.query;
  const at = q.get('at') || '';
  const bad = h('div', { class: 'error', role: 'alert', 'data-testid': 'error', hidden: true });
  const input = h('input', { type: 'text', name: 'at', value: at ? fmtTime(Number(at)).slice(0, 16) : '', size: 18, 'data-testid': 'oncall-at', placeholder: 'YYYY-MM-DD HH:MM',
    autocomplete: 'off' });
  const form = h('form', {
    class: 'filters', 'data-testid': 'oncall-form',
    onsubmit: (e) => {
      e.preventDefault();
      const v = input.value.trim();
      const secs = v ? parseLocalTime(v) : NaN;
      bad.hidden = !v || !isNaN(secs);
      bad.textContent = bad.hidden ? '' : t('oc.badTime');
      if (v && isNaN(secs)) return;
      location.hash = '#/oncall' + (v ? '?at=' + secs : '');
    },
  }, h('label', null, h('span', null, t('oc.at')), input), h('button', { type: 'submit' }, t('oc.show')),
  at ? h('a', { href: '#/oncall' }, t('oc.now')) : null);
  el.append(h('div', { class: 'page-head' }, h('h1', null, t('nav.oncall'))), form, bad);

  let shifts, policies;
  try {
    [shifts, policies] = await Promise.all([
      api.get('/api/v1/oncall', { at, next: 3 }),
      api.get('/api/v1/escalation_policies'),
    ]);
  } catch (e) {
    el.append(errorBox(e, 'error'));
    return;
  }
  if (!ctx.alive()) return;
  shifts = shifts || [];
  el.append(h('section', { class: 'panel', 'data-testid': 'oncall-now' },
    h('h2', null, at ? t('oc.at.title', fmtTime(Number(at))) : t('oc.now.title')),
    shifts.length ? table([t('oc.group'), t('oc.person'), t('oc.since'), t('oc.until'), t('oc.next'), t('oc.rotation')],
      shifts.map((s) => row([
        s.group,
        h('strong', { 'data-testid': 'oncall-person' }, s.person,
          s.override ? [' ', badge(t('oc.override'), 'warn')] : null),
        fmtTime(s.since),
        s.until ? [fmtTime(s.until), ' ', h('span', { class: 'muted' }, '(' + fmtAgo(s.until) + ')')] : '—',
        (s.next || []).map((n, i) => [i ? h('br') : null, t('oc.handover', fmtTime(n.at), n.to)]),
        s.rotation + (s.override && s.override.comment ? ` · ${s.override.comment}` : ''),
      ], { 'data-group': s.group }))) : empty(t('oc.none'))));

  policies = policies || [];
  el.append(h('section', { class: 'panel', 'data-testid': 'oncall-policies' }, h('h2', null, t('oc.policies')),
    policies.length ? table([t('oc.policy'), t('oc.appliesTo'), t('oc.steps'), t('oc.repeat'), t('oc.source')],
      policies.map((p) => row([
        p.name,
        [...(p.cis || []).map((c) => t('inc.ci') + ' ' + c), ...(p.groups || []).map((g) => t('oc.group') + ' ' + g)].join(', ') || '—',
        h('ol', { class: 'steps-list' }, (p.steps || []).map((s) => h('li', null, t('oc.step', s.after, stepTarget(s))))),
        p.repeat ? t('oc.repeatN', p.repeat, p.repeat_after) : '—',
        t('oc.source.' + (p.source || 'config')),
      ]))) : empty(t('oc.noPolicies'))));
}

function stepTarget(s) {
  if (s.group) return t('oc.target.group', s.group);
  if (s.person) return t('oc.target.person', s.person);
  return t('oc.target.oncall', s.oncall);
}
