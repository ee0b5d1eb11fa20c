// The JSON API client: every call carries the stored credentials
// (Authorization) and tenant (X-Scope-OrgID), and every failure becomes an
// ApiError with the server's message. A 401 also calls the handler set
// with onUnauthorized (the console then shows its login form).

const AUTH_KEY = 'tsdb.console.auth'; // sessionStorage: the Authorization header value
const TENANT_KEY = 'tsdb.console.tenant'; // localStorage

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status; // HTTP status, 0 when the server could not be reached
    this.type = type; // Prometheus-style errorType, e.g. not_found, forbidden
  }
}

let unauthorized = () => {};

// onUnauthorized sets what happens on a 401.
export function onUnauthorized(fn) {
  unauthorized = fn;
}

// ---- credentials and tenant ----

// signIn keeps a bearer token or a username and password (as Basic) for
// this browser tab.
export function signIn({ token, user, password }) {
  let value;
  if (token) value = 'Bearer ' + token.trim();
  else {
    // btoa takes bytes as a "binary string": encode UTF-8 first.
    const bytes = new TextEncoder().encode(user + ':' + password);
    value = 'Basic ' + btoa(String.fromCharCode(...bytes));
  }
  sessionStorage.setItem(AUTH_KEY, value);
}

export function signOut() {
  sessionStorage.removeItem(AUTH_KEY);
  identity = null;
}

// ---- identity ----

// identity is /api/v1/status/whoami for the stored credentials: {auth,
// user, roles, tenants, tenant}; null until loaded or when it could not be.
let identity = null;

// loadIdentity asks the server who the credentials belong to. A user
// without the read role gets 403 here: identity stays null and the pages
// show the server's refusals instead.
export async function loadIdentity() {
  try {
    identity = await get('/api/v1/status/whoami');
  } catch (e) {
    identity = null;
    if (e.status === 401) throw e;
  }
  return identity;
}

export function me() {
  return identity;
}

// Roles imply others as on the server: admin holds every role, operator
// holds read.
const IMPLIES = { admin: ['read', 'write', 'operator', 'admin'], operator: ['read', 'operator'], read: ['read'], write: ['write'] };

// may reports whether the signed-in user holds role; true when unknown
// (the server decides and the page shows its refusal).
export function may(role) {
  if (!identity) return true;
  return (identity.roles || []).some((r) => (IMPLIES[r] || [r]).includes(role));
}

export function signedIn() {
  return !!sessionStorage.getItem(AUTH_KEY);
}

// who is the username of Basic credentials, "token" for a bearer token.
export function who() {
  const v = sessionStorage.getItem(AUTH_KEY) || '';
  if (v.startsWith('Bearer ')) return 'token';
  if (v.startsWith('Basic ')) {
    try {
      const bin = atob(v.slice(6));
      const text = new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
      return text.split(':')[0];
    } catch {
      return '';
    }
  }
  return '';
}

export function tenant() {
  return localStorage.getItem(TENANT_KEY) || '';
}

export function setTenant(v) {
  v = (v || '').trim();
  if (v) localStorage.setItem(TENANT_KEY, v);
  else localStorage.removeItem(TENANT_KEY);
}

// ---- requests ----

function headers(accept) {
  const hd = { Accept: accept };
  const auth = sessionStorage.getItem(AUTH_KEY);
  if (auth) hd.Authorization = auth;
  const tn = tenant();
  if (tn) hd['X-Scope-OrgID'] = tn;
  return hd;
}

// query drops empty parameters.
function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.append(k, v);
  }
  const qs = q.toString();
  return qs ? path + '?' + qs : path;
}

async function send(method, path, { params, form, accept = 'application/json' } = {}) {
  const init = { method, headers: headers(accept), cache: 'no-store', credentials: 'omit' };
  if (form) {
    // The ITSM handlers read form values (or JSON); a form is simplest.
    init.body = new URLSearchParams(form);
  }
  let res;
  try {
    res = await fetch(withQuery(path, params), init);
  } catch (e) {
    throw new ApiError(0, 'network', e.message);
  }
  if (!res.ok) {
    let type = 'http', message = `HTTP ${res.status} ${res.statusText}`;
    const text = await res.text().catch(() => '');
    try {
      const body = JSON.parse(text);
      type = body.errorType || type;
      message = body.error || message;
    } catch {
      if (text.trim()) message = text.trim().slice(0, 500);
    }
    const err = new ApiError(res.status, type, message);
    if (res.status === 401) unauthorized(err);
    throw err;
  }
  return res;
}

// get returns the data of a JSON answer.
export async function get(path, params) {
  return data(await send('GET', path, { params }));
}

// post sends form values and returns the data of the JSON answer.
export async function post(path, form) {
  return data(await send('POST', path, { form: form || {} }));
}

async function data(res) {
  const body = await res.json();
  if (body.status === 'error') throw new ApiError(res.status, body.errorType, body.error);
  return body.data;
}

// blob fetches an answer of type accept (a CSV report) as a Blob.
export async function blob(path, params, accept) {
  const res = await send('GET', path, { params, accept });
  return res.blob();
}

// html fetches an HTML page (printable reports) as a Blob, for a blob: URL.
export async function html(path, params) {
  const res = await send('GET', path, { params, accept: 'text/html' });
  return res.blob();
}
