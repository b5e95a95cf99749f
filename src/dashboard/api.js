// The API client: same origin as the page, bearer token from the session, conditional GETs.
// The token lives in sessionStorage only; it is sent in the Authorization header, never in a URL.

const TOKEN_KEY = 'pems.token';
const BASE = '/api/pems';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = Array.isArray(details) ? details : [];
  }
}

// The JWT's claims, or null when it is not one (the server still decides).
export function tokenClaims(token) {
  const parts = String(token || '').split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const claims = JSON.parse(json);
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

export function tokenExpired(token, now = Date.now()) {
  const c = tokenClaims(token);
  return !c || typeof c.exp !== 'number' || c.exp * 1000 <= now;
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
  // #token=... in the address bar: read once, then removed from the bar and from history
  takeFromFragment() {
    const m = /^#token=([^&]+)/.exec(window.location.hash);
    if (!m) return null;
    history.replaceState(null, '', window.location.pathname + window.location.search);
    let t;
    try {
      t = decodeURIComponent(m[1]).trim();
    } catch {
      return null;
    }
    return t || null;
  },
};

export class Api {
  constructor(onUnauthorized) {
    this.onUnauthorized = onUnauthorized;
    this.cache = new Map(); // path -> {etag, data}
  }

  reset() {
    this.cache.clear();
  }

  async request(method, path, body) {
    const token = session.token;
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const cached = method === 'GET' ? this.cache.get(path) : undefined;
    if (cached && cached.etag) headers['If-None-Match'] = cached.etag;
    let res;
    try {
      res = await fetch(BASE + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
      });
    } catch {
      throw new ApiError(0, 'network', 'The server cannot be reached. Check the connection; the page retries by itself.');
    }
    if (res.status === 304 && cached) return { data: cached.data, changed: false };
    let data = null;
    const text = await res.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const e = (data && data.error) || {};
      const err = new ApiError(res.status, e.code || `http_${res.status}`,
        e.message || `The server answered HTTP ${res.status}`, e.details);
      if (res.status === 401 && this.onUnauthorized) this.onUnauthorized(err);
      throw err;
    }
    if (method === 'GET') {
      const etag = res.headers.get('ETag');
      if (etag) this.cache.set(path, { etag, data });
      else this.cache.delete(path);
    }
    return { data, changed: true };
  }

  get(path) {
    return this.request('GET', path);
  }

  async post(path, body) {
    return (await this.request('POST', path, body)).data;
  }
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
