// Starts the server under test: `groundmist-sync serve` (GM_SYNC_BIN, default
// build/groundmist-sync) or, with GM_E2E_SERVER=js, the JS reference server
// (js_server.mjs), on 127.0.0.1 with a data folder of the test's choosing.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, E2E_DIR, withTimeout, sleep } from './util.mjs';

export const SERVER_KIND = process.env.GM_E2E_SERVER === 'js' ? 'js' : 'cpp';
export const BIN = path.resolve(process.env.GM_SYNC_BIN || path.join(ROOT, 'build', 'groundmist-sync'));
export const JS_SERVER = path.join(E2E_DIR, 'lib', 'js_server.mjs');
export const GROUP = 'xyz.groundmist.test';

// One secret per test process, shared by `serve` and `token` through the environment.
const SECRET = crypto.randomBytes(32).toString('hex');

function serverEnv(extra = {}) {
  const env = { ...process.env, GROUNDMIST_SYNC_SECRET_KEY: SECRET, ...extra };
  for (const v of ['PORT', 'DATA_DIR', 'ATPROTO_DID']) delete env[v];
  return env;
}

// A session token for `group`, minted the way the owner would (`groundmist-sync token`).
export function mintToken(group = GROUP, data, kind = SERVER_KIND, ttl = null) {
  if (kind === 'js' || kind === 'js1') return `js.${Buffer.from(group).toString('base64url')}`;
  const args = ['token', '--group', group, '--data', data, ...(ttl ? ['--ttl', ttl] : [])];
  const r = spawnSync(BIN, args, { env: serverEnv(), timeout: 10000 });
  if (r.status !== 0) throw new Error(`token --group ${group} failed (${r.status}): ${r.stderr}`);
  return r.stdout.toString().trim();
}

/**
 * Starts a server and resolves once it prints its listening line.
 *   data   data folder (groups live in <data>/<group as folders>)
 *   port   0 = any free port; a fixed port is retried for a few seconds (restarts)
 *   args   extra `serve` flags (e.g. ['--max-frame', '256kb'])
 *   kind   'cpp' (groundmist-sync), 'js' (the JS reference server, repo 2.5.6) or
 *          'js1' (the same on the repo 1.2.1 stack, as the TypeScript prototype);
 *          default from GM_E2E_SERVER
 * Returns { port, data, url(group), token(group), stop(), kill9(), alive(), log() }.
 */
export async function startServer({ data, port = 0, args = [], kind = SERVER_KIND } = {}) {
  if (kind === 'cpp' && !fs.existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (set GM_SYNC_BIN)`);
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      return await startOnce(data, port, args, kind);
    } catch (e) {
      // A fixed port may still be held for a moment by the previous process.
      if (port === 0 || Date.now() > deadline) throw e;
      await sleep(200);
    }
  }
}

async function startOnce(data, port, args, kind) {
  const js = kind === 'js' || kind === 'js1';
  const cmd = js ? process.execPath : BIN;
  const argv =
    js
      ? [JS_SERVER, '--port', String(port), '--host', '127.0.0.1', '--data', data, '--stack', kind === 'js1' ? '1.2.1' : '2.5.6']
      : ['serve', '--port', String(port), '--host', '127.0.0.1', '--data', data, '--log-level', 'debug', ...args,
         // Extra flags for every server, for experiments (e.g. GM_E2E_SERVE_ARGS="--max-frame 64mb").
         ...(process.env.GM_E2E_SERVE_ARGS ?? '').split(' ').filter(Boolean)];
  const child = spawn(cmd, argv, { cwd: data, env: serverEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let running = true;
  exited.then(() => (running = false));
  const line = await withTimeout(
    new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
      exited.then(({ code, signal }) => reject(new Error(`server exited before listening (${code ?? signal}):\n${err}`)));
    }),
    20000,
    `listening line from ${cmd}`,
  );
  const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
  if (!m) {
    child.kill('SIGKILL');
    throw new Error(`unexpected first line from the server: ${line}`);
  }
  const actualPort = Number(m[1]);
  const tokens = new Map();
  const token = (group = GROUP) => {
    if (!tokens.has(group)) tokens.set(group, mintToken(group, data, kind));
    return tokens.get(group);
  };
  return {
    port: actualPort,
    data,
    pid: child.pid,
    token,
    url: (group = GROUP) => `ws://127.0.0.1:${actualPort}/?token=${token(group)}`,
    alive: () => running,
    exited,
    log: () => err,
    // SIGTERM and wait for the exit (the server flushes first); SIGKILL after 15 s.
    async stop() {
      if (!running) return exited;
      child.kill('SIGTERM');
      try {
        return await withTimeout(exited, 15000, 'server exit after SIGTERM');
      } catch (e) {
        child.kill('SIGKILL');
        await exited;
        throw e;
      }
    },
    async kill9() {
      if (running) child.kill('SIGKILL');
      return exited;
    },
  };
}
