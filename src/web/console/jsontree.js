// A document's JSON view as a collapsible tree: objects and arrays are <details>
// disclosures (keyboard and screen-reader friendly without any script of ours), the
// rest one line each. Children are built only when their parent is open, so a large
// document costs what is on screen. Which nodes the owner opened or closed is kept by
// JSON pointer across redraws, so a live update does not fold the tree back up; the
// values a change touched flash briefly.

import { h } from './dom.js';
import { escapeToken, parsePointer } from './jsonpatch.js';

const MAX_CHILDREN = 500; // past this, a button shows the rest

const isContainer = (v) => v !== null && typeof v === 'object';

export class JsonTree {
  constructor() {
    this.el = h('div', { class: 'json-tree' });
    this.openDepth = 2; // nodes shallower than this start open
    this.overrides = new Map(); // pointer → open, where the owner chose
    this.showAll = new Set(); // pointers of long containers shown whole
    this.nodes = new Map(); // pointer → element, of what is built
    this.doc = undefined;
  }

  // Draws `doc`; `changed` is a list of JSON pointers to flash.
  render(doc, changed = []) {
    this.doc = doc;
    const active = document.activeElement;
    const focusPath = this.el.contains(active) ? active.closest('[data-path]')?.dataset.path : undefined;
    this.nodes = new Map();
    this.el.replaceChildren(this.node('document', doc, '', 0, true));
    if (focusPath !== undefined) this.focusable(focusPath)?.focus({ preventScroll: true });
    for (const p of changed) this.flash(p);
  }

  expandAll() {
    this.openDepth = Infinity;
    this.overrides.clear();
    this.render(this.doc);
  }

  collapseAll() {
    this.openDepth = 1;
    this.overrides.clear();
    this.render(this.doc);
  }

  focusable(path) {
    const el = this.nodes.get(path);
    return el?.tagName === 'DETAILS' ? el.querySelector(':scope > summary') : el;
  }

  // Flashes the node at `pointer`, or its nearest ancestor that is built (a removed
  // value, or one inside a closed parent).
  flash(pointer) {
    let tokens;
    try {
      tokens = parsePointer(pointer);
    } catch {
      return;
    }
    for (;;) {
      const path = tokens.length ? `/${tokens.map(escapeToken).join('/')}` : '';
      const el = this.nodes.get(path);
      if (el) {
        const target = el.tagName === 'DETAILS' ? el.querySelector(':scope > summary') : el;
        target.classList.remove('jt-flash');
        void target.offsetWidth; // restart the animation if it is running
        target.classList.add('jt-flash');
        return;
      }
      if (!tokens.length) return;
      tokens.pop();
    }
  }

  node(key, value, path, depth, isRoot = false) {
    const label = isRoot ? h('span', { class: 'jt-key jt-root' }, key)
      : typeof key === 'number' ? h('span', { class: 'jt-index' }, String(key))
      : h('span', { class: 'jt-key' }, JSON.stringify(key));
    if (!isContainer(value)) {
      const leaf = h('div', { class: 'jt-leaf', 'data-path': path, tabindex: '-1' }, label, h('span', { class: 'jt-sep' }, ': '), scalar(value));
      this.nodes.set(path, leaf);
      return leaf;
    }
    const isArray = Array.isArray(value);
    const size = isArray ? value.length : Object.keys(value).length;
    const hint = isArray ? `[ ${size} ${size === 1 ? 'item' : 'items'} ]` : `{ ${size} ${size === 1 ? 'key' : 'keys'} }`;
    const open = isRoot || (this.overrides.get(path) ?? depth < this.openDepth);
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
      if (!isRoot) this.overrides.set(path, details.open);
      if (details.open) build();
    });
    return details;
  }

  children(value, path, depth) {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [i, v])
      // The server's view lists keys in order; sorting here keeps a key added by a
      // patch where the next snapshot will put it.
      : Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((k) => [k, value[k]]);
    if (entries.length === 0) return h('p', { class: 'jt-empty' }, Array.isArray(value) ? 'empty list' : 'empty object');
    const limit = this.showAll.has(path) ? entries.length : MAX_CHILDREN;
    const list = h('ul', { class: 'jt-children' },
      entries.slice(0, limit).map(([k, v]) => h('li', null, this.node(k, v, `${path}/${escapeToken(k)}`, depth + 1))));
    if (entries.length > limit) {
      list.append(h('li', null, h('button', {
        type: 'button',
        class: 'btn btn-small',
        onclick: () => {
          this.showAll.add(path);
          this.render(this.doc);
        },
      }, `Show all ${entries.length}`)));
    }
    return list;
  }
}

function scalar(v) {
  if (typeof v === 'string') return h('span', { class: 'jt-string' }, JSON.stringify(v));
  if (typeof v === 'number') return h('span', { class: 'jt-number' }, String(v));
  if (typeof v === 'boolean') return h('span', { class: 'jt-bool' }, String(v));
  if (v === null) return h('span', { class: 'jt-null' }, 'null');
  return h('span', { class: 'jt-other' }, String(v));
}
