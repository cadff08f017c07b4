// /console/documents/<id>?group=<group> — one document: its JSON as a collapsible tree,
// kept live from the document's event stream (a `snapshot`, then `change` events with
// an RFC 6902 patch each; docs/api.md, "Watching a document"), its history as a
// timeline of changes, and a download of the saved file.

import { h, fill, section, table, timeEl, formatNumber, consolePath, shortId } from './dom.js';
import { getJSON, openStream } from './api.js';
import { applyPatch } from './jsonpatch.js';
import { JsonTree } from './jsontree.js';
import { pageHeading, errorBox, liveIndicator } from './ui.js';

const HISTORY_PAGE = 200;
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
  const rows = [];
  let cursor; // undefined: nothing read yet; null: read to the end
  let knownHeads = null; // the heads the history was read to, once at the end
  let loading = false;
  let again = false;
  const more = h('button', { type: 'button', class: 'btn', id: 'history-more' }, 'Load more');
  more.addEventListener('click', () => loadHistory());

  const drawHistory = (fresh = 0) => {
    const columns = [{ title: 'Time' }, { title: 'Actor' }, { title: 'Seq', class: 'num' }, { title: 'Message' }, { title: 'Change' }];
    const body = table(columns, rows.map((c) => [
      timeEl(c.time),
      actorChip(c.actor),
      formatNumber(c.seq),
      c.message ? h('span', { class: 'message' }, String(c.message)) : h('span', { class: 'muted' }, '—'),
      shortId(c.hash, 6),
    ]), { label: 'History', empty: 'No changes.' });
    if (fresh) {
      const trs = body.querySelectorAll('tbody tr');
      for (let i = trs.length - fresh; i < trs.length; i++) trs[i]?.classList.add('row-new');
    }
    fill(history,
      h('p', { class: 'summary' }, `${formatNumber(rows.length)} change${rows.length === 1 ? '' : 's'}${cursor ? ' so far' : ''}, in the order they were applied (newest last).`),
      body,
      cursor ? more : null);
  };

  // Reads the next page; once at the end, reads what came after the heads it saw.
  async function loadHistory() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    more.disabled = true;
    try {
      const since = cursor === null && knownHeads?.length ? `&since=${knownHeads.map(encodeURIComponent).join(',')}` : '';
      const from = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const r = await getJSON(`${apiBase}/changes?${inGroup}&limit=${HISTORY_PAGE}${since}${from}`, { signal });
      const got = r.changes ?? [];
      rows.push(...got);
      const wasAtEnd = cursor === null;
      cursor = r.cursor ?? null;
      if (cursor === null) knownHeads = r.heads ?? knownHeads;
      drawHistory(wasAtEnd ? got.length : 0);
    } catch (e) {
      if (signal.aborted || e.status === 401) return;
      history.replaceChildren(errorBox('The history could not be read:', e, () => loadHistory()));
    } finally {
      loading = false;
      more.disabled = false;
    }
    if (again) {
      again = false;
      loadHistory();
    }
  }

  // A change arrived: if the whole history is shown, add what is new to its end.
  function historyMoved() {
    if (cursor === null) loadHistory();
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
