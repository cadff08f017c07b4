// The client side of the server benchmark (scripts/bench-server.sh, part of `make
// bench`; not a test). Real npm @automerge/automerge-repo 2.5.6 clients
// (WebSocketClientAdapter) drive one sync server through fixed workloads while this
// process reads the SERVER's CPU time and memory from /proc:
//
//   node server_bench.mjs run --url ws://127.0.0.1:P/?token=T --pid PID --out FILE
//        [--docs 500] [--changes 20] [--clients 50] [--text FILE] [--idle 20] [--idle-late 60]
//        [--only PHASE,…]   (just those phases, for profiling one)
//   node server_bench.mjs merge OUT.json RUN.json…   the phases of several runs (each on a
//        fresh server) as one result, without their idle part
//   node server_bench.mjs table CPP.json JS.json [CPP_DATA_KB JS_DATA_KB]   the markdown table
//
// Phases (each bounded by a timeout; everything on 127.0.0.1):
//   a-push   one client creates --docs documents of --changes changes each and waits
//            until the server has acknowledged every one (sync heads = local heads)
//   a-fetch  a fresh client finds all of them and waits until each has every change
//   b        --clients concurrent clients each create and sync a document, then each
//            reads another client's document
//   c-push   one client imports a large text document (--text, default
//            text-doc-50k.amrg: 50,001 single-character edits) and pushes it
//   c-fetch  a fresh client fetches it
//   d        every client gone; the server's RSS --idle seconds later vs at start (and
//            again at --idle-late seconds, after the servers' idle unloading)
//
// Per phase: CPU seconds = time on a CPU of all the server's threads (schedstat, in
// ns) after minus before (the clients' own CPU time, this process, is listed too: wall
// times depend on it); peak RSS growth = the phase's high-water mark minus VmRSS at
// the phase start. The high-water
// mark is VmHWM after resetting it at the phase start (`5` > /proc/PID/clear_refs);
// where that is refused, the largest VmRSS seen by sampling every 20 ms.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { execSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { parseArgs } from "node:util";
import { Repo, decodeHeads } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import * as A from "@automerge/automerge";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_TEXT = path.resolve(HERE, "../../../../shared/data/automerge-perf/text-doc-50k.amrg");

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

// ---- the server process, seen through /proc -------------------------------------

const CLOCK_TICKS = Number(execSync("getconf CLK_TCK").toString().trim()) || 100;

class ServerProcess {
  constructor(pid) {
    this.pid = pid;
    this.canResetPeak = true;
    this.sampledPeakKb = 0;
    this.sampler = null;
  }
  // CPU seconds (user + system) used so far: the sum over the process's threads of
  // their time on a CPU in nanoseconds (/proc/PID/task/*/schedstat), since utime and
  // stime count 10 ms clock ticks, too coarse for the short phases; where schedstat
  // is missing, those ticks.
  cpuSeconds() {
    try {
      let ns = 0;
      for (const task of readdirSync(`/proc/${this.pid}/task`)) {
        try {
          ns += Number(readFileSync(`/proc/${this.pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
        } catch {} // a thread that ended meanwhile
      }
      if (ns > 0) return ns / 1e9;
    } catch {}
    const stat = readFileSync(`/proc/${this.pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  }
  status() {
    const text = readFileSync(`/proc/${this.pid}/status`, "utf8");
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
    return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM") };
  }
  // Starts a peak-RSS window: reset VmHWM to the current RSS, and sample as a fallback.
  beginPeak() {
    if (this.canResetPeak) {
      try {
        writeFileSync(`/proc/${this.pid}/clear_refs`, "5");
      } catch {
        this.canResetPeak = false;
      }
    }
    this.sampledPeakKb = this.status().rssKb;
    this.sampler = setInterval(() => {
      try {
        this.sampledPeakKb = Math.max(this.sampledPeakKb, this.status().rssKb);
      } catch {}
    }, 20);
  }
  endPeak() {
    clearInterval(this.sampler);
    const { rssKb, hwmKb } = this.status();
    const sampled = Math.max(this.sampledPeakKb, rssKb);
    return this.canResetPeak ? Math.max(hwmKb, sampled) : sampled;
  }
}

// ---- clients ------------------------------------------------------------------

let clientCount = 0;
const openClients = new Set();

function makeClient(url) {
  const adapter = new WebSocketClientAdapter(url, 1000);
  const repo = new Repo({
    network: [adapter],
    peerId: `bench-client-${++clientCount}-${Math.random().toString(36).slice(2, 8)}`,
  });
  const client = { repo, adapter };
  openClients.add(client);
  return client;
}

async function closeClient(client) {
  openClients.delete(client);
  await withTimeout(client.repo.shutdown(), 10000, "client repo shutdown").catch(() => {});
}

async function waitPeer(client, ms = 10000) {
  await waitFor(() => client.repo.peers.length > 0, ms, `${client.repo.peerId}: peer message from the server`);
}

function serverStorageId(client) {
  const peer = client.repo.peers[0];
  return peer ? client.repo.peerMetadataByPeerId[peer]?.storageId : undefined;
}

const sortedHeads = (doc) => [...A.getHeads(doc)].sort().join(",");

// True once the server's last sync message says it has every change of `handle`.
function ackedByServer(client, handle, storageId) {
  if (!handle.isReady()) return false;
  const info = handle.getSyncInfo(storageId);
  if (!info) return false;
  // SyncInfo.lastHeads are URL heads (bs58check); decodeHeads gives hex hashes.
  return [...decodeHeads(info.lastHeads)].sort().join(",") === sortedHeads(handle.doc());
}

// Waits until the server acknowledged every handle (needs the server's storageId in its
// `peer` message; without one, waits 2 s).
async function waitServerHasAll(client, handles, ms, what) {
  const storageId = serverStorageId(client);
  if (!storageId) {
    console.error(`note: the server sent no storageId; waiting 2 s instead of acknowledgements (${what})`);
    await sleep(2000);
    return;
  }
  let pending = handles;
  await waitFor(
    () => {
      pending = pending.filter((h) => !ackedByServer(client, h, storageId));
      return pending.length === 0;
    },
    ms,
    `${what}: server acknowledgement (${handles.length - pending.length}/${handles.length} acknowledged)`,
    100,
  );
}

// find() each id and wait until its heads equal `expected[i]`.
async function fetchAll(client, ids, expected, ms, what) {
  const deadline = Date.now() + ms;
  let ready = 0;
  const handles = await withTimeout(
    Promise.all(
      ids.map(async (id) => {
        const h = await client.repo.find(id);
        ready++;
        return h;
      }),
    ),
    ms,
    `${what}: find() (${ids.length} documents)`,
  ).catch((e) => {
    throw new Error(`${e.message}; ${ready}/${ids.length} were ready`);
  });
  let missing = handles.map((_, i) => i);
  await waitFor(
    () => {
      missing = missing.filter((i) => sortedHeads(handles[i].doc()) !== expected[i]);
      return missing.length === 0;
    },
    Math.max(1000, deadline - Date.now()),
    `${what}: every change arrives (${ids.length - missing.length}/${ids.length} complete)`,
    100,
  );
  return handles;
}

// ---- phases -------------------------------------------------------------------

async function phaseManyDocsPush(url, state, { docs, changes }) {
  const client = makeClient(url);
  await waitPeer(client);
  const handles = [];
  for (let i = 0; i < docs; i++) {
    const h = client.repo.create();
    for (let j = 0; j < changes; j++) {
      h.change((d) => {
        if (j === 0) {
          d.title = `document ${i}`;
          d.items = [];
        }
        d.count = j;
        d.items.push({ n: j, label: `item ${j} of document ${i}` });
      });
    }
    handles.push(h);
  }
  await waitServerHasAll(client, handles, 300000, `a-push: ${docs} documents`);
  state.aIds = handles.map((h) => h.url);
  state.aHeads = handles.map((h) => sortedHeads(h.doc()));
  await closeClient(client);
}

async function phaseManyDocsFetch(url, state) {
  // A failed push leaves nothing to fetch; the other phases still run.
  if (!state.aIds) throw new Error("skipped: a-push failed");
  const client = makeClient(url);
  await waitPeer(client);
  const handles = await fetchAll(client, state.aIds, state.aHeads, 300000, "a-fetch");
  const changes = handles.reduce((n, h) => n + A.getAllChanges(h.doc()).length, 0);
  await closeClient(client);
  return { documents: handles.length, changes };
}

async function phaseManyClients(url, { clients: count }) {
  const clients = Array.from({ length: count }, () => makeClient(url));
  await Promise.all(clients.map((c) => waitPeer(c, 30000)));
  const own = clients.map((c, i) => {
    const h = c.repo.create({ owner: i, notes: [] });
    for (let j = 0; j < 5; j++) h.change((d) => d.notes.push(`note ${j} from client ${i}`));
    return h;
  });
  await Promise.all(clients.map((c, i) => waitServerHasAll(c, [own[i]], 120000, `b: client ${i}'s document`)));
  const heads = own.map((h) => sortedHeads(h.doc()));
  await Promise.all(
    clients.map((c, i) => {
      const other = (i + 1) % count;
      return fetchAll(c, [own[other].url], [heads[other]], 120000, `b: client ${i} reads client ${other}'s document`);
    }),
  );
  await Promise.all(clients.map(closeClient));
  return { clients: count };
}

async function phaseTextPush(url, state, { text }) {
  const bytes = readFileSync(text);
  const client = makeClient(url);
  await waitPeer(client);
  const h = client.repo.import(A.save(A.load(bytes)));
  await withTimeout(h.whenReady(), 60000, "c-push: import");
  await waitServerHasAll(client, [h], 600000, "c-push: the text document");
  state.cId = h.url;
  state.cHeads = sortedHeads(h.doc());
  state.cChanges = A.getAllChanges(h.doc()).length;
  await closeClient(client);
  return { changes: state.cChanges, bytes: bytes.length };
}

async function phaseTextFetch(url, state) {
  if (!state.cId) throw new Error("skipped: c-push failed");
  const client = makeClient(url);
  await waitPeer(client);
  const [h] = await fetchAll(client, [state.cId], [state.cHeads], 600000, "c-fetch");
  const chars = String(h.doc().text ?? "").length;
  await closeClient(client);
  return { chars };
}

// ---- driver ---------------------------------------------------------------------

async function run(opts) {
  const server = new ServerProcess(Number(opts.pid));
  const url = opts.url;
  const state = {};
  const kb = (n) => Math.round(n);
  const startRssKb = server.status().rssKb;
  const result = { url: url.replace(/token=[^&]*/, "token=…"), startRssKb, phases: [] };

  const phases = [
    ["a-push", `${opts.docs} documents × ${opts.changes} changes pushed by one client`, () => phaseManyDocsPush(url, state, opts)],
    ["a-fetch", `the ${opts.docs} documents fetched by a fresh client`, () => phaseManyDocsFetch(url, state)],
    ["b", `${opts.clients} concurrent clients: create + sync own document, read another's`, () => phaseManyClients(url, opts)],
    ["c-push", `large text document (${path.basename(opts.text)}) pushed by one client`, () => phaseTextPush(url, state, opts)],
    ["c-fetch", "the large text document fetched by a fresh client", () => phaseTextFetch(url, state)],
  ];
  for (const [name, what, fn] of phases) {
    // --only a-push,b: run just those phases (profiling one phase; not for reports).
    if (opts.only && !opts.only.split(",").includes(name)) continue;
    const before = server.status().rssKb;
    const cpu0 = server.cpuSeconds();
    server.beginPeak();
    const t0 = performance.now();
    const client0 = process.cpuUsage();
    let info;
    let error;
    try {
      info = await fn();
    } catch (e) {
      error = e.message;
    }
    const ms = performance.now() - t0;
    const peakKb = server.endPeak();
    const phase = {
      name,
      what,
      ok: !error,
      error,
      wallS: ms / 1000,
      cpuS: server.cpuSeconds() - cpu0,
      // This process (all the clients), for reading the wall times.
      clientCpuS: ((c) => (c.user + c.system) / 1e6)(process.cpuUsage(client0)),
      rssBeforeKb: kb(before),
      peakKb: kb(peakKb),
      peakGrowthKb: kb(peakKb - before),
      rssAfterKb: server.status().rssKb,
      info,
    };
    result.phases.push(phase);
    console.error(JSON.stringify(phase));
  }
  await Promise.all([...openClients].map(closeClient));

  // d: idle memory after every client left.
  const cpu0 = server.cpuSeconds();
  const leftRssKb = server.status().rssKb;
  await sleep(opts.idle * 1000);
  const idleRssKb = server.status().rssKb;
  // Servers unload idle documents on their own schedule; a later look shows whether
  // memory comes back after that.
  const lateSeconds = Math.max(opts.idle, opts.idleLate);
  await sleep((lateSeconds - opts.idle) * 1000);
  result.idle = {
    seconds: opts.idle,
    leftRssKb,
    idleRssKb,
    lateSeconds,
    lateRssKb: server.status().rssKb,
    // VmHWM is reset per phase, so the run's peak is the largest phase peak.
    peakKb: Math.max(server.status().hwmKb, ...result.phases.map((p) => p.peakKb)),
    cpuS: server.cpuSeconds() - cpu0,
  };
  console.error(JSON.stringify({ idle: result.idle }));
  writeFileSync(opts.out, JSON.stringify(result, null, 1));
}

// ---- merge ----------------------------------------------------------------------

function merge(out, ...files) {
  const runs = files.map((f) => JSON.parse(readFileSync(f, "utf8")));
  const merged = {
    runs: runs.map((r) => ({ url: r.url, startRssKb: r.startRssKb })),
    phases: runs.flatMap((r) => r.phases),
  };
  writeFileSync(out, JSON.stringify(merged, null, 1));
}

// ---- table ----------------------------------------------------------------------

function table(cppFile, jsFile, ...dataKb) {
  dataKb = dataKb.map(Number);
  const cpp = JSON.parse(readFileSync(cppFile, "utf8"));
  const js = JSON.parse(readFileSync(jsFile, "utf8"));
  const mib = (k) => (k / 1024).toFixed(1);
  // Ratios of near-zero amounts say nothing: "–" when the JS side is under 0.05 CPU s
  // or 1 MiB.
  const ratio = (a, b, floor) => (b >= floor ? (a / b).toFixed(2) : "–");
  const lines = [];
  lines.push("| phase | C++ CPU s | JS CPU s | CPU ratio | C++ peak RSS growth MiB | JS peak RSS growth MiB | RSS growth ratio | C++ wall s | JS wall s | clients CPU s (vs C++ / vs JS) |");
  lines.push("|---|---|---|---|---|---|---|---|---|---|");
  for (const p of cpp.phases) {
    const q = js.phases.find((x) => x.name === p.name);
    const failed = [p.ok ? null : `C++ FAILED: ${p.error}`, q?.ok ? null : `JS FAILED: ${q?.error ?? "missing"}`].filter(Boolean);
    const label = `${p.name}: ${p.what}${failed.length ? ` (${failed.join("; ")})` : ""}`;
    lines.push(
      `| ${label} | ${p.cpuS.toFixed(3)} | ${q ? q.cpuS.toFixed(3) : "?"} | ${q ? ratio(p.cpuS, q.cpuS, 0.05) : "?"} | ` +
        `${mib(p.peakGrowthKb)} | ${q ? mib(q.peakGrowthKb) : "?"} | ${q ? ratio(Math.max(p.peakGrowthKb, 0), q.peakGrowthKb, 1024) : "?"} | ` +
        `${p.wallS.toFixed(1)} | ${q ? q.wallS.toFixed(1) : "?"} | ` +
        `${p.clientCpuS?.toFixed(2) ?? "?"} / ${q?.clientCpuS?.toFixed(2) ?? "?"} |`,
    );
  }
  const total = (r) => r.phases.reduce((s, p) => s + p.cpuS, 0);
  lines.push(`| all phases (a–c) | ${total(cpp).toFixed(2)} | ${total(js).toFixed(2)} | ${ratio(total(cpp), total(js), 0.05)} | | | | | | |`);
  if (!cpp.idle || !js.idle) {
    const starts = (r) => r.runs.map((x) => mib(x.startRssKb)).join(", ");
    lines.push("");
    lines.push(`RSS at each fresh start (MiB): C++ ${starts(cpp)}; JS ${starts(js)}.`);
    console.log(lines.join("\n"));
    return;
  }
  lines.push("");
  lines.push(`| d: server RSS (MiB) | C++ | JS |`);
  lines.push("|---|---|---|");
  lines.push(`| at start (before a-push) | ${mib(cpp.startRssKb)} | ${mib(js.startRssKb)} |`);
  lines.push(`| peak over the run | ${mib(cpp.idle.peakKb)} | ${mib(js.idle.peakKb)} |`);
  lines.push(`| when the last client left | ${mib(cpp.idle.leftRssKb)} | ${mib(js.idle.leftRssKb)} |`);
  lines.push(`| ${cpp.idle.seconds} s later (idle) | ${mib(cpp.idle.idleRssKb)} | ${mib(js.idle.idleRssKb)} |`);
  lines.push(
    `| ${cpp.idle.seconds} s idle minus start | ${mib(cpp.idle.idleRssKb - cpp.startRssKb)} | ${mib(js.idle.idleRssKb - js.startRssKb)} |`,
  );
  if (cpp.idle.lateSeconds > cpp.idle.seconds) {
    lines.push(`| ${cpp.idle.lateSeconds} s later (idle) | ${mib(cpp.idle.lateRssKb)} | ${mib(js.idle.lateRssKb)} |`);
  }
  if (dataKb.length === 2) lines.push(`| document files after the run (sum of file sizes) | ${mib(dataKb[0])} | ${mib(dataKb[1])} |`);
  console.log(lines.join("\n"));
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === "run") {
  const { values } = parseArgs({
    args: rest,
    options: {
      url: { type: "string" },
      pid: { type: "string" },
      out: { type: "string" },
      docs: { type: "string", default: "500" },
      changes: { type: "string", default: "20" },
      clients: { type: "string", default: "50" },
      text: { type: "string", default: DEFAULT_TEXT },
      idle: { type: "string", default: "20" },
      "idle-late": { type: "string", default: "60" },
      only: { type: "string" },
    },
  });
  if (!values.url || !values.pid || !values.out) {
    console.error("usage: server_bench.mjs run --url URL --pid PID --out FILE [--docs N] [--changes N] [--clients N] [--text FILE] [--idle S] [--idle-late S] [--only PHASE,…]");
    process.exit(2);
  }
  const opts = {
    ...values,
    docs: Number(values.docs),
    changes: Number(values.changes),
    clients: Number(values.clients),
    idle: Number(values.idle),
    idleLate: Number(values["idle-late"]),
  };
  // A hard bound on the whole run, whatever hangs.
  setTimeout(() => {
    console.error("server_bench: the whole run exceeded 30 minutes");
    process.exit(1);
  }, 30 * 60 * 1000).unref();
  await run(opts);
  process.exit(0);
} else if (cmd === "merge") {
  merge(...rest);
} else if (cmd === "table") {
  table(...rest);
} else {
  console.error("usage: server_bench.mjs run --url URL --pid PID --out FILE … | merge OUT.json RUN.json… | table CPP.json JS.json");
  process.exit(2);
}
