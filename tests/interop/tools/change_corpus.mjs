// Generates a corpus of varied change chunks from npm @automerge/automerge 3.5.0 and
// 2.2.8 (stable and `next` APIs) with a fixed seed, for the C++ change codec's
// round-trip test (decode -> encode must reproduce every byte and hash).
//
// Usage (from tests/interop): node tools/change_corpus.mjs OUT.bin [sessions]
// OUT.bin is a plain concatenation of type-1 change chunks, deduplicated by hash.
import * as A3 from "@automerge/automerge";
import * as A2stable from "automerge-2";
import { writeFileSync } from "fs";

const out = process.argv[2];
const sessions = Number(process.argv[3] ?? 24);
if (!out) {
  console.error("usage: node tools/change_corpus.mjs OUT.bin [sessions]");
  process.exit(2);
}

// mulberry32: small deterministic PRNG.
let seed = 0x5eed1234;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const chance = (p) => rand() < p;

const ALPHABET = ["a", "b", "c", "x", " ", "é", "ß", "中", "😀", "👍🏽", "\n", "🏳️‍🌈", "e\u0301", "Z"];
const KEYS = ["a", "b", "title", "n", "x", "y", "list", "t", "m", "", "ключ", "😀k", "z".repeat(70)];
function randText(n) {
  let s = "";
  for (let i = 0; i < n; i++) s += pick(ALPHABET);
  return s;
}

// One library flavour: how to make scalars and text with it.
const LIBS = [
  {
    name: "3.5.0",
    A: A3,
    str: (s) => new A3.ImmutableString(s),
    text: (s) => s,
    splice: (d, path, pos, del, ins) => A3.splice(d, path, pos, del, ins),
    mark: (d, path, range, name, value) => A3.mark(d, path, range, name, value),
    unmark: (d, path, range, name) => A3.unmark(d, path, range, name),
    splitBlock: (d, path, pos, block) => A3.splitBlock(d, path, pos, block),
    updateText: (d, path, text) => A3.updateText(d, path, text),
    author: true,
  },
  {
    name: "2.2.8-next",
    A: A2stable.next,
    str: (s) => new A2stable.next.RawString(s),
    text: (s) => s,
    splice: (d, path, pos, del, ins) => A2stable.next.splice(d, path, pos, del, ins),
    mark: (d, path, range, name, value) => A2stable.next.mark(d, path, range, name, value),
    unmark: (d, path, range, name) => A2stable.next.unmark(d, path, range, name),
    splitBlock: (d, path, pos, block) => A2stable.next.splitBlock(d, path, pos, block),
    updateText: (d, path, text) => A2stable.next.updateText(d, path, text),
  },
  {
    name: "2.2.8-stable",
    A: A2stable,
    str: (s) => s,
    text: (s) => new A2stable.Text(s),
    splice: null,  // the stable API edits Text objects with insertAt/deleteAt
    mark: null,
  },
];

function scalar(L) {
  const A = L.A;
  switch (int(12)) {
    case 0: return int(1000) - 500;
    case 1: return new A.Uint(int(1 << 30));
    case 2: return new A.Int(-int(1 << 30));
    case 3: return new A.Float64(rand() * 1000);
    case 4: return rand() * 1e6 - 5e5;
    case 5: return chance(0.5);
    case 6: return null;
    case 7: return L.str(randText(int(5)));
    case 8: return new Uint8Array([int(256), int(256), int(256)].slice(0, int(4)));
    case 9: return new Date(1700000000000 + int(1e9));
    case 10: return new A.Counter(int(100) - 50);
    default: return Number.MAX_SAFE_INTEGER - int(10);
  }
}

// Applies a few random edits inside a change callback.
function edit(L, d, actorIdx) {
  const nops = 1 + int(5);
  for (let k = 0; k < nops; k++) {
    const r = int(16);
    if (r < 3) {
      d[pick(KEYS)] = scalar(L);
    } else if (r === 3) {
      d.obj = { inner: scalar(L), deep: { list: [1, L.str("two"), { three: 3 }] } };
    } else if (r === 4) {
      if (!Array.isArray(d.list)) d.list = [];
      const l = d.list;
      const op = int(4);
      if (op === 0 || l.length === 0) l.splice(int(l.length + 1), 0, scalar(L), scalar(L));
      else if (op === 1) l.splice(int(l.length), 1);
      else if (op === 2) l[int(l.length)] = scalar(L);
      else l.insertAt(int(l.length + 1), { nested: actorIdx });
    } else if (r === 5 || r === 6) {
      if (L.splice) {
        if (typeof d.text !== "string") d.text = L.text(randText(3));
        const len = d.text.length;  // UTF-16 units; automerge 3 indexes by code points by default
        const pos = int(Math.max(1, [...d.text].length));
        try {
          L.splice(d, ["text"], pos, int(3), randText(int(4)));
        } catch (e) {
          void len;
        }
      } else {
        if (!(d.text instanceof A2stable.Text)) d.text = L.text(randText(3));
        const t = d.text;
        if (chance(0.6) || t.length === 0) t.insertAt(int(t.length + 1), ...[...randText(1 + int(3))]);
        else t.deleteAt(int(t.length), 1 + int(Math.min(2, t.length - 1)));
      }
    } else if (r === 7) {
      if (!(d.c instanceof L.A.Counter)) d.c = new L.A.Counter(int(10));
      else d.c.increment(int(20) - 10);
    } else if (r === 8) {
      const keys = Object.keys(d);
      if (keys.length) delete d[pick(keys)];
    } else if (r === 9 && L.mark) {
      if (typeof d.text === "string" && d.text.length > 2) {
        const n = [...d.text].length;
        const start = int(n - 1);
        const end = start + 1 + int(n - start - 1);
        const expand = pick(["before", "after", "both", "none", undefined]);
        const range = expand === undefined ? { start, end } : { start, end, expand };
        try {
          if (chance(0.75)) L.mark(d, ["text"], range, pick(["bold", "italic", "link", "комментарий"]), pick([true, "https://x.y", 7, null]));
          else L.unmark(d, ["text"], range, pick(["bold", "italic"]));
        } catch (e) {
          // marks on text edited concurrently may be rejected; skip
        }
      }
    } else if (r === 10) {
      if (!d.m || typeof d.m !== "object" || Array.isArray(d.m)) d.m = {};
      d.m[pick(KEYS)] = scalar(L);
    } else if (r === 11) {
      if (!Array.isArray(d.counters)) d.counters = [new L.A.Counter(0)];
      const cs = d.counters;
      if (cs.length && cs[0] instanceof L.A.Counter) cs[0].increment(1 + int(3));
      else cs.push(new L.A.Counter(1));
    } else if (r === 12) {
      // Long list of small ints: long RLE runs and literals.
      d.nums = Array.from({ length: 20 + int(40) }, (_, i) => (chance(0.5) ? i : 7));
    } else if (r >= 14 && L.splitBlock && typeof d.text === "string") {
      try {
        if (r === 14) {
          const block = { type: pick(["paragraph", "heading", "ordered-list-item"]), parents: [], attrs: { level: int(3) } };
          L.splitBlock(d, ["text"], int([...d.text].length + 1), block);
        } else {
          // updateText diffs the new string against the old: inserts and deletes.
          const chars = [...d.text];
          chars.splice(int(chars.length + 1), int(3), ...randText(int(4)));
          L.updateText(d, ["text"], chars.join(""));
        }
      } catch (e) {
        // blocks inside concurrently edited text may be rejected; skip
      }
    } else {
      d[pick(KEYS)] = L.str(randText(int(8)));
    }
  }
}

function actorHex(s, i) {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(s, 0);
  b.writeUInt32BE(i, 12);
  b[8] = int(256);
  return b.toString("hex");
}

function opts() {
  const o = {};
  if (chance(0.3)) o.message = pick(["m", "a longer commit message", "üñíçødé ✓", ""]);
  if (chance(0.5)) o.time = pick([0, 1700000000, 1700000000000, -5, int(1 << 30)]);
  else o.time = 1700000000 + int(1000);
  return o;
}

const chunks = new Map();  // hash -> bytes
const perLib = {};
function collect(L, doc) {
  for (const c of L.A.getAllChanges(doc)) {
    const h = Buffer.from(c).toString("hex");
    if (!chunks.has(h)) {
      chunks.set(h, c);
      perLib[L.name] = (perLib[L.name] ?? 0) + 1;
    }
  }
}

for (let s = 0; s < sessions; s++) {
  const L = LIBS[s % LIBS.length];
  const A = L.A;
  const nActors = 1 + int(3);
  let docs = [];
  for (let i = 0; i < nActors; i++) {
    const init = { actor: actorHex(s, i) };
    if (L.author && i === 0 && s % 2 === 0) {
      docs.push(A.init({ author: pick(["abcd", "0123456789abcdef0123456789abcdef", "ff"]) }));
    } else {
      docs.push(A.init(init));
    }
  }
  // A shared starting change so that concurrent edits touch the same objects.
  docs[0] = A.change(docs[0], opts(), (d) => {
    d.text = L.text(randText(5));
    d.list = [1, 2, 3];
    d.title = L.str("start");
  });
  for (let i = 1; i < nActors; i++) docs[i] = A.merge(docs[i], docs[0]);

  const rounds = 6 + int(10);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < nActors; i++) {
      const roll = int(20);
      if (roll === 0) {
        docs[i] = A.emptyChange(docs[i], chance(0.5) ? { message: "empty" } : undefined);
      } else if (roll === 1 && A.getHeads(docs[i]).length) {
        // A change on an older version: a branch.
        const hist = A.getAllChanges(docs[i]);
        const at = [A.decodeChange(pick(hist)).hash];
        try {
          const { newDoc } = A.changeAt(docs[i], at, opts(), (d) => edit(L, d, i));
          docs[i] = newDoc;
        } catch (e) {
          // an edit that does not apply at that version; skip
        }
      } else {
        try {
          docs[i] = A.change(docs[i], opts(), (d) => edit(L, d, i));
        } catch (e) {
          // skip edits the proxy rejects
        }
      }
    }
    if (chance(0.6)) {
      const a = int(nActors);
      const b = int(nActors);
      if (a !== b) docs[a] = A.merge(docs[a], docs[b]);
    }
    if (chance(0.2)) {
      // Everyone merges, then somebody overwrites the conflicts (multi-actor preds).
      for (let i = 1; i < nActors; i++) docs[0] = A.merge(docs[0], docs[i]);
      docs[0] = A.change(docs[0], opts(), (d) => {
        d.title = L.str("resolved");
        if (Array.isArray(d.list) && d.list.length) d.list[0] = 99;
        if (d.c instanceof A.Counter) d.c.increment(1);
      });
      for (let i = 1; i < nActors; i++) docs[i] = A.merge(docs[i], docs[0]);
    }
  }
  // One big change: many ops in a single change (long runs, > 256 bytes).
  docs[0] = A.change(docs[0], { time: 0 }, (d) => {
    if (L.splice && typeof d.text === "string") L.splice(d, ["text"], 0, 0, randText(300));
    d.big = Array.from({ length: 200 }, (_, i) => i % 7);
  });
  if (L.splice && typeof docs[0].text === "string") {
    docs[0] = A.change(docs[0], { time: 0 }, (d) => L.splice(d, ["text"], 0, [...d.text].length, ""));
  }
  if (s === 0) {
    // Changes of more than 10000 ops (the reference switches to a row-wise encoder).
    docs[0] = A.change(docs[0], { time: 0 }, (d) => {
      d.long = L.text("");
    });
    docs[0] = A.change(docs[0], { time: 0 }, (d) => L.splice(d, ["long"], 0, 0, randText(12000)));
    docs[0] = A.change(docs[0], { time: 0 }, (d) => L.splice(d, ["long"], 0, [...d.long].length, ""));
  }
  for (const d of docs) collect(L, d);
}

const all = [...chunks.values()];
writeFileSync(out, Buffer.concat(all.map((c) => Buffer.from(c))));
console.log(`wrote ${all.length} changes (${Object.entries(perLib).map(([k, v]) => `${k}: ${v}`).join(", ")}) to ${out}`);
