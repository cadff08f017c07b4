// Loads saved documents of a differential corpus into npm Automerge and checks them
// against the corpus record (heads, change hashes, JSON view).
//
//   node lib/check_saves.mjs <corpus dir> [--suffix .cpp.save] [--self]
//
// For every <id>.json under <dir> (recursively), the file <id><suffix> is loaded with
// the npm version that made the record (3.5.0 or 2.2.8) and must give the recorded
// heads, the recorded change hashes (getAllChanges, as a set) and the recorded JSON.
// The C++ differential test writes <id>.cpp.save next to each record (Document::save()),
// so the default suffix checks that npm reads what the C++ engine writes.
// --self checks the generator's own <id>.save and <id>.changes instead.
// Exits 1 if any check fails or if no file was found.
import fs from "node:fs";
import path from "node:path";
import * as A3 from "@automerge/automerge";
import * as A2 from "automerge-2/next";
import { docToJson } from "./corpus_json.mjs";

function records(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...records(p));
    else if (e.name.endsWith(".json")) out.push(p);
  }
  return out.sort();
}

function checkLoaded(M, rec, doc, what) {
  const errors = [];
  const heads = M.getHeads(doc);
  if (JSON.stringify(heads) !== JSON.stringify(rec.heads)) {
    errors.push(`${what}: heads ${JSON.stringify(heads)} != recorded ${JSON.stringify(rec.heads)}`);
  }
  const hashes = M.getAllChanges(doc).map((c) => M.decodeChange(c).hash).sort();
  const want = rec.changes.map((c) => c.hash).sort();
  if (JSON.stringify(hashes) !== JSON.stringify(want)) {
    errors.push(`${what}: ${hashes.length} change hashes differ from the ${want.length} recorded`);
  }
  const json = docToJson(M, doc);
  if (json !== rec.json) errors.push(`${what}: JSON differs\n  got  ${json.slice(0, 400)}\n  want ${rec.json.slice(0, 400)}`);
  return errors;
}

function main() {
  const argv = process.argv.slice(2);
  let dir = null;
  let suffix = ".cpp.save";
  let self = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--suffix") suffix = argv[++i];
    else if (argv[i] === "--self") self = true;
    else dir = argv[i];
  }
  if (!dir) throw new Error("usage: node lib/check_saves.mjs <corpus dir> [--suffix S] [--self]");
  let checked = 0;
  let failed = 0;
  for (const jsonPath of records(dir)) {
    const rec = JSON.parse(fs.readFileSync(jsonPath, "utf8"));
    if (!rec.id || !rec.heads) continue;
    const M = rec.version === 2 ? A2 : A3;
    const base = jsonPath.slice(0, -".json".length);
    const files = self ? [[".save", "load"], [".changes", "load"]] : [[suffix, "load"]];
    for (const [sfx] of files) {
      const file = base + sfx;
      if (!fs.existsSync(file)) continue;
      checked++;
      let errors;
      try {
        errors = checkLoaded(M, rec, M.load(new Uint8Array(fs.readFileSync(file))), path.basename(file));
      } catch (e) {
        errors = [`${path.basename(file)}: npm ${rec.version === 2 ? "2.2.8" : "3.5.0"} cannot load it: ${e.message}`];
      }
      if (errors.length) {
        failed++;
        console.log(`FAIL seed ${rec.seed} document ${rec.id} (version ${rec.version}):\n  ${errors.join("\n  ")}`);
      }
    }
  }
  console.log(`check_saves: ${checked} files checked, ${failed} failed (${dir}, ${self ? "generator output" : suffix})`);
  if (checked === 0 || failed > 0) process.exit(1);
}

main();
