// A document's JSON view as a collapsible tree: objects and arrays are <details>
// disclosures (keyboard and screen-reader friendly without any script of ours), the
// rest one line each. Children are built only when their parent is open, so a large
// document costs what is on screen. Whether each node is open (chosen by the owner or
// by the tree) is kept by JSON pointer across redraws, so a live update does not fold
// the tree back up; the values a change touched flash briefly.
//
// Sizes are bounded so that a large document cannot freeze the page (a 500-key object
// of 500-number lists took 12–17 s to open and 30 s per change when every container
// near the top opened and every change rebuilt everything):
//   - containers open by themselves only while fewer than OPEN_BUDGET children have
//     been built (the owner can still open any of them);
//   - a container shows PAGE children, then a button for the next PAGE;
//   - a string shows its first LONG_STRING characters, then a button for the rest;
//   - a change rebuilds only the nodes its pointers reach (update()), not the tree.

import { h } from './dom.js';
import { escapeToken, parsePointer } from './jsonpatch.js';

const PAGE = 500; // children shown per container, and per "Show next" press
const OPEN_BUDGET = 1500; // children built by auto-opening, per render
const EXPAND_ALL_BUDGET = 20000; // "Expand all" opens nodes up to this many children
const LONG_STRING = 10000; // characters of a string shown before "show all"
const MAX_FLASH = 50; // changed paths highlighted per redraw
const MAX_DIRTY = 200; // past this many places to rebuild, the whole tree is redrawn

const isContainer = (v) => v !== null && typeof v === 'object';
const pointerOf = (tokens) => (tokens.length ? `/${tokens.map(escapeToken).join('/')}` : '');
const parentOf = (pointer) => pointer.slice(0, Math.max(0, pointer.lastIndexOf('/')));

// The value at `tokens` in `doc`, or undefined (a pointer of an old patch may be gone).
function lookup(doc, tokens) {
  let v = doc;
  for (const t of tokens) {
    if (!isContainer(v)) return undefined;
    if (Array.isArray(v)) {
      if (!/^(0|[1-9][0-9]*)$/.test(t)) return undefined;
      v = v[Number(t)];
    } else {
      if (!Object.prototype.hasOwnProperty.call(v, t)) return undefined;
      v = v[t];
    }
  }
  return v;
}

// The keys of an object in the order shown. The server's view lists keys in order;
// sorting here keeps a key added by a patch where the next snapshot will put it.
const sortedKeys = (obj) => Object.keys(obj).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

export class JsonTree {
  constructor() {
    this.el = h('div', { class: 'json-tree' });
    this.openDepth = 2; // nodes shallower than this open by themselves (within the budget)
    this.isOpen = new Map(); // pointer → open, for every container built (kept across redraws)
    this.shown = new Map(); // pointer → children shown, where more than PAGE
    this.fullStrings = new Set(); // pointers of long strings shown whole
    this.nodes = new Map(); // pointer → element, of what is built
    this.budget = OPEN_BUDGET;
    this.doc = undefined;
  }

  // Draws `doc` whole (a snapshot, the first view); `changed` are pointers to flash.
  render(doc, changed = [], budget = OPEN_BUDGET) {
    this.doc = doc;
    const focusPath = this.focusedPath();
    this.nodes = new Map();
    this.budget = budget;
    this.el.replaceChildren(this.node('document', doc, '', 0));
    this.refocus(focusPath);
    this.flashAll(changed);
  }

  /**
   * Draws `doc` after the RFC 6902 `ops` that led to it (from one or several patches):
   * only the nodes they touched are built again. A replaced value is rebuilt where it
   * stands; an added, removed or moved one rebuilds its parent's list (an array's
   * indices move, an object's hint counts change).
   */
  update(doc, ops) {
    this.doc = doc;
    const dirty = new Set();
    const changed = [];
    for (const op of ops) {
      if (op?.op === 'test') continue; // changes nothing
      // A copy's `from` stays as it was; a move's `from` loses a value.
      for (const p of [op?.path, op?.op === 'move' ? op.from : undefined]) {
        if (typeof p !== 'string') continue;
        if (changed.length < MAX_FLASH) changed.push(p);
        if (p === '') dirty.add('');
        else dirty.add(op.op === 'replace' && p === op.path ? p : parentOf(p));
        if (dirty.size > MAX_DIRTY) break;
      }
      if (dirty.size > MAX_DIRTY) break;
    }
    if (dirty.size > MAX_DIRTY || dirty.has('')) {
      this.render(doc, changed);
      return;
    }
    const focusPath = this.focusedPath();
    // A place inside another that is rebuilt anyway is skipped; a place not built
    // (inside a closed node, or past a container's shown children) rebuilds the
    // nearest built node above it, which is cheap: a closed node has no children.
    const places = new Set();
    for (const p of dirty) {
      let tokens;
      try {
        tokens = parsePointer(p);
      } catch {
        continue;
      }
      while (tokens.length && !this.nodes.has(pointerOf(tokens))) tokens.pop();
      places.add(pointerOf(tokens));
    }
    if (places.has('')) {
      this.render(doc, changed);
      return;
    }
    for (const p of places) {
      let above = parentOf(p);
      let covered = false;
      for (; above !== ''; above = parentOf(above)) if (places.has(above)) covered = true;
      if (!covered) this.rebuild(p);
    }
    this.refocus(focusPath);
    this.flashAll(changed);
  }

  // Builds the node at `pointer` again from this.doc, in its place.
  rebuild(pointer) {
    const old = this.nodes.get(pointer);
    if (!old) return;
    const tokens = parsePointer(pointer);
    const parent = lookup(this.doc, tokens.slice(0, -1));
    const last = tokens[tokens.length - 1];
    const value = lookup(this.doc, tokens);
    this.forget(pointer);
    if (value === undefined) {
      // Gone (its parent's rebuild would have caught it; a stale pointer): drop it.
      old.closest('li')?.remove();
      return;
    }
    this.budget = OPEN_BUDGET;
    old.replaceWith(this.node(Array.isArray(parent) ? Number(last) : last, value, pointer, tokens.length));
  }

  // Drops the built nodes at and under `pointer` from this.nodes.
  forget(pointer) {
    const prefix = `${pointer}/`;
    this.nodes.delete(pointer);
    for (const k of this.nodes.keys()) if (k.startsWith(prefix)) this.nodes.delete(k);
  }

  expandAll() {
    this.openDepth = Infinity;
    this.isOpen.clear();
    this.render(this.doc, [], EXPAND_ALL_BUDGET);
  }

  collapseAll() {
    this.openDepth = 1;
    this.isOpen.clear();
    this.render(this.doc);
  }

  focusedPath() {
    const active = document.activeElement;
    return this.el.contains(active) ? active.closest('[data-path]')?.dataset.path : undefined;
  }

  refocus(path) {
    if (path === undefined) return;
    const el = this.nodes.get(path);
    (el?.tagName === 'DETAILS' ? el.querySelector(':scope > summary') : el)?.focus({ preventScroll: true });
  }

  // Flashes the nodes at `pointers` (at most MAX_FLASH), or their nearest built
  // ancestors (a removed value, or one inside a closed parent). One style flush for
  // all of them, to restart an animation already running, not one per node.
  flashAll(pointers) {
    const targets = new Set();
    for (const pointer of pointers.slice(0, MAX_FLASH)) {
      let tokens;
      try {
        tokens = parsePointer(pointer);
      } catch {
        continue;
      }
      for (;;) {
        const el = this.nodes.get(pointerOf(tokens));
        if (el) {
          targets.add(el.tagName === 'DETAILS' ? el.querySelector(':scope > summary') : el);
          break;
        }
        if (!tokens.length) break;
        tokens.pop();
      }
    }
    if (!targets.size) return;
    for (const t of targets) t.classList.remove('jt-flash');
    void this.el.offsetWidth; // restart the animations that are running
    for (const t of targets) t.classList.add('jt-flash');
  }

  node(key, value, path, depth) {
    const isRoot = path === '';
    const label = isRoot ? h('span', { class: 'jt-key jt-root' }, key)
      : typeof key === 'number' ? h('span', { class: 'jt-index' }, String(key))
      : h('span', { class: 'jt-key' }, JSON.stringify(key));
    if (!isContainer(value)) {
      const leaf = h('div', { class: 'jt-leaf', 'data-path': path, tabindex: '-1' }, label, h('span', { class: 'jt-sep' }, ': '),
        typeof value === 'string' && value.length > LONG_STRING ? this.longString(value, path) : scalar(value));
      this.nodes.set(path, leaf);
      return leaf;
    }
    const isArray = Array.isArray(value);
    const size = isArray ? value.length : Object.keys(value).length;
    const hint = isArray ? `[ ${size} ${size === 1 ? 'item' : 'items'} ]` : `{ ${size} ${size === 1 ? 'key' : 'keys'} }`;
    const open = isRoot || (this.isOpen.get(path) ?? (depth < this.openDepth && this.budget > 0));
    if (!isRoot) this.isOpen.set(path, open);
    const details = h('details', { class: 'jt-node', 'data-path': path, open },
      h('summary', null, label, h('span', { class: 'jt-hint' }, hint)));
    this.nodes.set(path, details);
    let built = false;
    const build = () => {
      if (built) return;
      built = true;
      details.append(this.children(value, path, depth));
    };
    if (open) build();
    details.addEventListener('toggle', () => {
      if (!isRoot) this.isOpen.set(path, details.open);
      if (details.open && !built) {
        this.budget = OPEN_BUDGET; // a node the owner opens may open its small children
        build();
      }
    });
    return details;
  }

  children(value, path, depth) {
    const isArray = Array.isArray(value);
    const keys = isArray ? null : sortedKeys(value);
    const count = isArray ? value.length : keys.length;
    if (count === 0) return h('p', { class: 'jt-empty' }, isArray ? 'empty list' : 'empty object');
    const list = h('ul', { class: 'jt-children' });
    this.appendChildren(list, value, keys, path, depth, 0, Math.min(count, this.shown.get(path) ?? PAGE));
    return list;
  }

  // Appends children [from, to) of `value` to `list`, then a "Show next" button if
  // there are more (it appends the next page in place, not the whole list again).
  appendChildren(list, value, keys, path, depth, from, to) {
    const count = keys ? keys.length : value.length;
    this.budget -= to - from;
    const items = [];
    for (let i = from; i < to; i++) {
      const k = keys ? keys[i] : i;
      items.push(h('li', null, this.node(k, value[k], `${path}/${escapeToken(k)}`, depth + 1)));
    }
    list.append(...items);
    if (count <= to) return;
    const next = Math.min(count, to + PAGE);
    const button = h('button', { type: 'button', class: 'btn btn-small jt-more' },
      `Show ${formatCount(next - to)} more (${formatCount(to)} of ${formatCount(count)} shown)`);
    const li = h('li', null, button);
    button.addEventListener('click', () => {
      li.remove();
      this.shown.set(path, next);
      this.budget = OPEN_BUDGET;
      this.appendChildren(list, value, keys, path, depth, to, next);
      list.children[to]?.querySelector('[data-path], summary')?.focus({ preventScroll: true });
    });
    list.append(li);
  }

  // A string longer than LONG_STRING: its beginning, and a button for the whole of it.
  longString(s, path) {
    const text = h('span', { class: 'jt-string' });
    const button = h('button', { type: 'button', class: 'btn btn-small jt-more' });
    const draw = () => {
      const whole = this.fullStrings.has(path);
      text.textContent = whole ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, LONG_STRING)).slice(0, -1)}…`;
      button.textContent = whole ? 'Show less' : `Show all ${formatCount(s.length)} characters`;
    };
    button.addEventListener('click', () => {
      if (this.fullStrings.has(path)) this.fullStrings.delete(path);
      else this.fullStrings.add(path);
      draw();
    });
    draw();
    return [text, ' ', button];
  }
}

const countFormat = new Intl.NumberFormat('en');
const formatCount = (n) => countFormat.format(n);

function scalar(v) {
  if (typeof v === 'string') return h('span', { class: 'jt-string' }, JSON.stringify(v));
  if (typeof v === 'number') return h('span', { class: 'jt-number' }, String(v));
  if (typeof v === 'boolean') return h('span', { class: 'jt-bool' }, String(v));
  if (v === null) return h('span', { class: 'jt-null' }, 'null');
  return h('span', { class: 'jt-other' }, String(v));
}
