// The server's API over HTTP/JSON (the Connect protocol), with the token the
// user gave, and the connection state that every page shows.

const TOKEN_KEY = 'actiond.token';

export class APIError extends Error {
  constructor(code, message, httpStatus) {
    super(message);
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

// conn tells the app about the connection: 'ok', 'unreachable' (detail:
// retryAt) and 'auth' (detail: message) events.
export const conn = new EventTarget();
let connState = 'ok';

export function connectionState() { return connState; }

export function setConnectionState(state, detail = {}) {
  const changed = state !== connState;
  connState = state;
  conn.dispatchEvent(new CustomEvent(state, { detail: { ...detail, changed } }));
}

export function token() {
  try { return localStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function setToken(t) {
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: the token lasts for the page */ }
  memoryToken = t;
}
let memoryToken = '';

function authHeaders(h) {
  const t = token() || memoryToken;
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

const httpCodes = { 400: 'invalid_argument', 401: 'unauthenticated', 403: 'permission_denied', 404: 'not_found',
  409: 'already_exists', 429: 'resource_exhausted', 499: 'canceled', 501: 'unimplemented', 503: 'unavailable', 504: 'deadline_exceeded' };

function failed(code, message, httpStatus) {
  const err = new APIError(code, message, httpStatus);
  if (code === 'unauthenticated') setConnectionState('auth', { message });
  return err;
}

// call makes one unary call: call('StreamService', 'ListStreams', {}).
export async function call(service, method, req = {}, { signal } = {}) {
  let resp;
  try {
    resp = await fetch(`/actiond.v1.${service}/${method}`, {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/json', 'Connect-Protocol-Version': '1' }),
      body: JSON.stringify(req),
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError('unavailable', 'the server is unreachable');
  }
  const text = await resp.text();
  let body = {};
  try { body = text ? JSON.parse(text) : {}; } catch { body = { message: text }; }
  if (!resp.ok) {
    throw failed(body.code || httpCodes[resp.status] || 'unknown', body.message || resp.statusText, resp.status);
  }
  return body;
}

// snapshotURL fetches an action's snapshot with the token and returns an
// object URL for an <img>, or '' when there is none.
const snapshots = new Map();
export function snapshotURL(actionId) {
  if (!snapshots.has(actionId)) {
    const p = fetch(`/snapshots/${encodeURIComponent(actionId)}.jpg`, { headers: authHeaders({}) })
      .then(async (r) => {
        if (!r.ok) {
          if (r.status === 401) failed('unauthenticated', await r.text(), 401);
          snapshots.delete(actionId);
          return '';
        }
        return URL.createObjectURL(await r.blob());
      })
      .catch(() => { snapshots.delete(actionId); return ''; });
    snapshots.set(actionId, p);
  }
  return snapshots.get(actionId);
}

// envelope frames one message of the Connect streaming protocol.
function envelope(obj) {
  const data = new TextEncoder().encode(JSON.stringify(obj));
  const out = new Uint8Array(5 + data.length);
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

// stream makes one server-streaming call, calling onMessage with each
// message; it resolves when the server ends the stream well and rejects
// with an APIError otherwise.
export async function stream(service, method, req, onMessage, { signal, onOpen } = {}) {
  let resp;
  try {
    resp = await fetch(`/actiond.v1.${service}/${method}`, {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/connect+json', 'Connect-Protocol-Version': '1' }),
      body: envelope(req),
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError('unavailable', 'the server is unreachable');
  }
  if (!resp.ok) {
    let body = {};
    try { body = await resp.json(); } catch { /* not JSON */ }
    throw failed(body.code || httpCodes[resp.status] || 'unknown', body.message || resp.statusText, resp.status);
  }
  if (onOpen) onOpen();
  const reader = resp.body.getReader();
  let buf = new Uint8Array(0);
  const decoder = new TextDecoder();
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new APIError('unavailable', 'the connection to the server was lost');
    }
    if (chunk.done) throw new APIError('unavailable', 'the server ended the stream without a word');
    const joined = new Uint8Array(buf.length + chunk.value.length);
    joined.set(buf);
    joined.set(chunk.value, buf.length);
    buf = joined;
    while (buf.length >= 5) {
      const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      const flags = view.getUint8(0);
      const n = view.getUint32(1);
      if (buf.length < 5 + n) break;
      const msg = JSON.parse(decoder.decode(buf.subarray(5, 5 + n)) || '{}');
      buf = buf.slice(5 + n);
      if (flags & 0x02) {
        if (msg.error) throw failed(msg.error.code || 'unknown', msg.error.message || '', 200);
        return;
      }
      onMessage(msg);
    }
  }
}
