// Writes op-set fixtures for src/automerge/op_set_test.cc, made by the real npm
// package (@automerge/automerge 3.5.0): multi-actor documents with conflicts,
// concurrent sequence edits, counters, marks, blocks, nested and deleted objects.
//
//   cd tests/interop && node tools/opset_fixtures.mjs [out-dir]
//
// For every scenario it writes
//   opset_<name>.amrg     A.save(doc)
//   opset_<name>.changes  A.getAllChanges(doc), concatenated change chunks, in the
//                         order npm gives them (a causal order)
//   opset_<name>.json     JSON.stringify(A.toJS(doc)), Uint8Array as base64
// Actors, times and random choices are fixed, so the output is reproducible.
//
//   node tools/opset_fixtures.mjs <out-dir> --random N
// instead writes N larger randomized sessions opset_random_<i>.* (for the disabled
// OpSetPerf.DISABLED_RandomSessions test, pointed at <out-dir> by GM_OPSET_RANDOM_DIR).
import * as fs from "node:fs";
import * as A from "@automerge/automerge";
import { Rng } from "../lib/prng.mjs";

const outDir = process.argv[2] ?? new URL("../../../src/automerge/testdata/", import.meta.url).pathname;
fs.mkdirSync(outDir, { recursive: true });

const ACTOR_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ACTOR_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ACTOR_C = "0c";  // short actor: sorts before the others
const T = 1700000000;
const opts = (time = T) => ({ time });

// toJS gives uint values as BigInt, which JSON.stringify refuses; they are written
// as exact JSON integers (the op set's choice), via a marker replaced afterwards.
function replacer(_key, value) {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (typeof value === "bigint") return `@@bigint:${value}@@`;
  return value;
}
const toJson = (doc) => JSON.stringify(A.toJS(doc), replacer).replace(/"@@bigint:(-?\d+)@@"/g, "$1");

const scenarios = {
  // Concurrent map, list and text edits from three actors, merged twice.
  concurrent() {
    let a = A.init({ actor: ACTOR_A });
    a = A.change(a, opts(), (d) => {
      d.title = new A.ImmutableString("start");
      d.list = [1, 2, 3];
      d.text = "hello world";
      d.cfg = { mode: "a", depth: 1 };
    });
    let b = A.merge(A.init({ actor: ACTOR_B }), a);
    let c = A.merge(A.init({ actor: ACTOR_C }), a);
    a = A.change(a, opts(), (d) => {
      d.title = new A.ImmutableString("from a");
      d.list.insertAt(1, 10, 11);
      A.splice(d, ["text"], 5, 0, " brave");
      d.cfg.mode = "A";
    });
    b = A.change(b, opts(), (d) => {
      d.title = new A.ImmutableString("from b");
      d.list.insertAt(1, 20);
      d.list.deleteAt(3);
      A.splice(d, ["text"], 0, 5, "HELLO");
      delete d.cfg.depth;
    });
    c = A.change(c, opts(), (d) => {
      d.title = new A.ImmutableString("from c");
      d.list.insertAt(1, 30);
      A.splice(d, ["text"], 11, 0, "!");
      d.cfg = { replaced: true };
    });
    a = A.merge(a, b);
    a = A.merge(a, c);
    a = A.change(a, opts(), (d) => {
      d.list.push(99);
      A.splice(d, ["text"], 0, 1, "J");
    });
    b = A.merge(b, a);
    b = A.change(b, opts(), (d) => {
      d.list.deleteAt(0);
      d.title = new A.ImmutableString("final b");
    });
    c = A.change(c, opts(), (d) => {
      d.extra = "c only";
    });
    b = A.merge(b, c);
    return b;
  },

  // Counters incremented by several actors, overwritten and deleted; scalar types.
  counters_scalars() {
    let a = A.init({ actor: ACTOR_A });
    a = A.change(a, opts(), (d) => {
      d.c = new A.Counter(5);
      d.gone = new A.Counter(1);
      d.list = [new A.Counter(0)];
      d.when = new Date(1700000000123);
      d.bytes = new Uint8Array([0, 1, 2, 250, 255]);
      d.f = 1.25;
      d.neg = -42;
      d.big = 2 ** 40;
      d.u = new A.Uint(7);
      d.yes = true;
      d.no = false;
      d.nothing = null;
      d.emoji = new A.ImmutableString("😀 é");
    });
    let b = A.merge(A.init({ actor: ACTOR_B }), a);
    a = A.change(a, opts(), (d) => {
      d.c.increment(3);
      d.gone.increment(1);
      d.list[0].increment(2);
    });
    b = A.change(b, opts(), (d) => {
      d.c.increment(-10);
      d.list[0].increment(5);
      delete d.gone;
    });
    a = A.merge(a, b);
    a = A.change(a, opts(), (d) => {
      d.c.increment(100);
    });
    return a;
  },

  // Rich text: marks, block markers, deletes across marks, concurrent typing.
  rich_text() {
    let a = A.init({ actor: ACTOR_A });
    a = A.change(a, opts(), (d) => {
      d.t = "The quick brown fox";
    });
    let b = A.merge(A.init({ actor: ACTOR_B }), a);
    a = A.change(a, opts(), (d) => {
      A.mark(d, ["t"], { start: 4, end: 9, expand: "both" }, "bold", true);
      A.splitBlock(d, ["t"], 0, { type: "paragraph", parents: [], attrs: {} });
    });
    b = A.change(b, opts(), (d) => {
      A.splice(d, ["t"], 10, 5, "red");
      A.mark(d, ["t"], { start: 0, end: 3 }, "link", "https://example.com");
    });
    a = A.merge(a, b);
    a = A.change(a, opts(), (d) => {
      A.splice(d, ["t"], 3, 4, "");
      A.unmark(d, ["t"], { start: 0, end: 2 }, "bold");
    });
    return a;
  },

  // A randomized three-actor session: map keys, a list and a text, merged at random.
  random(seed = 20240611, steps = 120) {
    const rng = new Rng(seed);
    const actors = [ACTOR_A, ACTOR_B, ACTOR_C];
    let base = A.change(A.init({ actor: ACTOR_A }), opts(), (d) => {
      d.m = {};
      d.l = [];
      d.t = "";
    });
    let docs = actors.map((id, i) => (i === 0 ? base : A.merge(A.init({ actor: id }), base)));
    for (let step = 0; step < steps; step++) {
      const i = rng.int(0, 2);
      if (rng.chance(0.15)) {
        const j = rng.int(0, 2);
        if (j !== i) docs[i] = A.merge(docs[i], docs[j]);
        continue;
      }
      docs[i] = A.change(docs[i], opts(T + step), (d) => {
        const kind = rng.weighted({ map: 3, list: 3, text: 5, nest: 1 });
        if (kind === "map") {
          const key = rng.pick(["x", "y", "z", "ünï", "\uffff", "😀"]);
          if (rng.chance(0.2)) delete d.m[key];
          else d.m[key] = rng.int(-1000, 1000);
        } else if (kind === "list") {
          if (d.l.length > 0 && rng.chance(0.3)) d.l.deleteAt(rng.int(0, d.l.length - 1));
          else if (d.l.length > 0 && rng.chance(0.2)) d.l[rng.int(0, d.l.length - 1)] = rng.int(0, 99);
          else d.l.insertAt(rng.int(0, d.l.length), rng.int(0, 99));
        } else if (kind === "text") {
          const len = d.t.length;
          const pos = rng.int(0, len);
          const del = len > pos && rng.chance(0.3) ? rng.int(1, Math.min(3, len - pos)) : 0;
          const ins = rng.pick(["a", "bc", "é", "👍🏽", "", "xyz"]);
          A.splice(d, ["t"], pos, del, ins);
        } else {
          d.m.nested = { at: step, list: [step] };
        }
      });
    }
    let out = docs[0];
    out = A.merge(out, docs[1]);
    out = A.merge(out, docs[2]);
    return out;
  },
};

const randomCount = process.argv[3] === "--random" ? Number(process.argv[4]) : 0;
const todo = randomCount
  ? Array.from({ length: randomCount }, (_, i) => [`random_${i}`, () => scenarios.random(1000 + i, 400)])
  : Object.entries(scenarios);
for (const [name, make] of todo) {
  const doc = make();
  const base = `${outDir}/opset_${name}`;
  fs.writeFileSync(`${base}.amrg`, A.save(doc));
  fs.writeFileSync(`${base}.changes`, Buffer.concat(A.getAllChanges(doc).map((c) => Buffer.from(c))));
  fs.writeFileSync(`${base}.json`, toJson(doc) + "\n");
  console.log(name, toJson(doc).slice(0, 200));
}
