// Issue 11: atproto login, end to end. The real `groundmist-sync` against the real
// atproto reference PLC + PDS (@atproto/dev-env, started once for this file by
// lib/atproto.mjs on loopback, accounts alice.test = the owner and bob.test), and real
// automerge-repo clients. What an app does (spec/atproto.md §1, §2d): log in to its PDS,
// read the xyz.groundmist.sync record, ask the PDS for a service-auth token addressed to
// the server's did:web, POST it to /authenticate, open the WebSocket with the session
// token it gets back. Then everything the server must refuse (§2a strict checks), the
// owner's commands (publish, resolve, root, sessions, devices), and the OAuth + DPoP
// compatibility path (§2b), which is off unless --allow-oauth-dpop.
//
// Each test starts its own server (--owner alice, --public-host localhost:<port>) with a
// fresh data folder. The server refuses an address after ~20 failed logins in a short
// time, so no test sends more than ~15 refused requests to one server, except the one
// that checks that limit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { scope } from './lib/scope.mjs';
import { SERVER_KIND, serverEnv } from './lib/server.mjs';
import { loadStack } from './lib/clients.mjs';
import { openRaw, joinRaw } from './lib/raw.mjs';
import { tempDir, waitFor, sleep, withTimeout } from './lib/util.mjs';
import {
  startAtprotoNetwork, loadAtprotoApi, freePort, serviceDid, SERVICE_FRAGMENT, LXM, now,
  accountSigner, randomSigner, serviceJwt, highS, derSignature, tamperPayload, algNone,
  newDpopKey, dpopProof, fakeAccessToken, postAuthenticate, cli, runCli,
} from './lib/atproto.mjs';

const GROUP = 'xyz.groundmist.library';
const APP_ORIGIN = 'https://library.groundmist.xyz';
const skip = SERVER_KIND !== 'cpp' ? 'the JS reference server has no atproto login' : false;

let atp; // the PLC + PDS and its accounts (lib/atproto.mjs startAtprotoNetwork)
let api; // @atproto/api, as apps use it
let alice; // AtpAgent logged in as alice (the owner)
let bob; // AtpAgent logged in as bob (someone else)

before(async () => {
  if (skip) return;
  [atp, api] = await Promise.all([startAtprotoNetwork(), loadAtprotoApi()]);
  [alice, bob] = await Promise.all([login('alice.test', atp.alice.password), login('bob.test', atp.bob.password)]);
}, { timeout: 90000 });

after(async () => {
  await atp?.close();
});

// --- helpers ----------------------------------------------------------------------------

async function login(identifier, password) {
  const agent = new api.AtpAgent({ service: atp.pdsUrl });
  await agent.login({ identifier, password });
  return agent;
}

// A service-auth token from the PDS, as an app gets one.
async function pdsToken(agent, aud, lxm = LXM) {
  const res = await agent.com.atproto.server.getServiceAuth({ aud, lxm });
  return res.data.token;
}

// A server owned by alice, its public host localhost:<port> (the port is chosen first,
// since the host names it). Adds host, origin, did (the server's did:web) and aud.
async function ownerServer(env, { data = tempDir('atproto'), port, args = [] } = {}) {
  port ??= await freePort();
  const host = `localhost:${port}`;
  const server = await env.server({
    data, port, args: ['--owner', atp.alice.did, '--public-host', host, '--plc-url', atp.plcUrl, ...args],
  });
  // A server that dies on its own (a crash) shows up in the test as "fetch failed":
  // print why, with the end of its log.
  server.exited.then(({ code, signal }) => {
    if (signal === 'SIGKILL' || code === 0) return;
    console.error(`server on port ${port} died (${signal ?? `exit code ${code}`}); the end of its log:\n` +
      server.log().split('\n').slice(-12).join('\n'));
  });
  return Object.assign(server, { host, origin: `http://${host}`, did: serviceDid(port), aud: serviceDid(port) + SERVICE_FRAGMENT });
}

const body = (rootDocUrl = null, group = GROUP) => ({ lexiconAuthorityDomain: group, rootDocUrl });

function authenticate(server, token, { rootDocUrl = null, group = GROUP, path, headers } = {}) {
  return postAuthenticate(server.origin, { auth: `Bearer ${token}`, body: body(rootDocUrl, group), path, headers });
}

const wsUrl = (server, token) => `ws://${server.host}/?token=${token}`;

// expiresAt as milliseconds, whether ISO text or unix seconds / milliseconds.
function expiryMs(v) {
  if (typeof v === 'number') return v > 1e12 ? v : v * 1000;
  if (typeof v === 'string') return /^\d+$/.test(v) ? expiryMs(Number(v)) : Date.parse(v);
  return NaN;
}

// A 200 {"result":"OK","token","rootDocUrl","expiresAt"}; returns the JSON.
function assertOk(res, what, { ttlMs } = {}) {
  assert.equal(res.status, 200, `${what}: HTTP ${res.status} ${res.text}`);
  assert.ok(res.json, `${what}: the answer is not JSON: ${res.text}`);
  assert.equal(res.json.result, 'OK', `${what}: ${res.text}`);
  assert.equal(typeof res.json.token, 'string', `${what}: no token: ${res.text}`);
  assert.ok('rootDocUrl' in res.json, `${what}: no rootDocUrl: ${res.text}`);
  const exp = expiryMs(res.json.expiresAt);
  assert.ok(exp > Date.now(), `${what}: expiresAt ${res.json.expiresAt} is not in the future`);
  if (ttlMs) assert.ok(exp <= Date.now() + ttlMs + 60000, `${what}: expiresAt ${res.json.expiresAt} is more than ${ttlMs / 1000} s away`);
  return res.json;
}

// A refusal: the status, JSON {error, message}, a WWW-Authenticate header on a 401, and a
// message naming the failed check (`message`, a RegExp).
function assertRefused(res, what, { status = 401, message } = {}) {
  if (process.env.GM_E2E_VERBOSE) console.log(`refused? ${what}: ${res.status} ${res.text} [${res.headers.get('www-authenticate')}]`);
  assert.equal(res.status, status, `${what}: expected HTTP ${status}, got ${res.status} ${res.text}`);
  assert.ok(res.json && typeof res.json.error === 'string', `${what}: the refusal is not JSON {error, message}: ${res.text}`);
  if (status === 401) assert.ok(res.headers.get('www-authenticate'), `${what}: a 401 without WWW-Authenticate (${res.text})`);
  if (message) {
    assert.match(`${res.json.message ?? ''}`, message, `${what}: the message does not name the failed check (${message}): ${res.text}`);
  }
}

async function newUrl() {
  const { repoPkg } = await loadStack('2.5.6');
  return repoPkg.generateAutomergeUrl();
}

// --- the app flow ---------------------------------------------------------------------

test('app flow: log in, publish, find the host, getServiceAuth, /authenticate, sync; a second device gets the same root document', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env, { args: ['--session-ttl', '1h'] });
  const did = atp.alice.did;

  // The owner publishes the server's host with the CLI and an app password.
  await cli(['publish', '--host', server.host, '--handle', 'alice.test', '--pds', atp.pdsUrl],
    { env: { ATPROTO_APP_PASSWORD: atp.alice.appPassword } });

  // Device 1, as the library app: log in, read the record, ask for a token.
  const agent1 = await login('alice.test', atp.alice.password);
  const rec = await agent1.com.atproto.repo.getRecord({ repo: did, collection: 'xyz.groundmist.sync', rkey: did });
  assert.equal(rec.data.value.host, server.host, `the published record: ${JSON.stringify(rec.data.value)}`);
  assert.equal(rec.data.value.$type, 'xyz.groundmist.sync');
  const host = rec.data.value.host;
  const aud = `did:web:${encodeURIComponent(host)}${SERVICE_FRAGMENT}`;
  assert.equal(aud, server.aud);

  // The app has its root (index) document before it talks to the server.
  const d1 = await env.client('2.5.6', null);
  const root1 = d1.create({ collections: ['papers'] });
  const r1 = assertOk(await authenticate(server, await pdsToken(agent1, aud), { rootDocUrl: root1.url }), 'device 1', { ttlMs: 3600e3 });
  assert.equal(r1.rootDocUrl, root1.url, 'the first rootDocUrl is kept');
  assert.doesNotMatch(r1.token, /^ey/, 'the session token is the server\'s own, not the service JWT');
  d1.connect(`ws://${host}/?token=${r1.token}`);
  await d1.waitPeer();
  await d1.waitServerHas(root1);

  // Device 2: logs in with the app password, has its own fresh index document, and is
  // told the owner's root instead (first wins), finds it, and they edit together.
  const agent2 = await login('alice.test', atp.alice.appPassword);
  const d2 = await env.client('2.5.6', null);
  const root2 = d2.create({ collections: [] });
  const r2 = assertOk(await authenticate(server, await pdsToken(agent2, aud), { rootDocUrl: root2.url }), 'device 2', { ttlMs: 3600e3 });
  assert.equal(r2.rootDocUrl, root1.url, 'device 2 is given the first root document');
  assert.notEqual(r2.token, r1.token);
  d2.connect(`ws://${host}/?token=${r2.token}`);
  await d2.waitPeer();
  const found = await d2.find(r2.rootDocUrl, 5000);
  assert.equal(found.state, 'ready');
  assert.deepEqual(d2.json(found.handle), { collections: ['papers'] });
  d2.change(found.handle, (d) => { d.collections.push('notes'); });
  await waitFor(() => d1.json(root1).collections.length === 2, 5000, 'device 2\'s edit at device 1');
  assert.deepEqual(d1.json(root1), { collections: ['papers', 'notes'] });
});

test('a 1.2.1 client (today\'s apps) logs in with a bare did:web audience on /xrpc/xyz.groundmist.sync.authenticate', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  // Older PDSes only take a bare DID as aud (spec §2d step 2); the server accepts both.
  const r1 = assertOk(await authenticate(server, await pdsToken(alice, server.did), { path: '/xrpc/xyz.groundmist.sync.authenticate' }), 'bare aud, xrpc path');
  assert.equal(r1.rootDocUrl, null);
  const c1 = await env.client('1.2.1', wsUrl(server, r1.token));
  await c1.waitPeer();
  const h = c1.create({ title: 'from 1.2.1' });
  await c1.waitServerHas(h);
  const r2 = assertOk(await authenticate(server, await pdsToken(alice, server.aud)), 'fragment aud, /authenticate');
  const c2 = await env.client('2.5.6', wsUrl(server, r2.token));
  await c2.waitPeer();
  const f = await c2.find(h.url, 5000);
  assert.equal(f.state, 'ready');
  assert.deepEqual(c2.json(f.handle), { title: 'from 1.2.1' });
});

test('resolve reports every step ok: DID, handle, PDS, published host, healthz, did.json', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  await cli(['publish', '--host', server.host, '--handle', 'alice.test', '--pds', atp.pdsUrl],
    { env: { ATPROTO_APP_PASSWORD: atp.alice.appPassword } });
  const r = await cli(['resolve', atp.alice.did, '--plc-url', atp.plcUrl, '--json'], { json: true });
  const all = JSON.stringify(r);
  assert.equal(r.did, atp.alice.did, all);
  assert.equal(r.handle, 'alice.test', all);
  assert.equal(r.pds?.replace(/\/$/, ''), atp.pdsUrl, all);
  assert.equal(r.host, server.host, all);
  assert.ok(r.healthz, `healthz: ${all}`);
  assert.ok(r.didDocument, `didDocument: ${all}`);
  assert.deepEqual(r.problems, [], all);
});

test('GET /.well-known/did.json is the server\'s did:web document with its #groundmist_sync service', { skip, timeout: 20000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  const res = await fetch(`${server.origin}/.well-known/did.json`);
  assert.equal(res.status, 200);
  const doc = await res.json();
  assert.equal(doc.id, server.did, JSON.stringify(doc));
  const svc = (doc.service ?? []).find((s) => s.id === SERVICE_FRAGMENT || s.id === server.aud);
  assert.ok(svc, `no ${SERVICE_FRAGMENT} service: ${JSON.stringify(doc)}`);
  assert.equal(svc.type, 'GroundmistSyncServer');
  assert.equal(svc.serviceEndpoint, server.origin);
});

// --- refusals ---------------------------------------------------------------------------

test('refused: replayed, expired, other audience, other lxm, not the owner (bob\'s real token), foreign kid, at+jwt', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  const key = accountSigner(atp.alice.signingKeyHex);
  const iss = atp.alice.did;

  // Baselines: a real token and one minted here with alice's key both work, so every
  // refusal below is about what was changed.
  const real = await pdsToken(alice, server.aud);
  assertOk(await authenticate(server, real), 'a real PDS token');
  assertOk(await authenticate(server, serviceJwt(key, { iss, aud: server.aud })), 'a token minted with alice\'s key');

  assertRefused(await authenticate(server, real), 'the same token again', { message: /replay/i });
  assertRefused(await authenticate(server, serviceJwt(key, { iss, aud: server.aud, iat: now() - 400, exp: now() - 300 })),
    'expired', { message: /expired/i });
  assertRefused(await authenticate(server, serviceJwt(key, { iss, aud: `did:web:sync.example.com${SERVICE_FRAGMENT}` })),
    'another server\'s audience', { message: /audience/i });
  assertRefused(await authenticate(server, serviceJwt(key, { iss, aud: `${server.did}#atproto_pds` })),
    'this server\'s DID with another service', { message: /audience/i });
  assertRefused(await authenticate(server, serviceJwt(key, { iss, aud: server.aud, lxm: 'xyz.groundmist.sync.deleteEverything' })),
    'another lxm', { message: /lxm/i });
  assertRefused(await authenticate(server, serviceJwt(key, { iss, aud: server.aud, payload: { lxm: undefined } })),
    'no lxm', { message: /lxm/i });
  assertRefused(await authenticate(server, await pdsToken(bob, server.aud)), 'bob\'s real token', { message: /owner/i });
  // spec §2a: kid absent or #atproto; typ at+jwt (an OAuth access token) is not service auth.
  assertRefused(await authenticate(server, serviceJwt(key, { iss, aud: server.aud, header: { kid: '#other' } })), 'kid #other');
  assertRefused(await authenticate(server, serviceJwt(key, { iss, aud: server.aud, header: { typ: 'at+jwt' } })), 'typ at+jwt');
});

test('refused: forged signatures (high-S, DER, alg none, wrong curve, other key, tampered payload, truncated), garbage, no credential', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  const key = accountSigner(atp.alice.signingKeyHex);
  const iss = atp.alice.did;

  // Forgeries made from real PDS tokens, each from a fresh one, so the refusal is about
  // the forgery and not a replay.
  const real1 = await pdsToken(alice, server.aud);
  assertRefused(await authenticate(server, highS(real1)), 'high-S form of a real token', { message: /high.?s/i });
  // The refused forgery did not use up the token's jti: the genuine token still works.
  assertOk(await authenticate(server, real1), 'the real token after its high-S twin was refused');

  assertRefused(await authenticate(server, derSignature(await pdsToken(alice, server.aud))), 'DER signature', { message: /64 bytes|DER/i });
  assertRefused(await authenticate(server, algNone(await pdsToken(alice, server.aud))), 'alg none', { message: /none|alg/i });
  const tampered = tamperPayload(await pdsToken(alice, server.aud), { exp: now() + 1800 });
  assertRefused(await authenticate(server, tampered), 'tampered payload (exp moved)', { message: /signature/i });
  const real5 = await pdsToken(alice, server.aud);
  const [h5, p5, s5] = real5.split('.');
  const truncated = `${h5}.${p5}.${Buffer.from(s5, 'base64url').subarray(0, 63).toString('base64url')}`;
  assertRefused(await authenticate(server, truncated), 'a 63-byte signature', { message: /64 bytes/i });

  // Minted here: the claims are right, the signature is not.
  assertRefused(await authenticate(server, serviceJwt(key, { iss, aud: server.aud, header: { alg: 'ES256' } })),
    'alg ES256 on alice\'s secp256k1 key', { message: /alg|curve/i });
  assertRefused(await authenticate(server, serviceJwt(randomSigner('secp256k1'), { iss, aud: server.aud })),
    'signed by a key that is not alice\'s', { message: /signature/i });

  assertRefused(await authenticate(server, 'not-a-jwt'), 'garbage bearer token');
  assertRefused(await postAuthenticate(server.origin, { body: body() }), 'no Authorization header');
});

test('refused (spec §2a strict policy): iat in the future, a 24 h lifetime, iss with a fragment', { skip, timeout: 20000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  const key = accountSigner(atp.alice.signingKeyHex);
  const iss = atp.alice.did;
  assertRefused(await authenticate(server, serviceJwt(key, { iss, aud: server.aud, iat: now() + 600 })), 'iat 10 min ahead');
  assertRefused(await authenticate(server, serviceJwt(key, { iss, aud: server.aud, exp: now() + 86400 })), '24 h lifetime');
  assertRefused(await authenticate(server, serviceJwt(key, { iss: `${iss}#atproto`, aud: server.aud })), 'iss with a fragment');
});

test('400 for a malformed body or a bad lexiconAuthorityDomain', { skip, timeout: 20000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  const key = accountSigner(atp.alice.signingKeyHex);
  const fresh = () => `Bearer ${serviceJwt(key, { iss: atp.alice.did, aud: server.aud })}`;
  const cases = [
    ['not JSON', '{"lexiconAuthorityDomain": '],
    ['no lexiconAuthorityDomain', { rootDocUrl: null }],
    ['a path as the group', body(null, '../../etc')],
    ['an empty segment', body(null, 'xyz..groundmist')],
    ['rootDocUrl not a string', { lexiconAuthorityDomain: GROUP, rootDocUrl: 42 }],
  ];
  for (const [what, b] of cases) {
    assertRefused(await postAuthenticate(server.origin, { auth: fresh(), body: b }), what, { status: 400 });
  }
});

test('rate limit: after ~20 failures from one address, 429 with Retry-After; a good token still gets in (the owner behind a shared proxy), a forged one gets 429', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  let limitedAt = -1;
  let res;
  for (let i = 0; i < 40; i++) {
    res = await authenticate(server, `garbage-${i}`);
    if (res.status === 429) {
      limitedAt = i;
      break;
    }
    assert.equal(res.status, 401, `attempt ${i}: ${res.status} ${res.text}`);
  }
  assert.ok(limitedAt >= 0, 'no 429 after 40 failed attempts');
  assert.ok(limitedAt >= 10, `429 already after ${limitedAt} failures`);
  const retryAfter = res.headers.get('retry-after');
  assert.match(retryAfter ?? '', /^\d+$/, `Retry-After: ${retryAfter}`);
  assert.ok(Number(retryAfter) > 0);
  // Still checked while limited: a forgery is a 429 (nothing fetched, nothing recorded),
  // the owner's real token gets in.
  const forged = await authenticate(server, highS(await pdsToken(alice, server.aud)));
  assert.equal(forged.status, 429, `a forged token while limited: ${forged.status} ${forged.text}`);
  const good = await authenticate(server, await pdsToken(alice, server.aud));
  assert.equal(good.status, 200, `a good token while limited: ${good.status} ${good.text}`);
});

test('behind a proxy (--trust-proxy): each X-Forwarded-For client has its own allowance; sessions record it', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env, { args: ['--trust-proxy'] });
  const from = (ip) => ({ headers: { 'x-forwarded-for': `203.0.113.9, ${ip}` } });
  let res;
  for (let i = 0; i < 40 && res?.status !== 429; i++) res = await authenticate(server, `garbage-${i}`, from('198.51.100.1'));
  assert.equal(res.status, 429, 'the flooding client is limited');
  const other = await authenticate(server, 'garbage', from('198.51.100.2'));
  assert.equal(other.status, 401, `another client behind the same proxy: ${other.status} ${other.text}`);
  assertOk(await authenticate(server, await pdsToken(alice, server.aud), from('198.51.100.3')), 'the owner');
  const sessions = await cli(['sessions', 'list', '--json', '--data', server.data], { json: true });
  assert.equal(sessions[0].address, '198.51.100.3', 'the proxy\'s last entry, not the first (the client\'s own word)');
});

test('no CORS on routes a browser app has no business reading from another origin (/healthz, /metrics)', { skip, timeout: 20000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  for (const path of ['/healthz', '/metrics']) {
    const res = await fetch(`${server.origin}${path}`, { headers: { origin: 'https://evil.example' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), null, path);
  }
});

test('owner commands refuse a data folder the server never ran on (they would act on an empty database)', { skip, timeout: 20000 }, async () => {
  const empty = tempDir('atproto-empty');
  for (const args of [['sessions', 'revoke', '--all'], ['sessions', 'list'], ['devices', 'list'], ['root', GROUP]]) {
    const r = await runCli([...args, '--data', empty]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /no server state at .*server\.db/);
  }
});

// --- the owner's commands -----------------------------------------------------------------

test('rootDocUrl: first wins per group, kept across a restart; `root` shows and sets it', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const data = tempDir('atproto-root');
  const port = await freePort();
  let server = await ownerServer(env, { data, port });
  const G2 = 'xyz.groundmist.notebook.essay';
  const G3 = 'xyz.groundmist.editor';
  const [u1, u2, u3, u4] = await Promise.all([newUrl(), newUrl(), newUrl(), newUrl()]);
  const auth = async (url, group = GROUP) =>
    assertOk(await authenticate(server, await pdsToken(alice, server.aud), { rootDocUrl: url, group }), `${group} with ${url}`).rootDocUrl;

  assert.equal(await auth(u1), u1);
  assert.equal(await auth(u2), u1, 'a later rootDocUrl does not replace the first');
  assert.equal(await auth(null), u1);
  assert.equal(await auth(null, G2), null, 'another group has none yet');
  assert.equal(await auth(u2, G2), u2, 'null did not claim the group');
  assert.match(await cli(['root', GROUP, '--data', data]), new RegExp(u1));

  await server.stop();
  // Set by the owner while the server is down, for a group that has none.
  await cli(['root', G3, u4, '--data', data]);
  assert.match(await cli(['root', G3, '--data', data]), new RegExp(u4));
  server = await ownerServer(env, { data, port });
  assert.equal(await auth(u3), u1, 'after a restart');
  assert.equal(await auth(null, G2), u2, 'after a restart, the other group');
  assert.equal(await auth(u3, G3), u4, 'the one set with `root`');
});

test('sessions: listed with who and where; a revoked session\'s socket is closed at once and its token refused', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  const data = server.data;
  const login1 = assertOk(await authenticate(server, await pdsToken(alice, server.aud),
    { headers: { origin: APP_ORIGIN, 'user-agent': 'groundmist-e2e device-1' } }), 'device 1');
  const login2 = assertOk(await authenticate(server, await pdsToken(alice, server.aud),
    { headers: { origin: APP_ORIGIN, 'user-agent': 'groundmist-e2e device-2' } }), 'device 2');
  const p1 = await joinRaw(wsUrl(server, login1.token));
  const p2 = await joinRaw(wsUrl(server, login2.token));
  t.after(() => { p1.close(); p2.close(); });

  const list = await cli(['sessions', 'list', '--json', '--data', data], { json: true });
  assert.ok(Array.isArray(list), JSON.stringify(list));
  const s1 = list.find((s) => s.userAgent === 'groundmist-e2e device-1');
  const s2 = list.find((s) => s.userAgent === 'groundmist-e2e device-2');
  assert.ok(s1 && s2, `both sessions with their user agents: ${JSON.stringify(list)}`);
  for (const s of [s1, s2]) {
    assert.equal(s.group, GROUP, JSON.stringify(s));
    assert.equal(s.subject, atp.alice.did, JSON.stringify(s));
    assert.equal(s.revoked, false, JSON.stringify(s));
    assert.equal(s.origin, APP_ORIGIN, JSON.stringify(s));
    assert.match(`${s.address}`, /127\.0\.0\.1/, JSON.stringify(s));
    assert.ok(s.id !== undefined && s.createdAt !== undefined, JSON.stringify(s));
    assert.ok(expiryMs(s.expiresAt) > Date.now(), JSON.stringify(s));
  }

  const t0 = performance.now();
  await cli(['sessions', 'revoke', String(s1.id), '--data', data]);
  const closed = await withTimeout(p1.closedPromise, 3000, 'the revoked session\'s socket to close');
  const ms = performance.now() - t0;
  t.diagnostic(`revoked socket closed ${ms.toFixed(0)} ms after the command started (code ${closed.code} ${closed.reason})`);
  assert.ok(ms < 2500, `closing took ${ms.toFixed(0)} ms`);
  const again = await openRaw(wsUrl(server, login1.token));
  assert.equal(again.status, 401, 'the revoked token is refused at the upgrade');
  again.ws?.terminate();
  await sleep(300);
  assert.equal(p2.closed, null, 'the other session stays connected');
  const listed = await cli(['sessions', 'list', '--json', '--data', data], { json: true });
  assert.equal(listed.find((s) => s.id === s1.id)?.revoked, true, JSON.stringify(listed));

  await cli(['sessions', 'revoke', '--all', '--data', data]);
  await withTimeout(p2.closedPromise, 3000, 'the last socket to close after revoke --all');
  assert.equal((await openRaw(wsUrl(server, login2.token))).status, 401);
  // A new login still works.
  const login3 = assertOk(await authenticate(server, await pdsToken(alice, server.aud)), 'a login after revoke --all');
  const p3 = await joinRaw(wsUrl(server, login3.token)).catch((e) => {
    throw new Error(`a session created right after \`sessions revoke --all\` cannot connect (${e.message})`);
  });
  p3.close();
});

// Issue 14: scopes beyond the app's group wait for the owner (`grants list / approve`);
// the next login's token carries them; `grants revoke` closes the sockets that used them
// at once, and the token keeps its own group.
test('grants: a scope request waits for the owner, then comes in the token; revoking closes its sockets', { skip, timeout: 40000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  const data = server.data;
  const headers = { origin: APP_ORIGIN, 'user-agent': 'groundmist-e2e grants' };
  const login = async (scopes) => {
    const res = await postAuthenticate(server.origin, {
      auth: `Bearer ${await pdsToken(alice, server.aud)}`, body: { lexiconAuthorityDomain: GROUP, scopes }, headers,
    });
    return assertOk(res, `login asking ${JSON.stringify(scopes)}`);
  };
  const first = await login(['xyz.groundmist.notebook:read']);
  assert.deepEqual(first.scopes.granted, [], JSON.stringify(first));
  assert.deepEqual(first.scopes.pending, ['xyz.groundmist.notebook:read'], JSON.stringify(first));
  const id = first.scopes.request;
  assert.match(id, /^G[0-9A-Z]{4}-[0-9A-Z]{4}$/, JSON.stringify(first));
  let grants = await cli(['grants', 'list', '--json', '--data', data], { json: true });
  const pending = grants.find((g) => g.id === id);
  assert.equal(pending?.status, 'pending', JSON.stringify(grants));
  assert.equal(pending.subject, `origin:${APP_ORIGIN}`, JSON.stringify(pending));
  assert.deepEqual(pending.scopes, [{ nsid: 'xyz.groundmist.notebook', access: 'read' }]);
  // Not granted before the owner says so.
  assert.deepEqual((await login(['xyz.groundmist.notebook:read'])).scopes.pending, ['xyz.groundmist.notebook:read']);

  await cli(['grants', 'approve', id.toLowerCase().replace('-', ''), '--data', data]);
  const second = await login(['xyz.groundmist.notebook:read']);
  assert.deepEqual(second.scopes.granted, ['xyz.groundmist.notebook:read'], JSON.stringify(second));
  assert.deepEqual(second.scopes.pending, []);
  const claims = JSON.parse(Buffer.from(second.token.split('.')[1], 'base64url').toString());
  assert.equal(claims.scp, `xyz.groundmist.notebook:read@${id}`, JSON.stringify(claims));
  const plain = await login([]);  // a socket without the grant stays open

  const p1 = await joinRaw(wsUrl(server, second.token));
  const p2 = await joinRaw(wsUrl(server, plain.token));
  t.after(() => { p1.close(); p2.close(); });
  const t0 = performance.now();
  await cli(['grants', 'revoke', id, '--data', data]);
  const closed = await withTimeout(p1.closedPromise, 3000, 'the socket whose grant was revoked to close');
  t.diagnostic(`closed ${(performance.now() - t0).toFixed(0)} ms after \`grants revoke\` (code ${closed.code} ${closed.reason})`);
  await sleep(300);
  assert.equal(p2.closed, null, 'a socket that did not use the grant stays connected');
  // The token keeps its own group, without the fallen scope.
  const p3 = await joinRaw(wsUrl(server, second.token));
  p3.close();
  grants = await cli(['grants', 'list', '--json', '--data', data], { json: true });
  assert.equal(grants.find((g) => g.id === id)?.status, 'revoked', JSON.stringify(grants));
  assert.deepEqual((await login(['xyz.groundmist.notebook:read'])).scopes.pending, ['xyz.groundmist.notebook:read'],
    'after revoking, the scope is asked for again');

  // The owner's own tools: `token --scope` makes a grant for the token; `grants revoke` closes it.
  const minted = await runCli(['token', '--group', 'xyz.groundmist.agent', '--scope', 'xyz.groundmist:read',
    '--name', 'e2e-agent', '--data', data], { env: serverEnv() });
  assert.equal(minted.code, 0, minted.stderr);
  const agentGrant = /grant (G[0-9A-Z-]+)/.exec(minted.stderr)?.[1];
  assert.ok(agentGrant, minted.stderr);
  const p4 = await joinRaw(wsUrl(server, minted.stdout.trim()));
  grants = await cli(['grants', 'list', '--json', '--data', data], { json: true });
  const g = grants.find((x) => x.id === agentGrant);
  assert.equal(g?.subject, 'token:e2e-agent', JSON.stringify(grants));
  assert.equal(g.status, 'approved');
  await cli(['grants', 'revoke', agentGrant, '--data', data]);
  await withTimeout(p4.closedPromise, 3000, 'the agent token\'s socket to close');
  // Refusing and approving what is no longer pending is an error that says so.
  const again = await runCli(['grants', 'approve', agentGrant, '--data', data]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /revoked/);
  const bad = await runCli(['grants', 'add', '--subject', 'token:x', '--scope', 'nope', '--data', data]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /scope/);
});

test('tokens from `groundmist-sync token` (gms1) still work beside atproto logins', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  const local = server.token(GROUP);
  assert.match(local, /^gms1\./);
  const c1 = await env.client('2.5.6', wsUrl(server, local));
  await c1.waitPeer();
  const h = c1.create({ from: 'a local token' });
  await c1.waitServerHas(h);
  const r = assertOk(await authenticate(server, await pdsToken(alice, server.aud)), 'atproto login');
  const c2 = await env.client('1.2.1', wsUrl(server, r.token));
  await c2.waitPeer();
  const f = await c2.find(h.url, 5000);
  assert.equal(f.state, 'ready');
  assert.deepEqual(c2.json(f.handle), { from: 'a local token' });
});

test('CORS: preflight reflects the Origin, allows Authorization, DPoP, Content-Type, no credentials', { skip, timeout: 20000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env);
  for (const path of ['/authenticate', '/xrpc/xyz.groundmist.sync.authenticate']) {
    const res = await fetch(`${server.origin}${path}`, {
      method: 'OPTIONS',
      headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, dpop, content-type' },
    });
    assert.ok(res.status === 200 || res.status === 204, `${path} preflight: HTTP ${res.status}`);
    assert.equal(res.headers.get('access-control-allow-origin'), APP_ORIGIN, `${path}`);
    const allowed = (res.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/\s*,\s*/);
    for (const h of ['authorization', 'dpop', 'content-type']) assert.ok(allowed.includes(h), `${path}: ${h} not in Access-Control-Allow-Headers: ${allowed}`);
    assert.equal(res.headers.get('access-control-allow-credentials'), null, `${path}: credentials must not be allowed`);
  }
  // The answer itself carries the Origin too, or the browser hides it from the app.
  const res = await authenticate(server, await pdsToken(alice, server.aud), { headers: { origin: APP_ORIGIN } });
  assertOk(res, 'login with an Origin');
  assert.equal(res.headers.get('access-control-allow-origin'), APP_ORIGIN);
  assert.equal(res.headers.get('access-control-allow-credentials'), null);
});

// --- OAuth access token + DPoP (--allow-oauth-dpop) ----------------------------------------

// A DPoP login as today's apps send it: Authorization: DPoP <access token>, DPoP: <proof>.
function dpopLogin(server, key, accessToken, proof = {}, { group = GROUP } = {}) {
  const dpop = typeof proof === 'string' ? proof : dpopProof(key, { htu: `${server.origin}/authenticate`, accessToken, ...proof });
  return postAuthenticate(server.origin, { auth: `DPoP ${accessToken}`, dpop, body: body(null, group) });
}

// First login from an unknown key: approval_required with a device code; approves it.
async function approveDevice(server, key, accessToken) {
  const res = await dpopLogin(server, key, accessToken);
  assertRefused(res, 'first DPoP login from a new key');
  assert.equal(res.json.error, 'approval_required', res.text);
  assert.equal(typeof res.json.device, 'string', res.text);
  await cli(['devices', 'approve', res.json.device, '--data', server.data]);
  return res.json.device;
}

test('DPoP: a new key needs the owner\'s approval (devices list / approve / revoke); off without --allow-oauth-dpop', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env, { args: ['--allow-oauth-dpop'] });
  const key = newDpopKey();
  const at = fakeAccessToken({ sub: atp.alice.did, jkt: key.jkt });

  const first = await dpopLogin(server, key, at);
  assertRefused(first, 'first DPoP login from a new key');
  assert.equal(first.json.error, 'approval_required', first.text);
  const code = first.json.device;
  assert.equal(typeof code, 'string', first.text);
  const pending = await cli(['devices', 'list', '--json', '--data', server.data], { json: true });
  assert.ok(JSON.stringify(pending).includes(code), `devices list shows ${code}: ${JSON.stringify(pending)}`);
  // Still refused until approved.
  assert.equal((await dpopLogin(server, key, at)).status, 401);

  await cli(['devices', 'approve', code, '--data', server.data]);
  const ok = assertOk(await dpopLogin(server, key, at), 'the approved key');
  const peer = await joinRaw(wsUrl(server, ok.token));
  peer.close();
  // A fresh access token bound to the same key (a token refresh) still works.
  assertOk(await dpopLogin(server, key, fakeAccessToken({ sub: atp.alice.did, jkt: key.jkt })), 'the approved key, refreshed access token');

  // Another key is another device.
  const key2 = newDpopKey();
  const other = await dpopLogin(server, key2, fakeAccessToken({ sub: atp.alice.did, jkt: key2.jkt }));
  assertRefused(other, 'an unapproved key');
  assert.equal(other.json.error, 'approval_required', other.text);
  assert.notEqual(other.json.device, code);

  await cli(['devices', 'revoke', code, '--data', server.data]);
  assert.equal((await dpopLogin(server, key, at)).status, 401, 'the revoked device');

  // Without the switch, DPoP is not a credential at all.
  const plain = await ownerServer(env);
  assertRefused(await dpopLogin(plain, key, at), 'DPoP without --allow-oauth-dpop');
});

test('DPoP: the proof is checked (htu, htm, ath, jti replay, iat, signature, typ, cnf.jkt, sub, exp)', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const server = await ownerServer(env, { args: ['--allow-oauth-dpop'] });
  const key = newDpopKey();
  const at = fakeAccessToken({ sub: atp.alice.did, jkt: key.jkt });
  await approveDevice(server, key, at);
  const htu = `${server.origin}/authenticate`;

  const proof = dpopProof(key, { htu, accessToken: at });
  assertOk(await dpopLogin(server, key, at, proof), 'the approved key');
  assertRefused(await dpopLogin(server, key, at, proof), 'the same proof again', { message: /replay/i });
  assertRefused(await dpopLogin(server, key, at, { htu: `${server.origin}/xrpc/com.atproto.repo.getRecord` }), 'htu of another path');
  assertRefused(await dpopLogin(server, key, at, { htu: 'http://sync.example.com/authenticate' }), 'htu of another host');
  assertRefused(await dpopLogin(server, key, at, { htm: 'GET' }), 'htm GET');
  assertRefused(await dpopLogin(server, key, at, { accessToken: fakeAccessToken({ sub: atp.alice.did, jkt: key.jkt }) }), 'ath of another token');
  assertRefused(await dpopLogin(server, key, at, { accessToken: undefined }), 'no ath');
  assertRefused(await dpopLogin(server, key, at, { iat: now() - 600 }), 'iat 10 min old');
  assertRefused(await dpopLogin(server, key, at, { signWith: newDpopKey() }), 'proof signed by another key than its jwk');
  assertRefused(await dpopLogin(server, key, at, { header: { typ: 'JWT' } }), 'typ JWT');
  const elsewhere = newDpopKey();
  assertRefused(await dpopLogin(server, key, fakeAccessToken({ sub: atp.alice.did, jkt: elsewhere.jkt })), 'access token bound to another key (cnf.jkt)');
  assertRefused(await dpopLogin(server, key, fakeAccessToken({ sub: atp.bob.did, jkt: key.jkt })), 'access token of bob', { message: /owner/i });
  assertRefused(await dpopLogin(server, key, fakeAccessToken({ sub: atp.alice.did, jkt: key.jkt, exp: now() - 60 })), 'expired access token', { message: /expired/i });
  // Still fine after all that (and under the rate limit).
  assertOk(await dpopLogin(server, key, at), 'the approved key at the end');
});
