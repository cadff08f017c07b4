// /console/grants — what apps, tools and agents may reach beyond their own group
// (docs/grants.md): approve or refuse pending requests, revoke approved grants. The
// rest (refused, revoked, expired) is kept below for the record.

import { h, section, table, timeEl } from './dom.js';
import { getJSON, post } from './api.js';
import { subscribe } from './live.js';
import { pageHeading, errorBox, actionButton, redraw } from './ui.js';
import { statusBadge, textCell, oldestFirst } from './page-access.js';

export async function grantsPage({ main, signal }) {
  const pending = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
  const approved = h('div');
  const past = h('div');
  main.replaceChildren(
    pageHeading('Grants', h('p', { class: 'subtitle' }, 'A grant lets an app, tool or agent read or write groups beyond its own.')),
    section('Requests waiting for you', pending, { id: 'pending-grants' }),
    section('Approved', approved, { id: 'approved-grants' }),
    section('Refused, revoked and expired', past, { id: 'past-grants' }));

  let drawnFrom = null; // the list last drawn, as text: the same list is not drawn again
  const refresh = async () => {
    let list;
    try {
      list = (await getJSON('/console/api/grants', { signal })).grants ?? [];
    } catch (e) {
      drawnFrom = null;
      if (!signal.aborted && e.status !== 401) pending.replaceChildren(errorBox('The grants could not be read:', e, refresh));
      return;
    }
    if (JSON.stringify(list) === drawnFrom) return;
    drawnFrom = JSON.stringify(list);
    const act = (id, verb) => async () => {
      await post(`/console/api/grants/${encodeURIComponent(id)}/${verb}`);
      await refresh();
    };
    // Pending requests oldest first, so a new one is added at the bottom: a live redraw
    // must not move another request under the owner's pointer (and Approve, like
    // Refuse, takes a second press on the same button).
    redraw(pending, grantsTable(oldestFirst(list.filter((g) => g.status === 'pending')), (g) => h('div', { class: 'actions' },
      actionButton('Approve', act(g.id, 'approve'), { kind: 'primary', confirm: 'Confirm approve', done: `Grant ${g.id} approved: the app's next login gets it.`, name: `approve-grant-${g.id}` }),
      actionButton('Refuse', act(g.id, 'refuse'), { kind: 'danger', confirm: 'Confirm refuse', done: `Grant ${g.id} refused.`, name: `refuse-grant-${g.id}` })),
    'No request is waiting.'));
    redraw(approved, grantsTable(list.filter((g) => g.status === 'approved'), (g) =>
      actionButton('Revoke', act(g.id, 'revoke'), { kind: 'danger', confirm: 'Confirm revoke', done: `Grant ${g.id} revoked: the sockets that used it close now.`, name: `revoke-grant-${g.id}` }),
    'No grant stands.'));
    redraw(past, grantsTable(list.filter((g) => g.status !== 'pending' && g.status !== 'approved'), () => null, 'Nothing yet.'));
  };

  subscribe('access', () => refresh(), signal);
  await refresh();
}

// A scope as docs/grants.md gives it: "NSID:read" or {nsid, access}.
function scopeChip(s) {
  const [nsid, access] = typeof s === 'string' ? [s.replace(/:(read|write)$/, ''), /:(read|write)$/.exec(s)?.[1] ?? ''] : [s?.nsid, s?.access];
  return h('li', { class: ['scope', access === 'write' && 'scope-write'] }, h('code', null, String(nsid ?? '?')), ' ', h('span', { class: 'scope-access' }, String(access ?? '')));
}

function grantsTable(list, actions, empty) {
  const columns = [{ title: 'Grant' }, { title: 'Status' }, { title: 'For' }, { title: 'Scopes' }, { title: 'Note' }, { title: 'Asked' }, { title: 'Decided' }, { title: 'Expires' }, { title: 'Action', class: 'actions-cell' }];
  return table(columns, list.map((g) => ({
    dataset: { grant: String(g.id) },
    cells: [
      h('code', { class: 'nowrap' }, String(g.id)),
      statusBadge(g.status),
      h('div', null, textCell(g.subject), g.origin && !String(g.subject ?? '').includes(g.origin) ? h('div', { class: 'small' }, textCell(g.origin)) : null),
      h('ul', { class: 'scopes' }, (Array.isArray(g.scopes) ? g.scopes : []).map(scopeChip)),
      g.note ? h('span', { class: 'note' }, String(g.note)) : h('span', { class: 'muted' }, '—'),
      timeEl(g.createdAt),
      timeEl(g.decidedAt),
      timeEl(g.expiresAt),
      actions(g),
    ],
  })), { label: 'Grants', empty });
}
