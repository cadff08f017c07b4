// /console/documents/<id>?group=<group> — one document: its JSON as a collapsible tree,
// kept live from the document's event stream (a `snapshot`, then `change` events with
// an RFC 6902 patch each; docs/api.md, "Watching a document"), its history as a
// timeline of changes, and a download of the saved file.

import { h, section, rowOf, timeEl, formatNumber, consolePath, shortId } from './dom.js';
import { getJSON, openStream } from './api.js';
import { applyPatch } from './jsonpatch.js';
import { JsonTree } from './jsontree.js';
import { pageHeading, errorBox, liveIndicator } from './ui.js';

const HISTORY_PAGE = 200;
const HISTORY_KEEP = 1000; // rows kept in the history table: the newest
const MAX_PENDING_OPS = 2000; // past this many operations in a frame, the tree is redrawn whole

export async function documentPage({ main, params: [id], query, signal }) {
  const group = query.get('group') ?? '';
  const enc = encodeURIComponent(id);
  const inGroup = `group=${encodeURIComponent(group)}`;
  const apiBase = `/console/api/v1/documents/${enc}`;

  const live = liveIndicator();
  const heads = h('span', { class: 'heads' });
  const tree = new JsonTree();
  const content = h('div', { class: 'doc-content' }, h('p', { class: 'loading' }, 'Loading…'));
  const history = h('div', { class: 'history' }, h('p', { class: 'loading' }, 'Loading…'));

  main.replaceChildren(
    pageHeading('Document',
      h('p', { class: 'subtitle' },
        h('a', { href: '/console/' }, 'Overview'), ' › ',
        group ? h('a', { href: consolePath('groups', group) }, group) : 'no group', ' › ',
        h('code', { class: 'doc-id' }, id))),
    h('div', { class: 'doc-bar' },
      live.el, heads,
      h('a', { class: 'btn', href: `/console/api/documents/${enc}/download?${inGroup}`, download: `${id}.automerge`, id: 'download' },
        'Download .automerge')),
    section('Content', content, {
      id: 'content',
      actions: h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => tree.expandAll() }, 'Expand all'),
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => tree.collapseAll() }, 'Collapse all')),
    }),
    section('History', history, { id: 'history' }));

  if (!group) {
    content.replaceChildren(errorBox('No group:', new Error('the address names no ?group=')));
    return;
  }

  // --- the content, live -------------------------------------------------------------
  let doc;
  let haveDoc = false;
  // What came since the last frame: the patches' operations (for a redraw of only what
  // they touched), or `whole` (a new view, or too many operations to be worth sorting).
  let pending = null;
  const showHeads = (hs) => {
    heads.replaceChildren(...(Array.isArray(hs) && hs.length ? ['heads ', ...hs.flatMap((x, i) => [i ? ', ' : '', shortId(x, 6)])] : []));
  };
  // Redraws at most once a frame however many events came in it; `ops` null: whole.
  const redraw = (ops) => {
    if (!pending) {
      pending = { ops: [], whole: false };
      requestAnimationFrame(() => {
        const p = pending;
        pending = null;
        if (signal.aborted) return;
        if (!content.contains(tree.el)) {
          content.replaceChildren(tree.el);
          p.whole = true;
        }
        if (p.whole) tree.render(doc, p.ops.slice(0, 50).map((op) => op.path));
        else tree.update(doc, p.ops);
      });
    }
    if (ops === null) {
      pending.whole = true;
      pending.ops = [];
      return;
    }
    for (const op of ops) {
      if (pending.ops.length >= MAX_PENDING_OPS) {
        pending.whole = true; // the operations kept so far are only flashed
        break;
      }
      pending.ops.push(op);
    }
  };

  let stream;
  stream = openStream(`${apiBase}/events?${inGroup}`, {
    signal,
    onState: (s, detail) => live.set(s, detail),
    onEvent: ({ event, data }) => {
      let m;
      try {
        m = JSON.parse(data);
      } catch {
        return;
      }
      if (event === 'snapshot') {
        doc = m.doc;
        haveDoc = true;
        showHeads(m.heads);
        redraw(null);
      } else if (event === 'change' && haveDoc) {
        try {
          doc = applyPatch(doc, m.patch);
        } catch (e) {
          // Our view and the server's parted: start over from a fresh snapshot.
          console.warn(`a change did not apply (${e.message}); asking for a new snapshot`);
          haveDoc = false;
          stream.restart();
          return;
        }
        showHeads(m.heads);
        redraw(Array.isArray(m.patch) ? m.patch : null);
        historyMoved();
      }
    },
  });

  // The first view from a plain GET too: it may come before the stream's snapshot.
  getJSON(`${apiBase}?${inGroup}`, { signal })
    .then((d) => {
      if (haveDoc) return;
      doc = d;
      haveDoc = true;
      redraw(null);
    })
    .catch((e) => {
      if (haveDoc || signal.aborted || e.status === 401) return;
      content.replaceChildren(errorBox(e.status === 404 ? `No document ${id} in ${group}.` : 'The document could not be read:', e,
        e.status === 404 ? null : () => location.reload()));
    });

  // --- the history -------------------------------------------------------------------
  // Rows are appended as pages arrive (never redrawn whole), and only the newest
  // HISTORY_KEEP stay: a document changed all day must not grow the page without end.
  const columns = [{ title: 'Time' }, { title: 'Actor' }, { title: 'Seq', class: 'num' }, { title: 'Message' }, { title: 'Change' }];
  const summary = h('p', { class: 'summary' });
  const tbody = h('tbody');
  const tableEl = h('div', { class: 'table-wrap', role: 'region', 'aria-label': 'History', tabindex: '0' },
    h('table', null, h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.title)))), tbody));
  const empty = h('p', { class: 'empty' }, 'No changes.');
  const more = h('button', { type: 'button', class: 'btn', id: 'history-more' }, 'Load more');
  more.addEventListener('click', () => loadHistory());
  let total = 0; // changes read (shown or dropped)
  let cursor; // undefined: nothing read yet; a string: the chain goes on; null: read to the end
  // The `since` of the chain the cursor belongs to: a cursor is only valid with the same
  // `since` (docs/api.md), so a catch-up keeps it until its chain ends.
  let chainSince = '';
  let knownHeads = null; // the heads the history was read to, once at the end
  let catchingUp = false; // reading what came after knownHeads
  let loading = false;
  let again = false;

  const addRows = (changes, fresh) => {
    const trs = [];
    for (const c of changes) {
      const tr = rowOf(columns, [
        timeEl(c.time),
        actorChip(c.actor),
        formatNumber(c.seq),
        c.message ? h('span', { class: 'message' }, String(c.message)) : h('span', { class: 'muted' }, '—'),
        shortId(c.hash, 6),
      ]);
      if (fresh) tr.classList.add('row-new');
      trs.push(tr);
    }
    tbody.append(...trs);
    total += changes.length;
    while (tbody.rows.length > HISTORY_KEEP) tbody.firstElementChild.remove();
  };

  const drawHistory = () => {
    const dropped = total - tbody.rows.length;
    summary.textContent = `${formatNumber(total)} change${total === 1 ? '' : 's'}${cursor && !catchingUp ? ' so far' : ''}, in the order they were applied (newest last).` +
      (dropped > 0 ? ` The oldest ${formatNumber(dropped)} are not shown here (the newest ${formatNumber(HISTORY_KEEP)} are).` : '');
    // The table stays in place once shown, so rows are added, not the table rebuilt.
    if (!history.contains(summary)) history.replaceChildren(summary, tableEl, more);
    tableEl.hidden = total === 0;
    empty.hidden = total !== 0;
    if (total === 0 && !history.contains(empty)) tableEl.after(empty);
    more.hidden = !(cursor && !catchingUp);
  };

  // Reads the next page (the first read and "Load more": a page at a time, oldest
  // first); once at the end, reads what came after the heads it saw, to its end.
  async function loadHistory() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    more.disabled = true;
    try {
      if (cursor === null) {
        catchingUp = true;
        chainSince = knownHeads?.length ? `&since=${knownHeads.map(encodeURIComponent).join(',')}` : '';
        cursor = undefined;
      }
      do {
        const from = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
        const r = await getJSON(`${apiBase}/changes?${inGroup}&limit=${HISTORY_PAGE}${chainSince}${from}`, { signal });
        addRows(r.changes ?? [], catchingUp);
        cursor = r.cursor ?? null;
        if (cursor === null) {
          knownHeads = r.heads ?? knownHeads;
          chainSince = '';
          catchingUp = false;
        }
      } while (cursor && catchingUp && !signal.aborted);
      drawHistory();
    } catch (e) {
      if (signal.aborted || e.status === 401) return;
      history.replaceChildren(errorBox('The history could not be read:', e, () => loadHistory()));
    } finally {
      loading = false;
      more.disabled = false;
    }
    // A change that arrived meanwhile: read on from the end (not the next page of a
    // first read, which waits for "Load more").
    if (again) {
      again = false;
      if (cursor === null || catchingUp) loadHistory();
    }
  }

  // A change arrived: if the whole history is shown, add what is new to its end.
  function historyMoved() {
    if (cursor === null || catchingUp || loading) loadHistory();
  }

  await loadHistory();
}

// An actor id, shortened, with a colour of its own so one writer's changes stand out
// (set through element.style, which the CSP allows, unlike a style attribute).
function actorChip(actor) {
  const s = String(actor ?? '');
  let hash = 0;
  for (let i = 0; i < s.length; i++) hash = (hash * 31 + s.charCodeAt(i)) >>> 0;
  const el = shortId(s, 6);
  el.classList.add('actor');
  el.style.setProperty('--actor-hue', String(hash % 360));
  return el;
}
