// The edit-latency benchmark (issue 12, scripts/bench-latency.sh, part of `make bench`;
// not a test). Real npm @automerge/automerge-repo 2.5.6 clients (WebSocketClientAdapter)
// against one sync server on 127.0.0.1:
//
//   node latency_bench.mjs prepare --data DIR --kind cpp|js [--chars 4000000]
//        BEFORE the server starts: writes the big document (one change holding a text of
//        --chars characters, A.save'd) where that server kind loads it (cpp: the
//        xyz.groundmist.bench group folder; js: DIR itself) and prints its automerge URL
//   node latency_bench.mjs run --url WS_URL --big AUTOMERGE_URL --out FILE
//        [--edits 150] [--interval 120] [--text FILE] [--load upload,open]
//   node latency_bench.mjs table CPP.json JS.json [CPP-FIRST.json JS-FIRST.json]
//        the markdown table (the first-open runs add their open time as a row)
//
// What is measured: client A edits one key of a shared document (`d.n = i`) every
// --interval ms; client B (its own Repo and WebSocket) listens to handle.on("change")
// and reads `n`. Latency = B sees n ≥ i minus the moment just before A's change. A and
// B live in this one process so both instants come from the same performance.now();
// nothing else runs here, so this event loop is idle between edits. The interval
// (120 ms) is longer than automerge-repo's 100 ms sync throttle (asyncThrottle in
// DocSynchronizer, on both clients and on the JS server), so no edit waits for it.
// This end-to-end figure (the issue's) holds about 4 ms of client work, the same for
// either server; the "socket to socket" figures (A's socket sends the change → B's
// socket receives it) leave only the server and the loopback.
// An edit not seen within 10 s is lost: counted, and left out of the percentiles.
//
// Phases: "alone" (only A and B, --edits edits) and "load": A and B keep editing while
// C uploads the 50,001-change text document (--text) and D opens the big document
// from the server's disk; the phase lasts until C and D are done plus 3 s, and at
// least --edits edits. C and D run in their own processes (forked from this file):
// their CPU work (loading 50k changes, loading 4M characters) would otherwise stall
// the event loop that times A and B. Each connects and loads its input first, then
// waits for "go", so the phase times the server's work, not their setup. D's open time
// runs from find() until the document is ready in D, so it includes D loading the
// 4M-op document itself (about 3 s of npm automerge on this machine).
import { createHash } from "node:crypto";
import { fork } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { parseArgs } from "node:util";
import { Repo, decodeHeads, generateAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import * as A from "@automerge/automerge";

const HERE = fileURLToPath(import.meta.url);
const DEFAULT_TEXT = path.resolve(path.dirname(HERE), "../../../../shared/data/automerge-perf/text-doc-50k.amrg");
const GROUP_PATH = "xyz/groundmist/bench"; // group xyz.groundmist.bench, as bench-latency.sh's token names
const LOST_MS = 10000;

// ---- helpers (as in server_bench.mjs) -------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(predicate, ms, what, pollMs = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s: ${what}`);
    await sleep(pollMs);
  }
}

function makeClient(url, name, adapter = new WebSocketClientAdapter(url, 1000)) {
  return new Repo({
    network: [adapter],
    peerId: `latency-${name}-${Math.random().toString(36).slice(2, 8)}`,
  });
}

const closeClient = (repo) => withTimeout(repo.shutdown(), 10000, "client repo shutdown").catch(() => {});

const waitPeer = (repo, ms = 10000) => waitFor(() => repo.peers.length > 0, ms, `${repo.peerId}: peer message from the server`);

const sortedHeads = (doc) => [...A.getHeads(doc)].sort().join(",");

// Waits until the server's last sync message says it has every change of `handle`
// (SyncInfo for the server's storageId, from its `peer` message).
async function waitServerHas(repo, handle, ms, what) {
  const storageId = repo.peerMetadataByPeerId[repo.peers[0]]?.storageId;
  if (!storageId) throw new Error(`${what}: the server sent no storageId`);
  await waitFor(
    () => {
      const info = handle.getSyncInfo(storageId);
      return info && [...decodeHeads(info.lastHeads)].sort().join(",") === sortedHeads(handle.doc());
    },
    ms,
    `${what}: server acknowledgement`,
    20,
  );
}

// ---- prepare: the big document, on disk before the server starts ------------------

// Prose-like text from a fixed word list and a fixed-seed generator: the same document
// every run, and not so repetitive that deflate shrinks it to nothing.
function bigText(chars) {
  const words = "the of and a to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part".split(" ");
  let seed = 12;
  const parts = [];
  let n = 0;
  while (n < chars) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const w = words[seed % words.length] + ((seed >> 8) % 11 === 0 ? ". " : " ");
    parts.push(w);
    n += w.length;
  }
  return parts.join("").slice(0, chars);
}

// One change holding the whole text, saved as npm saves a new document: a single
// snapshot file at the NodeFS key [docId, "snapshot", sha256(sorted heads' hex
// concatenated)] (spec/automerge.md §4.1, §4.3). Written directly rather than through a
// Repo so that nothing else (storage-adapter-id, sync states) lands in the folder.
function prepare({ data, kind, chars }) {
  const dir = kind === "cpp" ? path.join(data, GROUP_PATH) : kind === "js" ? data : null;
  if (!dir) throw new Error("--kind must be cpp or js");
  const doc = A.from({ text: bigText(Number(chars)) });
  const bytes = A.save(doc);
  const url = generateAutomergeUrl();
  const { documentId: id } = parseAutomergeUrl(url);
  const hash = createHash("sha256").update([...A.getHeads(doc)].sort().join("")).digest("hex");
  const folder = path.join(dir, id.slice(0, 2), id.slice(2), "snapshot");
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, hash), bytes);
  console.error(`latency_bench: big document ${id}: ${A.getAllChanges(doc).length} change, ${chars} characters, ${bytes.length} bytes in ${folder}`);
  console.log(url);
}

// ---- C and D: the load, each in its own process ----------------------------------

// Child protocol (IPC): child → {ready}; parent → {go}; child → {done, ms, …} or {error}.
async function child(role, { url, big, text }) {
  const go = new Promise((resolve) => process.once("message", resolve));
  try {
    const repo = makeClient(url, role);
    await waitPeer(repo);
    let result;
    if (role === "upload") {
      // As server_bench.mjs c-push: the file is a run of changes; load and save it
      // into one document chunk here, before the clock starts.
      const bytes = A.save(A.load(readFileSync(text)));
      process.send({ ready: true });
      await go;
      const t0 = performance.now();
      const h = repo.import(bytes);
      await withTimeout(h.whenReady(), 60000, "upload: import");
      await waitServerHas(repo, h, 300000, "upload: the text document");
      result = { ms: performance.now() - t0, changes: A.getAllChanges(h.doc()).length };
    } else {
      process.send({ ready: true });
      await go;
      const t0 = performance.now();
      const h = await withTimeout(repo.find(big), 300000, "open: find the big document");
      const chars = h.doc().text.length; // also proves the whole document arrived
      result = { ms: performance.now() - t0, chars };
    }
    process.send({ done: true, ...result });
    await closeClient(repo);
  } catch (e) {
    process.send({ error: e.message });
  }
  process.exit(0);
}

function startChild(role, opts) {
  const proc = fork(HERE, ["child", role, "--url", opts.url, "--big", opts.big ?? "", "--text", opts.text], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const next = () =>
    new Promise((resolve, reject) => {
      proc.once("message", (m) => (m.error ? reject(new Error(`${role}: ${m.error}`)) : resolve(m)));
      proc.once("exit", (code) => reject(new Error(`${role}: exited (${code}) early`)));
    });
  return { proc, next };
}

// ---- A and B: the edits ------------------------------------------------------------

function stats(latencies, sent, lost) {
  const s = [...latencies].sort((a, b) => a - b);
  // Nearest rank: the smallest value with at least p of the samples at or below it.
  const pct = (p) => (s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] : NaN);
  return { edits: sent, seen: s.length, lost, p50: pct(0.5), p99: pct(0.99), max: s.length ? s[s.length - 1] : NaN };
}

// The socket-to-socket part: when A's socket last sent a message, when B's socket last
// received one. The end-to-end figure also holds about 4 ms of client work at this
// machine's speed (A's change and its 1 ms throttle timer before the message leaves,
// B's decoding after it arrives), the same for either server; socket to socket leaves
// only the server and the loopback. The hooks are put back after a reconnect (a new
// socket) at each edit.
const wire = { receivedAt: 0, onSend: [] };
function hookSockets(adapterA, adapterB) {
  const sA = adapterA.socket;
  if (sA && !sA.benchHooked) {
    sA.benchHooked = true;
    const send = sA.send.bind(sA);
    sA.send = (...args) => {
      const now = performance.now();
      for (const f of wire.onSend.splice(0)) f(now);
      return send(...args);
    };
  }
  const sB = adapterB.socket;
  if (sB && !sB.benchHooked) {
    sB.benchHooked = true;
    // Before the adapter's own listener, which goes on to emit B's "change" event.
    sB.prependListener("message", () => (wire.receivedAt = performance.now()));
  }
}

// When A last edited: the next phase's first edit waits a full interval after it, or
// A's 100 ms sync throttle would hold that edit back (and add up to 100 ms).
let lastEditAt = -Infinity;

// Runs edits every `interval` ms until `keepGoing(i)` is false; returns the phase's stats
// and its timeline ([sent at, latency or null if lost] per edit; ms of performance.now(),
// to set beside the load's go and done times).
async function editPhase(a, b, interval, keepGoing, adapters) {
  const sentAt = new Map(); // edit number → performance.now() just before A's change
  const latencies = [];
  const timeline = [];
  const wireSentAt = new Map(); // edit number → when A's socket next sent (the change)
  const wireLatencies = [];
  let lost = 0;
  const onChange = ({ doc }) => {
    const now = performance.now();
    // A's changes are sequential, so a doc holding n holds every edit up to n: edits that
    // arrived together are all seen now.
    for (const [i, t] of sentAt) {
      if (i > doc.n) break;
      if (now - t <= LOST_MS) latencies.push(now - t);
      else lost++;
      timeline.push([Math.round(t), now - t <= LOST_MS ? +(now - t).toFixed(2) : null]);
      if (now - t <= LOST_MS && wireSentAt.has(i)) wireLatencies.push(wire.receivedAt - wireSentAt.get(i));
      sentAt.delete(i);
    }
  };
  b.on("change", onChange);
  const start = Math.max(performance.now(), lastEditAt + interval);
  let i = a.doc().n;
  let sent = 0;
  // Absolute schedule, so a late timer does not push every later edit back.
  for (let k = 0; keepGoing(k); k++) {
    const due = start + k * interval;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    hookSockets(...adapters);
    i++;
    lastEditAt = performance.now();
    sentAt.set(i, lastEditAt);
    a.change((d) => {
      d.n = i;
    });
    sent++;
    // The first message A's socket sends after this edit carries it (the next edit is
    // `interval` ms away; A sends right after its throttle timer).
    const edit = i;
    wire.onSend.push((t) => wireSentAt.set(edit, t));
  }
  // Let the last edits arrive, then count what is still missing as lost.
  await waitFor(() => sentAt.size === 0, LOST_MS + 100, "last edits", 10).catch(() => {});
  lost += sentAt.size;
  for (const t of sentAt.values()) timeline.push([Math.round(t), null]);
  b.off("change", onChange);
  wire.onSend.length = 0;
  const w = stats(wireLatencies, sent, lost);
  return { ...stats(latencies, sent, lost), socket: { p50: w.p50, p99: w.p99, max: w.max, n: w.seen }, timeline };
}

async function run(opts) {
  const interval = Number(opts.interval);
  const edits = Number(opts.edits);
  const result = { url: opts.url.replace(/token=[^&]*/, "token=…"), interval, phases: {} };
  const log = (x) => console.error(`latency_bench: ${JSON.stringify(x)}`);

  const adapters = [new WebSocketClientAdapter(opts.url, 1000), new WebSocketClientAdapter(opts.url, 1000)];
  const repoA = makeClient(opts.url, "a", adapters[0]);
  const repoB = makeClient(opts.url, "b", adapters[1]);
  await Promise.all([waitPeer(repoA), waitPeer(repoB)]);
  const a = repoA.create({ n: 0 });
  await waitServerHas(repoA, a, 10000, "A's document");
  const b = await withTimeout(repoB.find(a.url), 10000, "B finds A's document");
  // Warm-up (not counted): first messages, document loading on every side.
  await editPhase(a, b, interval, (k) => k < 10, adapters);

  result.phases.alone = await editPhase(a, b, interval, (k) => k < edits, adapters);
  const brief = ({ timeline, ...rest }) => rest;
  log({ alone: brief(result.phases.alone) });

  // Load: C and D connect and load their input first (between the phases), then get
  // "go" 1 s into the phase.
  // --load upload or --load open: one of the two alone (to see which costs what).
  const roles = opts.load.split(",");
  const kids = Object.fromEntries(roles.map((role) => [role, startChild(role, opts)]));
  await Promise.all(Object.values(kids).map((c) => c.next()));
  let loadDone = null; // performance.now() when C and D were both done
  const children = {};
  const finished = Promise.allSettled(
    Object.entries(kids).map(async ([role, c]) => {
      await sleep(1000);
      const done = c.next();
      const goAt = performance.now();
      c.proc.send({ go: true });
      const r = await done.catch((e) => ({ error: e.message }));
      children[role] = { ...r, goAt: Math.round(goAt), doneAt: Math.round(performance.now()) };
      log({ [role]: children[role] });
    }),
  ).then(() => (loadDone = performance.now()));
  result.phases.load = await editPhase(a, b, interval, (k) => k < edits || loadDone === null || performance.now() < loadDone + 3000, adapters);
  await finished;
  result.upload = children.upload;
  result.open = children.open;
  log({ load: brief(result.phases.load) });

  await Promise.all([closeClient(repoA), closeClient(repoB)]);
  writeFileSync(opts.out, JSON.stringify(result, null, 1));
}

// ---- table -----------------------------------------------------------------------

// The first-open files (optional): a run whose only load was D's open, on a fresh
// server over the folder as npm wrote it.
function table(cppFile, jsFile, cppFirstFile, jsFirstFile) {
  const cpp = JSON.parse(readFileSync(cppFile, "utf8"));
  const js = JSON.parse(readFileSync(jsFile, "utf8"));
  if (cppFirstFile && jsFirstFile) {
    cpp.firstOpen = JSON.parse(readFileSync(cppFirstFile, "utf8")).open;
    js.firstOpen = JSON.parse(readFileSync(jsFirstFile, "utf8")).open;
  }
  const ms = (x) => (x === undefined || Number.isNaN(x) ? "?" : x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const ratio = (a, b) => (a >= 0 && b > 0 ? (a / b).toFixed(2) : "–");
  const row = (label, f, fmt = ms) => `| ${label} | ${fmt(f(cpp))} | ${fmt(f(js))} | ${ratio(f(cpp), f(js))} |`;
  const failed = (r, role) => (r[role]?.error ? ` (FAILED: ${r[role].error})` : "");
  const lines = [
    "| edit latency, A → server → B | C++ ms | JS ms | ratio |",
    "|---|---|---|---|",
    row("alone p50", (r) => r.phases.alone.p50),
    row("alone p99", (r) => r.phases.alone.p99),
    row("alone max", (r) => r.phases.alone.max),
    row("under load p50", (r) => r.phases.load.p50),
    row("under load p99", (r) => r.phases.load.p99),
    row("under load max", (r) => r.phases.load.max),
    row("alone p50, socket to socket", (r) => r.phases.alone.socket.p50),
    row("alone p99, socket to socket", (r) => r.phases.alone.socket.p99),
    row("under load p99, socket to socket", (r) => r.phases.load.socket.p99),
    ...(cpp.firstOpen ? [row("big document, first open (written by npm)", (r) => r.firstOpen?.ms)] : []),
    row(`big document open (D)${failed(cpp, "open")}${failed(js, "open")}`, (r) => r.open?.ms),
    row(`text document upload (C)${failed(cpp, "upload")}${failed(js, "upload")}`, (r) => r.upload?.ms),
    row("lost edits (alone + load, count)", (r) => r.phases.alone.lost + r.phases.load.lost, String),
  ];
  lines.push("");
  lines.push(
    `Edits ${cpp.interval} ms apart; alone ${cpp.phases.alone.edits} / ${js.phases.alone.edits} edits, ` +
      `under load ${cpp.phases.load.edits} / ${js.phases.load.edits} (C++ / JS).`,
  );
  console.log(lines.join("\n"));
}

// ---- command line ------------------------------------------------------------------

const [cmd, ...rest] = process.argv.slice(2);
const usage =
  "usage: latency_bench.mjs prepare --data DIR --kind cpp|js [--chars N]\n" +
  "     | run --url WS_URL --big AUTOMERGE_URL --out FILE [--edits 150] [--interval 120] [--text FILE] [--load upload,open]\n" +
  "     | table CPP.json JS.json";
const options = {
  data: { type: "string" },
  kind: { type: "string" },
  chars: { type: "string", default: "4000000" },
  url: { type: "string" },
  big: { type: "string" },
  out: { type: "string" },
  edits: { type: "string", default: "150" },
  interval: { type: "string", default: "120" },
  text: { type: "string", default: DEFAULT_TEXT },
  load: { type: "string", default: "upload,open" },
};
if (cmd === "prepare") {
  const { values } = parseArgs({ args: rest, options });
  if (!values.data || !values.kind) throw new Error(usage);
  prepare(values);
} else if (cmd === "run") {
  const { values } = parseArgs({ args: rest, options });
  if (!values.url || !values.big || !values.out) {
    console.error(usage);
    process.exit(2);
  }
  // A hard bound on the whole run, whatever hangs.
  setTimeout(() => {
    console.error("latency_bench: the whole run exceeded 15 minutes");
    process.exit(1);
  }, 15 * 60 * 1000).unref();
  await run(values);
  process.exit(0);
} else if (cmd === "child") {
  const [role, ...args] = rest;
  await child(role, parseArgs({ args, options }).values);
} else if (cmd === "table") {
  table(...rest);
} else {
  console.error(usage);
  process.exit(2);
}
