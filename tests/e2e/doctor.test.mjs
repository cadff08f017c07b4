// `groundmist-sync setup` and `groundmist-sync doctor` (issue 15; cli/setup_command.h,
// cli/doctor_command.h) against a local set-up on loopback: the reference PLC + PDS
// (lib/atproto.mjs, accounts alice.test = the owner, with an app password, and bob.test),
// and `groundmist-sync serve` started in a site folder from the .env that setup wrote,
// with native TLS (a certificate made here with the openssl program for localhost).
//
// First setup is driven without a terminal (flags and GROUNDMIST_SYNC_APP_PASSWORD), then
// on one (a pseudo-terminal made by util-linux `script`: its questions, no echo of the
// password), and every check of doctor passes; then each check fails once on purpose,
// and the test checks the verdict and the fix doctor gives, and that the checks that do
// not depend on it still pass:
//   config       ATPROTO_DID a handle, not a DID; a settings file that is not there
//   data folder  mode 0755; secret.key readable by others
//   DNS          GROUNDMIST_SYNC_HOST=nonexistent.invalid (never resolves: doctor says
//                so without asking a resolver, so nothing leaves the machine)
//   TLS          an expired certificate; one for another name; one with 5 days left (warn)
//   did.json     the server started for another host; the server down
//   record       naming another host; missing
//   WebSocket    refused: the server signs tokens with another secret than the data
//                folder's key doctor mints with
// Everything listens on 127.0.0.1; `localhost` resolves from /etc/hosts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { BIN, SERVER_KIND, sanitizerReport } from './lib/server.mjs';
import { startAtprotoNetwork, freePort, runCli, cli } from './lib/atproto.mjs';
import { tempDir, withTimeout, sleep } from './lib/util.mjs';

const skip =
  SERVER_KIND !== 'cpp' ? 'setup and doctor are groundmist-sync\'s'
    : spawnSync('openssl', ['version']).status !== 0 ? 'no openssl program' : false;

const noScript = spawnSync('script', ['--version']).status !== 0 ? 'no script program (util-linux) for a pseudo-terminal' : false;
const CHECKS = ['config', 'data_folder', 'dns', 'tls', 'did_json', 'record', 'websocket'];
// Variables of the server's settings: the test's own environment must not leak into
// `serve` (which reads the environment before .env).
const SERVER_VARS = ['PORT', 'DATA_DIR', 'ATPROTO_DID', 'PLC_URL', 'GROUNDMIST_SYNC_HOST', 'GROUNDMIST_SYNC_SECRET_KEY',
  'GROUNDMIST_SYNC_TLS_CERT', 'GROUNDMIST_SYNC_TLS_KEY', 'ATPROTO_APP_PASSWORD', 'GROUNDMIST_SYNC_APP_PASSWORD'];

let atp; // the PLC + PDS (lib/atproto.mjs)
let site; // { dir, env (the .env path), port, host, certs }
let server; // the running `serve` of the site

before(async () => {
  if (skip) return;
  atp = await startAtprotoNetwork();
}, { timeout: 90000 });

after(async () => {
  await server?.stop();
  await atp?.close();
});

// --- helpers ------------------------------------------------------------------------------

// A certificate for `names` (SAN entries) made with the openssl program: { cert, key }.
// days < 0 makes one that expired that many days ago (notAfter before notBefore).
function makeCertificate(dir, name, { days = 30, san = 'DNS:localhost,IP:127.0.0.1', cn = 'localhost' } = {}) {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.crt`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, `subjectAltName=${san}\n`);
  const run = (args) => {
    const r = spawnSync('openssl', args);
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${cn}`,
    '-keyout', key, '-out', csr]);
  run(['x509', '-req', '-in', csr, '-signkey', key, '-days', String(days), '-extfile', ext, '-out', cert]);
  return { cert, key };
}

// The environment for the program: the test's, without the server's settings.
function cleanEnv(extra = {}) {
  const env = { ...process.env };
  for (const v of SERVER_VARS) delete env[v];
  return { ...env, ...extra };
}

// `groundmist-sync serve` in `dir` (it reads dir/.env), on `port`, loopback only.
// Resolves { stop(), log() } once it prints its listening line.
async function serve(dir, port, { args = [], env = {} } = {}) {
  const child = spawn(BIN, ['serve', '--port', String(port), '--host', '127.0.0.1', '--log-level', 'debug', ...args],
    { cwd: dir, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let running = true;
  exited.then(() => (running = false));
  await withTimeout(new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).once('line', resolve);
    exited.then(({ code, signal }) => reject(new Error(`serve exited before listening (${code ?? signal}):\n${err}`)));
  }), 20000, 'serve to listen');
  return {
    log: () => err,
    async stop() {
      if (running) child.kill('SIGTERM');
      await withTimeout(exited, 15000, 'serve to exit');
      const report = sanitizerReport(err);
      if (report) throw new Error(`groundmist-sync serve printed a sanitizer report:\n${report}`);
    },
  };
}

// `groundmist-sync doctor --config FILE --json`: { code, checks: {id: check}, text }.
async function doctor(config, { args = [] } = {}) {
  const r = await runCli(['doctor', '--config', config, '--json', '--timeout', '5', ...args], { env: cleanEnv(), timeout: 60000 });
  let report;
  try {
    report = JSON.parse(r.stdout);
  } catch {
    throw new Error(`doctor printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  assert.deepEqual(report.checks.map((c) => c.id), CHECKS, r.stdout);
  const checks = Object.fromEntries(report.checks.map((c) => [c.id, c]));
  return { code: r.code, checks, ok: report.ok, text: r.stdout };
}

// Asserts each check's status: `want` maps ids to 'ok' | 'warn' | 'fail' | 'skip';
// the ids not named must be 'ok'.
function assertChecks(result, want, what) {
  const all = JSON.stringify(result.checks, null, 1);
  for (const id of CHECKS) {
    assert.equal(result.checks[id].status, want[id] ?? 'ok', `${what}: ${id}: ${all}`);
    if (result.checks[id].status === 'fail' || result.checks[id].status === 'warn') {
      assert.ok(result.checks[id].fix, `${what}: ${id} has no fix: ${all}`);
    }
  }
  const failed = Object.values(want).includes('fail');
  assert.equal(result.code, failed ? 1 : 0, `${what}: exit status: ${all}`);
}

// A copy of the site's settings with `changes` (KEY -> value, or null to drop the line).
function settingsWith(changes) {
  const lines = fs.readFileSync(site.env, 'utf8').split('\n').filter((l) => {
    const key = l.split('=')[0];
    return !(key in changes);
  });
  for (const [k, v] of Object.entries(changes)) if (v !== null) lines.push(`${k}=${v}`);
  const file = path.join(site.dir, `variant-${Math.random().toString(36).slice(2)}.conf`);
  fs.writeFileSync(file, lines.filter(Boolean).join('\n') + '\n', { mode: 0o600 });
  return file;
}

// The certificate the server serves: replaced by `next`, and read again (SIGHUP).
async function serveCertificate(next) {
  fs.copyFileSync(next.cert, site.certs.live.cert);
  fs.copyFileSync(next.key, site.certs.live.key);
  await restart();
}

async function restart({ args = [], env = {} } = {}) {
  await server?.stop();
  server = null;
  server = await serve(site.dir, site.port, { args, env });
}

async function getRecord() {
  const u = new URL(`${atp.pdsUrl}/xrpc/com.atproto.repo.getRecord`);
  u.search = new URLSearchParams({ repo: atp.alice.did, collection: 'xyz.groundmist.sync', rkey: atp.alice.did });
  const res = await fetch(u);
  return { status: res.status, json: await res.json() };
}

const publish = (host) =>
  cli(['publish', '--host', host, '--handle', 'alice.test', '--pds', atp.pdsUrl],
    { env: cleanEnv({ ATPROTO_APP_PASSWORD: atp.alice.appPassword }) });

// --- the healthy set-up -----------------------------------------------------------------

test('setup without a terminal: flags and GROUNDMIST_SYNC_APP_PASSWORD; writes the settings, keeps the file\'s other lines, publishes the record', { skip, timeout: 60000 }, async () => {
  const dir = tempDir('doctor-site');
  const port = await freePort();
  const certDir = tempDir('doctor-certs');
  const certs = {
    good: makeCertificate(certDir, 'good'),
    live: { cert: path.join(certDir, 'live.crt'), key: path.join(certDir, 'live.key') },
  };
  fs.copyFileSync(certs.good.cert, certs.live.cert);
  fs.copyFileSync(certs.good.key, certs.live.key);
  site = { dir, env: path.join(dir, '.env'), port, host: `localhost:${port}`, certs, certDir };
  // What the owner had already: setup keeps it.
  const before = [
    '# my sync server',
    `GROUNDMIST_SYNC_TLS_CERT=${certs.live.cert}`,
    `GROUNDMIST_SYNC_TLS_KEY=${certs.live.key}`,
    'DATA_DIR=.data',
    '#ATPROTO_DID=did:plc:put-mine-here',
    '',
  ].join('\n');
  fs.writeFileSync(site.env, before, { mode: 0o644 });
  fs.chmodSync(site.env, 0o644);

  // Without a terminal, a missing answer is an error naming its flag; nothing is written.
  let r = await runCli(['setup', '--config', site.env, '--handle', 'alice.test', '--pds', atp.pdsUrl],
    { env: cleanEnv({ GROUNDMIST_SYNC_APP_PASSWORD: atp.alice.appPassword }) });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /give --host/);
  r = await runCli(['setup', '--config', site.env, '--host', site.host, '--handle', 'alice.test', '--pds', atp.pdsUrl],
    { env: cleanEnv() });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /GROUNDMIST_SYNC_APP_PASSWORD/);
  // A wrong password changes nothing.
  r = await runCli(['setup', '--config', site.env, '--host', site.host, '--handle', 'alice.test', '--pds', atp.pdsUrl,
    '--plc-url', atp.plcUrl], { env: cleanEnv({ GROUNDMIST_SYNC_APP_PASSWORD: 'aaaa-bbbb-cccc-dddd' }) });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /could not log in.*nothing was changed/s);
  assert.equal(fs.readFileSync(site.env, 'utf8'), before);
  assert.equal((await getRecord()).status, 400, 'no record yet');

  const started = Date.now();
  r = await runCli(['setup', '--config', site.env, '--host', site.host, '--handle', 'alice.test', '--pds', atp.pdsUrl,
    '--plc-url', atp.plcUrl], { env: cleanEnv({ GROUNDMIST_SYNC_APP_PASSWORD: atp.alice.appPassword }) });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  console.log(`setup took ${Date.now() - started} ms; it printed:\n${r.stdout}`);
  assert.match(r.stdout, /published localhost:\d+ at at:\/\//);
  assert.match(r.stdout, /next:[\s\S]*groundmist-sync serve[\s\S]*groundmist-sync doctor --config/);
  const all = r.stdout + r.stderr;
  assert.ok(!all.includes(atp.alice.appPassword), 'the app password is never printed');
  const after = fs.readFileSync(site.env, 'utf8');
  assert.ok(!after.includes(atp.alice.appPassword), 'the app password is never written');
  assert.equal(after, [
    '# my sync server',
    `GROUNDMIST_SYNC_TLS_CERT=${certs.live.cert}`,
    `GROUNDMIST_SYNC_TLS_KEY=${certs.live.key}`,
    'DATA_DIR=.data',
    '#ATPROTO_DID=did:plc:put-mine-here',
    `ATPROTO_DID=${atp.alice.did}`,
    `GROUNDMIST_SYNC_HOST=${site.host}`,
    `PLC_URL=${atp.plcUrl}`,
    '',
  ].join('\n'));
  assert.equal(fs.statSync(site.env).mode & 0o777, 0o644, 'an existing file keeps its mode (it holds no secret)');
  const rec = await getRecord();
  assert.equal(rec.status, 200, JSON.stringify(rec.json));
  assert.equal(rec.json.value.host, site.host);

  // Replacing another owner needs --yes without a terminal.
  const other = settingsWith({ ATPROTO_DID: atp.bob.did });
  r = await runCli(['setup', '--config', other, '--host', site.host, '--handle', 'alice.test', '--pds', atp.pdsUrl],
    { env: cleanEnv({ GROUNDMIST_SYNC_APP_PASSWORD: atp.alice.appPassword }) });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /another owner.*give --yes/);
  assert.match(fs.readFileSync(other, 'utf8'), new RegExp(`ATPROTO_DID=${atp.bob.did}`));

  // A flag in GROUNDMIST_SYNC_ARGS would beat the file's line: setup says so and changes
  // nothing, rather than publish a host the server does not use.
  const overridden = settingsWith({ GROUNDMIST_SYNC_ARGS: '--public-host old.example.com' });
  const overriddenBefore = fs.readFileSync(overridden, 'utf8');
  r = await runCli(['setup', '--config', overridden, '--host', site.host, '--handle', 'alice.test', '--pds', atp.pdsUrl, '--yes'],
    { env: cleanEnv({ GROUNDMIST_SYNC_APP_PASSWORD: atp.alice.appPassword }) });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /would still run with .*old\.example\.com.*--public-host from GROUNDMIST_SYNC_ARGS/s);
  assert.equal(fs.readFileSync(overridden, 'utf8'), overriddenBefore);
});

test('setup on a terminal (a pseudo-terminal from `script`): asks each question, Enter keeps the current host, the password is not echoed', { skip: skip || noScript, timeout: 60000 }, async () => {
  assert.ok(site, 'the setup test ran first');
  const config = settingsWith({}); // the site's settings: its host, alice as the owner
  const command = [BIN, 'setup', '--config', config, '--pds', atp.pdsUrl].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  // Each answer once its question is on the screen: the password prompt turns echo off
  // and drops what was typed ahead (TCSAFLUSH), as a terminal would.
  const answer = async (prompt, text) => {
    await withTimeout((async () => { while (!out.includes(prompt)) await sleep(20); })(), 15000, `the prompt "${prompt}"; so far:\n${out}`);
    child.stdin.write(`${text}\r`);
  };
  await answer(`[${site.host}]: `, '');
  await answer('Your atproto handle', 'alice.test');
  await answer('App passwords): ', atp.alice.appPassword);
  await answer('Go ahead? [Y/n]', 'y');
  const code = await withTimeout(exited, 20000, `setup to finish; it printed:\n${out}`);
  child.stdin.end();
  assert.equal(code, 0, out);
  assert.ok(!out.includes(atp.alice.appPassword), `the password was echoed:\n${out}`);
  assert.match(out, new RegExp(`published ${site.host} at at://`));
  const written = fs.readFileSync(config, 'utf8');
  assert.match(written, new RegExp(`^GROUNDMIST_SYNC_HOST=${site.host}$`, 'm'));
  assert.match(written, new RegExp(`^ATPROTO_DID=${atp.alice.did}$`, 'm'));
  assert.ok(!written.includes(atp.alice.appPassword));
});

test('doctor: every check passes on what setup wrote, served with native TLS', { skip, timeout: 60000 }, async () => {
  assert.ok(site, 'the setup test ran first');
  server = await serve(site.dir, site.port);
  const started = Date.now();
  const r = await doctor(site.env);
  console.log(`doctor took ${Date.now() - started} ms:\n${JSON.stringify(r.checks, null, 1)}`);
  assertChecks(r, {}, 'healthy');
  assert.equal(r.ok, true);
  assert.match(r.checks.tls.verdict, /localhost.*days left/);
  assert.match(r.checks.did_json.verdict, new RegExp(`https://${site.host}/\\.well-known/did\\.json`));
  assert.match(r.checks.record.verdict, new RegExp(`names ${site.host}`));
  assert.match(r.checks.websocket.verdict, new RegExp(`wss://${site.host}/: join answered by peer storage-server-`));

  // The text form: one line a check, then the count.
  const text = await runCli(['doctor', '--config', site.env, '--timeout', '5'], { env: cleanEnv() });
  assert.equal(text.code, 0, text.stdout + text.stderr);
  const lines = text.stdout.trim().split('\n');
  assert.deepEqual(lines.slice(0, 7).map((l) => l.slice(0, 6)), CHECKS.map(() => 'ok    '));
  assert.match(lines[0], /^ok {4}config: /);
  assert.match(lines[6], /^ok {4}WebSocket: wss:/);
  assert.equal(lines[7], '7 ok');
});

// --- each check failing once ----------------------------------------------------------------

test('doctor: config: a handle for ATPROTO_DID, a missing file, a TLS key without its certificate', { skip, timeout: 60000 }, async () => {
  let r = await doctor(settingsWith({ ATPROTO_DID: 'alice.test' }));
  assertChecks(r, { config: 'fail', record: 'skip' }, 'a handle for the DID');
  assert.match(r.checks.config.verdict, /owner "alice\.test" .* is not a did:plc or did:web DID/);
  assert.match(r.checks.config.fix, /correct it in .*variant-.*\.conf/);

  r = await doctor(path.join(site.dir, 'no-such.conf'));
  assertChecks(r, { config: 'fail', data_folder: 'skip', dns: 'skip', tls: 'skip', did_json: 'skip', record: 'skip',
    websocket: 'skip' }, 'no settings file');
  assert.match(r.checks.config.verdict, /no settings file/);
  assert.match(r.checks.config.fix, /--config FILE.*groundmist-sync setup/);

  r = await doctor(settingsWith({ GROUNDMIST_SYNC_TLS_CERT: null }));
  assert.equal(r.checks.config.status, 'fail', JSON.stringify(r.checks));
  assert.match(r.checks.config.verdict, /TLS key .* without a certificate/);
  assert.match(r.checks.config.fix, /both GROUNDMIST_SYNC_TLS_CERT and GROUNDMIST_SYNC_TLS_KEY, or neither/);
});

test('doctor: data folder: mode 0755, and secret.key readable by others', { skip, timeout: 60000 }, async (t) => {
  const data = path.join(site.dir, '.data');
  const key = path.join(data, '.groundmist', 'secret.key');
  t.after(() => {
    fs.chmodSync(data, 0o700);
    fs.chmodSync(key, 0o600);
  });
  fs.chmodSync(data, 0o755);
  let r = await doctor(site.env);
  assertChecks(r, { data_folder: 'fail' }, 'data folder 0755');
  assert.match(r.checks.data_folder.verdict, /is mode 0755: other users of this machine can open it/);
  assert.equal(r.checks.data_folder.fix, `chmod 700 ${data}`);

  fs.chmodSync(data, 0o700);
  fs.chmodSync(key, 0o644);
  r = await doctor(site.env);
  // The WebSocket check cannot mint its token with a key the server would refuse either.
  assertChecks(r, { data_folder: 'fail', websocket: 'fail' }, 'secret.key 0644');
  assert.match(r.checks.data_folder.verdict, /secret\.key is mode 0644/);
  assert.equal(r.checks.data_folder.fix, `chmod 600 ${key}`);
});

test('doctor: DNS: a host that never resolves (nonexistent.invalid)', { skip, timeout: 60000 }, async () => {
  // Without TLS files: a public host's certificate would be looked for on port 443.
  const r = await doctor(settingsWith({ GROUNDMIST_SYNC_HOST: 'nonexistent.invalid', GROUNDMIST_SYNC_TLS_CERT: null,
    GROUNDMIST_SYNC_TLS_KEY: null }));
  // The record names localhost:<port>, not this host: it fails too, with its own fix.
  assertChecks(r, { dns: 'fail', tls: 'skip', did_json: 'skip', record: 'fail', websocket: 'skip' }, 'nonexistent.invalid');
  assert.match(r.checks.dns.verdict, /nonexistent\.invalid is under \.invalid, which never resolves/);
  assert.match(r.checks.dns.fix, /A record .*AAAA record .*nonexistent\.invalid/);
  assert.match(r.checks.tls.verdict, /does not resolve \(see DNS\)/);
  assert.match(r.checks.record.verdict, new RegExp(`names "${site.host}", not nonexistent\\.invalid`));
});

test('doctor: TLS: expired, for another name, 5 days left', { skip, timeout: 60000 }, async (t) => {
  t.after(() => serveCertificate(site.certs.good));
  await serveCertificate(makeCertificate(site.certDir, 'expired', { days: -1 }));
  let r = await doctor(site.env);
  // Apps (and doctor's own requests) refuse the expired certificate the server serves.
  assertChecks(r, { tls: 'fail', did_json: 'fail', websocket: 'fail' }, 'expired');
  assert.match(r.checks.tls.verdict, /expired .* ago .*: apps refuse it/);
  assert.match(r.checks.tls.fix, /renew it/);
  assert.match(r.checks.did_json.verdict, /certificate/i);
  assert.match(r.checks.did_json.fix, /see TLS/);
  assert.match(r.checks.websocket.verdict, /TLS handshake .* failed: certificate: certificate has expired/);
  assert.match(r.checks.websocket.fix, /see TLS/);

  await serveCertificate(makeCertificate(site.certDir, 'other', { cn: 'other.example', san: 'DNS:other.example' }));
  r = await doctor(site.env);
  assertChecks(r, { tls: 'fail', did_json: 'fail', websocket: 'fail' }, 'another name');
  assert.match(r.checks.tls.verdict, /\[DNS:other\.example\] is not for localhost: apps refuse it/);
  assert.match(r.checks.tls.fix, /names include localhost/);

  await serveCertificate(makeCertificate(site.certDir, 'soon', { days: 5 }));
  r = await doctor(site.env);
  assertChecks(r, { tls: 'warn' }, '5 days left');
  assert.match(r.checks.tls.verdict, /expires soon: (4|5) days left/);
  assert.equal(r.ok, true);
});

test('doctor: did.json: the server started for another host, then the server down', { skip, timeout: 60000 }, async (t) => {
  t.after(() => restart());
  await restart({ args: ['--public-host', 'localhost:1'] });
  let r = await doctor(site.env);
  assertChecks(r, { did_json: 'fail' }, 'another host');
  assert.match(r.checks.did_json.verdict, new RegExp(`has id did:web:localhost%3A1, not did:web:localhost%3A${site.port}`));
  assert.match(r.checks.did_json.fix, new RegExp(`set GROUNDMIST_SYNC_HOST .* to ${site.host} and restart`));

  await server.stop();
  server = null;
  r = await doctor(site.env);
  assertChecks(r, { did_json: 'fail', websocket: 'fail' }, 'server down');
  assert.match(r.checks.did_json.verdict, /Could not connect|Connection refused|couldn't connect/i);
  assert.match(r.checks.did_json.fix, /is `groundmist-sync serve` running/);
  assert.match(r.checks.websocket.verdict, /cannot connect to localhost port \d+: Connection refused/);
  assert.match(r.checks.websocket.fix, /is the server running/);
});

test('doctor: record: naming another host, then missing', { skip, timeout: 60000 }, async (t) => {
  t.after(() => publish(site.host));
  await publish('elsewhere.example');
  let r = await doctor(site.env);
  assertChecks(r, { record: 'fail' }, 'another host');
  assert.match(r.checks.record.verdict, new RegExp(`names "elsewhere\\.example", not ${site.host}: apps go there`));
  assert.match(r.checks.record.fix, new RegExp(`groundmist-sync publish --host ${site.host} --did ${atp.alice.did} --plc-url`));

  await cli(['unpublish', '--handle', 'alice.test', '--pds', atp.pdsUrl],
    { env: cleanEnv({ ATPROTO_APP_PASSWORD: atp.alice.appPassword }) });
  r = await doctor(site.env);
  assertChecks(r, { record: 'fail' }, 'missing');
  assert.match(r.checks.record.verdict, /no xyz\.groundmist\.sync record in .*: apps cannot find this server/);
});

test('doctor: WebSocket refused: the server signs tokens with another secret than the data folder\'s key', { skip, timeout: 60000 }, async (t) => {
  t.after(() => restart());
  await restart({ env: { GROUNDMIST_SYNC_SECRET_KEY: 'not-the-key-in-the-data-folder' } });
  const r = await doctor(site.env);
  assertChecks(r, { websocket: 'fail' }, 'another secret');
  assert.match(r.checks.websocket.verdict, /the server answered HTTP 401 .* to the upgrade/);
  assert.match(r.checks.websocket.fix, /refused a token signed with .*secret\.key.*GROUNDMIST_SYNC_SECRET_KEY/);
});

test('doctor: all well again after the failures, in under a few seconds', { skip, timeout: 60000 }, async () => {
  await sleep(100);
  const started = Date.now();
  const r = await doctor(site.env);
  assertChecks(r, {}, 'healthy again');
  console.log(`doctor took ${Date.now() - started} ms`);
});
