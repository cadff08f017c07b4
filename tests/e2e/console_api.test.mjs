// The console's server side over HTTP (docs/console.md; src/web/): the one-time link
// log-in, the cookie, what a console session may and may not do, the CSRF and
// same-origin checks, the headers of every answer, the live overview, and revoking an
// app's session from the console closing its WebSocket. The pages themselves are
// driven in a real browser by console.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { scope } from './lib/scope.mjs';
import { GROUP, SERVER_KIND, mintToken } from './lib/server.mjs';
import { runCli } from './lib/atproto.mjs';
import { joinRaw, openRaw } from './lib/raw.mjs';
import { sleep, tempDir, waitFor } from './lib/util.mjs';

const skip = SERVER_KIND !== 'cpp' ? 'the JS reference server has no console' : false;
const JSON_TYPE = { 'content-type': 'application/json' };

async function consoleLink(server) {
  const r = await runCli(['console-link', '--data', server.data, '--url', `http://127.0.0.1:${server.port}`]);
  assert.equal(r.code, 0, r.stderr);
  const url = r.stdout.trim();
  assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/console/login#code=[A-Za-z0-9_-]{43}$`));
  return url.slice(url.indexOf('#code=') + 6);
}

// Logs in with a fresh link; returns { cookie, csrf, session, base, call }.
async function login(server) {
  const base = `http://127.0.0.1:${server.port}`;
  const code = await consoleLink(server);
  const res = await fetch(`${base}/console/api/login`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ code }) });
  assert.equal(res.status, 200, await res.clone().text());
  const setCookie = res.headers.get('set-cookie');
  assert.match(setCookie, /^gm_console=gms1\.[^;]+; Path=\/console; Max-Age=43200; HttpOnly; SameSite=Strict$/);
  const cookie = setCookie.split(';')[0];
  const session = await (await fetch(`${base}/console/api/session`, { headers: { cookie } })).json();
  const call = (path, { method = 'GET', body, headers = {} } = {}) =>
    fetch(`${base}${path}`, {
      method,
      headers: { cookie, ...(method !== 'GET' ? { ...JSON_TYPE, 'x-csrf-token': session.csrf } : {}), ...headers },
      body: body === undefined ? (method !== 'GET' ? '{}' : undefined) : JSON.stringify(body),
    });
  return { cookie, csrf: session.csrf, session, base, call, code };
}

async function createDocument(server, token, value) {
  const res = await fetch(`http://127.0.0.1:${server.port}/api/v1/groups/${GROUP}/documents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, ...JSON_TYPE },
    body: JSON.stringify(value),
  });
  assert.equal(res.status, 201);
  return (await res.json()).id;
}

// Reads an event stream's events as they come: next(type) resolves the next one of that type.
async function openEvents(url, cookie) {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { cookie }, signal: abort.signal });
  const s = { status: res.status, events: [], ended: false, close: () => abort.abort() };
  if (res.status !== 200) return s;
  s.done = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end; (end = buffer.indexOf('\n\n')) >= 0;) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const ev = { type: 'message', data: '' };
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) ev.type = line.slice(7);
            else if (line.startsWith('data: ')) ev.data += line.slice(6);
          }
          if (ev.data) s.events.push({ type: ev.type, data: JSON.parse(ev.data) });
        }
      }
    } catch {}
    s.ended = true;
  })();
  s.next = (type, pred = () => true, from = 0) =>
    waitFor(() => s.events.slice(from).find((e) => e.type === type && pred(e.data)), 8000, `a ${type} event`);
  return s;
}

test('a console link logs in once; the session is a console session, listed and revocable', { skip }, async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('console-login') });
  const c = await login(server);
  assert.equal(c.session.owner, null);
  assert.match(c.session.csrf, /^[A-Za-z0-9_-]{22}$/);
  // Used: refused, saying so.
  const again = await fetch(`${c.base}/console/api/login`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ code: c.code }) });
  assert.equal(again.status, 401);
  assert.match((await again.json()).error, /already used or expired/);
  for (const body of ['{"code":"short"}', '{"code":' + JSON.stringify('A'.repeat(43)) + '}', '{}', 'nonsense', '[1]']) {
    const r = await fetch(`${c.base}/console/api/login`, { method: 'POST', headers: JSON_TYPE, body });
    assert.ok([400, 401].includes(r.status), `${body}: ${r.status}`);
    assert.equal(r.headers.get('set-cookie'), null);
  }
  // A log-in posted as a form (any site could make a browser do it) is refused.
  const form = await fetch(`${c.base}/console/api/login`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `code=${await consoleLink(server)}` });
  assert.equal(form.status, 403);

  const listed = await runCli(['sessions', 'list', '--json', '--data', server.data]);
  const mine = JSON.parse(listed.stdout).find((s) => s.id === c.session.sessionId);
  assert.equal(mine.kind, 'console');
  const sessions = (await (await c.call('/console/api/sessions')).json()).sessions;
  assert.equal(sessions.find((s) => s.current).id, c.session.sessionId);
  // Revoked from the command line: the cookie stops working within the watcher's period.
  assert.equal((await runCli(['sessions', 'revoke', c.session.sessionId, '--data', server.data])).code, 0);
  await waitFor(async () => (await c.call('/console/api/session')).status === 401, 5000, 'the revoked cookie refused');
  const gone = await c.call('/console/api/session');
  assert.match((await gone.json()).error, /revoked/);
});

test('only the cookie opens the console, and the cookie opens nothing else', { skip }, async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('console-doors') });
  const c = await login(server);
  const token = mintToken(GROUP, server.data);
  const token_value = c.cookie.slice('gm_console='.length);
  for (const path of ['/console/api/session', '/console/api/overview', '/console/api/sessions', '/console/api/devices',
    '/console/api/grants', '/console/api/roots', '/console/api/v1/groups', '/console/api/events']) {
    const none = await fetch(`${c.base}${path}`);
    assert.equal(none.status, 401, path);
    const bearer = await fetch(`${c.base}${path}`, { headers: { authorization: `Bearer ${token}`, cookie: `gm_console=${token}` } });
    assert.equal(bearer.status, 401, `${path} with an app's token`);
  }
  // A cookie of the same name planted by a sibling page (sent first) does not lock the owner out.
  const planted = await fetch(`${c.base}/console/api/session`, { headers: { cookie: `gm_console=planted; ${c.cookie}` } });
  assert.equal(planted.status, 200);
  // The console's token is no app token: not for the JSON API, not for a WebSocket.
  const api = await fetch(`${c.base}/api/v1/groups`, { headers: { authorization: `Bearer ${token_value}` } });
  assert.equal(api.status, 401);
  const ws = await openRaw(`ws://127.0.0.1:${server.port}/?token=${token_value}`);
  assert.equal(ws.ws, undefined);
  assert.equal(ws.status, 401);
  // The console reads through the mounted API and writes nothing there.
  const id = await createDocument(server, token, { title: 'hello' });
  const read = await c.call(`/console/api/v1/documents/${id}`);
  assert.equal(read.status, 200);
  assert.deepEqual(await read.json(), { title: 'hello' });
  assert.match(read.headers.get('content-security-policy'), /default-src 'none'/);
  const patch = await c.call(`/console/api/v1/documents/${id}`, { method: 'PATCH', body: [{ op: 'add', path: '/x', value: 1 }] });
  assert.equal(patch.status, 405);
  const create = await c.call(`/console/api/v1/groups/${GROUP}/documents`, { method: 'POST', body: { a: 1 } });
  assert.equal(create.status, 405);
  const download = await c.call(`/console/api/documents/${id}/download`);
  assert.equal(download.status, 200);
  assert.equal(download.headers.get('content-disposition'), `attachment; filename="${id}.automerge"`);
  assert.equal(download.headers.get('content-type'), 'application/octet-stream');
  assert.deepEqual([...new Uint8Array(await download.arrayBuffer()).slice(0, 4)], [0x85, 0x6f, 0x4a, 0x83]);
});

test('every change needs the CSRF token, JSON and the console\'s own origin; no answer allows another origin', { skip }, async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('console-csrf') });
  const c = await login(server);
  const refusals = [
    { 'content-type': 'application/json' },
    { 'content-type': 'application/json', 'x-csrf-token': 'A'.repeat(22) },
    { 'content-type': 'application/json', 'x-csrf-token': c.csrf, origin: 'http://evil.example' },
    { 'content-type': 'application/json', 'x-csrf-token': c.csrf, 'sec-fetch-site': 'cross-site' },
    { 'content-type': 'text/plain', 'x-csrf-token': c.csrf },
  ];
  for (const headers of refusals) {
    const r = await fetch(`${c.base}/console/api/roots/${GROUP}`, {
      method: 'PUT', headers: { cookie: c.cookie, ...headers }, body: JSON.stringify({ rootDocUrl: 'automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu' }) });
    assert.equal(r.status, 403, JSON.stringify(headers));
  }
  const good = await c.call(`/console/api/roots/${GROUP}`, { method: 'PUT', body: { rootDocUrl: 'automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu' } });
  assert.equal(good.status, 200, await good.clone().text());
  const roots = (await (await c.call('/console/api/roots')).json()).roots;
  assert.deepEqual(roots.find((r) => r.group === GROUP), { group: GROUP, rootDocUrl: 'automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu' });
  const bad = await c.call(`/console/api/roots/${GROUP}`, { method: 'PUT', body: { rootDocUrl: 'http://x' } });
  assert.equal(bad.status, 400);
  // CSRF tokens are per session.
  const other = await login(server);
  assert.notEqual(other.csrf, c.csrf);
  const crossed = await fetch(`${c.base}/console/api/logout`, {
    method: 'POST', headers: { cookie: c.cookie, 'x-csrf-token': other.csrf, ...JSON_TYPE }, body: '{}' });
  assert.equal(crossed.status, 403);
  // No CORS anywhere under /console, preflight included.
  for (const [method, path] of [['GET', '/console/api/overview'], ['OPTIONS', '/console/api/logout'], ['GET', '/console/'],
    ['GET', '/console/api/v1/groups'], ['OPTIONS', '/console/api/v1/groups']]) {
    const r = await fetch(`${c.base}${path}`, { method, headers: { cookie: c.cookie, origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(r.headers.get('access-control-allow-origin'), null, `${method} ${path}`);
    assert.equal(r.headers.get('access-control-allow-credentials'), null, `${method} ${path}`);
  }
  const page = await fetch(`${c.base}/console/`);
  assert.match(page.headers.get('content-security-policy'), /script-src 'self'; style-src 'self'/);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  const traversal = await fetch(`${c.base}/console/assets/..%2f..%2fserver.db`);
  assert.equal(traversal.status, 404);
  for (const path of ['/console/nowhere/at/all', '/console/assets/nothing.js', '/console/api/nothing']) {
    const missing = await fetch(`${c.base}${path}`);
    assert.equal(missing.status, 404, path);
    assert.match(missing.headers.get('content-security-policy') ?? '', /default-src 'none'/, path);
  }
});

test('the overview is live; revoking an app\'s session in the console closes its socket', { skip }, async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('console-live') });
  const c = await login(server);
  const token = mintToken(GROUP, server.data);
  const first = await createDocument(server, token, { n: 1 });
  const overview = await (await c.call('/console/api/overview')).json();
  assert.deepEqual(overview.groups.map((g) => g.group), [GROUP]);

  const live = await openEvents(`${c.base}/console/api/events`, c.cookie);
  assert.equal(live.status, 200);
  const counted = await live.next('overview', (o) => o.groups[0]?.documents === 1);
  assert.ok(counted.data.groups[0].bytes > 0);
  const peer = await joinRaw(`ws://127.0.0.1:${server.port}/?token=${token}`);
  await live.next('overview', (o) => o.connections === 1 && o.groups[0].connections === 1);
  const second = await createDocument(server, token, { n: 2 });
  await live.next('overview', (o) => o.groups[0].documents === 2 && o.activity.some((a) => a.text.includes(second)));
  assert.ok(first);

  const sessions = (await (await c.call('/console/api/sessions')).json()).sessions;
  const app = sessions.find((s) => s.kind === 'local');
  assert.equal(app.connections, 1);
  assert.ok(app.lastSeen);
  const revoked = await c.call(`/console/api/sessions/${app.id}/revoke`, { method: 'POST' });
  assert.equal(revoked.status, 200);
  await waitFor(() => peer.closed, 3000, 'the app\'s socket closed');
  assert.equal(peer.closed.code, 1008);
  await live.next('access', () => true, 1);
  assert.equal((await c.call('/console/api/sessions/nonexistent/revoke', { method: 'POST' })).status, 404);
  assert.equal((await c.call('/console/api/devices/ABCD-EFGH/approve', { method: 'POST' })).status, 404);
  assert.equal((await c.call('/console/api/grants/GABCD-EFGH/launch', { method: 'POST' })).status, 404);

  // At most 4 live pages per console session; the console's own logout ends its streams.
  const more = [];
  for (let i = 0; i < 3; i++) more.push(await openEvents(`${c.base}/console/api/events`, c.cookie));
  assert.deepEqual(more.map((s) => s.status), [200, 200, 200]);
  const fifth = await openEvents(`${c.base}/console/api/events`, c.cookie);
  assert.equal(fifth.status, 429);
  assert.equal((await c.call('/console/api/logout', { method: 'POST' })).status, 200);
  await waitFor(() => live.ended && more.every((s) => s.ended), 5000, 'the streams of a logged-out session ended');
});

test('a group\'s documents: search, sort, pages and bounds', { skip }, async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('console-docs') });
  const c = await login(server);
  const token = mintToken(GROUP, server.data);
  const ids = [];
  for (let i = 0; i < 12; i++) ids.push(await createDocument(server, token, { i }));
  const all = await (await c.call(`/console/api/groups/${GROUP}/documents?sort=id&limit=500`)).json();
  assert.equal(all.total, 12);
  assert.deepEqual(all.documents.map((d) => d.id), [...ids].sort());
  const page = await (await c.call(`/console/api/groups/${GROUP}/documents?sort=id&offset=10&limit=5`)).json();
  assert.deepEqual(page.documents.map((d) => d.id), [...ids].sort().slice(10));
  const needle = ids[3].slice(2, 9);
  const found = await (await c.call(`/console/api/groups/${GROUP}/documents?q=${needle}`)).json();
  assert.ok(found.documents.some((d) => d.id === ids[3]));
  assert.equal(found.matched, found.documents.length);
  for (const q of ['limit=0', 'limit=501', 'offset=-1', 'sort=size', 'limit=x']) {
    assert.equal((await c.call(`/console/api/groups/${GROUP}/documents?${q}`)).status, 400, q);
  }
  assert.equal((await c.call('/console/api/groups/xyz.groundmist.none/documents')).status, 404);
  await sleep(0);
});

// POSTs a fresh link's code over HTTPS (the test's own certificate) and gives the Set-Cookie.
function loginOverTls(port, code, ca) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/console/api/login', method: 'POST', ca, headers: JSON_TYPE },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, cookie: res.headers['set-cookie']?.[0] }));
      });
    req.on('error', reject);
    req.end(JSON.stringify({ code }));
  });
}

const noOpenssl = spawnSync('openssl', ['version']).status !== 0 ? 'no openssl program' : false;
test('the cookie is Secure over TLS, and behind a trusted proxy that says https', { skip: skip || noOpenssl }, async (t) => {
  const env = scope(t);
  const dir = tempDir('console-tls');
  const cert = path.join(dir, 'c.crt');
  const key = path.join(dir, 'c.key');
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
  assert.equal(made.status, 0, String(made.stderr));
  const tlsServer = await env.server({ data: tempDir('console-tls-data'), args: ['--tls-cert', cert, '--tls-key', key] });
  const code = await consoleLink(tlsServer);
  const over = await loginOverTls(tlsServer.port, code, fs.readFileSync(cert));
  assert.equal(over.status, 200);
  assert.match(over.cookie, /; HttpOnly; SameSite=Strict; Secure$/);

  const proxied = await env.server({ data: tempDir('console-proxy'), args: ['--trust-proxy', '--public-host', 'sync.example.com'] });
  const base = `http://127.0.0.1:${proxied.port}`;
  for (const [proto, secure] of [['https', true], ['http', false]]) {
    const res = await fetch(`${base}/console/api/login`, {
      method: 'POST', headers: { ...JSON_TYPE, 'x-forwarded-proto': proto }, body: JSON.stringify({ code: await consoleLink(proxied) }) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('set-cookie').endsWith('; Secure'), secure, proto);
  }
  // A proxy that rewrites Host (nginx's default): the page's origin is the public host's.
  const viaProxy = await (async () => {
    const res = await fetch(`${base}/console/api/login`, {
      method: 'POST', headers: { ...JSON_TYPE, 'x-forwarded-proto': 'https' }, body: JSON.stringify({ code: await consoleLink(proxied) }) });
    return res.headers.get('set-cookie').split(';')[0];
  })();
  const csrf = (await (await fetch(`${base}/console/api/session`, { headers: { cookie: viaProxy } })).json()).csrf;
  for (const [origin, status] of [['https://sync.example.com', 200], ['https://evil.example', 403], ['http://sync.example.com', 403]]) {
    const res = await fetch(`${base}/console/api/roots/xyz.groundmist.test`, {
      method: 'PUT',
      headers: { ...JSON_TYPE, cookie: viaProxy, 'x-csrf-token': csrf, origin, 'x-forwarded-proto': 'https' },
      body: JSON.stringify({ rootDocUrl: 'automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu' }) });
    assert.equal(res.status, status, origin);
  }
  // Without --trust-proxy the header is anyone's to send, and means nothing.
  const plain = await env.server({ data: tempDir('console-plain') });
  const res = await fetch(`http://127.0.0.1:${plain.port}/console/api/login`, {
    method: 'POST', headers: { ...JSON_TYPE, 'x-forwarded-proto': 'https' }, body: JSON.stringify({ code: await consoleLink(plain) }) });
  assert.equal(res.headers.get('set-cookie').endsWith('; Secure'), false);
});
