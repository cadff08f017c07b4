// Writes small document-chunk fixtures for src/automerge/doc_chunk_test.cc, made by
// the real npm packages (@automerge/automerge 3.5.0 and 2.2.8).
//
//   cd tests/interop && node tools/doc_fixtures.mjs [out-dir]
//
// For every scenario and library version it writes
//   doc_<name>_<v>.amrg     A.save(doc) (columns >= 256 bytes DEFLATEd by npm)
//   doc_<name>_<v>.changes  A.getAllChanges(doc), concatenated change chunks
//   doc_<name>_<v>.hashes   the hash of each of those changes, one hex per line
// Actors and times are fixed, so the output is reproducible.
import * as fs from "node:fs";
import * as path from "node:path";
import * as A3 from "@automerge/automerge";
import * as A2base from "automerge-2";

const A2 = A2base.next;  // 2.2.8's "next" API: strings are text, splice/mark exist
const outDir = process.argv[2] ?? new URL("../../../src/automerge/testdata/", import.meta.url).pathname;
fs.mkdirSync(outDir, { recursive: true });

const ACTOR_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ACTOR_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const ACTOR_C = "0c";  // short actor: sorts before the others
const T = 1700000000;

function scenarios(A) {
  const opts = (message, time = T) => ({ message, time });
  return {
    // Concurrent map edits from three actors: conflicts, deletes, nested maps, messages.
    maps(){
      let a = A.init({ actor: ACTOR_A });
      a = A.change(a, opts("init"), (d) => {
        d.title = "start";
        d.count = 1;
        d.nested = { x: 1, y: { z: "deep" } };
        d.gone = true;
        d["\uFFFF"] = 1;
        d["😀"] = 2;
      });
      let b = A.clone(a, { actor: ACTOR_B });
      let c = A.clone(a, { actor: ACTOR_C });
      a = A.change(a, opts("a edits", T + 1), (d) => { d.title = "from a"; delete d.gone; d.nested.x = 2; });
      b = A.change(b, opts(undefined, T + 2), (d) => { d.title = "from b"; d.nested.y.z = "b"; d.f = 1.5; });
      c = A.change(c, opts("c", -5), (d) => { d.title = "from c"; delete d.nested; d.nul = null; });
      a = A.merge(a, b);
      a = A.merge(a, c);
      a = A.change(a, opts("after merge"), (d) => { d.count = 2; d.bytes = new Uint8Array([1, 2, 3]); d.when = new Date(1700000000123); });
      return a;
    },
    // Lists: concurrent inserts at the same place, deletes, nested objects in lists.
    lists() {
      let a = A.init({ actor: ACTOR_A });
      a = A.change(a, opts(), (d) => { d.list = [1, 2, 3]; d.objs = [{ k: 1 }, [5, 6]]; });
      let b = A.clone(a, { actor: ACTOR_B });
      let c = A.clone(a, { actor: ACTOR_C });
      a = A.change(a, opts(), (d) => { d.list.insertAt(1, "a1", "a2"); d.list.deleteAt(3); d.objs[0].k = 2; });
      b = A.change(b, opts(), (d) => { d.list.insertAt(1, "b1"); d.list[0] = 10; d.objs[1].push(7); });
      c = A.change(c, opts(), (d) => { d.list.deleteAt(0); d.list.push({ deep: [1] }); d.objs.deleteAt(1); });
      a = A.merge(A.merge(a, b), c);
      a = A.change(a, opts(), (d) => { d.list.insertAt(0, "first"); });
      return a;
    },
    // Text with emoji, concurrent splices, deletes, marks (expand variants), unmark.
    text() {
      let a = A.init({ actor: ACTOR_A });
      a = A.change(a, opts(), (d) => { d.t = "hello 😀 world 👍🏽"; });
      let b = A.clone(a, { actor: ACTOR_B });
      a = A.change(a, opts(), (d) => {
        A.splice(d, ["t"], 5, 1, "__");
        A.mark(d, ["t"], { start: 0, end: 5, expand: "both" }, "bold", true);
      });
      b = A.change(b, opts(), (d) => {
        A.splice(d, ["t"], 0, 0, "¡");
        A.mark(d, ["t"], { start: 2, end: 8, expand: "none" }, "link", "https://x");
        A.mark(d, ["t"], { start: 1, end: 3, expand: "after" }, "em", true);
      });
      a = A.merge(a, b);
      a = A.change(a, opts("unmark"), (d) => {
        A.unmark(d, ["t"], { start: 0, end: 2, expand: "before" }, "bold");
        A.splice(d, ["t"], 3, 4);
      });
      return a;
    },
    // Counters: concurrent increments, counters in lists, overwrite of a counter.
    counters() {
      let a = A.init({ actor: ACTOR_A });
      a = A.change(a, opts(), (d) => { d.c = new A.Counter(5); d.l = [new A.Counter(0)]; d.o = new A.Counter(1); });
      let b = A.clone(a, { actor: ACTOR_B });
      a = A.change(a, opts(), (d) => { d.c.increment(2); d.l[0].increment(-3); d.o.increment(1); });
      b = A.change(b, opts(), (d) => { d.c.increment(10); d.o = 7; });
      b = A.change(b, opts(), (d) => { d.c.decrement(1); });
      a = A.merge(a, b);
      a = A.change(a, opts(), (d) => { d.c.increment(100); });
      return a;
    },
    // changeAt branches (startOp below the document's maxOp), empty changes.
    branches() {
      let a = A.init({ actor: ACTOR_A });
      a = A.change(a, opts(), (d) => { d.x = 1; d.list = ["a"]; });
      const h1 = A.getHeads(a);
      a = A.change(a, opts(), (d) => { d.x = 2; d.y = 1; d.list.push("b"); });
      a = A.emptyChange(a, opts("empty"));
      let b = A.clone(a, { actor: ACTOR_B });
      const r = A.changeAt(b, h1, opts("branch"), (d) => { d.x = 3; d.list.insertAt(0, "z"); });
      b = r.newDoc;
      b = A.emptyChange(b, opts());
      b = A.change(b, opts(), (d) => { d.z = "after"; });
      a = A.merge(a, b);
      const r2 = A.changeAt(a, h1, opts(), (d) => { delete d.x; });
      a = r2.newDoc;
      return a;
    },
    // Enough text that several columns pass 256 bytes, so npm DEFLATEs them.
    long() {
      let a = A.init({ actor: ACTOR_A });
      let b = A.clone(a, { actor: ACTOR_B });
      for (let i = 0; i < 30; i++) {
        a = A.change(a, opts(undefined, T + i), (d) => { d["k" + (i % 7)] = "value " + i; });
        b = A.change(b, opts("b" + i, T + i), (d) => { d["k" + (i % 5)] = i; });
        if (i % 10 === 0) { a = A.merge(a, b); b = A.merge(b, a); }
      }
      a = A.merge(a, b);
      a = A.change(a, opts(), (d) => { d.t = "The quick brown fox jumps over the lazy dog. ".repeat(12); });
      a = A.change(a, opts(), (d) => { A.splice(d, ["t"], 10, 50); A.splice(d, ["t"], 100, 0, "inserted!"); });
      return a;
    },
  };
}

function write(name, doc, A) {
  const save = A.save(doc);
  const changes = A.getAllChanges(doc);
  fs.writeFileSync(path.join(outDir, name + ".amrg"), save);
  fs.writeFileSync(path.join(outDir, name + ".changes"), Buffer.concat(changes.map((c) => Buffer.from(c))));
  const hashes = changes.map((c) => A.decodeChange(c).hash);
  fs.writeFileSync(path.join(outDir, name + ".hashes"), hashes.join("\n") + "\n");
  console.log(name, "save", save.length, "bytes,", changes.length, "changes");
}

for (const [v, A] of [["v3", A3], ["v2", A2]]) {
  for (const [name, make] of Object.entries(scenarios(A))) write(`doc_${name}_${v}`, make(), A);
}
// 3.5.0 documents with an author: the first change of that actor carries extra bytes.
{
  let a = A3.init({ actor: ACTOR_A, author: "abcd" });
  a = A3.change(a, { time: T }, (d) => { d.x = 1; });
  a = A3.change(a, { time: T }, (d) => { d.x = 2; });
  write("doc_author_v3", a, A3);
}
