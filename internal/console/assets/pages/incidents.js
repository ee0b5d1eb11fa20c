// Incidents: the filterable board (#/incidents?status=&priority=&ci=&owner=&closed=1)
// and one incident's page (#/incidents/ID) with its actions.
//
// The board lists the most pressing first: open and acknowledged before
// resolved and closed, then by priority (P1 first), then by age (the
// oldest first: it has waited longest). Resolved and closed incidents are
// left out unless closed=1 (the "show resolved and closed" box) or the
// status filter asks for them.
//
// Data: GET /api/v1/incidents (status, priority and ci filter on the
// server; "active" and the owner group here), GET /api/v1/incidents/{id},
// GET /api/v1/oncall?group= (who is on call for the owner group now),
// POST /api/v1/incidents/{id}/{ack|resolve|close|assign|comment} as form
// values (assignee=, text=), GET /api/v1/incidents/{id}/report (HTML).
import { h, s, table, row, badge, priorityBadge, statusBadge, errorBox, errText, empty, labelChips,
  fmtAgo, fmtDur, fmtTime, fmtValue } from '../dom.js';
import * as api from '../api.js';
import { t, tOr, lang } from '../i18n.js';

const STATUSES = ['active', 'open', 'acknowledged', 'resolved', 'closed'];
const PRIORITIES = ['P1', 'P2', 'P3', 'P4', 'P5'];

export function render(el, ctx) {
  const id = ctx.route.parts[0];
  return id ? detail(el, ctx, id) : board(el, ctx);
}

// ---- board ----

async function board(el, ctx) {
  const q = ctx.route.query;
  const f = {
    status: q.get('status') || '', priority: q.get('priority') || '', ci: q.get('ci') || '', owner: q.get('owner') || '',
    closed: q.get('closed') === '1' ? '1' : '',
  };
  const apply = (patch) => {
    const next = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...f, ...patch })) if (v) next.set(k, v);
    location.hash = '#/incidents' + (next.toString() ? '?' + next : '');
  };
  const select = (name, options, label) => h('label', null, h('span', null, label),
    h('select', { 'data-filter': name, onchange: (e) => apply({ [name]: e.target.value }) },
      h('option', { value: '' }, t('filter.all')),
      options.map(([v, text]) => h('option', { value: v, selected: v === f[name] }, text))));

  const listEl = h('div', { class: 'board' });
  const filters = h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() });
  const errEl = h('div', { 'data-testid': 'error', class: 'error', role: 'alert', hidden: true });
  const create = api.may('operator') ? newIncidentForm(errEl) : null;
  el.append(h('div', { class: 'page-head' }, h('h1', null, t('nav.incidents')), create && create.button),
    create && create.form, filters, errEl, listEl);

  let list;
  try {
    list = await api.get('/api/v1/incidents', {
      status: f.status === 'active' ? '' : f.status, priority: f.priority, ci: f.ci,
    });
  } catch (e) {
    listEl.append(errorBox(e));
    return;
  }
  if (!ctx.alive()) return;
  list = list || [];
  const owners = [...new Set(list.map((i) => i.owner_group).filter(Boolean).concat(f.owner ? [f.owner] : []))].sort();
  const cis = [...new Set(list.map((i) => i.ci).filter(Boolean))].sort();
  if (f.status === 'active') list = list.filter((i) => i.status === 'open' || i.status === 'acknowledged');
  if (f.owner) list = list.filter((i) => i.owner_group === f.owner);
  // A status filter decides by itself; without one, the closed box does.
  const showClosed = f.status !== '' || f.closed === '1';
  const hiddenClosed = showClosed ? 0 : list.filter(isDone).length;
  if (!showClosed) list = list.filter((i) => !isDone(i));
  list.sort(boardOrder);

  filters.append(
    select('status', STATUSES.map((x) => [x, tOr('status.' + x, x)]), t('inc.status')),
    select('priority', PRIORITIES.map((p) => [p, p]), t('inc.priority')),
    h('label', null, h('span', null, t('inc.ci')),
      h('input', { 'data-filter': 'ci', type: 'search', list: 'ci-list', value: f.ci, size: 12,
        onchange: (e) => apply({ ci: e.target.value.trim() }) }),
      h('datalist', { id: 'ci-list' }, cis.map((c) => h('option', { value: c })))),
    select('owner', owners.map((o) => [o, o]), t('inc.owner')),
    h('label', { class: 'check' },
      h('input', { type: 'checkbox', 'data-testid': 'show-closed', checked: showClosed, disabled: f.status !== '',
        onchange: (e) => apply({ closed: e.target.checked ? '1' : '' }) }),
      h('span', null, t('inc.showClosed'))),
    h('span', { class: 'muted count', 'data-testid': 'incident-count' }, t('inc.count', list.length),
      hiddenClosed ? ' · ' + t('inc.closedHidden', hiddenClosed) : ''));

  if (!list.length) {
    listEl.append(empty(t('inc.none')));
    return;
  }
  const quickAck = (inc) => !api.may('operator') ? null : h('button', {
    // Not data-action: that names the incident page's buttons.
    type: 'button', 'data-quick-action': 'ack', class: 'small',
    onclick: async (e) => {
      e.stopPropagation();
      try {
        await api.post(`/api/v1/incidents/${encodeURIComponent(inc.id)}/ack`);
        ctx.rerender();
      } catch (err) {
        errEl.hidden = false;
        errEl.textContent = errText(err);
      }
    },
  }, t('act.ack'));
  const open = (inc) => { location.hash = '#/incidents/' + encodeURIComponent(inc.id); };
  listEl.append(table(
    [t('inc.id'), t('inc.priority'), t('inc.status'), t('inc.title'), t('inc.ci'), t('inc.owner'), t('inc.assignee'), t('inc.opened'), t('inc.sla'), ''],
    list.map((inc) => h('tr', {
      class: 'clickable', tabindex: 0, 'data-incident-id': inc.id, 'data-status': inc.status,
      onclick: () => open(inc), onkeydown: (e) => { if (e.key === 'Enter') open(inc); },
    }, [
      h('a', { href: '#/incidents/' + encodeURIComponent(inc.id) }, inc.id), priorityBadge(inc.priority), statusBadge(inc.status),
      h('span', { class: 'title' }, inc.title, inc.flapping ? badge(t('inc.flapping'), 'warn') : null),
      inc.ci || '—', inc.owner_group || '—', inc.assignee || '—',
      h('span', { title: fmtTime(inc.opened_at) }, fmtAgo(inc.opened_at)), slaCell(inc),
      inc.status === 'open' ? quickAck(inc) : '',
    ].map((c) => h('td', null, c)))),
    { class: 'incidents' }));
}

const isDone = (i) => i.status === 'resolved' || i.status === 'closed';

// boardOrder: open and acknowledged first, then P1…P5 (none last), then
// the oldest first.
function boardOrder(a, b) {
  const rank = (p) => (PRIORITIES.includes(p) ? PRIORITIES.indexOf(p) : PRIORITIES.length);
  return isDone(a) - isDone(b) || rank(a.priority) - rank(b.priority) ||
    (Date.parse(a.opened_at) || 0) - (Date.parse(b.opened_at) || 0);
}

// newIncidentForm is the operator's form for a manual incident (title;
// priority, CI and owner group optional): POST /api/v1/incidents, then the
// new incident's page.
function newIncidentForm(errEl) {
  const title = h('input', { type: 'text', required: true, 'data-testid': 'new-title', placeholder: t('inc.titleHint'), size: 40 });
  const priority = h('select', { 'data-testid': 'new-priority' },
    h('option', { value: '' }, t('inc.defaultPriority')), PRIORITIES.map((p) => h('option', { value: p }, p)));
  const ci = h('input', { type: 'text', 'data-testid': 'new-ci', size: 12 });
  const owner = h('input', { type: 'text', 'data-testid': 'new-owner', size: 12 });
  const field = (label, input) => h('label', null, h('span', null, label), input);
  const form = h('form', {
    class: 'filters new-incident', hidden: true,
    onsubmit: async (e) => {
      e.preventDefault();
      if (!title.value.trim()) {
        title.focus();
        return;
      }
      errEl.hidden = true;
      try {
        const inc = await api.post('/api/v1/incidents', {
          title: title.value.trim(), priority: priority.value, ci: ci.value.trim(), owner_group: owner.value.trim(),
        });
        location.hash = '#/incidents/' + encodeURIComponent(inc.id);
      } catch (err) {
        errEl.hidden = false;
        errEl.textContent = errText(err);
      }
    },
  }, field(t('inc.titleField'), title), field(t('inc.priority'), priority), field(t('inc.ci'), ci), field(t('inc.owner'), owner),
  h('button', { type: 'submit', class: 'primary', 'data-testid': 'new-submit' }, t('act.create')));
  const button = h('button', {
    type: 'button', 'data-testid': 'new-incident',
    onclick: () => {
      form.hidden = !form.hidden;
      if (!form.hidden) title.focus();
    },
  }, t('act.new'));
  return { button, form };
}

function slaCell(inc) {
  const sla = inc.sla || {};
  if (sla.acknowledge_breached || sla.resolve_breached) return badge(t('sla.breached'), 'bad');
  if (!sla.acknowledge_target_seconds && !sla.resolve_target_seconds) return '—';
  return badge(t('sla.ok'), 'good');
}

// ---- one incident ----

async function detail(el, ctx, id) {
  const path = '/api/v1/incidents/' + encodeURIComponent(id);
  const errEl = h('div', { 'data-testid': 'error', class: 'error', role: 'alert', hidden: true });
  const body = h('div');
  el.append(h('p', { class: 'crumbs' }, h('a', { href: '#/incidents' }, '← ' + t('nav.incidents'))), errEl, body);

  const showErr = (e) => {
    errEl.hidden = !e;
    errEl.textContent = e ? errText(e) : '';
  };

  // load fetches the incident and redraws the page.
  const load = async () => {
    const inc = await api.get(path);
    if (ctx.alive()) body.replaceChildren(...draw(inc).filter(Boolean));
  };

  const act = async (action, form) => {
    showErr(null);
    ctx.loading(true);
    try {
      await api.post(`${path}/${action}`, form);
      await load();
    } catch (e) {
      showErr(e);
    } finally {
      ctx.loading(false);
    }
  };

  // The inline form for assign and comment (no window.prompt).
  let formMode = null;
  const input = h('input', { 'data-testid': 'action-input', type: 'text', autocomplete: 'off' });
  // Priority override: the new priority here, the reason in input.
  const prioSelect = h('select', { 'data-testid': 'priority-select', 'aria-label': t('inc.priority'), hidden: true },
    PRIORITIES.map((p) => h('option', { value: p }, p)));
  const inputLabel = h('label', { for: 'action-input' });
  input.id = 'action-input';
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'action-submit' });
  const actionForm = h('form', {
    class: 'action-form', hidden: true,
    onsubmit: async (e) => {
      e.preventDefault();
      const v = input.value.trim();
      if (!v) {
        input.focus();
        return;
      }
      const form = formMode === 'assign' ? { assignee: v }
        : formMode === 'priority' ? { priority: prioSelect.value, reason: v } : { text: v };
      await act(formMode, form);
      if (errEl.hidden) {
        input.value = '';
        actionForm.hidden = true;
      }
    },
  }, prioSelect, inputLabel, input, submit,
  h('button', { type: 'button', onclick: () => { actionForm.hidden = true; } }, t('act.cancel')));
  const openForm = (mode, inc) => {
    formMode = mode;
    const key = { assign: ['act.assignee', 'act.assigneeHint', 'act.assign'], priority: ['act.reason', 'act.reasonHint', 'act.priority'] }[mode]
      || ['act.commentText', 'act.commentHint', 'act.comment'];
    prioSelect.hidden = mode !== 'priority';
    if (inc) prioSelect.value = inc.priority;
    inputLabel.textContent = t(key[0]);
    input.placeholder = t(key[1]);
    submit.textContent = t(key[2]);
    submit.dataset.mode = mode;
    actionForm.hidden = false;
    input.focus();
  };

  // The closure form for resolve and close: a comment and the cause
  // (root cause, resolution, prevention), all optional; closing starts
  // from what resolving recorded.
  let closureMode = null;
  const closureFields = ['text', 'root_cause', 'resolution', 'prevention'].map((name) => {
    const id = 'closure-' + name;
    const input = name === 'text' ? h('input', { id, type: 'text', autocomplete: 'off', 'data-testid': id })
      : h('textarea', { id, rows: 2, 'data-testid': id });
    return { name, input, label: h('label', { for: id }, t('closure.' + name)) };
  });
  const closureSubmit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'closure-submit' });
  const closureForm = h('form', {
    class: 'action-form closure-form', hidden: true, 'data-testid': 'closure-form',
    onsubmit: async (e) => {
      e.preventDefault();
      const form = {};
      for (const f of closureFields) {
        const v = f.input.value.trim();
        if (v) form[f.name] = v;
      }
      await act(closureMode, form);
      if (errEl.hidden) {
        for (const f of closureFields) f.input.value = '';
        closureForm.hidden = true;
      }
    },
  }, ...closureFields.map((f) => h('div', { class: 'closure-field' }, f.label, f.input)), closureSubmit,
  h('button', { type: 'button', onclick: () => { closureForm.hidden = true; } }, t('act.cancel')));
  const openClosure = (mode, inc) => {
    closureMode = mode;
    actionForm.hidden = true;
    for (const f of closureFields) f.input.value = f.name === 'text' ? '' : inc[f.name] || '';
    closureSubmit.textContent = t(mode === 'resolve' ? 'act.resolve' : 'act.close');
    closureSubmit.dataset.mode = mode;
    closureForm.hidden = false;
    closureFields[1].input.focus();
  };

  const report = async () => {
    // The report needs the Authorization header: fetch it and show it from
    // a blob: URL. The window opens first, while the click still counts.
    const w = window.open('', '_blank');
    try {
      // In the viewer's time zone and language.
      const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
      const blob = await api.html(path + '/report?' + new URLSearchParams({ tz, lang: lang() }));
      const url = URL.createObjectURL(blob);
      if (w) w.location.href = url;
      else location.href = url;
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      if (w) w.close();
      showErr(e);
    }
  };

  function draw(inc) {
    const st = inc.status;
    const next = { open: 'ack', acknowledged: 'resolve', resolved: 'close' }[st];
    // Without the operator role the actions are shown disabled, saying why.
    const allowed = api.may('operator');
    const btn = (action, label, onclick) => h('button', {
      type: 'button', 'data-action': action, class: action === next ? 'primary' : '', onclick,
      disabled: !allowed, title: allowed ? null : t('auth.needsOperator'),
    }, label);
    return [
      h('div', { class: 'page-head incident-head' },
        h('h1', null, h('span', { class: 'muted' }, inc.id), ' ', inc.title),
        h('div', { class: 'head-badges' }, priorityBadge(inc.priority),
          h('span', { 'data-testid': 'incident-status', 'data-status': st }, statusBadge(st)),
          inc.flapping ? badge(t('inc.flapping'), 'warn') : null,
          inc.reopened ? badge(t('inc.reopened', inc.reopened), 'warn') : null,
          inc.quiet ? h('span', { 'data-testid': 'incident-quiet' }, badge(t('inc.quiet'), 'info')) : null)),
      h('div', { class: 'actions' },
        btn('ack', t('act.ack'), () => act('ack')),
        btn('assign', t('act.assign'), () => openForm('assign')),
        btn('comment', t('act.comment'), () => openForm('comment')),
        btn('resolve', t('act.resolve'), () => openClosure('resolve', inc)),
        btn('close', t('act.close'), () => openClosure('close', inc)),
        btn('priority', t('act.priority'), () => openForm('priority', inc)),
        inc.children?.length ? btn('resolve_children', t('act.resolveChildren'), () => act('resolve_children')) : null,
        h('button', { type: 'button', 'data-action': 'report', onclick: report }, t('inc.report') + ' ↗')),
      actionForm,
      closureForm,
      h('div', { class: 'cols' },
        h('section', { class: 'panel' }, h('h2', null, t('inc.facts')), facts(inc)),
        h('section', { class: 'panel', 'data-testid': 'sla-clocks' }, h('h2', null, t('inc.slaClocks')), clocks(inc))),
      h('section', { class: 'panel' }, h('h2', null, t('inc.timeline')), timelineChart(inc, body.clientWidth), timelineTable(inc)),
      alertsPanel(inc),
      causesPanel(inc),
      contributorsPanel(inc),
      actionsPanel(inc),
      detailsPanel(inc),
    ];
  }

  try {
    await load();
  } catch (e) {
    showErr(e);
  }
}

function facts(inc) {
  const dl = (pairs) => h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  const recipients = (inc.propagated_to || []).map((g) => `${g} (${((inc.recipients || {})[g] || []).join(', ')})`).join('; ');
  return dl([
    [t('inc.priority'), [inc.priority, ' · ', t('inc.urgency'), ' ', tOr('level.' + inc.urgency, inc.urgency), ' × ', t('inc.impact'), ' ',
      tOr('level.' + inc.impact, inc.impact), inc.priority_reason ? ` (${inc.priority_reason})` : '']],
    [t('inc.kind'), inc.kind ? tOr('kind.' + inc.kind, inc.kind) : null],
    [t('inc.ci'), inc.ci ? inc.ci + (inc.ci_kind ? ` (${inc.ci_kind})` : '') : '—'],
    [t('inc.owner'), inc.owner_group || '—'],
    [t('inc.assignee'), inc.assignee || '—'],
    [t('inc.oncallNow'), inc.owner_group ? onCallNow(inc.owner_group) : null],
    [t('inc.policy'), inc.escalation_policy ? [inc.escalation_policy,
      inc.escalation ? ' · ' + t('inc.policyStep', inc.escalation.step, inc.escalation.round, (inc.escalation.notified || []).join(', ') || '—') : '',
      inc.next_escalation_at ? ' · ' + t('inc.nextStep', fmtAgo(inc.next_escalation_at)) : ''] : null],
    [t('inc.opened'), fmtTime(inc.opened_at)],
    [t('inc.acknowledged'), inc.acknowledged_at ? fmtTime(inc.acknowledged_at) : null],
    [t('inc.resolved'), inc.resolved_at ? fmtTime(inc.resolved_at) : null],
    [t('inc.closed'), inc.closed_at ? fmtTime(inc.closed_at) : null],
    [t('inc.propagated'), recipients || null],
    [t('inc.escalated'), inc.escalated_to?.length ? inc.escalated_to.join(' → ') : null],
    [t('inc.parent'), inc.parent ? h('a', { href: '#/incidents/' + encodeURIComponent(inc.parent), 'data-testid': 'incident-parent' }, inc.parent) : null],
    [t('inc.children'), inc.children?.length ? relatedList(inc.children) : null],
    [t('inc.problem'), inc.problem_id ? h('a', { href: '#/problems' }, inc.problem_id) : null],
    [t('inc.changes'), inc.changes?.length ? inc.changes.map((c) => `${c.id} (${c.status})`).join(', ') : null],
    [t('closure.root_cause'), inc.root_cause || null],
    [t('closure.resolution'), inc.resolution || null],
    [t('closure.prevention'), inc.prevention || null],
  ]);
}

// relatedList links the child incidents, each with its status and
// title once GET /api/v1/incidents/{id} answers.
function relatedList(ids) {
  return h('ul', { class: 'related', 'data-testid': 'incident-children' }, ids.map((id) => {
    const li = h('li', { 'data-incident': id }, h('a', { href: '#/incidents/' + encodeURIComponent(id) }, id));
    api.get('/api/v1/incidents/' + encodeURIComponent(id)).then((c) => {
      li.append(' ', statusBadge(c.status), ' ', c.ci ? c.ci + ': ' : '', c.title);
    }, () => {});
    return li;
  }));
}

// onCallNow is who is on call for the owner group now, filled in when
// GET /api/v1/oncall answers ("—" for a group without a rotation).
function onCallNow(group) {
  const el = h('span', { 'data-testid': 'incident-oncall' }, '…');
  api.get('/api/v1/oncall', { group }).then((shifts) => {
    const s = (shifts || [])[0];
    el.replaceChildren(s ? h('a', { href: '#/oncall' }, s.person) : '—',
      s && s.until ? h('span', { class: 'muted' }, ' ' + t('inc.oncallUntil', fmtTime(s.until))) : '');
  }, () => el.replaceChildren('—'));
  return el;
}

// clocks shows time to acknowledge and to resolve against their targets.
function clocks(inc) {
  const sla = inc.sla || {};
  const opened = Date.parse(inc.opened_at);
  const elapsed = sla.elapsed_seconds || 0;
  const clock = (label, target, doneAt, breached) => {
    if (!target) return h('div', { class: 'clock' }, h('div', { class: 'clock-head' }, h('strong', null, label), h('span', { class: 'muted' }, t('sla.noTarget'))));
    const used = doneAt ? (Date.parse(doneAt) - opened) / 1000 : elapsed;
    const over = breached || used > target;
    let text;
    if (doneAt) text = t(over ? 'sla.doneLate' : 'sla.doneIn', fmtDur(used));
    else if (inc.resolved_at) text = over ? t('sla.neverLate', fmtDur(used - target)) : t('sla.never'); // resolved unacknowledged
    else if (over) text = t('sla.breachedBy', fmtDur(used - target));
    else text = t('sla.remaining', fmtDur(target - used));
    const kind = over ? 'bad' : doneAt ? 'good' : used / target > 0.75 ? 'warn' : 'good';
    return h('div', { class: 'clock ' + kind, 'data-breached': String(!!over) },
      h('div', { class: 'clock-head' }, h('strong', null, label), h('span', null, t('sla.target', fmtDur(target)))),
      h('div', { class: 'meter' }, h('span', { style: `width:${Math.min(100, (100 * used) / target).toFixed(1)}%` })),
      h('div', { class: 'clock-text' }, text));
  };
  return [
    clock(t('sla.ack'), sla.acknowledge_target_seconds, inc.acknowledged_at, sla.acknowledge_breached),
    clock(t('sla.resolve'), sla.resolve_target_seconds, inc.resolved_at, sla.resolve_breached),
    h('p', { class: 'muted' }, t('sla.elapsed', fmtDur(elapsed))),
    sla.follows ? h('p', { class: 'muted', 'data-testid': 'sla-follows' }, t('inc.follows', sla.follows)) : null,
  ];
}

const EVENT_COLORS = {
  opened: '--bad', reopened: '--bad', acknowledged: '--warn', resolved: '--good', closed: '--muted',
  escalated: '--purple', 'sla breached': '--bad',
};

// timelineChart draws the incident's life as a bar with its events as
// dots; events closer than a few pixels share one dot.
function timelineChart(inc, width) {
  const events = inc.timeline || [];
  if (!events.length) return null;
  const start = Date.parse(inc.opened_at);
  const endAt = inc.closed_at || inc.resolved_at;
  const end = Math.max(endAt ? Date.parse(endAt) : Date.now(), ...events.map((e) => Date.parse(e.at)), start + 1000);
  // Drawn at the page's width so the labels keep their size on a phone.
  const W = Math.max(320, Math.min(1600, (width || 1000) - 40)), L = 16, R = 16;
  const X = (ms) => L + ((W - L - R) * (ms - start)) / (end - start);
  const groups = [];
  for (const e of events) {
    const x = X(Date.parse(e.at));
    const g = groups[groups.length - 1];
    if (g && x - g.x < 14) g.events.push(e);
    else groups.push({ x, events: [e] });
  }
  const color = (what) => `var(${EVENT_COLORS[what] || '--accent'})`;
  const ackX = inc.acknowledged_at ? X(Date.parse(inc.acknowledged_at)) : null;
  const resX = inc.resolved_at ? X(Date.parse(inc.resolved_at)) : null;
  return s('svg', { class: 'timeline', viewBox: `0 0 ${W} 96`, role: 'img', 'aria-label': t('inc.timeline') },
    s('rect', { x: L, y: 44, width: W - L - R, height: 8, rx: 4, class: 'tl-track' }),
    // open until acknowledged (or now), then acknowledged until resolved
    s('rect', { x: L, y: 44, width: (ackX ?? resX ?? W - R) - L, height: 8, rx: 4, class: 'tl-open' }),
    ackX !== null ? s('rect', { x: ackX, y: 44, width: (resX ?? W - R) - ackX, height: 8, class: 'tl-ack' }) : null,
    groups.map((g, i) => {
      const first = g.events[0];
      const label = tOr('ev.' + first.what, first.what) + (g.events.length > 1 ? ` +${g.events.length - 1}` : '');
      const tip = g.events.map((e) => `${fmtTime(e.at)} ${e.who}: ${tOr('ev.' + e.what, e.what)} ${e.detail || ''}`).join('\n');
      return s('g', null,
        s('circle', { cx: g.x, cy: 48, r: 6, fill: color(first.what) }, s('title', null, tip)),
        s('text', { x: g.x, y: i % 2 ? 80 : 30, 'text-anchor': g.x < 60 ? 'start' : g.x > W - 60 ? 'end' : 'middle', class: 'tl-label' }, label));
    }),
    s('text', { x: L, y: 94, class: 'tl-axis' }, fmtTime(start)),
    s('text', { x: W - R, y: 94, 'text-anchor': 'end', class: 'tl-axis' }, fmtDur((end - start) / 1000)));
}

function timelineTable(inc) {
  const events = [...(inc.timeline || [])].reverse(); // newest first
  return table([t('tl.when'), t('tl.who'), t('tl.what'), t('tl.detail')],
    events.map((e) => row([h('span', { title: fmtAgo(e.at) }, fmtTime(e.at)), e.who, tOr('ev.' + e.what, e.what),
      h('span', { class: 'detail' }, e.detail || '')])), { class: 'timeline-table' });
}

function alertsPanel(inc) {
  const alerts = Object.values(inc.alerts || {});
  if (!alerts.length) return null;
  return h('section', { class: 'panel' }, h('h2', null, t('inc.alerts')),
    table([t('alert.name'), t('alert.state'), t('alert.labels'), t('alert.since')],
      alerts.map((a) => row([h('strong', null, a.labels.alertname || '—'), statusBadge(a.state),
        labelChips(a.labels, ['alertname']), fmtTime(a.since)]))));
}

function causesPanel(inc) {
  const causes = inc.probable_causes || [];
  if (!causes.length && inc.kind !== 'predicted_breach' && inc.kind !== 'kpi_breach') return null;
  return h('section', { class: 'panel' }, h('h2', null, t('inc.causes')),
    causes.length ? table([t('cause.score'), t('alert.name'), t('inc.ci'), t('alert.labels'), t('cause.fired')],
      causes.map((c) => row([fmtValue(c.score), h('strong', null, c.alertname), c.ci || '—',
        labelChips(c.labels, ['alertname']), fmtTime(c.fired_at)]))) : empty(t('inc.noCauses')));
}

// contributorsPanel shows which parts of a KPI (shops, regions…) moved it
// the wrong way: each part's own figure then and now, and its effect.
function contributorsPanel(inc) {
  const cs = inc.details?.contributors || [];
  if (!cs.length) return null;
  const pct = (v) => (v * 100).toFixed(0) + ' %';
  return h('section', { class: 'panel', 'data-testid': 'contributors' },
    h('h2', null, t('inc.contributors')),
    h('p', { class: 'muted' }, t('inc.contributorsSince', fmtTime(inc.details.contributors_since))),
    table([t('contrib.part'), t('contrib.before'), t('contrib.now'), t('contrib.effect'), t('contrib.share')],
      cs.map((c) => row([h('strong', null, c.label + '="' + c.value + '"'), c.before == null ? '—' : fmtValue(c.before),
        c.now == null ? '—' : fmtValue(c.now), fmtValue(c.effect), pct(c.share)]))));
}

// actionsPanel shows the KPI definition's runbook and suggested actions.
function actionsPanel(inc) {
  const acts = inc.details?.suggested_actions || [];
  const runbook = inc.links?.runbook;
  if (!acts.length && !runbook) return null;
  return h('section', { class: 'panel', 'data-testid': 'suggested-actions' }, h('h2', null, t('inc.actions')),
    acts.length ? h('ol', null, acts.map((a) => h('li', null, a))) : null,
    runbook ? h('p', null, h('a', { href: runbook, target: '_blank', rel: 'noopener noreferrer' }, t('inc.runbook') + ' ↗')) : null);
}

const SHOWN_ELSEWHERE = new Set(['scores', 'contributors', 'contributors_since', 'suggested_actions']);

// detailsPanel shows what a KPI forecast put on the incident.
function detailsPanel(inc) {
  const d = inc.details || {};
  const keys = Object.keys(d).filter((k) => !SHOWN_ELSEWHERE.has(k));
  if (!keys.length) return null;
  const kpi = inc.labels?.kpi || d.kpi;
  const show = (v) => (typeof v === 'number' ? fmtValue(v) : typeof v === 'string' ? v : JSON.stringify(v));
  return h('section', { class: 'panel' }, h('h2', null, t('inc.details')),
    kpi ? h('p', null, h('a', { href: '#/kpis/' + encodeURIComponent(kpi) }, t('inc.kpiChart', kpi))) : null,
    h('dl', { class: 'facts' }, keys.sort().map((k) => [h('dt', null, k), h('dd', null, show(d[k]))])));
}
