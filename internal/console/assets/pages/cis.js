// CIs (#/cis): the configuration items as a tree of dependencies (a CI
// under each CI it depends on, roots first), each with its owner, where
// it comes from, and its open incidents (a child incident says its
// parent). A CI that depends on several others shows under each.
//
// Data: GET /api/v1/cis.
import { h, badge, statusBadge, priorityBadge, errorBox, empty } from '../dom.js';
import * as api from '../api.js';
import { t } from '../i18n.js';

export async function render(el, ctx) {
  el.append(h('div', { class: 'page-head' }, h('h1', null, t('nav.cis'))), h('p', { class: 'muted' }, t('ci.help')));
  let cis;
  try {
    cis = (await api.get('/api/v1/cis')) || [];
  } catch (e) {
    el.append(errorBox(e, 'error'));
    return;
  }
  if (!ctx.alive()) return;
  if (!cis.length) {
    el.append(empty(t('ci.none')));
    return;
  }
  const byName = new Map(cis.map((c) => [c.name, c]));
  // Roots: CIs that depend on none the tenant has.
  const roots = cis.filter((c) => !(c.depends_on || []).some((d) => byName.has(d)));
  const node = (c, path) => {
    const loop = path.includes(c.name); // cannot happen (the API refuses cycles); guards the drawing
    const kids = loop ? [] : (c.dependents || []).map((d) => byName.get(d)).filter(Boolean);
    return h('li', { 'data-ci': c.name },
      h('div', { class: 'ci-node' },
        h('strong', null, c.name),
        c.kind ? h('span', { class: 'muted' }, ' ' + c.kind) : null,
        c.owner_group ? h('span', { class: 'muted' }, ' · ' + t('inc.owner') + ' ' + c.owner_group) : null,
        ' ', badge(t('oc.source.' + (c.source || 'config')), c.source === 'api' ? 'info' : ''),
        (c.depends_on || []).length > 1 ? h('span', { class: 'muted' }, ' · ' + t('ci.dependsOn', c.depends_on.join(', '))) : null,
        (c.warnings || []).map((w) => [' ', badge(w, 'warn')]),
        incidentList(c.incidents || [])),
      kids.length ? h('ul', { class: 'ci-tree' }, kids.map((k) => node(k, [...path, c.name]))) : null);
  };
  el.append(h('section', { class: 'panel', 'data-testid': 'ci-tree' }, h('h2', null, t('ci.tree')),
    h('ul', { class: 'ci-tree' }, roots.map((c) => node(c, [])))));
}

function incidentList(incs) {
  if (!incs.length) return h('span', { class: 'muted' }, ' · ' + t('ci.noIncidents'));
  return h('ul', { class: 'ci-incidents' }, incs.map((i) => h('li', { 'data-incident': i.id },
    priorityBadge(i.priority), ' ', statusBadge(i.status), ' ',
    h('a', { href: '#/incidents/' + encodeURIComponent(i.id) }, i.id), ' ', i.title,
    i.parent ? h('span', { class: 'muted' }, ' · ', t('ci.childOf'), ' ', h('a', { href: '#/incidents/' + encodeURIComponent(i.parent) }, i.parent)) : null,
    (i.children || []).length ? h('span', { class: 'muted' }, ' · ' + t('ci.children', i.children.length)) : null)));
}
