// Probes which document columns npm's A.save() DEFLATEs, around the 256-byte
// threshold (spec/automerge.md §1.9): a root map holding one string value of L
// bytes gives a value column (spec 0x57) of exactly L bytes.
//
//   cd tests/interop && node tools/doc_deflate_threshold.mjs [out-dir]
//
// Prints, per L and library version, the columns of the saved chunk as
// spec(+deflate):length; with out-dir, also writes doc_threshold_<L>_<v>.amrg there.
import * as fs from "node:fs";
import * as path from "node:path";
import * as A3 from "@automerge/automerge";
import * as A2base from "automerge-2";

const outDir = process.argv[2];

function uleb(b, p) {
  let v = 0, s = 0;
  for (;;) { const x = b[p.i++]; v += (x & 0x7f) * 2 ** s; s += 7; if (!(x & 0x80)) return v; }
}
function columns(save) {
  const p = { i: 8 };
  p.i++;            // chunk type
  uleb(save, p);    // body length
  const nactors = uleb(save, p);
  for (let k = 0; k < nactors; k++) { const len = uleb(save, p); p.i += len; }
  const nheads = uleb(save, p);
  p.i += 32 * nheads;
  const out = [];
  for (const table of ["change", "op"]) {
    const n = uleb(save, p);
    for (let k = 0; k < n; k++) {
      const spec = uleb(save, p), len = uleb(save, p);
      out.push(`${table}:${(spec & ~8).toString(16)}${spec & 8 ? "+deflate" : ""}:${len}`);
    }
  }
  return out;
}

for (const [v, A] of [["v3", A3], ["v2", A2base.next]]) {
  for (const L of [254, 255, 256, 257]) {
    let d = A.init({ actor: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" });
    d = A.change(d, { time: 0 }, (doc) => { doc.s = new (A.ImmutableString ?? A.RawString)("x".repeat(L)); });
    const save = A.save(d);
    console.log(v, "L=" + L, columns(save).join(" "));
    if (outDir) fs.writeFileSync(path.join(outDir, `doc_threshold_${L}_${v}.amrg`), save);
  }
}
