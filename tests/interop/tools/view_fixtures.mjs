// Writes fixtures for Document::to_json_at (src/automerge/transaction_test.cc),
// made by the real npm package (@automerge/automerge 3.5.0): a three-actor document
// with concurrent map, list, text and counter edits, and the JSON of
// A.toJS(A.view(doc, heads)) for several heads lists (single changes, concurrent
// pairs, the empty list).
//
//   cd tests/interop && node tools/view_fixtures.mjs [out-dir]
//
// Writes view_history.amrg (A.save) and view_history.json: [{heads: [hex], json}].
import * as fs from "node:fs";
import * as A from "@automerge/automerge";

const outDir = process.argv[2] ?? new URL("../../../src/automerge/testdata/", import.meta.url).pathname;
const T = 1700000000;
let a = A.change(A.init({ actor: "aa".repeat(16) }), { time: T }, (d) => {
  d.title = "draft";
  d.list = [1, 2, 3];
  d.count = new A.Counter(1);
  d.meta = { tags: ["x"] };
});
let b = A.clone(a, { actor: "bb".repeat(16) });
let c = A.clone(a, { actor: "0c" });
a = A.change(a, { time: T }, (d) => {
  A.splice(d, ["title"], 0, 0, "my ");
  d.list.insertAt(1, 9);
  d.count.increment(2);
});
b = A.change(b, { time: T }, (d) => {
  A.splice(d, ["title"], 5, 0, "!");
  d.list.deleteAt(0);
  d.meta.tags.push("y");
  d.count.increment(10);
});
c = A.change(c, { time: T }, (d) => {
  d.meta = { replaced: true };
});
let doc = A.merge(A.merge(a, b), c);
doc = A.change(doc, { time: T }, (d) => {
  d.list.push(4);
  delete d.title;
});
const hashes = A.getAllChanges(doc).map((ch) => A.decodeChange(ch).hash);
const cases = [[], ...hashes.map((h) => [h]), [hashes[1], hashes[2]], [hashes[1], hashes[2], hashes[3]], A.getHeads(doc)];
const out = cases.map((heads) => ({ heads, json: A.toJS(A.view(doc, heads)) }));
fs.writeFileSync(outDir + "view_history.amrg", A.save(doc));
fs.writeFileSync(outDir + "view_history.json", JSON.stringify(out, null, 1) + "\n");
console.log(`wrote ${cases.length} views`);
