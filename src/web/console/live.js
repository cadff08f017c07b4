// The console's one stream of server news, GET /console/api/events, shared by every
// page: `overview` events carry the whole overview (so the overview page and the nav
// bar's pending counts redraw from them), `access` events say that sessions, devices,
// grants or roots changed (the page showing them fetches them again).
//
// One connection for the whole visit, not one per page: a browser keeps at most six
// HTTP/1.1 connections per server, and a document page needs one more for its own
// stream.

import { openStream } from './api.js';

const listeners = { overview: new Set(), access: new Set(), state: new Set() };
let latestOverview = null;
let state = 'connecting';
let controller = null;

export function startLive() {
  if (controller) return;
  controller = new AbortController();
  openStream('/console/api/events', {
    signal: controller.signal, // for the whole visit (until stopLive)
    onState(s) {
      state = s;
      for (const fn of listeners.state) fn(s);
    },
    onEvent({ event, data }) {
      let value;
      try {
        value = JSON.parse(data);
      } catch {
        return; // a malformed event is skipped; the next overview replaces it anyway
      }
      if (event === 'overview') setOverview(value);
      else if (event === 'access') for (const fn of listeners.access) fn(value);
    },
  });
}

// Closes the stream (the page is put away: see app.js, pagehide).
export function stopLive() {
  controller?.abort();
  controller = null;
}

// The newest overview seen (from the stream or a GET), or null.
export const currentOverview = () => latestOverview;
export const liveState = () => state;

// Also fed by the overview page's own GET, whichever arrives first draws first.
export function setOverview(value) {
  if (!value || typeof value !== 'object') return;
  latestOverview = value;
  for (const fn of listeners.overview) fn(value);
}

// subscribe('overview' | 'access' | 'state', fn, signal): fn is called until `signal`
// aborts (the page is left).
export function subscribe(kind, fn, signal) {
  listeners[kind].add(fn);
  signal?.addEventListener('abort', () => listeners[kind].delete(fn), { once: true });
}
