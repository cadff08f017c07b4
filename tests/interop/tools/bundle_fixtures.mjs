// Bundle-chunk fixtures for src/automerge/bundle_test.cc, made by npm
// @automerge/automerge 3.5.0's saveBundle from the document fixtures that
// tools/doc_fixtures.mjs writes (so they cover maps, lists, text with marks, counters,
// branches, a long history with DEFLATEd columns, and an author).
//
//   cd tests/interop && node tools/bundle_fixtures.mjs [testdata-dir]
//
// For each doc_<name>_<v>.amrg it writes
//   bundle_<name>_<v>.bundle  A.saveBundle(doc, every change hash)
//   bundle_<name>_<v>.json    {heads, json, hashes}: the heads and JSON (lib/corpus_json.mjs)
//                             of A.load(bundle), and the hashes of its changes in order
// and, for the branches fixture, a bundle of the second half of the history only:
//   bundle_branches_v3_tail.bundle / .json (json also lists `base`: the hashes of the
//                             changes the tail needs first, in getAllChanges order)
import * as fs from "node:fs";
import * as path from "node:path";
import * as A from "@automerge/automerge";
import { docToJson } from "../lib/corpus_json.mjs";

const dir = process.argv[2] ?? new URL("../../../src/automerge/testdata/", import.meta.url).pathname;
const hashOf = (c) => A.decodeChange(c).hash;

function write(name, bundle, extra = {}) {
  const loaded = A.load(bundle, { allowMissingChanges: true });
  const hashes = A.readBundle(bundle).changes.map((c) => c.hash);
  fs.writeFileSync(path.join(dir, `${name}.bundle`), bundle);
  fs.writeFileSync(path.join(dir, `${name}.json`),
    JSON.stringify({ heads: A.getHeads(loaded), json: docToJson(A, loaded), hashes, ...extra }) + "\n");
  console.log(`${name}: ${bundle.length} bytes, ${hashes.length} changes`);
}

for (const file of fs.readdirSync(dir).filter((n) => /^doc_.*\.amrg$/.test(n)).sort()) {
  const doc = A.load(fs.readFileSync(path.join(dir, file)));
  const changes = A.getAllChanges(doc);
  const name = file.replace(/^doc_/, "bundle_").replace(/\.amrg$/, "");
  write(name, A.saveBundle(doc, changes.map(hashOf)));
  if (name === "bundle_branches_v3") {
    const half = Math.floor(changes.length / 2);
    const base = changes.slice(0, half).map(hashOf);
    // Its JSON is that of the whole document: the base is loaded first.
    const tail = A.saveBundle(doc, changes.slice(half).map(hashOf));
    const whole = A.loadIncremental(A.load(Buffer.concat(changes.slice(0, half).map((c) => Buffer.from(c)))), tail);
    fs.writeFileSync(path.join(dir, `${name}_tail.bundle`), tail);
    fs.writeFileSync(path.join(dir, `${name}_tail.json`), JSON.stringify({
      heads: A.getHeads(whole), json: docToJson(A, whole),
      hashes: A.readBundle(tail).changes.map((c) => c.hash), base,
    }) + "\n");
    console.log(`${name}_tail: ${tail.length} bytes, after ${half} changes`);
  }
}
