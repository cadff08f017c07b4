// DOM building and formatting helpers for the console pages.
//
// Everything the console shows is built with createElement and text nodes, never
// innerHTML: document JSON, origins, user agents and notes come from apps and are
// untrusted, and the page's CSP forbids inline script anyway (docs/console.md, Safety).

// h('tr', {class: 'x', onclick: fn}, child, 'text', [more children]) → an element.
// Attributes whose value is null, undefined or false are left out; `true` gives an
// empty attribute. Children may be nodes, strings, numbers, arrays, null or false.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'class') el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
      else if (name === 'dataset') Object.assign(el.dataset, value);
      else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
      else if (name === 'value' || name === 'checked' || name === 'disabled' || name === 'open') el[name] = value;
      else el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

// Replaces el's children; like h(), skips null, undefined and false (replaceChildren
// would show them as text).
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// A path inside the console, with each segment URL-encoded (group names and document
// ids come from the server and are only ever used as one path segment each).
export function consolePath(...segments) {
  return `/console/${segments.map((s) => encodeURIComponent(s)).join('/')}`;
}

export function documentPath(id, group) {
  return `${consolePath('documents', id)}?group=${encodeURIComponent(group)}`;
}

// "automerge:<base58>" → the document id, else null (a root URL is untrusted text:
// only a well-formed one becomes a link).
export function documentIdOf(url) {
  const m = /^automerge:([1-9A-HJ-NP-Za-km-z]{10,64})$/.exec(String(url ?? ''));
  return m ? m[1] : null;
}

const numberFormat = new Intl.NumberFormat('en');
export const formatNumber = (n) => (typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '—');

// Binary units, as a disk tool shows them: 0 B, 512 B, 1.5 KiB, 12 MiB.
export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  const digits = i === 0 || Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2;
  return `${n.toFixed(digits)} ${units[i]}`;
}

// A time from the server as milliseconds since the epoch, or null. The console routes
// give ISO-8601 strings; a change's `time` is seconds (and 0 when the app set none).
export function timeMs(v) {
  if (v === null || v === undefined || v === '' || v === 0) return null;
  if (typeof v === 'number') return v > 1e12 ? v : v * 1000;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? null : ms;
}

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto', style: 'short' });
const absolute = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'medium' });
const STEPS = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', 30],
  ['month', 12],
  ['year', Infinity],
];

// "just now", "3 minutes ago", "in 2 hours".
export function relativeTime(ms, now = Date.now()) {
  if (ms === null) return '—';
  let diff = (ms - now) / 1000;
  if (Math.abs(diff) < 5) return 'just now';
  for (const [unit, size] of STEPS) {
    if (Math.abs(diff) < size) return relative.format(Math.round(diff), unit);
    diff /= size;
  }
  return '—';
}

export const absoluteTime = (ms) => (ms === null ? '' : absolute.format(new Date(ms)));

// <time> showing a relative time, the exact one in its title and datetime; the
// ticker in app.js refreshes every [data-rel] element so "just now" does not stay.
export function timeEl(value) {
  const ms = timeMs(value);
  if (ms === null) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: new Date(ms).toISOString(), title: absoluteTime(ms), dataset: { rel: String(ms) } },
    relativeTime(ms));
}

export function refreshRelativeTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('[data-rel]')) el.textContent = relativeTime(Number(el.dataset.rel), now);
}

// 93784 → "1 d 2 h", 3725 → "1 h 2 min", 42 → "42 s".
export function formatDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const hr = Math.floor((s % 86400) / 3600);
  const min = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d} d ${hr} h`;
  if (hr > 0) return `${hr} h ${min} min`;
  if (min > 0) return `${min} min ${s % 60} s`;
  return `${s} s`;
}

// `pending.devices` in the overview is a count; a list is counted too.
export const countOf = (v) => (Array.isArray(v) ? v.length : typeof v === 'number' ? v : 0);

// A long identifier shortened in the middle; the whole of it in the title.
export function shortId(value, keep = 8) {
  const s = String(value ?? '');
  const el = h('code', { class: 'id', title: s }, s.length > keep * 2 + 1 ? `${s.slice(0, keep)}…${s.slice(-keep)}` : s);
  return el;
}

// A small label: h badge('pending', 'warn').
export const badge = (text, kind = '') => h('span', { class: ['badge', kind && `badge-${kind}`] }, text);

// A table with a header row; `rows` are arrays of cells (nodes or text), or
// {cells, class, dataset} for a row of its own look. Each column may carry a class
// (e.g. 'num' for right-aligned numbers).
export function table(columns, rows, { label, empty = 'Nothing here.' } = {}) {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0' },
    h('table', null,
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.title)))),
      h('tbody', null, rows.map((cells) => rowOf(columns, cells)))));
}

export function rowOf(columns, row) {
  const cells = Array.isArray(row) ? row : row.cells;
  const attrs = Array.isArray(row) ? null : { class: row.class, dataset: row.dataset };
  return h('tr', attrs, cells.map((c, i) => h('td', { class: columns[i]?.class, 'data-label': columns[i]?.title || null }, c)));
}

// A section with a heading (h2) and content; `id` for in-page links.
export function section(title, content, { id, actions } = {}) {
  const headingId = id ? `${id}-title` : undefined;
  return h('section', { class: 'card', id, 'aria-labelledby': headingId },
    h('div', { class: 'card-head' }, h('h2', { id: headingId }, title), actions),
    content);
}

// Throws an AbortError-like exception if `signal` is aborted (the page was left).
// The abort listener goes when the timer fires: a signal that lives for the whole visit
// (the event stream's) would otherwise gather one per reconnect.
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
