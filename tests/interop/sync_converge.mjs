// Sync interop: the C++ sync peer (tests/sync_peer.cc, ChangeGraph + sync.cc) against
// real npm Automerge documents, both directions, from many seeded starting states.
//
//   node tests/interop/sync_converge.mjs <path to sync_peer> [--quick]
//
// For @automerge/automerge 3.5.0 and 2.2.8 (package automerge-2), with the C++ peer
// sending flags, not sending flags (server mode: npm must then send only V1 change
// chunks), and sending whole-document V2 messages as concatenated change chunks:
// both sides start from a starting state (both empty, one empty, shared history with
// divergent concurrent edits, large), sync until neither has anything to say, and must
// then have identical heads and identical change sets (npm getAllChanges hashes = the
// C++ graph's hashes). Then both edit concurrently and sync again, then reconnect with
// persisted sync states and sync again.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as A3 from "@automerge/automerge";
import * as A2 from "automerge-2/next"; // 2.x "next" API: strings are text, as in 3.x

const peerPath = process.argv[2];
if (!peerPath) {
  console.error("usage: node sync_converge.mjs <path to sync_peer> [--quick]");
  process.exit(2);
}
const quick = process.argv.includes("--quick");
const tmp = mkdtempSync(join(tmpdir(), "gm-sync-"));

// ---- the C++ peer -------------------------------------------------------------
class CppPeer {
  constructor(args) {
    this.proc = spawn(peerPath, args, { stdio: ["pipe", "pipe", "inherit"] });
    this.buf = Buffer.alloc(0);
    this.waiters = [];
    this.proc.stdout.on("data", (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.pump();
    });
    this.exited = new Promise((res) => this.proc.on("exit", res));
  }
  pump() {
    while (this.waiters.length && this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + len) return;
      const status = String.fromCharCode(this.buf[0]);
      const payload = this.buf.subarray(5, 5 + len);
      this.buf = this.buf.subarray(5 + len);
      this.waiters.shift()({ status, payload: Buffer.from(payload) });
    }
  }
  call(cmd, payload = Buffer.alloc(0)) {
    const head = Buffer.alloc(5);
    head[0] = cmd.charCodeAt(0);
    head.writeUInt32BE(payload.length, 1);
    this.proc.stdin.write(Buffer.concat([head, Buffer.from(payload)]));
    return new Promise((res) => {
      this.waiters.push(res);
      this.pump();
    });
  }
  async ok(cmd, payload) {
    const r = await this.call(cmd, payload);
    if (r.status !== ".") throw new Error(`sync_peer '${cmd}' failed: ${r.payload.toString()}`);
    return r.payload;
  }
  async hashes(cmd) {
    const p = await this.ok(cmd);
    const out = [];
    for (let i = 0; i < p.length; i += 32) out.push(p.subarray(i, i + 32).toString("hex"));
    return out;
  }
  async close() {
    await this.call("x");
    this.proc.stdin.end();
    await this.exited;
  }
}

// ---- deterministic randomness and edits ---------------------------------------
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const int = (r, n) => Math.floor(r() * n);
function actorHex(r) {
  let s = "";
  for (let i = 0; i < 16; i++) s += int(r, 256).toString(16).padStart(2, "0");
  return s;
}

// `n` changes of random edits: map keys, a list, a text.
function edit(M, doc, r, n) {
  for (let i = 0; i < n; i++) {
    doc = M.change(doc, (d) => {
      const k = int(r, 4);
      if (k === 0 || !d.list) {
        d["k" + int(r, 20)] = int(r, 1000);
        if (!d.list) d.list = [];
        if (!d.text) d.text = "";
      } else if (k === 1) {
        d.list.push(int(r, 100));
      } else if (k === 2 && d.list.length) {
        d.list.splice(int(r, d.list.length), 1);
      } else {
        const t = d.text;
        M.splice(d, ["text"], int(r, t.length + 1), 0, "abcdefg".slice(0, 1 + int(r, 6)));
      }
    });
  }
  return doc;
}

const concatChanges = (M, doc) => Buffer.concat(M.getAllChanges(doc).map((c) => Buffer.from(c)));
const sortedHeads = (M, doc) => [...M.getHeads(doc)].sort();

// ---- one case ------------------------------------------------------------------
let failures = 0;
let cases = 0;
const stats = { npmV1: 0, npmV2: 0, npmDocChunks: 0, cppV1: 0, cppV2: 0 };

async function runCase(lib, M, mode, scenario, seed) {
  const name = `${lib} ${mode} ${scenario} seed=${seed}`;
  const r = rng(seed * 7919 + scenario.length);
  const jsActor = actorHex(r);
  const cppActor = actorHex(r);
  let js = M.init({ actor: jsActor });
  let cppSource = null; // the npm document whose history the C++ peer starts with

  try {
  switch (scenario) {
    case "both-empty":
      break;
    case "js-empty":
      cppSource = edit(M, M.init({ actor: cppActor }), r, 1 + int(r, 8));
      break;
    case "cpp-empty":
      js = edit(M, js, r, 1 + int(r, 8));
      break;
    case "shared-divergent": {
      const base = edit(M, M.init({ actor: actorHex(r) }), r, 2 + int(r, 10));
      js = edit(M, M.load(M.save(base), { actor: jsActor }), r, 1 + int(r, 5));
      cppSource = edit(M, M.load(M.save(base), { actor: cppActor }), r, 1 + int(r, 5));
      break;
    }
    case "large": {
      const base = edit(M, M.init({ actor: actorHex(r) }), r, 600);
      js = edit(M, M.load(M.save(base), { actor: jsActor }), r, 300);
      cppSource = edit(M, M.load(M.save(base), { actor: cppActor }), r, 20);
      break;
    }
  }
  } catch (e) {
    failures++;
    cases++;
    console.log(`FAIL ${name}: setting up: ${e.message}`);
    return;
  }
  const args = [];
  if (mode === "no-flags") args.push("--no-flags");
  if (mode === "save-concat") args.push("--save-concat");
  if (cppSource) {
    // Half the cases start the C++ side from a saved document (document chunk), half
    // from change chunks.
    const file = join(tmp, `init-${cases}.amrg`);
    writeFileSync(file, int(r, 2) ? M.save(cppSource) : concatChanges(M, cppSource));
    args.push(file);
  }
  const cpp = new CppPeer(args);
  let jsState = M.initSyncState();

  const sync = async (phase) => {
    const jsFirst = int(r, 2) === 0;
    for (let round = 0; round < 200; round++) {
      let m1 = null;
      let m2 = Buffer.alloc(0);
      const jsSends = async () => {
        [jsState, m1] = M.generateSyncMessage(js, jsState);
        if (!m1) return;
        const msg = M.decodeSyncMessage(m1);
        if (m1[0] === 0x43) stats.npmV2++;
        else stats.npmV1++;
        for (const c of msg.changes) if (c[8] === 0) stats.npmDocChunks++;
        if (mode === "no-flags") {
          if (m1[0] !== 0x42) throw new Error(`${phase}: npm sent a V2 message to a peer without flags`);
          for (const c of msg.changes) {
            if (c[8] !== 1) throw new Error(`${phase}: npm sent a chunk of type ${c[8]} to a peer without flags`);
          }
        }
        await cpp.ok("r", m1);
      };
      const cppSends = async () => {
        m2 = await cpp.ok("g");
        if (!m2.length) return;
        if (m2[0] === 0x43) stats.cppV2++;
        else stats.cppV1++;
        [js, jsState] = M.receiveSyncMessage(js, jsState, new Uint8Array(m2));
      };
      if (jsFirst) {
        await jsSends();
        await cppSends();
      } else {
        await cppSends();
        await jsSends();
      }
      if (!m1 && !m2.length) return round;
    }
    throw new Error(`${phase}: no convergence after 200 rounds`);
  };

  const check = async (phase) => {
    const cppHeads = await cpp.hashes("h");
    const jsHeads = sortedHeads(M, js);
    if (JSON.stringify(cppHeads) !== JSON.stringify(jsHeads)) {
      throw new Error(`${phase}: heads differ: C++ ${cppHeads} npm ${jsHeads}`);
    }
    const cppHashes = (await cpp.hashes("c")).sort();
    const jsHashes = M.getAllChanges(js).map((c) => M.decodeChange(c).hash).sort();
    if (JSON.stringify(cppHashes) !== JSON.stringify(jsHashes)) {
      throw new Error(`${phase}: change sets differ: C++ ${cppHashes.length} changes, npm ${jsHashes.length}`);
    }
    const queued = (await cpp.ok("q")).toString();
    if (queued !== "0") throw new Error(`${phase}: C++ peer has ${queued} queued changes`);
  };

  // A local edit on the C++ side: made by npm on a copy of the C++ history.
  const cppEdit = async (n) => {
    const all = await cpp.ok("a");
    let shadow = all.length ? M.load(new Uint8Array(all), { actor: cppActor }) : M.init({ actor: cppActor });
    for (let i = 0; i < n; i++) {
      shadow = edit(M, shadow, r, 1);
      await cpp.ok("l", M.getLastLocalChange(shadow));
    }
  };

  try {
    await sync("initial sync");
    await check("initial sync");
    js = edit(M, js, r, 1 + int(r, 3));
    await cppEdit(1 + int(r, 3));
    await sync("after concurrent edits");
    await check("after concurrent edits");
    // Reconnect: both sides keep only their persisted sync state.
    const jsSaved = M.encodeSyncState(jsState);
    const cppSaved = await cpp.ok("s");
    jsState = M.decodeSyncState(jsSaved);
    await cpp.ok("n", cppSaved);
    js = edit(M, js, r, 1 + int(r, 2));
    await cppEdit(1 + int(r, 2));
    await sync("after reconnect");
    await check("after reconnect");
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.message}`);
  } finally {
    await cpp.close();
    cases++;
  }
}

const libs = [
  ["3.5.0", A3],
  ["2.2.8", A2],
];
const modes = ["flags", "no-flags", "save-concat"];
const scenarios = ["both-empty", "js-empty", "cpp-empty", "shared-divergent", "large"];
const seeds = quick ? [1] : [1, 2, 3, 4];
const started = Date.now();
for (const [lib, M] of libs) {
  for (const mode of modes) {
    for (const scenario of scenarios) {
      for (const seed of scenario === "large" ? seeds.slice(0, 1) : seeds) {
        await runCase(lib, M, mode, scenario, seed);
      }
    }
  }
}
rmSync(tmp, { recursive: true, force: true });
console.log(
  `${cases - failures}/${cases} sync cases converged in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
    `npm sent ${stats.npmV1} V1 and ${stats.npmV2} V2 messages (${stats.npmDocChunks} document chunks), ` +
    `C++ sent ${stats.cppV1} V1 and ${stats.cppV2} V2`,
);
process.exit(failures ? 1 : 0);
