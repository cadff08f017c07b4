// Differential test of the engine's JSON Patch authoring (src/automerge/json_patch.h)
// against the real npm packages: for seeded random documents made by
// @automerge/automerge 3.5.0 (several actors, concurrent edits, conflicts, text,
// scalar strings, counters, nested maps and lists) and random valid RFC 6902
// patches, npm loading the document plus the change our engine wrote must give
// the same toJS as fast-json-patch applied to the JSON before. Also:
//   - patches that must be refused (a failing test, a missing path) are refused
//     with the right exit code, as fast-json-patch refuses them;
//   - a text replaced by our patch while npm splices the same text concurrently
//     merges: both edits survive;
//   - Document::to_json_at(heads) equals toJS(view(doc, heads)).
//
//   node json_patch_diff.mjs <json_patch_tool> [--seed N] [--count N] [--keep DIR]
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import * as A from "@automerge/automerge";
import * as jsonpatch from "fast-json-patch/index.mjs";
import { Rng, mixSeed } from "./lib/prng.mjs";

const args = process.argv.slice(2);
const tool = args[0];
if (!tool) {
  console.error("usage: node json_patch_diff.mjs <json_patch_tool> [--seed N] [--count N] [--keep DIR]");
  process.exit(2);
}
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const seed = Number(opt("--seed", 1));
const count = Number(opt("--count", 150));
const keep = opt("--keep", null);
const work = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), "json-patch-diff-"));
fs.mkdirSync(work, { recursive: true });

const T = 1700000000;
const OUR_ACTOR = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
let failures = 0;
const fail = (name, what) => {
  failures++;
  console.error(`FAIL ${name}: ${what}`);
};

// Key order does not matter in JSON objects; compare canonical forms.
function canon(v) {
  if (Array.isArray(v)) return v.map(canon);
  if (v && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v).sort()) out[k] = canon(v[k]);
    return out;
  }
  return v;
}
const same = (a, b) => JSON.stringify(canon(a)) === JSON.stringify(canon(b));
const toJSON = (doc) => JSON.parse(JSON.stringify(A.toJS(doc)));

// ---- random values -----------------------------------------------------------------

const KEYS = ["a", "b", "title", "n", "list", "x y", "a/b", "m~n", "", "é", "😀", "0", "-"];
const WORDS = ["hello", "wörld", "😀👍🏽", "a", "", "The quick brown fox", "naïve café", "日本語", "x\ny"];

function randString(rng) {
  let s = rng.pick(WORDS);
  if (rng.chance(0.3)) s += rng.pick(WORDS);
  return s;
}
function randNumber(rng) {
  return rng.chance(0.7) ? rng.int(-1000, 1000) : rng.int(-100000, 100000) / 64 + 0.25;
}
// A JSON value (for patches).
function randJson(rng, depth = 0) {
  const kind = rng.weighted({ num: 3, str: 3, bool: 1, null: 1, obj: depth < 3 ? 2 : 0, arr: depth < 3 ? 2 : 0 });
  switch (kind) {
    case "num":
      return randNumber(rng);
    case "str":
      return randString(rng);
    case "bool":
      return rng.chance(0.5);
    case "null":
      return null;
    case "obj": {
      const o = {};
      for (let i = rng.int(0, 3); i > 0; i--) o[rng.pick(KEYS)] = randJson(rng, depth + 1);
      return o;
    }
    default: {
      const a = [];
      for (let i = rng.int(0, 3); i > 0; i--) a.push(randJson(rng, depth + 1));
      return a;
    }
  }
}
// A value for npm to write: as randJson, plus counters and scalar strings.
function randAmValue(rng, depth = 0) {
  const kind = rng.weighted({ json: 6, counter: 1, imm: 1 });
  if (kind === "counter") return new A.Counter(rng.int(-5, 50));
  if (kind === "imm") return new A.ImmutableString(randString(rng));
  const v = randJson(rng, depth);
  if (v && typeof v === "object") {
    // Nested values may hold counters and scalar strings too.
    if (Array.isArray(v)) {
      if (rng.chance(0.3)) v.push(randAmValue(rng, depth + 1));
    } else if (rng.chance(0.3)) {
      v[rng.pick(KEYS)] = randAmValue(rng, depth + 1);
    }
  }
  return v;
}

// Every path of a JSON value: [{path: [tokens], value}], the root first.
function paths(json, prefix = [], out = []) {
  out.push({ path: prefix, value: json });
  if (Array.isArray(json)) json.forEach((v, i) => paths(v, [...prefix, String(i)], out));
  else if (json && typeof json === "object") for (const k of Object.keys(json)) paths(json[k], [...prefix, k], out);
  return out;
}
const pointer = (tokens) => tokens.map((t) => "/" + jsonpatch.escapePathComponent(t)).join("");
const isContainer = (v) => v !== null && typeof v === "object";

// ---- random documents (npm) --------------------------------------------------------

// Navigates a change proxy along JSON tokens.
function at(d, tokens) {
  let o = d;
  for (const t of tokens) o = o[Array.isArray(o) ? Number(t) : t];
  return o;
}

function npmEdit(rng, doc) {
  const json = toJSON(doc);
  const all = paths(json);
  const containers = all.filter((p) => isContainer(p.value));
  const strings = all.filter((p) => typeof p.value === "string" && p.path.length > 0);
  const numbers = all.filter((p) => typeof p.value === "number" && p.path.length > 0);
  try {
    return A.change(doc, { time: T }, (d) => {
      const kind = rng.weighted({ set: 4, del: 2, splice: 3, inc: 1 });
      if (kind === "splice" && strings.length) {
        const p = rng.pick(strings);
        const len = Array.from(p.value).length;  // npm indexes text by code point here only when ASCII; kept simple
        const idx = rng.int(0, Math.min(len, p.value.length));
        A.splice(d, p.path.map((t, i) => (Array.isArray(at(json, p.path.slice(0, i))) ? Number(t) : t)), idx, 0, rng.pick(["X", "yz", "ü"]));
        return;
      }
      if (kind === "inc" && numbers.length) {
        const p = rng.pick(numbers);
        const parent = at(d, p.path.slice(0, -1));
        const key = p.path[p.path.length - 1];
        parent[Array.isArray(parent) ? Number(key) : key].increment(rng.int(-3, 3));
        return;
      }
      const c = rng.pick(containers);
      const obj = at(d, c.path);
      if (Array.isArray(c.value)) {
        if (kind === "del" && c.value.length) obj.deleteAt(rng.int(0, c.value.length - 1));
        else if (c.value.length && rng.chance(0.3)) obj[rng.int(0, c.value.length - 1)] = randAmValue(rng, c.path.length);
        else obj.insertAt(rng.int(0, c.value.length), randAmValue(rng, c.path.length));
      } else {
        const keys = Object.keys(c.value);
        if (kind === "del" && keys.length) delete obj[rng.pick(keys)];
        else obj[rng.pick(KEYS)] = randAmValue(rng, c.path.length);
      }
    });
  } catch {
    return doc;  // e.g. increment of a number that is not a counter, splice of a scalar string
  }
}

function randomDoc(rng) {
  const actors = ["aa".repeat(16), "bb".repeat(16), "0c"];
  let doc = A.change(A.init({ actor: actors[0] }), { time: T }, (d) => {
    for (let i = rng.int(1, 5); i > 0; i--) d[rng.pick(KEYS)] = randAmValue(rng);
  });
  for (let round = rng.int(0, 3); round > 0; round--) {
    const forks = actors.slice(0, rng.int(1, 3)).map((a) => A.clone(doc, { actor: a }));
    for (let f = 0; f < forks.length; f++) {
      for (let e = rng.int(1, 4); e > 0; e--) forks[f] = npmEdit(rng, forks[f]);
    }
    doc = forks.reduce((x, y) => A.merge(x, y));
  }
  return doc;
}

// ---- random patches ----------------------------------------------------------------

function mutateString(rng, s) {
  const cps = Array.from(s);
  const at = rng.int(0, cps.length);
  const del = rng.int(0, Math.min(3, cps.length - at));
  cps.splice(at, del, ...Array.from(rng.pick(["", "Z", "ñé", "🎉", "--"])));
  return cps.join("");
}

function randomOp(rng, json) {
  const all = paths(json);
  const nonRoot = all.filter((p) => p.path.length > 0);
  const containers = all.filter((p) => isContainer(p.value));
  const kind = rng.weighted({ add: 4, remove: 2, replace: 4, move: 1, copy: 1, test: 1 });
  const target = () => {
    const c = rng.pick(containers);
    if (Array.isArray(c.value)) {
      return [...c.path, rng.chance(0.3) ? "-" : String(rng.int(0, c.value.length))];
    }
    const keys = Object.keys(c.value);
    return [...c.path, keys.length && rng.chance(0.3) ? rng.pick(keys) : rng.pick(KEYS)];
  };
  if (kind === "add") return { op: "add", path: pointer(target()), value: randJson(rng) };
  if (!nonRoot.length) return null;
  const p = rng.pick(nonRoot);
  switch (kind) {
    case "remove":
      return { op: "remove", path: pointer(p.path) };
    case "replace": {
      let value;
      if (typeof p.value === "string" && rng.chance(0.7)) value = mutateString(rng, p.value);
      else if (typeof p.value === "number" && rng.chance(0.5)) value = p.value + rng.int(-5, 5);
      else value = randJson(rng);
      return { op: "replace", path: pointer(p.path), value };
    }
    case "move":
    case "copy":
      return { op: kind, from: pointer(p.path), path: pointer(target()) };
    default:
      return { op: "test", path: pointer(p.path), value: p.value };
  }
}

// A valid patch: every op is checked by fast-json-patch (validate = true) on the
// JSON so far.
function randomPatch(rng, json) {
  const patch = [];
  let cur = structuredClone(json);
  for (let n = rng.int(1, 6), tries = 0; patch.length < n && tries < 50; tries++) {
    const op = randomOp(rng, cur);
    if (!op) continue;
    // RFC 6902: "from" must not be a proper prefix of "path" (fast-json-patch
    // checks this only when validating the whole patch, so check it here).
    if (op.op === "move" && op.path.startsWith(op.from + "/")) continue;
    // RFC 6902: move is remove then add, the add's index checked after the
    // removal; fast-json-patch checks it before (it accepts moving the last
    // element of an array to index length - 1 + 1). Keep only RFC-valid moves.
    if (op.op === "move") {
      try {
        const value = jsonpatch.getValueByPointer(cur, op.from);
        let t = jsonpatch.applyOperation(structuredClone(cur), { op: "remove", path: op.from }, true, true, false).newDocument;
        jsonpatch.applyOperation(t, { op: "add", path: op.path, value: structuredClone(value) }, true, true, false);
      } catch {
        continue;
      }
    }
    try {
      // Clones: fast-json-patch puts the op's value itself into the document.
      cur = jsonpatch.applyOperation(structuredClone(cur), structuredClone(op), true, true, false).newDocument;
      patch.push(op);
    } catch {
      // an op fast-json-patch refuses here: try another
    }
  }
  return { patch, expected: cur };
}

// ---- running the engine ------------------------------------------------------------

function runPatch(name, saved, patch) {
  const docFile = path.join(work, `${name}.amrg`);
  const patchFile = path.join(work, `${name}.patch.json`);
  const outFile = path.join(work, `${name}.change`);
  fs.writeFileSync(docFile, saved);
  fs.writeFileSync(patchFile, JSON.stringify(patch));
  fs.rmSync(outFile, { force: true });
  const r = spawnSync(tool, ["patch", docFile, patchFile, OUR_ACTOR, String(T + 1), outFile], { encoding: "utf8" });
  return { status: r.status, stderr: r.stderr, change: r.status === 0 ? fs.readFileSync(outFile) : null };
}

function checkCase(i) {
  const rng = new Rng(mixSeed(seed, i));
  const doc = randomDoc(rng);
  const before = toJSON(doc);
  const saved = A.save(doc);
  const name = `case${i}`;
  const { patch, expected } = randomPatch(rng, before);
  const r = runPatch(name, saved, patch);
  if (r.status !== 0) return fail(name, `engine refused a valid patch (${r.status}): ${r.stderr.trim()}`);
  let after = A.load(saved);
  if (r.change.length > 0) {
    const decoded = A.decodeChange(new Uint8Array(r.change));
    const heads = A.getHeads(doc);
    if (JSON.stringify([...decoded.deps].sort()) !== JSON.stringify([...heads].sort()))
      return fail(name, `deps ${decoded.deps} are not the heads ${heads}`);
    if (decoded.actor !== OUR_ACTOR || decoded.seq !== 1 || decoded.time !== T + 1)
      return fail(name, `header ${JSON.stringify({ actor: decoded.actor, seq: decoded.seq, time: decoded.time })}`);
    [after] = A.applyChanges(after, [new Uint8Array(r.change)]);
    if (A.getHeads(after).length !== 1 || A.getHeads(after)[0] !== decoded.hash)
      return fail(name, "the change did not become the only head");
  }
  const got = toJSON(after);
  if (!same(got, expected)) {
    return fail(name, `patch ${JSON.stringify(patch)}\n  before   ${JSON.stringify(before)}\n  expected ${JSON.stringify(
      expected)}\n  npm got  ${JSON.stringify(got)}`);
  }

  // A refused patch: the valid one plus an op that must fail. fast-json-patch
  // refuses it too, and the engine exits with the matching code.
  const bad = rng.pick([
    { op: { op: "test", path: "", value: { surely: "not this" } }, code: 3 },
    { op: { op: "remove", path: "/no such key/x" }, code: 2 },
    { op: { op: "replace", path: "/no such key", value: 1 }, code: 2 },
  ]);
  let refused = false;
  try {
    jsonpatch.applyPatch(structuredClone(before), structuredClone([...patch, bad.op]), true, false);
  } catch {
    refused = true;
  }
  if (!refused) return fail(name, "fast-json-patch accepted the bad op");
  const rb = runPatch(`${name}.bad`, saved, [...patch, bad.op]);
  if (rb.status !== bad.code) fail(name, `bad patch: exit ${rb.status}, expected ${bad.code}: ${rb.stderr.trim()}`);

  // The view at an earlier head equals npm's.
  const hashes = A.getAllChanges(doc).map((c) => A.decodeChange(c).hash);
  const heads = rng.chance(0.2) ? [] : [rng.pick(hashes)];
  const v = spawnSync(tool, ["view", path.join(work, `${name}.amrg`), heads.join(",")], { encoding: "utf8" });
  if (v.status !== 0) return fail(name, `view failed: ${v.stderr}`);
  const want = JSON.parse(JSON.stringify(A.toJS(A.view(doc, heads))));
  if (!same(JSON.parse(v.stdout), want)) fail(name, `view at ${heads}: ${v.stdout.trim()} != ${JSON.stringify(want)}`);
}

// A concurrent splice by an npm client and our replace of the same text merge.
function checkConcurrentText() {
  const name = "concurrent-text";
  const base = A.from({ t: "The quick brown fox", n: 1 }, { actor: "aa".repeat(16) });
  const saved = A.save(base);
  let app = A.clone(base, { actor: "bb".repeat(16) });
  app = A.change(app, (d) => A.splice(d, ["t"], 4, 0, "very "));
  const r = runPatch(name, saved, [{ op: "replace", path: "/t", value: "The quick brown cat" }]);
  if (r.status !== 0) return fail(name, r.stderr);
  const decoded = A.decodeChange(new Uint8Array(r.change));
  if (decoded.ops.length !== 6)  // "fox" -> "cat": 3 deletes, 3 inserts
    fail(name, `expected the smallest splice (6 ops), got ${decoded.ops.length}`);
  let ours = A.load(saved);
  [ours] = A.applyChanges(ours, [new Uint8Array(r.change)]);
  const merged = A.merge(app, ours);
  const mergedOther = A.merge(A.clone(ours), app);
  const t = A.toJS(merged).t;
  if (t !== "The very quick brown cat") fail(name, `merged text is ${JSON.stringify(t)}`);
  if (!same(A.toJS(mergedOther), A.toJS(merged))) fail(name, "the two merge orders differ");
}

checkConcurrentText();
for (let i = 0; i < count; i++) checkCase(i);
if (!keep) fs.rmSync(work, { recursive: true, force: true });
if (failures) {
  console.error(`${failures} failure(s) in ${count} cases (seed ${seed})`);
  process.exit(1);
}
console.log(`json_patch_diff: ${count} random cases (seed ${seed}) and the concurrent text merge agree with npm`);
