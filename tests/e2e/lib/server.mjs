// Starts the server under test: `groundmist-sync serve` (GM_SYNC_BIN, default
// build/groundmist-sync) or, with GM_E2E_SERVER=js, the JS reference server
// (js_server.mjs), on 127.0.0.1 with a data folder of the test's choosing.
//
// A server built with sanitizers (build-asan, tests/e2e.cmake label e2e-asan) prints
// its reports on stderr and exits; every test that started it fails, saying so, when
// the server stops, is killed or is cleaned up (lib/scope.mjs), whatever else the
// test saw (sanitizerReport below). Leaks are reported at a clean exit (SIGTERM), not
// after kill -9.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, E2E_DIR, withTimeout, sleep, scaled } from './util.mjs';

export const SERVER_KIND = process.env.GM_E2E_SERVER === 'js' ? 'js' : 'cpp';
export const BIN = path.resolve(process.env.GM_SYNC_BIN || path.join(ROOT, 'build', 'groundmist-sync'));
export const JS_SERVER = path.join(E2E_DIR, 'lib', 'js_server.mjs');
export const GROUP = 'xyz.groundmist.test';

// One secret per test process, shared by `serve` and `token` through the environment.
const SECRET = crypto.randomBytes(32).toString('hex');

// For a sanitized program (ignored by any other), unless the caller set its own: stop
// at the first error of any kind, with its stack, and look for leaks at exit. UBSan
// stops anyway (built with -fno-sanitize-recover=undefined); halt_on_error says so
// for a build without it.
const SANITIZER_ENV = {
  ASAN_OPTIONS: 'halt_on_error=1:detect_leaks=1:check_initialization_order=1',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  LSAN_OPTIONS: 'report_objects=1',
};

export function serverEnv(extra = {}) {
  const env = { ...SANITIZER_ENV, ...process.env, GROUNDMIST_SYNC_SECRET_KEY: SECRET, ...extra };
  for (const v of ['PORT', 'DATA_DIR', 'ATPROTO_DID']) delete env[v];
  return env;
}

// The first sanitizer report in `text` (a server's stderr), from its first line to
// its SUMMARY line, or null. Matched at the start of a line, where the server's own
// log lines carry a timestamp, so a client cannot fake one through the log.
const REPORT_START = /^(==\d+==ERROR: (AddressSanitizer|LeakSanitizer)|[^\s:]+:\d+:\d+: runtime error: |==\d+==AddressSanitizer CHECK failed|==\d+==LeakSanitizer has encountered a fatal error)/m;
export function sanitizerReport(text) {
  const m = REPORT_START.exec(text);
  if (!m) return null;
  const rest = text.slice(m.index);
  const summary = /^SUMMARY: .*$/m.exec(rest);
  const end = summary ? summary.index + summary[0].length : Math.min(rest.length, 8000);
  return rest.slice(0, Math.min(end, 16000));
}

// Servers of this process with a report, for the backstop at exit below.
const reported = new Set();
process.on('exit', () => {
  for (const r of reported) {
    process.stderr.write(`\nsanitizer report from groundmist-sync (pid ${r.pid}) not yet failed by any test:\n${r.report}\n`);
    process.exitCode = 1;
  }
});

function sanitizerError(pid, report) {
  return new Error(`groundmist-sync (pid ${pid}) printed a sanitizer report:\n${report}`);
}

// A session token for `group`, minted the way the owner would (`groundmist-sync token`).
export function mintToken(group = GROUP, data, kind = SERVER_KIND, ttl = null) {
  if (kind === 'js' || kind === 'js1') return `js.${Buffer.from(group).toString('base64url')}`;
  const args = ['token', '--group', group, '--data', data, ...(ttl ? ['--ttl', ttl] : [])];
  const r = spawnSync(BIN, args, { env: serverEnv(), timeout: scaled(10000) });
  const report = sanitizerReport(String(r.stderr));
  if (report) throw sanitizerError(r.pid, report);
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
 * Returns { port, data, secure, url(group), token(group), stop(), kill9(), alive(), log(),
 * sanitized, report() }. stop() and kill9() throw if the server printed a sanitizer
 * report; `sanitized` is true when the program runs with a sanitizer's runtime.
 */
export async function startServer({ data, port = 0, args = [], kind = SERVER_KIND } = {}) {
  if (kind === 'cpp' && !fs.existsSync(BIN)) throw new Error(`server binary not found: ${BIN} (set GM_SYNC_BIN)`);
  const deadline = Date.now() + scaled(10000);
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
  // Once the server has exited its stderr is complete: a report is said at once (so
  // that it is in the output even when the test then fails on something else) and
  // kept until a test fails on it.
  const entry = { pid: child.pid, report: null };
  const ended = exited.then(async (status) => {
    running = false;
    if (!child.stderr.readableEnded) await new Promise((r) => child.stderr.once('close', r));
    entry.report = sanitizerReport(err);
    if (entry.report) {
      reported.add(entry);
      process.stderr.write(`groundmist-sync (pid ${child.pid}) exited (${status.code ?? status.signal}) with a sanitizer report:\n${entry.report}\n`);
    }
    return status;
  });
  // Throws the report, once: the first stop(), kill9() or scope cleanup to see it.
  const check = (status) => {
    if (entry.report && reported.delete(entry)) throw sanitizerError(child.pid, entry.report);
    return status;
  };
  const line = await withTimeout(
    new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
      exited.then(({ code, signal }) => reject(new Error(`server exited before listening (${code ?? signal}):\n${err}`)));
    }),
    scaled(20000),
    `listening line from ${cmd}`,
  );
  // https:// when started with --tls-cert/--tls-key (tls.test.mjs): then url() is wss://.
  const m = /listening on (https?):\/\/127\.0\.0\.1:(\d+)/.exec(line);
  if (!m) {
    child.kill('SIGKILL');
    throw new Error(`unexpected first line from the server: ${line}`);
  }
  const actualPort = Number(m[2]);
  const secure = m[1] === 'https';
  // gcc links libasan dynamically: a sanitized server has it mapped.
  let sanitized = false;
  try {
    sanitized = /libasan|libubsan/.test(fs.readFileSync(`/proc/${child.pid}/maps`, 'utf8'));
  } catch {
    /* exited already: stop() says why */
  }
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
    secure,
    url: (group = GROUP) => `${secure ? 'wss' : 'ws'}://127.0.0.1:${actualPort}/?token=${token(group)}`,
    alive: () => running,
    exited: ended,
    log: () => err,
    sanitized,
    // The sanitizer report the server printed, once it has exited (else null).
    report: () => entry.report,
    // SIGTERM and wait for the exit (the server flushes first); SIGKILL after 15 s.
    async stop() {
      if (!running) return check(await ended);
      child.kill('SIGTERM');
      try {
        return check(await withTimeout(ended, 15000, 'server exit after SIGTERM'));
      } catch (e) {
        if (!running) throw e;
        child.kill('SIGKILL');
        check(await ended);
        throw e;
      }
    },
    async kill9() {
      if (running) child.kill('SIGKILL');
      return check(await ended);
    },
  };
}
