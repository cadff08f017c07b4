// End-to-end test of `groundmist-sync serve` (loopback only).
// Usage: node serve_e2e.mjs path/to/groundmist-sync
//
// Starts the server on 127.0.0.1 with a free port and a temporary data folder, then
// checks HTTP routes, the token-gated upgrade, frame limits, ping timeouts and a clean
// SIGTERM exit. A valid token comes from `groundmist-sync token` with the same secret.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'interop', 'package.json'));
const WebSocket = require('ws');

const bin = path.resolve(process.argv[2] ?? '');
if (!fs.existsSync(bin)) {
  console.error(`usage: node serve_e2e.mjs path/to/groundmist-sync (got ${bin})`);
  process.exit(2);
}

const data = fs.mkdtempSync(path.join(os.tmpdir(), 'gm-serve-e2e-'));
// Opened up, as `mkdir -p` under the usual umask would leave it: the server says so.
fs.chmodSync(data, 0o755);
const env = { ...process.env, GROUNDMIST_SYNC_SECRET_KEY: crypto.randomBytes(32).toString('hex') };
for (const v of ['PORT', 'DATA_DIR', 'ATPROTO_DID']) delete env[v];

let failures = 0;
function check(cond, what) {
  if (cond) {
    console.log(`ok    ${what}`);
  } else {
    console.log(`FAIL  ${what}`);
    failures++;
  }
}

const withTimeout = (promise, ms, what) =>
  Promise.race([promise, new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms))]);

// --- start the server --------------------------------------------------------------
const server = spawn(
  bin,
  ['serve', '--port', '0', '--host', '127.0.0.1', '--data', data, '--max-frame', '1024', '--ping-interval', '0.5'],
  { cwd: data, env, stdio: ['ignore', 'pipe', 'pipe'] },
);
let stdout = '';
let stderr = '';
server.stderr.on('data', (d) => (stderr += d));
const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
const firstLine = await withTimeout(
  new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('\n')) resolve(stdout.split('\n')[0]);
    });
    server.on('exit', (code) => reject(new Error(`server exited early (${code}):\n${stderr}`)));
  }),
  30000,
  'listening line',
);
const m = /^groundmist-sync listening on http:\/\/127\.0\.0\.1:(\d+) \(data: (.+)\)$/.exec(firstLine);
check(m !== null, `listening line: ${firstLine}`);
if (!m) process.exit(1);
const port = Number(m[1]);
check(fs.realpathSync(m[2]) === fs.realpathSync(data), 'listening line names the data folder');
// stderr is another pipe: its start-up lines may arrive after the listening line.
const ownerWarning = await withTimeout(
  new Promise((resolve) => {
    const poll = setInterval(() => {
      if (/no owner configured/.test(stderr)) resolve(clearInterval(poll) ?? true);
    }, 20);
  }),
  5000,
  'owner warning',
).catch(() => false);
check(ownerWarning, 'says at start that there is no owner (loopback only)');
check(/data folder .* is open to other users of this machine \(mode 0755\)/.test(stderr),
      'warns at start that the data folder is open to other users');
const base = `http://127.0.0.1:${port}`;
const wsBase = `ws://127.0.0.1:${port}`;

// --- HTTP ----------------------------------------------------------------------------
{
  const res = await fetch(`${base}/`);
  check(res.status === 200, 'GET / is 200');
  check((await res.text()) === '👍 Groundmist personal sync server is running', 'GET / body as the prototype');
  check(res.headers.get('content-type') === 'text/html; charset=utf-8', 'GET / content type as the prototype');
}
{
  const res = await fetch(`${base}/healthz`);
  const body = await res.json();
  check(res.status === 200 && body.status === 'ok', '/healthz status ok');
  check(typeof body.version === 'string' && Number.isInteger(body.uptime) && !('groups' in body),
        '/healthz has version and uptime, not the owner\'s group names');
}
{
  const res = await fetch(`${base}/metrics`);
  const text = await res.text();
  check(res.status === 200 && text.includes('# TYPE groundmist_sync_connections gauge'), '/metrics in text format');
}
check((await fetch(`${base}/nope`)).status === 404, 'unknown path is 404');

// --- WebSocket -----------------------------------------------------------------------
// Resolves with {status} for a refused upgrade, {ws} for an open socket.
function open(url, options = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      ws.on('open', () => resolve({ ws }));
      ws.on('error', reject);
    }),
    5000,
    `open ${url}`,
  );
}
const closed = (ws) => new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: `${reason}` })));

{
  const r = await open(`${wsBase}/`);
  check(r.status === 401 && r.body === '', 'upgrade without token: 401 and nothing else');
}
{
  const r = await open(`${wsBase}/?token=not-a-token`);
  check(r.status === 401 && r.body === '', 'upgrade with a bad token: 401');
}

const minted = spawnSync(bin, ['token', '--group', 'xyz.groundmist.library', '--data', data], { cwd: data, env });
const token = minted.status === 0 ? minted.stdout.toString().trim() : null;
check(token !== null && token.length > 0 && !token.includes('\n'),
      `token command prints one token ${minted.stderr.toString()}`);
{
  const expired = spawnSync(bin, ['token', '--group', 'xyz.groundmist.library', '--ttl', '1s', '--data', data],
                            { cwd: data, env });
  await new Promise((r) => setTimeout(r, 2100));
  const r = await open(`${wsBase}/?token=${expired.stdout.toString().trim()}`);
  check(expired.status === 0 && r.status === 401, 'expired token: 401');
}
{
  const bad = spawnSync(bin, ['token', '--group', '../etc', '--data', data], { cwd: data, env });
  check(bad.status === 1 && bad.stdout.length === 0, 'token command refuses a bad group name');
}
{
  // A token signed with another key is refused.
  const other = spawnSync(bin, ['token', '--group', 'xyz.groundmist.library', '--data', data],
                          { cwd: data, env: { ...env, GROUNDMIST_SYNC_SECRET_KEY: 'another-secret' } });
  const r = await open(`${wsBase}/?token=${other.stdout.toString().trim()}`);
  check(other.status === 0 && r.status === 401, 'token signed with another key: 401');
}

if (token) {
  const url = `${wsBase}/?token=${token}`;
  {
    const { ws } = await open(url);
    check(ws !== undefined, 'valid token opens a WebSocket');
    const c = closed(ws);
    // A binary frame reaches the repo layer; an empty CBOR map is no automerge-repo
    // message, so the repo answers with an error and closes the socket.
    ws.send(Buffer.from([0xa0]));
    await withTimeout(c, 5000, 'close after a malformed message');
    const text = await (await fetch(`${base}/metrics`)).text();
    check(text.includes('groundmist_sync_messages_received_total{group="xyz.groundmist.library"} 1'),
          'binary message counted for the token\'s group');
  }
  {
    const { ws } = await open(url);
    const c = closed(ws);
    ws.send('{"type":"join"}');
    check((await withTimeout(c, 5000, 'text close')).code === 1003, 'text frame closes the socket (1003)');
  }
  {
    const { ws } = await open(url);
    const c = closed(ws);
    ws.send(Buffer.alloc(2000));
    check((await withTimeout(c, 5000, 'oversize close')).code === 1009, 'oversized frame closes the socket (1009)');
  }
  {
    const { ws } = await open(url, { autoPong: false });
    const started = Date.now();
    await withTimeout(closed(ws), 5000, 'ping timeout');
    check(Date.now() - started < 4000, 'a socket that does not answer pings is closed');
  }
  {
    // A socket answering pings stays open across several ping intervals.
    const { ws } = await open(url);
    let gone = false;
    ws.on('close', () => (gone = true));
    await new Promise((r) => setTimeout(r, 2000));
    check(!gone, 'a socket that answers pings stays open');
    ws.close();
    await closed(ws);
  }
}
check((await fetch(`${base}/healthz`)).status === 200, 'server keeps serving after bad clients');

// --- SIGTERM -------------------------------------------------------------------------
let lastSocket = null;
if (token) {
  lastSocket = (await open(`${wsBase}/?token=${token}`)).ws;
}
const lastClosed = lastSocket ? closed(lastSocket) : null;
server.kill('SIGTERM');
const { code, signal } = await withTimeout(exited, 10000, 'exit after SIGTERM');
check(code === 0 && signal === null, `SIGTERM: clean exit (code ${code}, signal ${signal})`);
if (lastClosed) check((await lastClosed).code === 1001, 'SIGTERM closes open sockets with 1001 (going away)');
check(stdout.trim().split('\n').length === 1, 'exactly one line on stdout');

fs.rmSync(data, { recursive: true, force: true });
if (failures > 0) {
  console.log(`--- server stderr ---\n${stderr}`);
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');
process.exit(0);  // pending withTimeout timers would keep node alive for up to 30 s
