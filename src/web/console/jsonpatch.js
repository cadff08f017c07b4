// RFC 6902 JSON Patch, applied to the document view the page holds, for the `change`
// events of a document's stream (docs/api.md, "Watching a document"). Strict: an
// operation that does not fit the document throws, and the page then asks for a fresh
// snapshot rather than show a view the server does not have.
//
// Values come from the network: keys are set with defineProperty, so a key such as
// "__proto__" stays a plain key and never reaches an object's prototype.

// "/a/b~1c" → ["a", "b/c"] (RFC 6901).
export function parsePointer(pointer) {
  if (pointer === '') return [];
  if (typeof pointer !== 'string' || pointer[0] !== '/') throw new Error(`bad JSON pointer ${JSON.stringify(pointer)}`);
  return pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export const escapeToken = (key) => String(key).replace(/~/g, '~0').replace(/\//g, '~1');

const isContainer = (v) => v !== null && typeof v === 'object';

function arrayIndex(arr, token, { append = false } = {}) {
  if (append && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`bad array index ${JSON.stringify(token)}`);
  return Number(token);
}

function child(parent, token) {
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, token);
    if (i >= parent.length) throw new Error(`index ${i} past the end`);
    return parent[i];
  }
  if (!isContainer(parent) || !Object.hasOwn(parent, token)) throw new Error(`no member ${JSON.stringify(token)}`);
  return parent[token];
}

function get(doc, tokens) {
  let v = doc;
  for (const t of tokens) v = child(v, t);
  return v;
}

function setKey(obj, key, value) {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

// add / replace at `tokens`; returns the (possibly new) root.
function put(doc, tokens, value, replace) {
  if (tokens.length === 0) return value;
  const parent = get(doc, tokens.slice(0, -1));
  const key = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, key, { append: !replace });
    if (replace ? i >= parent.length : i > parent.length) throw new Error(`index ${i} out of range`);
    if (replace) parent[i] = value;
    else parent.splice(i, 0, value);
  } else if (isContainer(parent)) {
    if (replace && !Object.hasOwn(parent, key)) throw new Error(`no member ${JSON.stringify(key)} to replace`);
    setKey(parent, key, value);
  } else {
    throw new Error('the parent is not an object or array');
  }
  return doc;
}

function remove(doc, tokens) {
  if (tokens.length === 0) throw new Error('cannot remove the root');
  const parent = get(doc, tokens.slice(0, -1));
  const key = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, key);
    if (i >= parent.length) throw new Error(`index ${i} out of range`);
    return parent.splice(i, 1)[0];
  }
  if (!isContainer(parent) || !Object.hasOwn(parent, key)) throw new Error(`no member ${JSON.stringify(key)} to remove`);
  const old = parent[key];
  delete parent[key];
  return old;
}

export function deepEqual(a, b) {
  if (a === b) return true;
  if (!isContainer(a) || !isContainer(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
}

// A deep copy of a JSON value, made the safe way (see the top).
export function clone(v) {
  if (Array.isArray(v)) return v.map(clone);
  if (!isContainer(v)) return v;
  const out = {};
  for (const k of Object.keys(v)) setKey(out, k, clone(v[k]));
  return out;
}

// Applies `ops` in order to `doc` (changed in place where it can be) and returns the
// new document. Throws on the first operation that does not apply.
export function applyPatch(doc, ops) {
  if (!Array.isArray(ops)) throw new Error('the patch is not a list');
  for (const op of ops) {
    const path = parsePointer(op.path);
    switch (op.op) {
      case 'add':
        doc = put(doc, path, clone(op.value), false);
        break;
      case 'replace':
        if (path.length) get(doc, path); // must exist
        doc = put(doc, path, clone(op.value), true);
        break;
      case 'remove':
        remove(doc, path);
        break;
      case 'move': {
        const from = parsePointer(op.from);
        if (path.length > from.length && from.every((t, i) => t === path[i])) throw new Error('cannot move a value into itself');
        const v = remove(doc, from);
        doc = put(doc, path, v, false);
        break;
      }
      case 'copy':
        doc = put(doc, path, clone(get(doc, parsePointer(op.from))), false);
        break;
      case 'test':
        if (!deepEqual(get(doc, path), op.value)) throw new Error(`test failed at ${op.path}`);
        break;
      default:
        throw new Error(`unknown patch operation ${JSON.stringify(op.op)}`);
    }
  }
  return doc;
}
