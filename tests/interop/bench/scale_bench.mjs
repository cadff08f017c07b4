// The client side of the scale benchmark (scripts/bench-scale.sh, `make bench-scale`;
// not a test; issue 13). Everything on 127.0.0.1.
//
//   node scale_bench.mjs sockets --url URL --pid PID --count 10000 [--batch 200] [--settle 10] --out FILE
//        opens COUNT raw automerge-repo peers (`ws` + cbor-x, tests/e2e/lib/raw.mjs), each
//        joining with the token in URL until the server answers `peer`, keeps them idle,
//        and reads the server's VmRSS (/proc/PID/status) before the first and SETTLE
//        seconds after the last: memory per socket = growth / COUNT. Then closes them all
//        and reads it once more.
//   node scale_bench.mjs gen-docs --dir GROUP_FOLDER --docs N [--pool 1024] [--ids FILE]
//        writes N small documents (one snapshot each, as npm 2.5.6's NodeFS storage
//        saves a document it created) straight into a group's NodeFS folder, and the
//        store's storage-adapter-id; the document URLs go to FILE, one a line. Making
//        a document with npm takes about 1 ms, so POOL distinct ones are made and each
//        is stored under N / POOL document ids (each id its own folder and file).
//   node scale_bench.mjs startup --cmd JSON_ARGV --runs 5 [--token T] [--cwd DIR] --out FILE
//        starts the server ARGV (JSON array) RUNS times, each until it accepts a TCP
//        connection on the port of its "listening on …:PORT" line, then SIGTERM: the time
//        from spawn to the listening line, and to the first accepted connection; with
//        --token, also how long the group's first socket takes to join (raw peer).
//   node scale_bench.mjs first-sync --url URL --doc URL,URL,… --out FILE
//        on a freshly started server: fresh automerge-repo 2.5.6 clients (no storage,
//        each its own socket) find the 1st document (in this process's cold start, the
//        group's first socket) and the 2nd–5th until ready: ms from `new Repo` to ready;
//        raw peers ask for the rest: ms from the request to the server's answer.
//   node scale_bench.mjs table --dir WORK --kinds "cpp js" --counts "1000 10000 100000"
//        the two markdown tables of the README from the JSON files bench-scale.sh wrote
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import * as A from "@automerge/automerge";
import { Repo, generateAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { joinRaw, WebSocket, encode, decode } = await import(path.resolve(HERE, "../../e2e/lib/raw.mjs"));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: "string" },
    pid: { type: "string" },
    count: { type: "string", default: "10000" },
    batch: { type: "string", default: "200" },
    settle: { type: "string", default: "10" },
    out: { type: "string" },
    dir: { type: "string" },
    docs: { type: "string" },
    ids: { type: "string" },
    cmd: { type: "string" },
    cwd: { type: "string" },
    runs: { type: "string", default: "5" },
    doc: { type: "string" },
    token: { type: "string" },
    label: { type: "string", default: "" },
    pool: { type: "string", default: "1024" },
    kinds: { type: "string", default: "cpp js" },
    counts: { type: "string", default: "1000 10000 100000" },
  },
});
const command = positionals[0];

function writeOut(result) {
  const text = JSON.stringify(result, null, 1);
  if (values.out) fs.writeFileSync(values.out, text + "\n");
  console.log(JSON.stringify(result));
}

function procStatus(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  return { rssKb: kb("VmRSS"), anonKb: kb("RssAnon"), threads: Number(/^Threads:\s+(\d+)/m.exec(text)?.[1]) };
}
const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;

// ---- sockets ------------------------------------------------------------------------

async function sockets() {
  const pid = Number(values.pid);
  const count = Number(values.count);
  const batch = Number(values.batch);
  const before = procStatus(pid);
  const fdBefore = fdCount(pid);
  const peers = [];
  const t0 = now();
  let failures = 0;
  while (peers.length < count) {
    const n = Math.min(batch, count - peers.length);
    const settled = await Promise.allSettled(
      Array.from({ length: n }, (_, i) => joinRaw(values.url, { peerId: `scale-${peers.length + i}`, ms: 30000 })),
    );
    for (const s of settled) {
      if (s.status === "fulfilled") peers.push(s.value);
      else if (++failures <= 5) console.error(`join failed: ${s.reason?.message ?? s.reason}`);
    }
    if (failures > count / 100) throw new Error(`${failures} joins failed; stopping`);
    if (peers.length % 2000 < batch) console.error(`${peers.length} sockets joined (${((now() - t0) / 1000).toFixed(1)} s)`);
  }
  const openSeconds = (now() - t0) / 1000;
  // Each peer keeps what the server sent it: let go of it, the sockets stay open.
  for (const p of peers) p.frames.length = 0;
  await sleep(Number(values.settle) * 1000);
  const open = peers.filter((p) => !p.closed).length;
  const after = procStatus(pid);
  const fdAfter = fdCount(pid);
  for (const p of peers) p.close();
  await sleep(5000);
  const closed = procStatus(pid);
  const fdClosed = fdCount(pid);
  writeOut({
    label: values.label,
    count,
    open_after_settle: open,
    failures,
    open_seconds: openSeconds,
    rss_before_kb: before.rssKb,
    rss_after_kb: after.rssKb,
    rss_closed_kb: closed.rssKb,
    anon_before_kb: before.anonKb,
    anon_after_kb: after.anonKb,
    kib_per_socket: (after.rssKb - before.rssKb) / count,
    fd_before: fdBefore,
    fd_after: fdAfter,
    fd_closed: fdClosed,
    threads: after.threads,
  });
  process.exit(0);
}

// ---- gen-docs -----------------------------------------------------------------------

// One small document per id: a map with a title, a number and a short list, made by one
// change of its own actor, saved whole (a document chunk), under
// <dir>/<id[0..2]>/<id[2..]>/snapshot/<headsHash> as npm's NodeFS storage names it.
function genDocs() {
  const dir = path.resolve(values.dir);
  const n = Number(values.docs);
  fs.mkdirSync(path.join(dir, "st"), { recursive: true });
  const sidFile = path.join(dir, "st", "orage-adapter-id");
  if (!fs.existsSync(sidFile)) fs.writeFileSync(sidFile, crypto.randomUUID());
  const t0 = now();
  const pool = [];
  for (let i = 0; i < Math.min(n, Number(values.pool)); i++) {
    const doc = A.from({ title: `document ${i}`, n: i, tags: ["scale", String(i % 97)] });
    const hash = crypto.createHash("sha256").update(A.getHeads(doc).join("")).digest("hex");
    pool.push({ bytes: A.save(doc), hash });
  }
  const urls = [];
  const shards = new Set();
  for (let i = 0; i < n; i++) {
    const url = generateAutomergeUrl();
    const { documentId } = parseAutomergeUrl(url);
    const { bytes, hash } = pool[i % pool.length];
    const shard = path.join(dir, documentId.slice(0, 2));
    if (!shards.has(shard)) {
      fs.mkdirSync(shard, { recursive: true });
      shards.add(shard);
    }
    const docDir = path.join(shard, documentId.slice(2));
    fs.mkdirSync(docDir);
    fs.mkdirSync(path.join(docDir, "snapshot"));
    fs.writeFileSync(path.join(docDir, "snapshot", hash), bytes);
    urls.push(url);
    if ((i + 1) % 20000 === 0) console.error(`${i + 1} documents written (${((now() - t0) / 1000).toFixed(1)} s)`);
  }
  if (values.ids) fs.writeFileSync(values.ids, urls.join("\n") + "\n");
  console.error(`${n} documents in ${((now() - t0) / 1000).toFixed(1)} s`);
}

// ---- startup ------------------------------------------------------------------------

function tryConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

async function startOnce(argv) {
  const t0 = now();
  const child = spawn(argv[0], argv.slice(1), { cwd: values.cwd, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal)));
  const port = await new Promise((resolve, reject) => {
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on [a-z]+:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${err}`)));
  });
  const listeningMs = now() - t0;
  while (!(await tryConnect(port))) await sleep(1);
  const acceptingMs = now() - t0;
  const rssKb = procStatus(child.pid).rssKb;
  // The group's first socket: the server opens the group's store then.
  let firstJoinMs = null;
  if (values.token) {
    const p = await rawPeer(`ws://127.0.0.1:${port}/?token=${values.token}`);
    firstJoinMs = p.joinMs;
    p.ws.terminate();
  }
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15000);
  await exited;
  clearTimeout(timer);
  return { listeningMs, acceptingMs, firstJoinMs, rssKb };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function startup() {
  const argv = JSON.parse(values.cmd);
  const runs = [];
  for (let i = 0; i < Number(values.runs); i++) runs.push(await startOnce(argv));
  writeOut({
    label: values.label,
    runs,
    listening_ms_median: median(runs.map((r) => r.listeningMs)),
    accepting_ms_median: median(runs.map((r) => r.acceptingMs)),
    accepting_ms_max: Math.max(...runs.map((r) => r.acceptingMs)),
    first_join_ms_median: values.token ? median(runs.map((r) => r.firstJoinMs)) : null,
  });
}

// ---- first-sync ---------------------------------------------------------------------

// A fresh 2.5.6 client (its own Repo, no storage, a new socket) finds `doc` by URL:
// ms from `new Repo` to ready, and from the server's `peer` message to ready.
async function findFresh(url, doc, peerId) {
  const t0 = now();
  const adapter = new WebSocketClientAdapter(url, 250);
  const repo = new Repo({ network: [adapter], peerId });
  let peerMs = null;
  repo.networkSubsystem.on("peer", () => (peerMs ??= now() - t0));
  let handle;
  try {
    handle = await repo.find(doc);
  } catch (e) {
    // 2.5.6 rejects find() when no peer has the document, also when the server has not
    // answered `join` yet: its adapter stops waiting for the `peer` message after 1 s.
    const ms = now() - t0;
    await repo.shutdown();
    console.error(`find(${doc}) failed after ${ms.toFixed(0)} ms (peer message after ${peerMs?.toFixed(0) ?? "none yet"}): ${e.message}`);
    return { doc, failed: e.message, failed_ms: ms, peer_ms: peerMs };
  }
  const readyMs = now() - t0;
  const value = handle.doc();
  if (typeof value?.title !== "string") throw new Error(`${doc} has no title: ${JSON.stringify(value)}`);
  await repo.shutdown();
  return { doc, ready_ms: readyMs, peer_ms: peerMs, after_peer_ms: readyMs - peerMs };
}

// A raw peer, timed on its socket's events (joinRaw polls every 20 ms): opens `url`,
// joins; resolves { ws, serverPeerId, peerId, joinMs, next(pred) }.
function rawPeer(url, ms = 60000) {
  const t0 = now();
  const ws = new WebSocket(url);
  const peerId = `scale-raw-${Math.random().toString(36).slice(2, 10)}`;
  const waiting = [];
  ws.on("message", (data) => {
    const m = decode(Buffer.isBuffer(data) ? data : Buffer.concat(data));
    const i = waiting.findIndex((w) => w.pred(m));
    if (i >= 0) waiting.splice(i, 1)[0].resolve(m);
  });
  const next = (pred, what) =>
    new Promise((resolve, reject) => {
      waiting.push({ pred, resolve });
      ws.once("close", () => reject(new Error(`closed while waiting for ${what}`)));
      setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms).unref();
    });
  return new Promise((resolve, reject) => {
    ws.on("error", reject);
    ws.on("open", () => {
      const joined = next((m) => m.type === "peer", "peer message");
      ws.send(encode({ type: "join", senderId: peerId, peerMetadata: { isEphemeral: true }, supportedProtocolVersions: ["1"] }));
      joined.then((m) => resolve({ ws, peerId, serverPeerId: m.senderId, joinMs: now() - t0, next }), reject);
    });
  });
}

// A raw peer joins and asks for `doc` as a client with nothing does: ms from the
// request leaving to the server's answer arriving (the server and loopback only).
async function rawRequest(url, doc) {
  const p = await rawPeer(url);
  const documentId = parseAutomergeUrl(doc).documentId;
  const data = A.generateSyncMessage(A.init(), A.initSyncState())[1];
  const t1 = now();
  const answer = p.next((m) => m.documentId === documentId, `the answer for ${doc}`);
  p.ws.send(encode({ type: "request", senderId: p.peerId, targetId: p.serverPeerId, documentId, data }));
  const reply = await answer;
  const replyMs = now() - t1;
  p.ws.terminate();
  if (reply.type !== "sync") throw new Error(`${doc}: ${reply.type}`);
  return { doc, join_ms: p.joinMs, reply_ms: replyMs };
}

// On a freshly started server, with documents DOCS (comma-separated URLs): the first
// through a fresh client in this fresh process (the group's first socket, and node's
// own cold start: its code not yet compiled), the next 4 through fresh clients in
// this now warm process, the rest through raw peers.
async function firstSync() {
  const docs = values.doc.split(",");
  const cold = await findFresh(values.url, docs[0], `scale-first-${process.pid}`);
  // If that failed, the next clients wait until the server answers a join again.
  if (cold.failed) {
    const t0 = now();
    (await rawPeer(values.url, 120000)).ws.terminate();
    cold.joinable_after_ms = cold.failed_ms + (now() - t0);
  }
  const warm = [];
  for (const d of docs.slice(1, 5)) warm.push(await findFresh(values.url, d, `scale-warm-${process.pid}-${warm.length}`));
  const raw = [];
  for (const d of docs.slice(5)) raw.push(await rawRequest(values.url, d));
  writeOut({
    label: values.label,
    cold,
    warm,
    raw,
    warm_ready_ms_median: median(warm.map((r) => r.ready_ms)),
    warm_ready_ms_max: Math.max(...warm.map((r) => r.ready_ms)),
    warm_after_peer_ms_median: median(warm.map((r) => r.after_peer_ms)),
    raw_reply_ms_median: median(raw.map((r) => r.reply_ms)),
    raw_join_ms_median: median(raw.map((r) => r.join_ms)),
  });
  process.exit(0);
}

// ---- table --------------------------------------------------------------------------

function table() {
  const dir = values.dir;
  const kinds = values.kinds.split(" ").filter(Boolean);
  const read = (name) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, name), "utf8"));
    } catch {
      return null;
    }
  };
  const fmt = (x, digits = 1) => (x == null || Number.isNaN(x) ? "–" : x.toFixed(digits));
  const ratio = (a, b) => (a == null || b == null || !b ? "–" : (a / b).toFixed(2));
  const row = (label, values2, digits = 1, withRatio = true) =>
    console.log(`| ${label} | ${values2.map((v) => fmt(v, digits)).join(" | ")}${kinds.length > 1 ? ` | ${withRatio ? ratio(values2[0], values2[1]) : "–"}` : ""} |`);
  const head = (first, cols) => {
    const all = [first, ...cols, ...(kinds.length > 1 ? ["ratio"] : [])];
    console.log(`| ${all.join(" | ")} |\n|${all.map(() => "---").join("|")}|`);
  };
  const names = { cpp: "C++", js: "JS" };
  const sock = kinds.map((k) => read(`sockets-${k}.json`));
  if (sock.some(Boolean)) {
    head(`${sock.find(Boolean).count} idle joined sockets`, kinds.map((k) => names[k]));
    const mib = (x) => (x == null ? null : x / 1024);
    row("open after the settle", sock.map((r) => r?.open_after_settle), 0, false);
    row("server RSS before, MiB", sock.map((r) => mib(r?.rss_before_kb)));
    row("server RSS with the sockets, MiB", sock.map((r) => mib(r?.rss_after_kb)));
    row("**memory per socket, KiB**", sock.map((r) => r?.kib_per_socket));
    row("server RSS once they closed, MiB", sock.map((r) => mib(r?.rss_closed_kb)));
    row("time to open and join them all, s", sock.map((r) => r?.open_seconds));
    console.log();
  }
  const counts = values.counts.split(" ").filter(Boolean);
  console.log("| documents in the group | server | start-up ms | the group's first socket joins, ms | " +
    "first sync, fresh client in a fresh process, ms | first sync, fresh client (median of 4), ms | " +
    "server's answer to a request (median of 5), ms |\n|---|---|---|---|---|---|---|");
  for (const n of counts) {
    for (const k of kinds) {
      const st = read(`startup-${k}-${n}.json`);
      const fs1 = read(`first-${k}-${n}.json`);
      const cells = [st?.accepting_ms_median, st?.first_join_ms_median, fs1?.cold?.ready_ms,
        fs1?.warm_ready_ms_median, fs1?.raw_reply_ms_median].map((x) => fmt(x));
      if (fs1?.cold?.failed) cells[2] = `unavailable after ${fmt(fs1.cold.failed_ms, 0)}`;
      console.log(`| ${Number(n).toLocaleString("en")} | ${names[k]} | ${cells.join(" | ")} |`);
    }
  }
}

const commands = { sockets, "gen-docs": genDocs, startup, "first-sync": firstSync, table };
if (!commands[command]) {
  console.error(`usage: node scale_bench.mjs ${Object.keys(commands).join("|")} …`);
  process.exit(2);
}
await commands[command]();
