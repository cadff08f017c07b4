// The client side of the soak (scripts/soak.sh, `make soak`; not a test; issue 13).
// Real automerge-repo clients connect, edit and leave for --minutes while this process
// samples the SERVER's memory and open file descriptors from /proc every --sample s:
//
//   node soak.mjs --url ws://127.0.0.1:P/?token=T --pid PID --out FILE
//        [--minutes 30] [--sample 10] [--concurrency 4] [--v1-every 4] [--settle 40]
//
// --concurrency loops run sessions back to back (a pause of 0–500 ms between them).
// A session is one client: every --v1-every-th a 1.2.1 client (tests/interop/repo1,
// as today's Groundmist apps), the others 2.5.6. It joins, creates 1–3 documents and
// opens one document an earlier session made (once there are some: loaded again from
// the server's disk when it was unloaded), makes 5 edits to each, 20–80 ms apart (its
// own key in each document, so the end state is known), waits until the server has
// acknowledged every change (its sync heads = the client's), and leaves. After
// --minutes no new session starts; once the last has left, the server is left idle for
// --settle s (documents are unloaded after 10 s idle by default) and sampled again.
// Then a fresh 2.5.6 client opens up to 100 documents and checks that every edit of
// every session that completed is there ("lost edits").
//
// Output (FILE, JSON): the samples { t, rss_kb, fds, threads, sessions }, the
// baseline (before the first client) and final (after the settle) fd counts, the
// mean RSS over 20–40% and over 80–100% of the client phase, sessions completed and
// failed, lost edits. A summary line goes to stdout.
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { makeClient } = await import(path.resolve(HERE, "../../e2e/lib/clients.mjs"));

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    pid: { type: "string" },
    out: { type: "string" },
    minutes: { type: "string", default: "30" },
    sample: { type: "string", default: "10" },
    concurrency: { type: "string", default: "4" },
    "v1-every": { type: "string", default: "4" },
    settle: { type: "string", default: "40" },
  },
});
if (!values.url || !values.pid) {
  console.error("usage: node soak.mjs --url URL --pid PID --out FILE [--minutes 30] …");
  process.exit(2);
}
const pid = Number(values.pid);
const durationMs = Number(values.minutes) * 60_000;
const sampleMs = Number(values.sample) * 1000;
const concurrency = Number(values.concurrency);
const v1Every = Number(values["v1-every"]);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rand = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));
const withTimeout = (p, ms, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms).unref())]);

// Without this, a 1.2.1 repo (which has no shutdown) that hits a closed socket later
// would end the run with an uncaught exception; they are counted instead.
let stray = 0;
process.on("uncaughtException", (e) => {
  if (++stray <= 5) console.error(`stray client error (counted): ${e?.message ?? e}`);
});
process.on("unhandledRejection", (e) => {
  if (++stray <= 5) console.error(`stray client rejection (counted): ${e?.message ?? e}`);
});

function serverSample() {
  const text = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(text)[1]);
  const threads = Number(/^Threads:\s+(\d+)/m.exec(text)[1]);
  return { rss_kb: rss, fds: fs.readdirSync(`/proc/${pid}/fd`).length, threads };
}

// url → { key: value } of what completed sessions wrote.
const expected = new Map();
const docUrls = [];
let sessionsStarted = 0;
let sessionsDone = 0;
let sessionsFailed = 0;
const failures = [];

async function session(n) {
  const stack = v1Every > 0 && n % v1Every === v1Every - 1 ? "1.2.1" : "2.5.6";
  const client = await makeClient(stack, values.url, { retryInterval: 1000, peerId: `soak-${n}-${stack}` });
  try {
    await client.waitPeer(15000);
    const key = `s${n}`;
    const handles = [];
    for (let i = rand(1, 3); i > 0; i--) handles.push(client.create({ [key]: 0, made: key }));
    if (docUrls.length > 0) {
      const url = docUrls[rand(0, docUrls.length - 1)];
      const f = await client.find(url, 15000);
      if (f.state !== "ready") throw new Error(`${stack} client: ${url} ${f.state}`);
      handles.push(f.handle);
    }
    for (let e = 1; e <= 5; e++) {
      for (const h of handles) client.change(h, (d) => { d[key] = e; });
      await sleep(rand(20, 80));
    }
    for (const [i, h] of handles.entries()) {
      try {
        await client.waitServerHas(h, 30000);
      } catch (e) {
        const how = i < handles.length - (docUrls.length > 0 ? 1 : 0) ? "created" : "found";
        throw new Error(`${e.message} (a document it ${how}; its heads ${client.heads(h).map((x) => x.slice(0, 8))}, ` +
          `the server's last ${client.serverHeads(h).map((x) => x.slice(0, 8))})`);
      }
    }
    for (const h of handles) {
      const url = h.url;
      if (!expected.has(url)) {
        expected.set(url, {});
        docUrls.push(url);
      }
      expected.get(url)[key] = 5;
    }
    sessionsDone++;
  } finally {
    await client.close();
  }
}

async function loop(deadline) {
  while (Date.now() < deadline) {
    const n = sessionsStarted++;
    try {
      await withTimeout(session(n), 90_000, `session ${n}`);
    } catch (e) {
      sessionsFailed++;
      if (failures.length < 20) failures.push(`session ${n}: ${e.message}`);
      console.error(`session ${n} failed: ${e.message}`);
    }
    await sleep(rand(0, 500));
  }
}

const t0 = Date.now();
const samples = [];
const sample = (phase) => {
  const s = { t: (Date.now() - t0) / 1000, phase, sessions: sessionsDone, ...serverSample() };
  samples.push(s);
  return s;
};
const baseline = sample("baseline");
console.error(`soak: server pid ${pid}, baseline RSS ${(baseline.rss_kb / 1024).toFixed(1)} MiB, ${baseline.fds} fds; ${values.minutes} min`);
let phase = "clients";
const sampler = setInterval(() => {
  const s = sample(phase);
  if (samples.length % 6 === 0) {
    console.error(`soak: ${(s.t / 60).toFixed(1)} min, RSS ${(s.rss_kb / 1024).toFixed(1)} MiB, ${s.fds} fds, ${sessionsDone} sessions done, ${sessionsFailed} failed`);
  }
}, sampleMs);

const deadline = t0 + durationMs;
await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(deadline)));
const clientsEnd = (Date.now() - t0) / 1000;
phase = "settle";
await sleep(Number(values.settle) * 1000);
clearInterval(sampler);
const final = sample("final");

// Lost edits: a fresh 2.5.6 client opens a sample of the documents.
let lost = 0;
let checked = 0;
const checker = await makeClient("2.5.6", values.url, { retryInterval: 1000, peerId: "soak-check" });
try {
  await checker.waitPeer(15000);
  const urls = [...expected.keys()].sort(() => Math.random() - 0.5).slice(0, 100);
  for (const url of urls) {
    const f = await checker.find(url, 15000);
    const doc = f.state === "ready" ? checker.json(f.handle) : {};
    for (const [k, v] of Object.entries(expected.get(url))) {
      checked++;
      if (doc[k] !== v) {
        lost++;
        if (lost <= 5) console.error(`lost edit: ${url} ${k} = ${doc[k]} (expected ${v})`);
      }
    }
  }
} finally {
  await checker.close();
}

// Memory over the client phase: windows by time.
const meanRss = (from, to) => {
  const xs = samples.filter((s) => s.phase === "clients" && s.t >= from * clientsEnd && s.t < to * clientsEnd);
  return xs.length ? xs.reduce((a, s) => a + s.rss_kb, 0) / xs.length : NaN;
};
const clientSamples = samples.filter((s) => s.phase === "clients");
const result = {
  minutes: Number(values.minutes),
  concurrency,
  client_phase_s: clientsEnd,
  sessions_done: sessionsDone,
  sessions_failed: sessionsFailed,
  failures,
  stray_client_errors: stray,
  documents: expected.size,
  edits_checked: checked,
  lost_edits: lost,
  baseline,
  final,
  peak_rss_kb: Math.max(...samples.map((s) => s.rss_kb)),
  max_fds: Math.max(...clientSamples.map((s) => s.fds)),
  mean_rss_20_40_kb: meanRss(0.2, 0.4),
  mean_rss_80_100_kb: meanRss(0.8, 1.01),
  samples,
};
result.rss_growth_late_kb = result.mean_rss_80_100_kb - result.mean_rss_20_40_kb;
if (values.out) fs.writeFileSync(values.out, JSON.stringify(result, null, 1) + "\n");
const mib = (kb) => (kb / 1024).toFixed(1);
console.log(
  `soak: ${sessionsDone} sessions (${sessionsFailed} failed), ${expected.size} documents, ` +
    `RSS baseline ${mib(baseline.rss_kb)} MiB, mean 20–40% ${mib(result.mean_rss_20_40_kb)}, ` +
    `mean 80–100% ${mib(result.mean_rss_80_100_kb)} (${result.rss_growth_late_kb >= 0 ? "+" : ""}${mib(result.rss_growth_late_kb)}), ` +
    `peak ${mib(result.peak_rss_kb)}, after settle ${mib(final.rss_kb)}; fds baseline ${baseline.fds}, ` +
    `max ${result.max_fds}, after settle ${final.fds}; lost edits ${lost} of ${checked} checked`,
);
process.exit(sessionsFailed > 0 || lost > 0 ? 1 : 0);
