// Wall mode (#/wall?every=20): the operations room's screen. No
// navigation: the overview, the incident board and the KPIs take turns
// every `every` seconds (20 by default, 5 at least), in larger type, under
// a bar with the page's name, the tenant and a clock. Esc, or the bar's
// small link, leaves for the overview.
//
// Each turn renders the page module afresh inside the wall, with a ctx of
// its own (alive only during its turn), so a page needs nothing to know
// about the wall. body[data-wall-page] names the page shown; the router's
// body[data-loaded] is "0" while it loads.
import { h, fmtTime } from '../dom.js';
import * as api from '../api.js';
import { t } from '../i18n.js';
import * as overview from './overview.js';
import * as incidents from './incidents.js';
import * as kpis from './kpis.js';

const ROTATION = [['overview', overview], ['incidents', incidents], ['kpis', kpis]];
const DEFAULT_EVERY = 20; // seconds
const MIN_EVERY = 5;

export async function render(el, ctx) {
  const q = ctx.route.query;
  const every = Math.max(MIN_EVERY, Number(q.get('every')) || DEFAULT_EVERY);
  const body = document.body;
  body.classList.add('wall');

  const title = h('h1', { class: 'wall-title', 'data-testid': 'wall-title' });
  const clock = h('time', { class: 'wall-clock', 'data-testid': 'wall-clock' });
  const tenant = api.tenant() || api.me()?.tenant || 'default';
  const steps = ROTATION.map(([name]) => h('li', { 'data-step': name }, t('nav.' + name)));
  const pageEl = h('div', { class: 'wall-page' });
  el.append(
    h('div', { class: 'wall-bar' },
      h('span', { class: 'brand' }, 'tsdb'), title,
      h('ol', { class: 'wall-steps', 'aria-label': t('wall.rotation', every) }, steps),
      h('span', { class: 'wall-tenant', 'data-testid': 'wall-tenant' }, t('ov.tenant', tenant)),
      clock,
      h('a', { class: 'wall-exit', href: '#/overview', 'data-testid': 'wall-exit', title: t('wall.exitHelp') }, t('wall.exit'))),
    pageEl);

  const tick = () => { clock.textContent = fmtTime(Date.now()); };
  tick();
  const clockTimer = setInterval(tick, 1000);
  const onKey = (e) => {
    if (e.key === 'Escape') location.hash = '#/overview';
  };
  document.addEventListener('keydown', onKey);

  // The page of this turn: its cleanups and how many loading(true) it has
  // not yet matched, both dropped when its turn ends.
  let turn = null;
  const endTurn = () => {
    if (!turn) return;
    const old = turn;
    turn = null;
    for (const f of old.cleanups) {
      try { f(); } catch (e) { console.error(e); }
    }
    for (; old.busy > 0; old.busy--) ctx.loading(false);
  };

  let at = 0;
  const show = async (i) => {
    endTurn();
    at = i;
    const [name, page] = ROTATION[i];
    const me = { cleanups: [], busy: 0 };
    turn = me;
    const alive = () => ctx.alive() && turn === me;
    const loading = (on) => {
      if (!alive()) return;
      me.busy += on ? 1 : -1;
      ctx.loading(on);
    };
    body.dataset.wallPage = name;
    title.textContent = t('nav.' + name);
    for (const li of steps) {
      if (li.dataset.step === name) li.setAttribute('aria-current', 'step');
      else li.removeAttribute('aria-current');
    }
    const sub = h('div', { class: 'page page-' + name });
    pageEl.replaceChildren(sub);
    loading(true);
    try {
      await page.render(sub, {
        route: { name, parts: [], query: new URLSearchParams() },
        alive, loading, onCleanup: (f) => me.cleanups.push(f), rerender: () => show(at),
      });
    } catch (e) {
      console.error(e);
    } finally {
      loading(false);
    }
  };

  const rotate = setInterval(() => { if (ctx.alive()) show((at + 1) % ROTATION.length); }, every * 1000);
  ctx.onCleanup(() => {
    clearInterval(rotate);
    clearInterval(clockTimer);
    document.removeEventListener('keydown', onKey);
    endTurn();
    body.classList.remove('wall');
    delete body.dataset.wallPage;
  });
  await show(0);
}
