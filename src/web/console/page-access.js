// /console/access — who gets in: devices of OAuth (DPoP) apps (approve the pending ones,
// revoke) and sessions (revoke), with their Origin, group and last use. Fetched again
// whenever the news stream says access changed, and as connections come and go.
// Session tokens are never shown: a session is named by its id.

import { h, section, table, timeEl, formatNumber, badge, shortId } from './dom.js';
import { getJSON, post } from './api.js';
import { subscribe, currentOverview } from './live.js';
import { pageHeading, errorBox, actionButton, redraw } from './ui.js';

export async function accessPage({ main, signal }) {
  const pending = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
  const devices = h('div');
  const sessions = h('div');
  const showExpired = h('input', { type: 'checkbox', id: 'show-expired' });
  main.replaceChildren(
    pageHeading('Access', h('p', { class: 'subtitle' }, 'Devices of OAuth apps wait for your approval; sessions are the logins apps and tools hold.')),
    section('Devices waiting for approval', pending, { id: 'pending-devices' }),
    section('Sessions', sessions, {
      id: 'sessions',
      actions: h('label', { class: 'check' }, showExpired, ' Show expired and revoked'),
    }),
    section('All devices', devices, { id: 'devices' }));

  // What each part was last drawn from: a refresh that brings the same lists draws
  // nothing (the overview events that trigger one come often, and a redraw under the
  // owner's pointer is a nuisance).
  const drawnFrom = { devices: null, sessions: null };
  const refresh = async () => {
    const [d, s] = await Promise.allSettled([
      getJSON('/console/api/devices', { signal }),
      getJSON(`/console/api/sessions${showExpired.checked ? '?expired=1' : ''}`, { signal }),
    ]);
    if (signal.aborted) return;
    if (d.status === 'fulfilled') {
      const all = d.value.devices ?? [];
      const key = JSON.stringify(all);
      if (key !== drawnFrom.devices) {
        drawnFrom.devices = key;
        redraw(pending, pendingTable(oldestFirst(all.filter((x) => x.status === 'pending')), refresh));
        redraw(devices, devicesTable(all, refresh));
      }
    } else if (d.reason?.status !== 401) {
      drawnFrom.devices = null;
      pending.replaceChildren(errorBox('The devices could not be read:', d.reason, refresh));
      devices.replaceChildren();
    }
    if (s.status === 'fulfilled') {
      // The server leaves out expired sessions unless asked; revoked ones go with them.
      const list = (s.value.sessions ?? []).filter((x) => showExpired.checked || !x.revokedAt);
      const key = JSON.stringify(list);
      if (key !== drawnFrom.sessions) {
        drawnFrom.sessions = key;
        redraw(sessions, sessionsTable(list, refresh, currentOverview()?.owner));
      }
    } else if (s.reason?.status !== 401) {
      drawnFrom.sessions = null;
      sessions.replaceChildren(errorBox('The sessions could not be read:', s.reason, refresh));
    }
  };

  showExpired.addEventListener('change', refresh);
  // Access events say something changed; overview events come as connections change
  // (the sessions' connection counts): at most one refresh a second for those.
  subscribe('access', () => refresh(), signal);
  let last = 0;
  let timer = null;
  subscribe('overview', () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      last = performance.now();
      refresh();
    }, Math.max(0, 1000 - (performance.now() - last)));
  }, signal);
  signal.addEventListener('abort', () => clearTimeout(timer), { once: true });

  await refresh();
}

// Requests waiting for a decision, oldest first (then by id): a new one is added at the
// bottom, so a live redraw never moves another request under the owner's pointer.
export const oldestFirst = (list) => [...list].sort((a, b) =>
  (Date.parse(a.createdAt) || 0) - (Date.parse(b.createdAt) || 0) || String(a.code ?? a.id).localeCompare(String(b.code ?? b.id)));

const STATUS_KIND = { pending: 'warn', approved: 'ok', active: 'ok', revoked: 'bad', refused: 'bad', expired: 'muted' };
export const statusBadge = (status) => badge(String(status ?? 'unknown'), STATUS_KIND[status] ?? '');

// Untrusted text (an Origin, a user agent) in a cell, shortened by CSS, whole in its title.
export const textCell = (v, shown = v) => (v ? h('span', { class: 'clip', title: String(v) }, String(shown)) : h('span', { class: 'muted' }, '—'));

// A browser's user agent in a few words ("Firefox 133 on macOS"); an app's own agent
// string (not a browser's) as it is. The whole string stays in the title.
export function describeAgent(ua) {
  const s = String(ua ?? '');
  const version = (re) => re.exec(s)?.[1];
  const browser = version(/Edg\/(\d+)/) ? `Edge ${version(/Edg\/(\d+)/)}`
    : version(/Firefox\/(\d+)/) ? `Firefox ${version(/Firefox\/(\d+)/)}`
    : version(/Chrome\/(\d+)/) ? `Chrome ${version(/Chrome\/(\d+)/)}`
    : version(/Version\/(\d+)[^ ]* .*Safari\//) ? `Safari ${version(/Version\/(\d+)[^ ]* .*Safari\//)}`
    : null;
  if (!browser || !s.startsWith('Mozilla/')) return s;
  const os = /Android/.test(s) ? 'Android' : /iPhone|iPad/.test(s) ? 'iOS' : /Mac OS X/.test(s) ? 'macOS'
    : /Windows/.test(s) ? 'Windows' : /CrOS/.test(s) ? 'ChromeOS' : /Linux/.test(s) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

const agentCell = (ua) => textCell(ua, describeAgent(ua));

function pendingTable(list, refresh) {
  const columns = [{ title: 'Code' }, { title: 'Group' }, { title: 'Origin' }, { title: 'User agent' }, { title: 'Address' }, { title: 'Asked' }, { title: 'Decide', class: 'actions-cell' }];
  return table(columns, list.map((d) => [
    h('code', { class: 'device-code' }, d.code),
    textCell(d.group),
    textCell(d.origin),
    agentCell(d.userAgent),
    textCell(d.address),
    timeEl(d.createdAt),
    h('div', { class: 'actions' },
      actionButton('Approve', async () => {
        await post(`/console/api/devices/${encodeURIComponent(d.code)}/approve`);
        await refresh();
      }, { kind: 'primary', confirm: 'Confirm approve', done: `Device ${d.code} approved: its next login gets in.`, name: `approve-device-${d.code}` }),
      actionButton('Refuse', async () => {
        await post(`/console/api/devices/${encodeURIComponent(d.code)}/revoke`);
        await refresh();
      }, { kind: 'danger', confirm: 'Confirm refuse', done: `Device ${d.code} refused.`, name: `refuse-device-${d.code}` })),
  ]), { label: 'Devices waiting for approval', empty: 'No device is waiting. A new OAuth app login shows up here.' });
}

function devicesTable(list, refresh) {
  const columns = [{ title: 'Code' }, { title: 'Status' }, { title: 'Group' }, { title: 'Origin' }, { title: 'User agent' }, { title: 'Asked' }, { title: 'Decided' }, { title: 'Action', class: 'actions-cell' }];
  return table(columns, list.map((d) => [
    h('code', { class: 'device-code' }, d.code),
    statusBadge(d.status),
    textCell(d.group),
    textCell(d.origin),
    agentCell(d.userAgent),
    timeEl(d.createdAt),
    timeEl(d.decidedAt),
    d.status === 'approved'
      ? actionButton('Revoke', async () => {
        await post(`/console/api/devices/${encodeURIComponent(d.code)}/revoke`);
        await refresh();
      }, { kind: 'danger', confirm: 'Confirm revoke', done: `Device ${d.code} revoked.`, name: `revoke-device-${d.code}` })
      : null,
  ]), { label: 'All devices', empty: 'No OAuth app has logged in (the server accepts them only with --allow-oauth-dpop).' });
}

function sessionsTable(list, refresh, owner) {
  const columns = [
    { title: 'Session' }, { title: 'Kind' }, { title: 'Group' }, { title: 'Origin' }, { title: 'User agent' },
    { title: 'Connections', class: 'num' }, { title: 'Last seen' }, { title: 'Expires' }, { title: 'Action', class: 'actions-cell' },
  ];
  return table(columns, list.map((s) => {
    const gone = !!s.revokedAt || (s.expiresAt && Date.parse(s.expiresAt) < Date.now());
    return { class: s.current ? 'row-current' : gone ? 'row-gone' : null, dataset: { session: String(s.id) }, cells: [
      h('div', { class: 'session-id' }, shortId(s.id, 6), s.current ? badge('this console', 'current') : null,
        s.device ? h('span', { class: 'small muted' }, 'device ', h('code', null, String(s.device))) : null,
        // Every login is the owner's; a subject is worth showing when it says more
        // (a tool's token:NAME).
        s.subject && s.subject !== owner ? h('span', { class: 'small muted clip', title: String(s.subject) }, String(s.subject)) : null,
        h('span', { class: 'small muted' }, 'created ', timeEl(s.createdAt))),
      h('div', { class: 'session-id' }, String(s.kind ?? ''), s.revokedAt ? badge('revoked', 'bad') : gone ? badge('expired', 'muted') : null),
      textCell(s.group),
      textCell(s.origin),
      agentCell(s.userAgent),
      s.connections > 0 ? h('strong', null, formatNumber(s.connections)) : formatNumber(s.connections ?? 0),
      timeEl(s.lastSeen),
      timeEl(s.expiresAt),
      gone ? null : actionButton('Revoke', async () => {
        await post(`/console/api/sessions/${encodeURIComponent(s.id)}/revoke`);
        await refresh();
      }, { kind: 'danger', confirm: s.current ? 'Confirm: log out' : 'Confirm revoke', done: 'Session revoked: its connections close now.', name: `revoke-session-${s.id}` }),
    ] };
  }), { label: 'Sessions', empty: 'No session is active.' });
}
