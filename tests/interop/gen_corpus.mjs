// Differential-test corpus: randomized multi-actor Automerge histories produced by the
// real npm package, with everything the C++ engine must reproduce.
//
//   node gen_corpus.mjs <outdir> [--seed S] [--count N] [--version 3|2] [--large]
//
// --version 3 uses @automerge/automerge 3.5.0, --version 2 uses automerge-2 (2.2.8,
// through its "next" API, which is what automerge-repo 1.x apps use). The corpus is a
// pure function of (seed, count, version): actors and change times are drawn from the
// seeded PRNG, never from the clock. --large shifts the size mix towards big documents.
//
// For document n it writes, with id = "<seed>-<n>":
//   <id>.save     A.save(doc)
//   <id>.changes  A.getAllChanges(doc), concatenated in that order
//   <id>.json     {id, seed, version, heads, changes: [{hash, actor, seq, startOp, deps,
//                 time, message}], json, since: [{heads, hashes}], sync: {...}, stats}
//   <id>.ref.save          only when it differs from <id>.save: 3.5.0's A.save() of the
//                          document loaded from <id>.save (always, for 2.2.8 documents)
//   <id>.ref-changes.save  only when it differs from the above: 3.5.0's A.save() of the
//                          document loaded from <id>.changes. (npm keeps an explicit empty
//                          change message "" in a document chunk but not in a change chunk,
//                          so its save() depends on how the document was loaded.)
// `json` is the document reloaded from its saved bytes, stringified as lib/corpus_json.mjs
// says (spec §3.4a: a live 2.2.8 document can show a stale conflict winner).
// `since[i].hashes` = A.getChanges(A.view(doc, heads), doc) in npm's order, always with
// 3.5.0 (2.2.8 wrongly includes a listed head that is an ancestor of another one).
// `sync` = two peers holding different causally closed parts of the history, synced by
// the npm protocol to convergence: {a, b: indexes into `changes` each peer started with
// (applied in that order to an empty document), messages: every generateSyncMessage
// call in order, [{from: "a"|"b", hex (null when it returned nothing), heads, need,
// have (count), changes (count)}], heads: the final heads of both}.
// GM_CORPUS_DISABLE=mark,block,changeAt,... turns op kinds off (for bisecting npm bugs).
import fs from "node:fs";
import path from "node:path";
import * as A3 from "@automerge/automerge";
import * as A2 from "automerge-2/next";
import { Rng, mixSeed } from "./lib/prng.mjs";
import { docToJson, hex } from "./lib/corpus_json.mjs";

function parseArgs(argv) {
  const args = { outdir: null, seed: 1, count: 20, version: 3, large: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--seed") args.seed = Number(argv[++i]);
    else if (a === "--count") args.count = Number(argv[++i]);
    else if (a === "--version") args.version = Number(argv[++i]);
    else if (a === "--large") args.large = true;
    else if (!a.startsWith("--") && args.outdir === null) args.outdir = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.outdir) {
    throw new Error("usage: node gen_corpus.mjs <outdir> [--seed S] [--count N] [--version 3|2] [--large]");
  }
  if (args.version !== 2 && args.version !== 3) throw new Error("--version must be 2 or 3");
  return args;
}

// ---------------------------------------------------------------- random values

const TEXT_PIECES = [
  "a", "b", "c", "hello", " ", "world", "\n", "\t", "\"q\"", "\\", "é", "ß", "Ω", "ключ",
  "中文", "日本語", "😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "\u0301", "\uFFFF", "\uFEFF", "x", "yz", "0123",
];
const MAP_KEYS = ["a", "b", "c", "title", "n", "list", "text", "k1", "k2", "é", "ключ", "😀", "\uFFFF", "Z", "_x", ""];
const MARK_NAMES = ["bold", "italic", "link", "comment", "😀mark"];
const EXPANDS = ["before", "after", "both", "none"];

function randomText(rng, maxPieces) {
  const n = rng.int(1, maxPieces);
  let s = "";
  for (let i = 0; i < n; i++) s += rng.pick(TEXT_PIECES);
  return s;
}

function randomKey(rng) {
  return rng.chance(0.8) ? rng.pick(MAP_KEYS) : randomText(rng, 2);
}

function randomScalar(M, rng, ver, inList = false) {
  const ImmStr = ver === 3 ? M.ImmutableString : M.RawString;
  switch (rng.int(0, 17)) {
    case 0: return rng.int(-100, 100);
    case 1: return rng.int(-2147483648, 2147483647);
    // Integers stay within ±2^53: npm stores any Number.isInteger() value as an int and
    // cannot read back ints beyond 2^53 (decodeChange/toJS throw).
    case 2: return rng.pick([1, -1]) * rng.int(0, 2 ** 21 - 1) * 2 ** 32 + rng.int(0, 2 ** 31);
    case 3: return rng.pick([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 0, -0]);
    case 4: return (rng.next() - 0.5) * 1000;  // fractional float
    // Floats with an integral value are stored as ints unless wrapped in Float64 (and
    // saturate at 2^63-1 when huge): a plain 1e300 would become an int.
    case 5: return rng.pick([0.1, -2.5, 1e-300, 5e-324, -123.456e-10, Math.PI]);
    // Inside lists and new nested objects npm does not recognise the Float64/Int/Uint
    // wrappers: it stores them as a nested map {value: x} whose x is again an int when
    // integral (and saturates huge ones), so keep x small there.
    case 6: return new M.Float64(rng.pick(inList ? [0, 2, -7, 0.5] : [0, 2, -7, 1e300, -1e20, 0.5, 1.7976931348623157e308]));
    case 7: return new M.Int(rng.int(-1000, 1000));
    case 8: return new M.Uint(rng.chance(0.5) ? rng.int(0, 1000) : Number.MAX_SAFE_INTEGER - rng.int(0, 10));
    case 9: return rng.chance(0.5);
    case 10: return null;
    case 11: return rng.bytes(rng.int(0, 20));
    case 12: return new Date(rng.int(-2e12, 4e12));
    case 13: return new Date(rng.pick([0, 1, -1, 1700000000123]));
    case 14:
    case 15: return new ImmStr(randomText(rng, 3));
    case 16: return new M.Counter(rng.int(-50, 50));
    default: return new ImmStr(rng.pick(["", "x", "😀", "\uFFFF"]));
  }
}

// ---------------------------------------------------------------- the document's objects

function isText(M, parent, key, v) {
  // 3.x reads text as a string and scalar strings as ImmutableString; 2.2.8 reads both
  // as strings, but getObjectId gives an object id only for text.
  if (typeof v !== "string") return false;
  const id = M.getObjectId(parent, key);
  return typeof id === "string" && id !== v && /^[0-9]+@[0-9a-f]+$/.test(id);
}
function isCounter(v) {
  return v !== null && typeof v === "object" && typeof v.increment === "function";
}
function isPlainObj(v) {
  return v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !(v instanceof Date) &&
    !isCounter(v) && !Array.isArray(v) && !("val" in v);
}

// Lists the objects (maps, lists, texts) and counters reachable from `doc`, visiting at
// most `budget` values so that big documents stay cheap.
function collect(M, doc, budget = 300) {
  const objs = { map: [{ path: [], obj: doc }], list: [], text: [], counter: [] };
  const stack = [{ path: [], obj: doc }];
  let visited = 0;
  while (stack.length && visited < budget) {
    const { path: p, obj } = stack.pop();
    let keys;
    if (Array.isArray(obj)) {
      const n = obj.length;
      keys = [];
      for (let i = 0; i < Math.min(n, 20); i++) keys.push(i);
      for (let i = Math.max(20, n - 5); i < n; i++) keys.push(i);
    } else {
      keys = Object.keys(obj);
    }
    for (const k of keys) {
      if (++visited > budget) break;
      const v = obj[k];
      const cp = [...p, k];
      if (isText(M, obj, k, v)) { if (cp.every(safePathPart)) objs.text.push({ path: cp, parent: obj, key: k }); }
      else if (isCounter(v)) objs.counter.push({ path: cp, counter: v });
      else if (Array.isArray(v)) { objs.list.push({ path: cp, obj: v }); stack.push({ path: cp, obj: v }); }
      else if (isPlainObj(v)) { objs.map.push({ path: cp, obj: v }); stack.push({ path: cp, obj: v }); }
    }
  }
  return objs;
}

// npm resolves a path by joining its parts with "/", so an empty key, a key starting
// with a digit or containing "/" cannot name a text object for splice/mark; such keys
// are still used for plain map values.
function safePathPart(part) {
  return typeof part === "number" || (part !== "" && !/^[0-9]/.test(part) && !part.includes("/"));
}

// A code-unit index of `s` that does not split a surrogate pair.
function boundary(s, i) {
  if (i > 0 && i < s.length) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff) return i - 1;
  }
  return i;
}

function newNested(M, rng, ver, depth) {
  switch (rng.int(0, 4)) {
    case 0: return {};
    case 1: {
      const o = {};
      const n = rng.int(1, 3);
      for (let i = 0; i < n; i++) o[randomKey(rng)] = depth < 2 && rng.chance(0.3) ? newNested(M, rng, ver, depth + 1) : randomScalar(M, rng, ver, true);
      return o;
    }
    case 2: {
      const l = [];
      const n = rng.int(0, 4);
      for (let i = 0; i < n; i++) l.push(depth < 2 && rng.chance(0.2) ? newNested(M, rng, ver, depth + 1) : randomScalar(M, rng, ver, true));
      return l;
    }
    default: return randomText(rng, 6);  // a plain string is a Text object in the next API
  }
}

// One random operation inside a change callback. Returns nothing; may throw when npm
// refuses (the caller then abandons that change).
const DISABLED = (process.env.GM_CORPUS_DISABLE || "").split(",");
function randomOp(M, rng, ver, doc, profile) {
  const objs = collect(M, doc);
  const kind = rng.weighted(profile.ops);
  if (DISABLED.includes(kind)) return;
  switch (kind) {
    case "mapSet": {
      const { obj } = rng.pick(objs.map);
      obj[randomKey(rng)] = randomScalar(M, rng, ver);
      return;
    }
    case "mapNested": {
      const { obj } = rng.pick(objs.map);
      obj[randomKey(rng)] = newNested(M, rng, ver, 0);
      return;
    }
    case "mapDelete": {
      const { obj } = rng.pick(objs.map);
      const keys = Object.keys(obj);
      if (keys.length) delete obj[rng.pick(keys)];
      return;
    }
    case "counter": {
      if (!objs.counter.length) {
        rng.pick(objs.map).obj[rng.pick(["c", "n", "count"])] = new M.Counter(rng.int(-5, 5));
        return;
      }
      const { counter } = rng.pick(objs.counter);
      if (rng.chance(0.8)) counter.increment(rng.int(-20, 50));
      else counter.decrement(rng.int(1, 5));
      return;
    }
    case "listInsert": {
      if (!objs.list.length) { rng.pick(objs.map).obj[rng.pick(["list", "l"])] = []; return; }
      const { obj } = rng.pick(objs.list);
      const vals = [];
      const n = rng.chance(0.8) ? 1 : rng.int(2, 6);
      for (let i = 0; i < n; i++) vals.push(rng.chance(0.15) ? newNested(M, rng, ver, 1) : randomScalar(M, rng, ver, true));
      const at = rng.int(0, obj.length);
      if (rng.chance(0.2)) obj.push(...vals);
      else M.insertAt(obj, at, ...vals);
      return;
    }
    case "listDelete": {
      if (!objs.list.length) return;
      const { obj } = rng.pick(objs.list);
      if (!obj.length) return;
      const at = rng.int(0, obj.length - 1);
      M.deleteAt(obj, at, Math.min(obj.length - at, rng.chance(0.8) ? 1 : rng.int(1, 4)));
      return;
    }
    case "listSet": {
      if (!objs.list.length) return;
      const { obj } = rng.pick(objs.list);
      if (!obj.length) return;
      obj[rng.int(0, obj.length - 1)] = rng.chance(0.1) ? newNested(M, rng, ver, 1) : randomScalar(M, rng, ver, true);
      return;
    }
    case "textSplice": {
      if (!objs.text.length) { rng.pick(objs.map).obj[rng.pick(["text", "t"])] = randomText(rng, 4); return; }
      const { path: p, parent, key } = rng.pick(objs.text);
      const s = parent[key];
      const at = boundary(s, rng.int(0, s.length));
      let del = rng.chance(0.4) ? rng.int(0, Math.min(8, s.length - at)) : 0;
      del = boundary(s, at + del) - at;
      const ins = rng.chance(0.85) ? randomText(rng, 3) : "";
      M.splice(doc, p, at, Math.max(0, del), ins);
      return;
    }
    case "textPaste": {
      // Long inserts make large documents (one op per code point).
      if (!objs.text.length) { rng.pick(objs.map).obj.text = randomText(rng, 4); return; }
      const { path: p, parent, key } = rng.pick(objs.text);
      const s = parent[key];
      let big = "";
      const n = rng.int(profile.paste[0], profile.paste[1]);
      while (big.length < n) big += rng.pick(TEXT_PIECES);
      M.splice(doc, p, boundary(s, rng.int(0, s.length)), 0, big);
      return;
    }
    case "textReplace": {
      const { obj } = rng.pick(objs.map);
      obj[randomKey(rng)] = randomText(rng, 5);
      return;
    }
    case "mark": {
      if (!objs.text.length) return;
      const { path: p, parent, key } = rng.pick(objs.text);
      const s = parent[key];
      if (s.length < 1) return;
      const a = boundary(s, rng.int(0, s.length - 1));
      const b = boundary(s, rng.int(a + 1, s.length));
      if (b <= a) return;
      const range = { start: a, end: b, expand: rng.pick(EXPANDS) };
      const name = rng.pick(MARK_NAMES);
      if (rng.chance(0.25)) { M.unmark(doc, p, range, name); return; }
      const value = rng.pick([true, "https://example.com/😀", rng.int(-5, 100), 1.5, false]);
      M.mark(doc, p, range, name, value);
      return;
    }
    case "block": {
      if (!objs.text.length) return;
      const { path: p, parent, key } = rng.pick(objs.text);
      const s = parent[key];
      const ImmStr = ver === 3 ? M.ImmutableString : M.RawString;
      M.splitBlock(doc, p, boundary(s, rng.int(0, s.length)),
        { type: new ImmStr(rng.pick(["paragraph", "heading"])), parents: [], attrs: {} });
      return;
    }
    default:
      throw new Error(`unknown op kind ${kind}`);
  }
}

// ---------------------------------------------------------------- size profiles

const BASE_OPS = {
  mapSet: 10, mapNested: 3, mapDelete: 2, counter: 3, listInsert: 6, listDelete: 3, listSet: 2,
  textSplice: 8, textReplace: 0.5, mark: 2, block: 0.3, textPaste: 0,
};
const PROFILES = {
  tiny: { actors: [1, 2], rounds: [1, 2], changes: [1, 2], ops: BASE_OPS, opsPerChange: [0, 3], paste: [0, 0] },
  small: { actors: [2, 3], rounds: [2, 4], changes: [1, 3], ops: BASE_OPS, opsPerChange: [1, 6], paste: [0, 0] },
  medium: { actors: [2, 4], rounds: [3, 8], changes: [1, 4], ops: { ...BASE_OPS, textPaste: 0.3 }, opsPerChange: [1, 12], paste: [20, 200] },
  large: { actors: [2, 4], rounds: [3, 6], changes: [2, 4], ops: { ...BASE_OPS, textPaste: 0.6 }, opsPerChange: [1, 15], paste: [100, 600] },
  // Only with --large: tens of thousands of ops.
  huge: { actors: [2, 4], rounds: [4, 10], changes: [2, 5], ops: { ...BASE_OPS, textPaste: 1.5 }, opsPerChange: [1, 20], paste: [200, 1500] },
};

// ---------------------------------------------------------------- histories

function randomActor(rng, used) {
  for (;;) {
    let a;
    const r = rng.next();
    if (r < 0.75) a = rng.hex(16);
    else if (r < 0.9) a = rng.hex(rng.int(1, 8));
    else if (used.length) a = used[0] + rng.hex(rng.int(1, 2));  // one actor a prefix of another
    else a = rng.hex(4);
    if (!used.includes(a)) return a;
  }
}

function changeOptions(rng, clock) {
  const opts = {};
  const r = rng.next();
  if (r < 0.7) { clock.t += rng.int(0, 100); opts.time = clock.t; }
  else if (r < 0.8) opts.time = 0;
  else if (r < 0.85) opts.time = -rng.int(1, 2 ** 40);
  else if (r < 0.95) opts.time = 1.7e12 + rng.int(0, 1e9);  // milliseconds, as some apps pass
  else opts.time = rng.pick([1, 2 ** 31, 2 ** 53 - 1, -(2 ** 53 - 1)]);
  if (rng.chance(0.3)) opts.message = rng.chance(0.1) ? "" : randomText(rng, 4);
  return opts;
}

function oneChange(M, rng, ver, doc, profile, clock, stats) {
  const opts = changeOptions(rng, clock);
  if (rng.chance(0.04)) return M.emptyChange(doc, opts);
  const nOps = rng.int(profile.opsPerChange[0], profile.opsPerChange[1]);
  const r = rng.next();
  if (r < 0.04 && M.getAllChanges(doc).length > 2 && !DISABLED.includes("changeAt")) {
    // A change on an older version of the document (a branch).
    const hashes = M.getAllChanges(doc).map((c) => M.decodeChange(c).hash);
    const at = [rng.pick(hashes)];
    stats.changeAt++;
    const res = M.changeAt(doc, at, opts, (d) => {
      for (let i = 0; i < Math.max(1, nOps); i++) randomOp(M, rng, ver, d, profile);
    });
    return res.newDoc;
  }
  return M.change(doc, opts, (d) => {
    for (let i = 0; i < nOps; i++) randomOp(M, rng, ver, d, profile);
  });
}

// 2.2.8's incremental patching of live documents breaks on some merges (panics "can
// only compare map keys", "Reflect.get called on non-object"), so for 2.2.8 a merge
// loads both saved documents into a fresh document instead of patching.
function merge(M, ver, into, from) {
  if (ver === 3) return M.merge(into, from);
  const bytes = Buffer.concat([Buffer.from(M.save(into)), Buffer.from(M.save(from))]);
  return M.load(new Uint8Array(bytes), { actor: M.getActorId(into) });
}

function buildHistory(M, rng, ver, profile, stats) {
  const nActors = rng.int(profile.actors[0], profile.actors[1]);
  const actorIds = [];
  for (let i = 0; i < nActors; i++) actorIds.push(randomActor(rng, actorIds));
  const clock = { t: rng.chance(0.9) ? 1.6e9 + rng.int(0, 2e8) : 0 };

  let first = M.init({ actor: actorIds[0] });
  if (rng.chance(0.9)) first = safeChange(M, rng, ver, first, profile, clock, stats);
  const docs = [first];
  for (let i = 1; i < nActors; i++) {
    // Usually fork from the first actor; sometimes start an unrelated history.
    docs.push(rng.chance(0.85) ? M.clone(docs[0], { actor: actorIds[i] }) : M.init({ actor: actorIds[i] }));
  }
  const rounds = rng.int(profile.rounds[0], profile.rounds[1]);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < nActors; i++) {
      if (!rng.chance(0.7)) continue;
      const n = rng.int(profile.changes[0], profile.changes[1]);
      for (let c = 0; c < n; c++) docs[i] = safeChange(M, rng, ver, docs[i], profile, clock, stats);
    }
    // Some pairwise merges, so later edits are concurrent with only part of the history.
    const merges = rng.int(0, nActors);
    for (let m = 0; m < merges; m++) {
      const a = rng.int(0, nActors - 1);
      const b = rng.int(0, nActors - 1);
      if (a !== b) docs[a] = merge(M, ver, docs[a], docs[b]);
    }
  }
  let final = docs[0];
  for (let i = 1; i < nActors; i++) final = merge(M, ver, final, docs[i]);
  return final;
}

// A change that npm may refuse (e.g. a stale index); then the change is retried with
// a fresh random choice, and after a few refusals skipped.
function safeChange(M, rng, ver, doc, profile, clock, stats) {
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return oneChange(M, rng, ver, doc, profile, clock, stats);
    } catch (e) {
      stats.refused++;
      if (process.env.GM_CORPUS_DEBUG) console.error("refused:", e.message);
    }
  }
  return doc;
}

// ---------------------------------------------------------------- fixtures

function closureOf(indexes, depsOf) {
  const seen = new Set();
  const stack = [...indexes];
  while (stack.length) {
    const i = stack.pop();
    if (seen.has(i)) continue;
    seen.add(i);
    for (const d of depsOf[i]) stack.push(d);
  }
  return [...seen].sort((x, y) => x - y);
}

function randomClosedSet(rng, n, depsOf) {
  const r = rng.next();
  if (n === 0 || r < 0.15) return [];
  if (r < 0.3) return [...Array(n).keys()];
  if (r < 0.6) return [...Array(rng.int(0, n)).keys()];  // a prefix of the topological order
  const picks = [];
  const k = rng.int(1, 3);
  for (let i = 0; i < k; i++) picks.push(rng.int(0, n - 1));
  return closureOf(picks, depsOf);
}

function syncFixture(M, rng, changes, depsOf) {
  const n = changes.length;
  const a = randomClosedSet(rng, n, depsOf);
  const b = randomClosedSet(rng, n, depsOf);
  const load = (idx) => {
    const actor = rng.hex(16);
    const doc = M.init({ actor });
    if (!idx.length) return doc;
    try {
      return M.applyChanges(doc, idx.map((i) => changes[i]))[0];
    } catch (e) {
      // npm 3.5.0 can panic in applyChanges on large histories (seen with --large:
      // "assertion `left == right` failed"); loading the same chunks works.
      return M.load(new Uint8Array(Buffer.concat(idx.map((i) => Buffer.from(changes[i])))), { actor });
    }
  };
  let peerA = load(a);
  let peerB = load(b);
  let stateA = M.initSyncState();
  let stateB = M.initSyncState();
  const messages = [];
  // Every generateSyncMessage call is recorded, in call order; hex null = it returned
  // nothing. Peer a generates first in each round, then b; a message is received by
  // the other peer right after it is generated.
  const record = (from, msg) => {
    if (!msg) { messages.push({ from, hex: null }); return; }
    const d = M.decodeSyncMessage(msg);
    messages.push({ from, hex: hex(msg), heads: d.heads, need: d.need, have: d.have.length, changes: d.changes.length });
  };
  for (let round = 0; round < 100; round++) {
    let msg;
    let quiet = true;
    [stateA, msg] = M.generateSyncMessage(peerA, stateA);
    record("a", msg);
    if (msg) { quiet = false; [peerB, stateB] = M.receiveSyncMessage(peerB, stateB, msg); }
    [stateB, msg] = M.generateSyncMessage(peerB, stateB);
    record("b", msg);
    if (msg) { quiet = false; [peerA, stateA] = M.receiveSyncMessage(peerA, stateA, msg); }
    if (quiet) break;
  }
  const headsA = M.getHeads(peerA);
  const headsB = M.getHeads(peerB);
  if (JSON.stringify(headsA) !== JSON.stringify(headsB)) throw new Error("npm sync did not converge");
  return { a, b, messages, heads: headsA };
}

function sinceFixtures(M, rng, doc, hashes) {
  const sets = [[], M.getHeads(doc)];
  if (hashes.length) sets.push([rng.pick(hashes)]);
  if (hashes.length > 1) sets.push([...new Set([rng.pick(hashes), rng.pick(hashes)])].sort());
  return sets.map((heads) => {
    const old = M.view(doc, heads);
    return { heads, hashes: M.getChanges(old, doc).map((c) => M.decodeChange(c).hash) };
  });
}

// ---------------------------------------------------------------- main

function sizeClass(rng, large) {
  const w = large ? { tiny: 1, small: 2, medium: 4, large: 3, huge: 1 } : { tiny: 3, small: 4, medium: 3, large: 0.5 };
  return rng.weighted(w);
}

function generateOne(M, ver, seed, n, outdir, large) {
  const rng = new Rng(mixSeed(seed, n, ver));
  const size = sizeClass(rng, large);
  const stats = { refused: 0, changeAt: 0 };
  const live = buildHistory(M, rng, ver, PROFILES[size], stats);
  const saved = M.save(live);
  let doc;
  try { doc = M.load(saved); } catch (e) {
    if (!process.env.GM_CORPUS_DEBUG) throw e;
    console.error("LOADFAIL", n, e.message, JSON.stringify(stats));
    return { stats: { ops: 0 } };
  }
  const changes = M.getAllChanges(doc);
  const meta = changes.map((c) => {
    const d = M.decodeChange(c);
    return { hash: d.hash, actor: d.actor, seq: d.seq, startOp: d.startOp, deps: d.deps, time: d.time, message: d.message ?? null, ops: d.ops.length };
  });
  const indexOf = new Map(meta.map((m, i) => [m.hash, i]));
  const depsOf = meta.map((m) => m.deps.map((h) => indexOf.get(h)));
  const json = docToJson(M, doc);
  const liveJson = docToJson(M, live);

  // What 3.5.0 (the behaviour the C++ engine follows) makes of the same bytes.
  const doc3 = ver === 3 ? doc : A3.load(saved);
  const refSave = A3.save(doc3);
  const refChangesSave = A3.save(A3.load(Buffer.concat(changes.map((c) => Buffer.from(c)))));

  const id = `${seed}-${n}`;
  const record = {
    id, seed, n, version: ver, size,
    heads: M.getHeads(doc),
    changes: meta,
    json,
    since: sinceFixtures(A3, rng, doc3, meta.map((m) => m.hash)),
    sync: (() => {
      try {
        return syncFixture(M, rng, changes, depsOf);
      } catch (e) {
        console.error(`gen_corpus: seed ${seed} document ${seed}-${n}: npm failed in the sync fixture, left out: ${e.message}`);
        return { skipped: String(e.message) };
      }
    })(),
    stats: { changes: changes.length, ops: meta.reduce((s, m) => s + m.ops, 0), saveBytes: saved.length, refused: stats.refused },
  };
  // In 3.5.0 a live document and its reload must agree; record it if not (2.2.8 has a
  // known live-document bug, spec §3.4a).
  if (liveJson !== json) record.liveJsonDiffers = true;
  if (ver === 2 && docToJson(A3, doc3) !== json) record.json3Differs = docToJson(A3, doc3);
  const same = (x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)) === 0;
  if (!same(refSave, saved)) fs.writeFileSync(path.join(outdir, `${id}.ref.save`), refSave);
  if (!same(refChangesSave, refSave)) fs.writeFileSync(path.join(outdir, `${id}.ref-changes.save`), refChangesSave);

  fs.writeFileSync(path.join(outdir, `${id}.save`), saved);
  fs.writeFileSync(path.join(outdir, `${id}.changes`), Buffer.concat(changes.map((c) => Buffer.from(c))));
  fs.writeFileSync(path.join(outdir, `${id}.json`), JSON.stringify(record));
  return record;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const M = args.version === 3 ? A3 : A2;
  fs.mkdirSync(args.outdir, { recursive: true });
  const started = Date.now();
  let ops = 0;
  let liveDiffers = 0;
  for (let n = 0; n < args.count; n++) {
    const rec = generateOne(M, args.version, args.seed, n, args.outdir, args.large);
    ops += rec.stats.ops;
    if (rec.liveJsonDiffers) liveDiffers++;
  }
  console.log(`gen_corpus: version ${args.version} seed ${args.seed}: ${args.count} documents, ${ops} ops, ` +
    `${liveDiffers} live/reload JSON mismatches, ${Date.now() - started} ms -> ${args.outdir}`);
}

main();
