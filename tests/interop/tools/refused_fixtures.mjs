// Documents npm @automerge/automerge 3.5.0 refuses to load, for src/automerge tests
// (the engine must refuse them too, saying why).
//
//   cd tests/interop && node tools/refused_fixtures.mjs [--check] [testdata-dir]
//
// Writes (unless --check)
//   refused_mark_end_first_v2.amrg     2.2.8's A.save() of a text with a zero-width mark,
//                                      expand "after": its end op precedes its begin op
//   refused_mark_end_first_v2.changes  the same document's changes (3.5.0 loads these)
// and then checks that 3.5.0's A.load() throws for every refused_*.amrg in the folder,
// printing each message; exit status 1 if one loads. The other refused_*.amrg files
// cannot be made through npm's API; they were written with the engine's own encoder
// (a DecodedDocument passed to encode_document, heads from encode_change):
//   refused_counter_2p32.amrg       one op whose counter is 2^32
//   refused_succ_counter_2p32.amrg  a delete with counter 2^32, named in a succ list
//   refused_max_op_2p32.amrg        a change without ops whose maxOp is 2^32
import * as fs from "node:fs";
import * as path from "node:path";
import * as A3 from "@automerge/automerge";
import * as A2base from "automerge-2";

const A2 = A2base.next;
const args = process.argv.slice(2);
const check = args.includes("--check");
const dir = args.find((a) => !a.startsWith("--")) ??
  new URL("../../../src/automerge/testdata/", import.meta.url).pathname;

if (!check) {
  let d = A2.init({ actor: "aaaa" });
  d = A2.change(d, { time: 1 }, (x) => { x.t = "abc"; });
  d = A2.change(d, { time: 2 }, (x) => { A2.mark(x, ["t"], { start: 1, end: 1, expand: "after" }, "bold", true); });
  fs.writeFileSync(path.join(dir, "refused_mark_end_first_v2.amrg"), A2.save(d));
  fs.writeFileSync(path.join(dir, "refused_mark_end_first_v2.changes"),
    Buffer.concat(A2.getAllChanges(d).map((c) => Buffer.from(c))));
}

let failed = false;
for (const name of fs.readdirSync(dir).filter((n) => /^refused_.*\.amrg$/.test(n)).sort()) {
  const bytes = fs.readFileSync(path.join(dir, name));
  try {
    A3.load(bytes);
    console.log(`${name}: npm 3.5.0 LOADS it (expected a refusal)`);
    failed = true;
  } catch (e) {
    console.log(`${name}: npm 3.5.0 refuses: ${e.message}`);
  }
}
const changes = path.join(dir, "refused_mark_end_first_v2.changes");
if (fs.existsSync(changes)) {
  const doc = A3.load(fs.readFileSync(changes));  // throws if 3.5.0 no longer takes them
  console.log(`refused_mark_end_first_v2.changes: npm 3.5.0 loads them: ${JSON.stringify(A3.toJS(doc))}`);
}
process.exit(failed ? 1 : 0);
