// The JavaScript side of `make bench` for the Automerge engine: the same work the
// C++ bench/automerge_bench does, with npm @automerge/automerge, in this process.
//
//   node automerge_bench.mjs make-small OUT [CHANGES]   write the many-small-changes document
//   node automerge_bench.mjs make-big OUT OPS          write a text of OPS letters typed in one
//                                                      change, then 5 more in a second (issue 13)
//   node automerge_bench.mjs run OP FILE ITERS          OP: load | save | json | all
// `run` prints one JSON line: {"op", "ms"} (mean per iteration).
import * as A from "@automerge/automerge";
import { readFileSync, writeFileSync } from "node:fs";

function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeSmall(out, changes) {
  const rand = rng(42);
  const actors = ["aa01", "bb02", "cc03"].map((a) => a.padEnd(32, "0"));
  let base = A.change(A.init({ actor: actors[0] }), { time: 0 }, (d) => {
    d.settings = {};
    d.items = [];
    d.notes = "";
    d.count = new A.Counter(0);
  });
  let docs = actors.map((a) => A.clone(base, { actor: a }));
  for (let i = 0; i < changes; i++) {
    const k = i % docs.length;
    docs[k] = A.change(docs[k], { time: 1700000000 + i }, (d) => {
      const r = rand();
      if (r < 0.3) d.settings["key" + Math.floor(rand() * 50)] = Math.floor(rand() * 1000);
      else if (r < 0.55) d.items.push({ id: i, title: "item " + i, done: false });
      else if (r < 0.65 && d.items.length > 0) d.items[Math.floor(rand() * d.items.length)].done = true;
      else if (r < 0.75 && d.items.length > 5) d.items.deleteAt(Math.floor(rand() * d.items.length));
      else if (r < 0.95) A.splice(d, ["notes"], Math.floor(rand() * (d.notes.length + 1)), 0, "note " + i + " ");
      else d.count.increment(1);
    });
    if (i % 50 === 49) {
      // merge() consumes its first argument, so merge into a clone.
      const merged = docs.slice(1).reduce((acc, d) => A.merge(acc, d), A.clone(docs[0]));
      docs = docs.map((d) => A.merge(d, merged));
    }
  }
  const final = docs.slice(1).reduce((acc, d) => A.merge(acc, d), A.clone(docs[0]));
  writeFileSync(out, A.save(final));
  console.log(JSON.stringify({ file: out, changes: A.getAllChanges(final).length }));
}

function makeBig(out, ops) {
  const rand = rng(7);
  const letters = new Array(ops);
  for (let i = 0; i < ops; i++) letters[i] = String.fromCharCode(97 + Math.floor(rand() * 26));
  let doc = A.from({ text: "" }, { actor: "dd04".padEnd(32, "0") });
  doc = A.change(doc, { time: 0 }, (d) => A.splice(d, ["text"], 0, 0, letters.join("")));
  doc = A.change(doc, { time: 1 }, (d) => A.splice(d, ["text"], 5, 0, "hello"));
  writeFileSync(out, A.save(doc));
  console.log(JSON.stringify({ file: out, ops }));
}

function run(op, file, iters) {
  const bytes = readFileSync(file);
  let doc = op === "load" || op === "all" ? null : A.load(bytes);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    if (op === "load") doc = A.load(bytes);
    else if (op === "save") A.save(doc);
    else if (op === "json") JSON.stringify(A.toJS(doc));
    else if (op === "all") JSON.stringify(A.toJS(A.load(A.save(A.load(bytes)))));
    else throw new Error("unknown op " + op);
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6 / iters;
  console.log(JSON.stringify({ op, ms }));
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "make-small") makeSmall(args[0], Number(args[1] ?? 20000));
else if (cmd === "make-big") makeBig(args[0], Number(args[1]));
else if (cmd === "run") run(args[0], args[1], Number(args[2] ?? 1));
else {
  console.error("usage: automerge_bench.mjs make-small OUT [CHANGES] | make-big OUT OPS | run OP FILE ITERS");
  process.exit(2);
}
