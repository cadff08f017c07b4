// The JSON API benchmark of `make bench` (issue 14), against `groundmist-sync serve` on
// 127.0.0.1 and npm @automerge/automerge 3.5.0 doing the same work in this process:
//
//   read   GET /api/v1/documents/{id} of the 50k-change text document (automerge-perf
//          text-doc-50k.amrg, uploaded by a real 2.5.6 client): cold (the document
//          unloaded from the server) and warm (again and again), against npm load +
//          toJS of the same bytes;
//   patch  PATCH of one key of a 10,000-key document (created with POST), round trip
//          including the durable commit, against npm load + change + save;
//   floor  GET /healthz (a small answer made on the io thread) by the same client: what
//          any request costs, the HTTP round trip of node's fetch on loopback;
//   disk   the flushes of the data folder's filesystem, measured here in turns with the
//          PATCHes: one fdatasync of a small overwrite (one device flush), and a new file
//          made durable the way a PATCH's change is (write a temp file, fdatasync it,
//          rename it into another folder, fsync that folder: two flushes). A PATCH
//          answered only once durable cannot beat the second.
// Requests go one at a time over node's fetch, which keeps its connection alive (checked:
// no connection to the server is closed, in TIME-WAIT, after the reads; `ss` counts them).
//
//   node bench/api_bench.mjs --bin PATH --text FILE [--patches 200] [--reads 200] [--data DIR]
// --data: where the server's data folder is made (default the OS's temp folder; its
// filesystem's flush is part of every PATCH).
// Prints a markdown table: median and p99 per side, and the ratio of medians (C++ / JS).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import * as A from "@automerge/automerge";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { makeClient } = await import(path.resolve(HERE, "../../e2e/lib/clients.mjs"));
const { values } = parseArgs({
  options: {
    bin: { type: "string" },
    text: { type: "string" },
    patches: { type: "string", default: "200" },
    reads: { type: "string", default: "200" },
    data: { type: "string" },
  },
});
const GROUP = "xyz.groundmist.bench";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6;
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

const data = fs.mkdtempSync(path.join(values.data ?? os.tmpdir(), "gm-api-bench-"));
const server = spawn(values.bin, ["serve", "--port", "0", "--host", "127.0.0.1", "--data", data, "--log-level", "warn",
  "--idle-unload", "1"], { stdio: ["ignore", "pipe", "inherit"] });
const port = await new Promise((resolve, reject) => {
  let out = "";
  server.stdout.on("data", (d) => {
    out += d;
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  server.on("exit", (code) => reject(new Error(`the server exited (${code})`)));
});
const token = spawnSync(values.bin, ["token", "--group", GROUP, "--data", data]).stdout.toString().trim();
const base = `http://127.0.0.1:${port}/api/v1`;
const auth = { authorization: `Bearer ${token}` };
let client;
try {
  // The text document, as an app would have put it there.
  const bytes = fs.readFileSync(values.text);
  client = await makeClient("2.5.6", `ws://127.0.0.1:${port}/?token=${token}`);
  await client.waitPeer();
  const handle = client.repo.import(new Uint8Array(bytes));
  await client.waitServerHas(handle, 120000);
  const id = handle.documentId;
  await client.close();
  await sleep(4000);  // unloaded (--idle-unload 1)

  const read = async () => {
    const t0 = now();
    const res = await fetch(`${base}/documents/${id}`, { headers: auth });
    await res.text();
    if (res.status !== 200) throw new Error(`read: HTTP ${res.status}`);
    return now() - t0;
  };
  const cold = await read();
  // Connections to the server closed lately (TIME-WAIT), as `ss` sees them.
  const closed = () => {
    const out = spawnSync("ss", ["-tanH", "state", "time-wait", `( dport = :${port} or sport = :${port} )`]);
    return out.status === 0 ? out.stdout.toString().split("\n").filter(Boolean).length : NaN;
  };
  const before = closed();
  // Taken in turns, so that both see the client as warm and the machine as loaded.
  const warm = [];
  const floor = [];
  for (let i = 0; i < Number(values.reads); i++) {
    warm.push(await read());
    const t0 = now();
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    await res.text();
    floor.push(now() - t0);
  }
  const after = closed();
  if (after > before) console.error(`note: ${after - before} connections closed during the reads (no keep-alive?)`);
  const npmRead = [];
  for (let i = 0; i < 5; i++) {
    const t0 = now();
    JSON.stringify(A.toJS(A.load(new Uint8Array(bytes))));
    npmRead.push(now() - t0);
  }

  // A 10,000-key document, then one key patched at a time.
  const keys = Object.fromEntries(Array.from({ length: 10000 }, (_, i) => [`k${i}`, i]));
  const made = await fetch(`${base}/groups/${GROUP}/documents`, {
    method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(keys),
  });
  if (made.status !== 201) throw new Error(`POST: HTTP ${made.status} ${await made.text()}`);
  const doc = (await made.json()).id;
  // The disk's floor, on the data folder's filesystem, measured in turns with the
  // PATCHes (this machine's flushes change speed over minutes).
  const disk = { flush: [], file: [] };
  const scratch = fs.mkdtempSync(path.join(data, "disk-floor-"));
  fs.mkdirSync(path.join(scratch, "tmp"));
  fs.mkdirSync(path.join(scratch, "dst"));
  const small = Buffer.alloc(100, 1);
  const one = fs.openSync(path.join(scratch, "one"), "w");
  const dst = fs.openSync(path.join(scratch, "dst"), "r");
  const floorTurn = (i) => {
    let t0 = now();
    fs.writeSync(one, small, 0, small.length, 0);
    fs.fdatasyncSync(one);
    disk.flush.push(now() - t0);
    t0 = now();
    const temp = path.join(scratch, "tmp", `t${i}`);
    const fd = fs.openSync(temp, "wx", 0o600);
    fs.writeSync(fd, small);
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(temp, path.join(scratch, "dst", `f${i}`));
    fs.fsyncSync(dst);
    disk.file.push(now() - t0);
  };
  const patches = [];
  for (let i = 0; i < Number(values.patches); i++) {
    floorTurn(i);
    const t0 = now();
    const res = await fetch(`${base}/documents/${doc}`, {
      method: "PATCH", headers: { ...auth, "content-type": "application/json-patch+json" },
      body: JSON.stringify([{ op: "replace", path: `/k${(i * 37) % 10000}`, value: -i }]),
    });
    await res.text();
    if (res.status !== 200) throw new Error(`PATCH: HTTP ${res.status}`);
    patches.push(now() - t0);
  }
  fs.closeSync(one);
  fs.closeSync(dst);
  let saved = A.save(A.from(keys));
  const npmPatch = [];
  for (let i = 0; i < Math.min(50, Number(values.patches)); i++) {
    const t0 = now();
    const d = A.change(A.load(saved), (x) => { x[`k${(i * 37) % 10000}`] = -i; });
    saved = A.save(d);
    npmPatch.push(now() - t0);
  }

  const row = (what, c, j) => `| ${what} | ${quantile(c, 0.5).toFixed(2)} | ${quantile(c, 0.99).toFixed(2)} | ` +
    `${quantile(j, 0.5).toFixed(2)} | ${quantile(j, 0.99).toFixed(2)} | ${(quantile(c, 0.5) / quantile(j, 0.5)).toFixed(3)} |`;
  console.log("| operation | C++ API median ms | C++ API p99 ms | npm median ms | npm p99 ms | ratio of medians |");
  console.log("|---|---|---|---|---|---|");
  console.log(row("read the 50k-change text document, cold (npm: load + toJS)", [cold], npmRead));
  console.log(row(`read it warm (${warm.length} reads)`, warm, npmRead));
  console.log(row(`floor: GET /healthz, same client (${floor.length})`, floor, npmRead));
  console.log(row(`PATCH one key of a 10,000-key document, durable (${patches.length}; npm: load + change + save)`, patches, npmPatch));
  const only = (what, c) => `| ${what} | ${quantile(c, 0.5).toFixed(2)} | ${quantile(c, 0.99).toFixed(2)} | | | |`;
  console.log(only(`disk: one flush, fdatasync of a 100-byte overwrite (${disk.flush.length})`, disk.flush));
  console.log(only(`disk: a new durable file, as a PATCH's: temp, fdatasync, rename, fsync of the folder (${disk.file.length})`, disk.file));
} finally {
  await client?.close().catch(() => {});
  server.kill("SIGTERM");
  await new Promise((r) => server.on("exit", r));
  fs.rmSync(data, { recursive: true, force: true });
}
process.exit(0);
