// /console/groups/<group> — a group's documents: filter by id, sort by last written or
// by id, a page at a time (GET /console/api/groups/<group>/documents). The filter,
// order and page live in the address (?q=&sort=&offset=), so a view can be bookmarked
// and Back returns to it.

import { h, section, table, formatBytes, formatNumber, timeEl, consolePath, documentPath } from './dom.js';
import { getJSON } from './api.js';
import { pageHeading, errorBox } from './ui.js';

const PAGE = 100;

export async function groupPage({ main, params: [group], query, signal }) {
  const state = {
    q: query.get('q') ?? '',
    sort: query.get('sort') === 'id' ? 'id' : 'written',
    offset: Math.max(0, Number.parseInt(query.get('offset') ?? '0', 10) || 0),
  };

  const search = h('input', { type: 'search', id: 'doc-search', name: 'q', value: state.q, autocomplete: 'off', spellcheck: 'false', placeholder: 'part of a document id' });
  const sort = h('select', { id: 'doc-sort', name: 'sort' },
    h('option', { value: 'written' }, 'Last written'),
    h('option', { value: 'id' }, 'Id'));
  sort.value = state.sort;
  const summary = h('p', { class: 'summary', role: 'status', 'aria-live': 'polite' });
  const list = h('div', null, h('p', { class: 'loading' }, 'Loading…'));
  // The same two buttons above and below the list.
  const pagers = ['top', 'bottom'].map((where) => {
    const prev = h('button', { type: 'button', class: 'btn btn-small', 'data-page': 'prev' }, '← Previous');
    const next = h('button', { type: 'button', class: 'btn btn-small', 'data-page': 'next' }, 'Next →');
    prev.addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - PAGE);
      load();
    });
    next.addEventListener('click', () => {
      state.offset += PAGE;
      load();
    });
    return { el: h('nav', { class: 'pager', 'aria-label': `Pages (${where})` }, prev, next), prev, next };
  });

  main.replaceChildren(
    pageHeading(group, h('p', { class: 'subtitle' }, h('a', { href: '/console/' }, 'Overview'), ' › group')),
    section('Documents', [
      h('form', { class: 'toolbar', role: 'search', onsubmit: (e) => e.preventDefault() },
        h('div', { class: 'field' }, h('label', { for: 'doc-search' }, 'Filter by id'), search),
        h('div', { class: 'field' }, h('label', { for: 'doc-sort' }, 'Sort by'), sort)),
      h('div', { class: 'list-bar' }, summary, pagers[0].el), list, pagers[1].el,
    ], { id: 'documents' }));

  let inFlight = null;
  const load = async () => {
    // Keep the address in step (replaceState: typing is not a history entry each key).
    const params = new URLSearchParams();
    if (state.q) params.set('q', state.q);
    if (state.sort !== 'written') params.set('sort', state.sort);
    if (state.offset) params.set('offset', String(state.offset));
    const qs = params.toString();
    history.replaceState(null, '', `${consolePath('groups', group)}${qs ? `?${qs}` : ''}`);

    inFlight?.abort();
    inFlight = new AbortController();
    const mine = inFlight;
    // Removed when this load ends: the page's signal lives while the page does, and
    // each keystroke of the filter is a load.
    const onLeave = () => mine.abort();
    signal.addEventListener('abort', onLeave, { once: true });
    list.setAttribute('aria-busy', 'true');
    const api = `/console/api/groups/${encodeURIComponent(group)}/documents?q=${encodeURIComponent(state.q)}&sort=${state.sort}&offset=${state.offset}&limit=${PAGE}`;
    try {
      const r = await getJSON(api, { signal: mine.signal });
      if (mine.signal.aborted) return;
      draw(r);
    } catch (e) {
      if (mine.signal.aborted || e.status === 401) return;
      list.replaceChildren(errorBox('The documents could not be listed:', e, load));
      summary.textContent = '';
    } finally {
      signal.removeEventListener('abort', onLeave);
      if (inFlight === mine) list.removeAttribute('aria-busy');
    }
  };

  const draw = (r) => {
    const docs = r.documents ?? [];
    const total = Number(r.total) || 0;
    const matched = Number(r.matched ?? total) || 0;
    const offset = Number(r.offset ?? state.offset) || 0;
    const first = docs.length ? offset + 1 : 0;
    summary.textContent = docs.length
      ? `Documents ${formatNumber(first)}–${formatNumber(offset + docs.length)} of ${formatNumber(matched)}${state.q ? ` matching “${state.q}” (${formatNumber(total)} in the group)` : ''}`
      : state.q ? `No document id contains “${state.q}” (${formatNumber(total)} in the group).` : '';
    const columns = [{ title: 'Document' }, { title: 'Size', class: 'num' }, { title: 'Last written' }];
    list.replaceChildren(table(columns, docs.map((d) => [
      h('a', { href: documentPath(d.id, group), class: 'doc-link' }, h('code', null, d.id)),
      formatBytes(d.bytes),
      timeEl(d.written),
    ]), { label: `Documents of ${group}`, empty: state.q ? 'No match.' : 'This group has no documents.' }));
    for (const p of pagers) {
      p.prev.disabled = offset <= 0;
      p.next.disabled = offset + docs.length >= matched;
      p.el.hidden = matched <= PAGE && offset === 0;
    }
  };

  let debounce = null;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.q = search.value.trim();
      state.offset = 0;
      load();
    }, 200);
  });
  sort.addEventListener('change', () => {
    state.sort = sort.value;
    state.offset = 0;
    load();
  });
  signal.addEventListener('abort', () => clearTimeout(debounce), { once: true });

  await load();
}
