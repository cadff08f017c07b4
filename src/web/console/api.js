// The console's calls to its own server (docs/console.md, "The console's JSON routes").
//
// Reads are plain same-origin GETs (the gm_console cookie goes along by itself). State
// changes send the session's CSRF token and a JSON Content-Type, which a page of
// another origin could not send without a preflight the server never grants. A 401
// anywhere means the console session is gone (expired, revoked, logged out): the
// browser goes to the login page.

import { sleep } from './dom.js';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const LOGIN_PATH = '/console/login';

// Leaves for the login page once, whatever number of calls saw the 401 at once.
let leaving = false;
export function goToLogin() {
  if (leaving || location.pathname === LOGIN_PATH) return;
  leaving = true;
  location.assign(LOGIN_PATH);
}

// The error text of a failed answer: its JSON {"error"} if it has one.
async function errorOf(res) {
  let text = '';
  try {
    text = await res.text();
    const j = JSON.parse(text);
    if (j && typeof j.error === 'string') return new ApiError(res.status, j.message ? `${j.error}: ${j.message}` : j.error);
  } catch {
    // not JSON: the status says enough
  }
  return new ApiError(res.status, `HTTP ${res.status}${text && text.length < 200 ? `: ${text}` : ''}`);
}

async function call(method, path, { body, headers = {}, signal, on401 = goToLogin } = {}) {
  const res = await fetch(path, {
    method,
    headers: { accept: 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
    signal,
  });
  if (res.status === 401) {
    on401?.();
    throw await errorOf(res);
  }
  if (!res.ok) throw await errorOf(res);
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

export const getJSON = (path, opts) => call('GET', path, opts);

// GET /console/api/session, asked once per page load: the CSRF token lives only here,
// in this module's memory, never in the DOM.
let sessionPromise = null;
export function session({ on401 } = {}) {
  sessionPromise ??= getJSON('/console/api/session', { on401 }).catch((e) => {
    sessionPromise = null;
    throw e;
  });
  return sessionPromise;
}

// POST or PUT with the CSRF token and a JSON body.
export async function send(method, path, body = {}) {
  const { csrf } = await session();
  return call(method, path, { body, headers: { 'content-type': 'application/json', 'x-csrf-token': csrf } });
}

export const post = (path, body) => send('POST', path, body);
export const put = (path, body) => send('PUT', path, body);

// POST /console/api/login {code}; answers {ok} or throws ApiError (401: unknown, used
// or expired code). No 401 redirect here: the login page says what went wrong.
export async function login(code) {
  return call('POST', '/console/api/login', {
    body: { code },
    headers: { 'content-type': 'application/json' },
    on401: null,
  });
}

/**
 * Reads a Server-Sent Events stream with fetch (so that a 401 can be told apart from a
 * dropped connection, which EventSource cannot), reconnecting after a drop with
 * `Last-Event-ID`, as EventSource would. Stops when `signal` aborts, on a 401 (then the
 * browser goes to the login page) and on another 4xx (which a retry would not change).
 *   onEvent({event, data, id})   each event (data is the text; JSON left to the caller)
 *   onState(state, detail)       'connecting' | 'live' | 'retrying' | 'failed'
 * Returns {restart()}: drops the connection and opens a new one without Last-Event-ID,
 * so that the server sends a fresh snapshot (used when a patch does not apply).
 */
export function openStream(url, { onEvent, onState = () => {}, signal }) {
  let lastId = null;
  let current = null;
  (async () => {
    let delay = 500;
    while (!signal.aborted) {
      current = new AbortController();
      const both = AbortSignal.any([signal, current.signal]);
      onState('connecting');
      try {
        const headers = { accept: 'text/event-stream' };
        if (lastId) headers['last-event-id'] = lastId;
        const res = await fetch(url, { headers, credentials: 'same-origin', cache: 'no-store', signal: both });
        if (res.status === 401) {
          onState('failed', 'signed out');
          goToLogin();
          return;
        }
        if (!res.ok) {
          const err = await errorOf(res);
          // 429 and 503 are "later"; any other 4xx will not change by retrying.
          if (res.status >= 400 && res.status < 500 && res.status !== 429) {
            onState('failed', err.message);
            return;
          }
          onState('retrying', err.message);
        } else {
          onState('live');
          delay = 500;
          await readEvents(res.body, (ev) => {
            if (ev.id !== null) lastId = ev.id;
            onEvent(ev);
          });
          onState('retrying', 'the stream ended');
        }
      } catch (e) {
        if (signal.aborted) return;
        if (!current.signal.aborted) onState('retrying', e.message);
      }
      if (current.signal.aborted && !signal.aborted) {
        delay = 0; // restart(): at once
      }
      try {
        await sleep(delay, signal);
      } catch {
        return;
      }
      delay = Math.min(Math.max(delay * 2, 500), 10000);
    }
  })();
  return {
    restart() {
      lastId = null;
      current?.abort();
    },
  };
}

// Parses an event stream (text/event-stream, as the HTML standard defines it) from a
// ReadableStream of bytes, calling `dispatch` for each complete event.
async function readEvents(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = '';
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // A line ends at \n, \r\n or \r; a lone \r at the end may be half of a \r\n.
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      if (c === '\r' && i === buffer.length - 1) break;
      const line = buffer.slice(start, i);
      if (c === '\r' && buffer[i + 1] === '\n') i++;
      start = i + 1;
      if (line === '') {
        if (data.length) dispatch({ event: event || 'message', data: data.join('\n'), id });
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue; // a comment (the server's heartbeat)
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let v = colon < 0 ? '' : line.slice(colon + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (field === 'event') event = v;
      else if (field === 'data') data.push(v);
      else if (field === 'id' && !v.includes('\0')) id = v;
    }
    buffer = buffer.slice(start);
  }
}
