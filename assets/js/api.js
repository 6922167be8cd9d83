// api.js: the HTTP client for /api/v1 shared by the visitor page and the agent inbox,
// plus the small helpers both need (abortable sleep, random ids, safe localStorage).

/** A failed API call. `status` 0 means the request never got an HTTP answer. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** Worth repeating unchanged later: the network, the server or a rate limit failed us, not the request. */
  get transient() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** Default time limit of a request; a long poll adds its own wait to it. */
const TIMEOUT_MS = 15000;
/** An upload may take long, but not this long without a single byte moving. */
const STALL_MS = 60000;

/**
 * Creates a client. `getToken()` gives the bearer token to send (or null);
 * `onUnauthorized(token)` hears about a 401 answered to that token.
 */
export function createApi({ getToken = () => null, onUnauthorized = null } = {}) {
  async function request(method, path, { body, query, form, signal, timeout = TIMEOUT_MS } = {}) {
    let url = '/api/v1' + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) params.set(k, String(v));
      const qs = params.toString();
      if (qs) url += '?' + qs;
    }
    const token = getToken();
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = 'Bearer ' + token;
    let payload;
    if (form) payload = form;
    else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const limit = deadline(signal, timeout);
    try {
      let res;
      try {
        res = await fetch(url, {
          method, headers, body: payload, signal: limit.signal, cache: 'no-store', credentials: 'omit',
        });
      } catch (err) {
        if (signal?.aborted) throw err;
        throw new ApiError(0, limit.timedOut() ? 'timeout' : 'network', 'Cannot reach the server');
      }
      let data = null;
      if (res.status !== 204) {
        try {
          data = await res.json();
        } catch {
          if (signal?.aborted) throw abortError();
          if (res.ok) throw new ApiError(0, 'network', 'Incomplete answer from the server');
        }
      }
      if (!res.ok) {
        if (res.status === 401 && token && onUnauthorized) onUnauthorized(token);
        const e = data?.error;
        throw new ApiError(res.status, e?.code || 'http_' + res.status, e?.message || res.statusText || 'Request failed',
          parseRetryAfter(res.headers.get('Retry-After')));
      }
      return data;
    } finally {
      limit.clear();
    }
  }

  /** Downloads an attachment with the bearer token; only ever to this origin, so the token never leaks. */
  async function blob(url, { signal } = {}) {
    const target = new URL(url, location.href);
    if (target.origin !== location.origin) throw new ApiError(400, 'bad_url', 'Attachment on another origin');
    const token = getToken();
    const res = await fetch(target.href, {
      headers: token ? { Authorization: 'Bearer ' + token } : {}, signal, credentials: 'omit',
    }).catch(() => { throw new ApiError(0, 'network', 'Cannot reach the server'); });
    if (!res.ok) throw new ApiError(res.status, 'http_' + res.status, 'Download failed');
    return res.blob();
  }

  /**
   * POSTs multipart `form` with XMLHttpRequest, because fetch cannot report upload
   * progress: `onProgress(loaded, total)` hears each step (total 0 when unknown).
   * Resolves with the parsed JSON answer and rejects with an ApiError, like `request`.
   */
  function upload(path, form, onProgress, { signal } = {}) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError());
        return;
      }
      const token = getToken();
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/api/v1' + path);
      xhr.setRequestHeader('Accept', 'application/json');
      if (token) xhr.setRequestHeader('Authorization', 'Bearer ' + token);
      let stalled = false;
      let timer = 0;
      const watch = () => {
        clearTimeout(timer);
        timer = setTimeout(() => { stalled = true; xhr.abort(); }, STALL_MS);
      };
      const relay = () => xhr.abort();
      const settle = (fn, value) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', relay);
        fn(value);
      };
      xhr.upload.onprogress = (e) => {
        watch();
        onProgress?.(e.loaded, e.lengthComputable ? e.total : 0);
      };
      xhr.onprogress = watch;
      xhr.onload = () => {
        let data = null;
        try {
          data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch { /* not JSON: judged by the status below */ }
        if (xhr.status >= 200 && xhr.status < 300) {
          if (data) settle(resolve, data);
          else settle(reject, new ApiError(0, 'network', 'Incomplete answer from the server'));
          return;
        }
        if (xhr.status === 401 && token && onUnauthorized) onUnauthorized(token);
        const e = data?.error;
        settle(reject, new ApiError(xhr.status, e?.code || 'http_' + xhr.status,
          e?.message || xhr.statusText || 'Upload failed', parseRetryAfter(xhr.getResponseHeader('Retry-After'))));
      };
      xhr.onerror = () => settle(reject, new ApiError(0, 'network', 'Cannot reach the server'));
      xhr.onabort = () => settle(reject, stalled ? new ApiError(0, 'timeout', 'The upload stalled') : abortError());
      signal?.addEventListener('abort', relay, { once: true });
      watch();
      xhr.send(form);
    });
  }

  return { request, blob, upload };
}

function parseRetryAfter(value) {
  const n = Number.parseInt(value ?? '', 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 300) : 0;
}

function abortError() {
  return new DOMException('Aborted', 'AbortError');
}

/** A signal that aborts when `outer` does or after `ms`. */
function deadline(outer, ms) {
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, ms);
  const relay = () => ctl.abort();
  if (outer) {
    if (outer.aborted) ctl.abort();
    else outer.addEventListener('abort', relay, { once: true });
  }
  return {
    signal: ctl.signal,
    timedOut: () => timedOut,
    clear() {
      clearTimeout(timer);
      outer?.removeEventListener('abort', relay);
    },
  };
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A fresh client id for idempotent sends: `c-`, the time in milliseconds as 12 hex digits,
 * then 20 random ones: within the contract's 1–64 of [A-Za-z0-9_-]. Time first, so ids
 * sent around the same time sort together and the server's idempotency index grows at
 * one end instead of touching a page per chat. crypto.getRandomValues works on plain http.
 */
export function timeOrderedId(prefix = 'c') {
  const bytes = new Uint8Array(10);
  crypto.getRandomValues(bytes);
  const time = Date.now().toString(16).padStart(12, '0');
  return prefix + '-' + time + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** localStorage that never throws (private mode, disabled storage, full quota). */
export const store = {
  get(key) {
    try {
      const raw = localStorage.getItem(key);
      return raw === null ? null : JSON.parse(raw);
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch { /* storage unavailable: keep working in memory */ }
  },
  remove(key) {
    try {
      localStorage.removeItem(key);
    } catch { /* ignore */ }
  },
};
