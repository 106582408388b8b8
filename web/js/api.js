// The agent's API, and the token that opens it. The token lives in
// sessionStorage (gone when the tab closes) and travels only in the
// Authorization header; it is never put in a URL, a cookie or the page.

const KEY = 'dth.token';

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(t) {
  sessionStorage.setItem(KEY, t);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

// An answer other than 2xx: the API's error document, kept whole.
export class ApiError extends Error {
  constructor(status, code, field, message) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let onUnauthorized = () => {};
// Called (once per refused call) when the agent answers 401.
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

// path under /api/v1 ("/tasks"); body: an object sent as JSON, or undefined.
export async function api(method, path, body, { tokenOverride } = {}) {
  const headers = { Authorization: `Bearer ${tokenOverride ?? token() ?? ''}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(`/api/v1${path}`, init);
  } catch (e) {
    throw new ApiError(0, 'network', null, 'The agent did not answer (is it running?)');
  }
  let doc = null;
  try {
    doc = await resp.json();
  } catch {
    doc = null;
  }
  if (!resp.ok) {
    const e = (doc && doc.error) || {};
    const err = new ApiError(resp.status, e.code || 'http', e.field || null,
      e.message || `HTTP ${resp.status}`);
    if (resp.status === 401 && tokenOverride === undefined) onUnauthorized(err);
    throw err;
  }
  return doc;
}

export const enc = encodeURIComponent;

export const tasks = {
  list: () => api('GET', '/tasks'),
  get: (n) => api('GET', `/tasks/${enc(n)}`),
  create: (def) => api('POST', '/tasks', def),
  check: (def) => api('POST', '/tasks?dry_run=true', def),
  update: (n, def) => api('PUT', `/tasks/${enc(n)}`, def),
  remove: (n, purge) => api('DELETE', `/tasks/${enc(n)}?purge=${purge ? 'true' : 'false'}`),
  action: (n, a) => api('POST', `/tasks/${enc(n)}/actions/${a}`),
  runs: (n, limit = 20) => api('GET', `/tasks/${enc(n)}/runs?limit=${limit}`),
  failures: (n, after) => api('GET', `/tasks/${enc(n)}/failures?limit=50${after ? `&after=${enc(after)}` : ''}`),
  images: (n, after) => api('GET', `/tasks/${enc(n)}/images?limit=50${after ? `&after=${enc(after)}` : ''}`),
  series: (n) => api('GET', `/tasks/${enc(n)}/series`),
  events: (n) => api('GET', `/tasks/${enc(n)}/events`),
};

export const agent = {
  get: () => api('GET', '/agent'),
  checkRemotes: () => api('POST', '/agent/actions/check-remotes'),
  settings: () => api('GET', '/settings'),
};
