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

// POST or PUT with the CSRF token and a JSON body. The token is bound to the session:
// after logging in again in another tab, this tab's cookie names the new session but
// its token is the old one's. So a 403 about the token asks for the session once more
// and tries once again (a real refusal, e.g. from another Origin, stays a refusal).
export async function send(method, path, body = {}) {
  const attempt = async () => {
    const { csrf } = await session();
    return call(method, path, { body, headers: { 'content-type': 'application/json', 'x-csrf-token': csrf } });
  };
  try {
    return await attempt();
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 403 || !/csrf/i.test(e.message)) throw e;
    sessionPromise = null;
    return attempt();
  }
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

// Reconnecting: the wait doubles from BACKOFF_MIN to BACKOFF_MAX, with jitter (many
// tabs dropped at once must not come back at once), and goes back to BACKOFF_MIN only
// once a stream has stayed up STABLE_MS: a stream that opens and ends at once (a proxy,
// a server that refuses after the headers) must not be reopened every half second.
// A 429 or 503 waits at least what its Retry-After asks. The server writes a comment
// every 15 s when it has nothing to say, so SILENCE_MS without a byte means the
// connection is dead without having said so (a sleeping laptop, a dropped NAT entry).
const BACKOFF_MIN = 500;
const BACKOFF_MAX = 30000;
const STABLE_MS = 30000;
const SILENCE_MS = 45000;

const jitter = (ms) => ms * (0.5 + Math.random() * 0.5);

// Retry-After (seconds, or an HTTP date) in ms, at most 10 minutes; null if absent.
function retryAfterMs(value) {
  if (!value) return null;
  const ms = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 600000) : null;
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
  let restarting = false;
  (async () => {
    let delay = BACKOFF_MIN;
    while (!signal.aborted) {
      const mine = (current = new AbortController());
      restarting = false;
      const both = AbortSignal.any([signal, mine.signal]);
      let asked = null; // the wait the server asked for (Retry-After)
      let openedAt = null;
      let silent = false;
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
          asked = retryAfterMs(res.headers.get('retry-after'));
          onState('retrying', err.message);
        } else {
          onState('live');
          openedAt = performance.now();
          let lastByte = openedAt;
          const watchdog = setInterval(() => {
            if (performance.now() - lastByte > SILENCE_MS) {
              silent = true;
              mine.abort();
            }
          }, 5000);
          try {
            await readEvents(res.body, (ev) => {
              if (ev.id !== null) lastId = ev.id;
              onEvent(ev);
            }, () => {
              lastByte = performance.now();
            });
          } finally {
            clearInterval(watchdog);
          }
          onState('retrying', 'the stream ended');
        }
      } catch (e) {
        if (signal.aborted) return;
        if (!restarting) onState('retrying', silent ? 'no news from the server for 45 s' : e.message);
      }
      if (openedAt !== null && performance.now() - openedAt >= STABLE_MS) delay = BACKOFF_MIN;
      let wait = 0; // restart(): at once
      if (!restarting) {
        wait = Math.max(jitter(delay), asked ?? 0);
        delay = Math.min(delay * 2, BACKOFF_MAX);
      }
      try {
        await sleep(wait, signal);
      } catch {
        return;
      }
    }
  })();
  return {
    restart() {
      lastId = null;
      restarting = true;
      current?.abort();
    },
  };
}

// Parses an event stream (text/event-stream, as the HTML standard defines it) from a
// ReadableStream of bytes, calling `dispatch` for each complete event and `onBytes` for
// each piece that arrives (comments too: the heartbeat is what the watchdog waits for).
async function readEvents(body, dispatch, onBytes) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = '';
  let data = [];
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onBytes();
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
