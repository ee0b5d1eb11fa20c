// The console shell: header (navigation, tenant, language, theme, sign
// out), the hash router and the login form.
//
// Routes: #/overview, #/incidents[/ID], #/problems, #/cis, #/oncall[?at=…], #/sla, #/kpis[/NAME],
// #/explore?q=…&range=1h, #/rules, #/usage?month=YYYY-MM, #/audit, and #/wall?every=20 (wall mode: no
// header, the wall page rotates overview, incidents and KPIs, and sets
// body.wall and body[data-wall-page]). Each page module exports
// render(el, ctx); the router sets body[data-page] (the route's first
// part; "incident" and "kpi" for one incident or KPI) and body[data-loaded]
// ("0" while the page loads its data, "1" once it is drawn).
import { h, errorBox } from './dom.js';
import * as api from './api.js';
import { t, lang, setLang } from './i18n.js';
import * as overview from './pages/overview.js';
import * as incidents from './pages/incidents.js';
import * as problems from './pages/problems.js';
import * as oncall from './pages/oncall.js';
import * as cis from './pages/cis.js';
import * as audit from './pages/audit.js';
import * as sla from './pages/sla.js';
import * as kpis from './pages/kpis.js';
import * as explore from './pages/explore.js';
import * as rules from './pages/rules.js';
import * as wall from './pages/wall.js';
import * as usage from './pages/usage.js';

const pages = { overview, incidents, problems, cis, oncall, sla, kpis, explore, rules, wall, audit, usage };
const NAV = ['overview', 'incidents', 'problems', 'cis', 'oncall', 'sla', 'kpis', 'explore', 'rules', 'usage', 'audit'];
const DETAIL = { incidents: 'incident', kpis: 'kpi' }; // data-page of #/incidents/ID and #/kpis/NAME
const THEME_KEY = 'tsdb.console.theme';

// ---- theme ----

function theme() {
  return localStorage.getItem(THEME_KEY) === 'light' ? 'light' : 'dark';
}

function applyTheme() {
  document.documentElement.dataset.theme = theme();
}

// ---- header ----

function renderHeader() {
  const header = document.getElementById('top');
  const nav = h('nav', { id: 'nav', 'aria-label': t('nav.label') },
    NAV.filter((name) => name !== 'audit' || api.may('admin')) // the audit log is for admins
      .map((name) => h('a', { href: '#/' + name, 'data-nav': name }, t('nav.' + name))));
  const menu = h('button', {
    class: 'menu', type: 'button', 'aria-controls': 'nav', 'aria-expanded': 'false', 'aria-label': t('nav.menu'),
    onclick: () => {
      const open = header.classList.toggle('open');
      menu.setAttribute('aria-expanded', String(open));
    },
  }, '☰');
  // A user bound to a few tenants picks among them; one allowed any
  // tenant (or no authentication) types its name.
  const me = api.me();
  const choices = me && me.tenants && !me.tenants.includes('*') ? me.tenants : null;
  const onTenant = (e) => {
    api.setTenant(e.target.value);
    route();
  };
  const tenant = choices
    ? h('select', {
      'data-testid': 'tenant', class: 'tenant', 'aria-label': t('tenant.label'), title: t('tenant.help'),
      disabled: choices.length < 2, onchange: onTenant,
    }, choices.map((c) => h('option', { value: c, selected: c === me.tenant }, c)))
    : [h('input', {
      'data-testid': 'tenant', class: 'tenant', type: 'text', value: api.tenant(), placeholder: 'default',
      'aria-label': t('tenant.label'), title: t('tenant.help'), size: 10, autocomplete: 'off', spellcheck: 'false',
      list: 'known-tenants', onchange: onTenant,
    }), h('datalist', { id: 'known-tenants' }, ((me && me.known_tenants) || []).map((c) => h('option', { value: c })))];
  const tools = h('div', { class: 'tools' },
    h('a', { class: 'wall-link', href: '#/wall', 'data-testid': 'wall-link', title: t('wall.help') }, t('wall.enter')),
    h('label', { class: 'tenant-label' }, h('span', null, t('tenant.label')), tenant),
    h('button', {
      type: 'button', 'data-testid': 'lang-toggle', lang: lang() === 'ko' ? 'en' : 'ko',
      title: t('lang.help'),
      onclick: () => {
        setLang(lang() === 'ko' ? 'en' : 'ko');
        renderHeader();
        route();
      },
    }, t('lang.other')),
    h('button', {
      type: 'button', 'data-testid': 'theme-toggle', title: t('theme.help'),
      onclick: () => {
        localStorage.setItem(THEME_KEY, theme() === 'dark' ? 'light' : 'dark');
        applyTheme();
        renderHeader();
        route(); // charts take their colours when drawn
      },
    }, theme() === 'dark' ? t('theme.light') : t('theme.dark')),
    api.signedIn() ? h('button', {
      type: 'button', 'data-testid': 'sign-out', title: me && me.user ? `${me.user}: ${(me.roles || []).join(', ')}` : api.who(),
      onclick: () => {
        api.signOut();
        renderHeader();
        route();
      },
    }, t('auth.signout') + (me && me.user ? ` (${me.user})` : api.who() && api.who() !== 'token' ? ` (${api.who()})` : '')) : null);
  header.replaceChildren(h('a', { class: 'brand', href: '#/overview' }, 'tsdb'), menu, nav, tools);
  markNav();
}

function markNav() {
  const name = parseHash().name;
  for (const a of document.querySelectorAll('a[data-nav]')) {
    if (a.dataset.nav === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ---- router ----

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const i = raw.indexOf('?');
  const path = i < 0 ? raw : raw.slice(0, i);
  const parts = path.split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  return { name: parts[0] || 'overview', parts: parts.slice(1), query: new URLSearchParams(i < 0 ? '' : raw.slice(i + 1)) };
}

let current = null; // the page being shown: {token, cleanups}
let loginShown = false;

function teardown() {
  if (!current) return;
  for (const f of current.cleanups) {
    try { f(); } catch (e) { console.error(e); }
  }
  current = null;
}

async function route() {
  teardown();
  loginShown = false;
  const r = parseHash();
  const page = pages[r.name];
  if (!page) {
    location.replace('#/overview');
    return;
  }
  const me = { cleanups: [], busy: 0 };
  current = me;
  const body = document.body;
  // One incident or KPI is its own page: "incident", "kpi".
  body.dataset.page = (r.parts.length && DETAIL[r.name]) || r.name;
  body.dataset.loaded = '0';
  document.getElementById('top').classList.remove('open');
  markNav();
  document.title = t('nav.' + r.name) + ' · tsdb';
  const el = h('div', { class: 'page page-' + r.name });
  document.getElementById('main').replaceChildren(el);
  // Who is signed in (roles, tenants): the header's tenant picker and the
  // pages' action buttons follow it.
  const before = JSON.stringify(api.me());
  try {
    await api.loadIdentity();
  } catch {
    return; // 401: the login form is shown
  }
  if (current !== me) return; // navigated away meanwhile
  if (JSON.stringify(api.me()) !== before) renderHeader();
  const ctx = {
    route: r,
    // alive: whether this page is still the one shown (not navigated away).
    alive: () => current === me,
    onCleanup: (f) => me.cleanups.push(f),
    // loading marks the page busy again (e.g. while an action reloads it);
    // it is loaded again when every loading(true) has had its loading(false).
    loading: (on) => {
      me.busy += on ? 1 : -1;
      if (current === me) body.dataset.loaded = me.busy > 0 ? '0' : '1';
    },
    rerender: route,
  };
  try {
    await page.render(el, ctx);
  } catch (e) {
    if (e.status !== 401 && ctx.alive()) el.append(errorBox(e, 'error'));
    if (e.status !== 401) console.error(e);
  }
  if (ctx.alive() && me.busy === 0) body.dataset.loaded = '1';
}

// ---- login ----

// showLogin replaces the page with the login form; it is called on any
// 401, once per page.
function showLogin(err) {
  if (loginShown) return;
  loginShown = true;
  teardown();
  document.body.dataset.page = 'login';
  const msg = h('p', { class: 'error', role: 'alert', 'data-testid': 'error', hidden: !api.signedIn() },
    api.signedIn() ? t('auth.rejected') + ': ' + err.message : '');
  api.signOut(); // the stored credentials were refused (or there were none)
  renderHeader();
  const token = h('input', { 'data-testid': 'login-token', type: 'password', autocomplete: 'off', id: 'login-token' });
  const user = h('input', { 'data-testid': 'login-user', type: 'text', autocomplete: 'username', id: 'login-user' });
  const password = h('input', { 'data-testid': 'login-password', type: 'password', autocomplete: 'current-password', id: 'login-password' });
  const form = h('form', {
    class: 'login panel',
    onsubmit: (e) => {
      e.preventDefault();
      if (token.value.trim()) api.signIn({ token: token.value });
      else if (user.value) api.signIn({ user: user.value, password: password.value });
      else {
        msg.hidden = false;
        msg.textContent = t('auth.needed');
        return;
      }
      renderHeader();
      route();
    },
  },
    h('h1', null, t('auth.title')),
    h('p', { class: 'muted' }, t('auth.help')),
    msg,
    h('label', { for: 'login-token' }, t('auth.token')), token,
    h('p', { class: 'or' }, t('auth.or')),
    h('label', { for: 'login-user' }, t('auth.user')), user,
    h('label', { for: 'login-password' }, t('auth.password')), password,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-submit' }, t('auth.signin')));
  document.getElementById('main').replaceChildren(h('div', { class: 'page page-login' }, form));
  document.title = t('auth.title') + ' · tsdb';
  document.body.dataset.loaded = '1';
  token.focus();
}

// ---- start ----

applyTheme();
document.documentElement.lang = lang();
api.onUnauthorized(showLogin);
renderHeader();
window.addEventListener('hashchange', route);
route();
