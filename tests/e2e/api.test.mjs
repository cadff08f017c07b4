// Issue 14, the JSON API's server side (/api/v1, src/api/routes.h): every route, its
// errors and limits, against documents real automerge-repo 2.5.6 clients made; the
// JSON view equals npm @automerge/automerge's toJS of the same document; a change
// made through the API reaches a connected 2.5.6 client (when the engine's authoring,
// branch `author`, is in the build; else POST and PATCH answer 501).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope } from './lib/scope.mjs';
import { GROUP, SERVER_KIND, serverEnv } from './lib/server.mjs';
import { runCli } from './lib/atproto.mjs';
import { sameSet } from './lib/clients.mjs';
import { tempDir, waitFor } from './lib/util.mjs';

const skip = SERVER_KIND !== 'cpp' ? 'the JS reference server has no JSON API' : false;
const OTHER = 'xyz.groundmist.other';

async function setup(t) {
  const env = scope(t);
  const data = tempDir('api');
  const server = await env.server({ data });
  const base = `http://127.0.0.1:${server.port}`;
  const call = async (path, { token = server.token(GROUP), method = 'GET', headers = {}, body } = {}) => {
    const res = await fetch(base + path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
      body,
    });
    const type = res.headers.get('content-type') ?? '';
    const raw = Buffer.from(await res.arrayBuffer());
    const json = type.startsWith('application/json') ? JSON.parse(raw.toString()) : undefined;
    return { status: res.status, headers: res.headers, json, raw };
  };
  const client = await env.client('2.5.6', server.url(GROUP));
  await client.waitPeer();
  return { env, server, base, call, client };
}

// What npm's toJS gives, as JSON (a counter as its number).
const plain = (client, handle) => JSON.parse(JSON.stringify(client.json(handle)));
const etagHeads = (etag) => etag.replace(/"/g, '').split(',').filter(Boolean).sort();

test('api: a 2.5.6 client\'s document reads as npm toJS, with heads, changes and saved bytes', { skip, timeout: 60000 }, async (t) => {
  const { call, client } = await setup(t);
  const h = client.create({
    title: 'Notes', count: 3, ratio: 0.25, done: false, nothing: null,
    tags: ['a', 'b', { deep: [1, 2, [3]] }], nested: { map: { k: 'v' } }, emoji: 'h\u00e9llo \u{1F600}',
  });
  client.change(h, (d) => { d.hits = new client.A.Counter(5); });
  client.change(h, (d) => { d.hits.increment(2); d.tags.push('c'); delete d.nothing; });
  await client.waitServerHas(h);

  const res = await call(`/api/v1/documents/${h.documentId}`);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.deepEqual(res.json, plain(client, h));
  assert.deepEqual(etagHeads(res.headers.get('etag')), client.heads(h));
  assert.equal(res.headers.get('cache-control'), 'no-store');
  // A client holding these heads gets 304 and no body; other heads, the document.
  const etag = res.headers.get('etag');
  const same = await call(`/api/v1/documents/${h.documentId}`, { headers: { 'if-none-match': `W/"x", ${etag}` } });
  assert.equal(same.status, 304);
  assert.equal(same.raw.length, 0);
  assert.equal(same.headers.get('etag'), etag);
  assert.equal((await call(`/api/v1/documents/${h.documentId}`, { headers: { 'if-none-match': '"00"' } })).status, 200);

  const saved = await call(`/api/v1/documents/${h.documentId}`, { headers: { accept: 'application/octet-stream' } });
  assert.equal(saved.status, 200);
  assert.equal(saved.headers.get('content-type'), 'application/octet-stream');
  const loaded = client.A.load(new Uint8Array(saved.raw));
  assert.deepEqual(JSON.parse(JSON.stringify(client.A.toJS(loaded))), plain(client, h));
  assert.deepEqual([...client.A.getHeads(loaded)].sort(), client.heads(h));

  const changes = await call(`/api/v1/documents/${h.documentId}/changes`);
  assert.equal(changes.status, 200);
  const npm = client.A.getAllChanges(client.doc(h)).map((c) => client.A.decodeChange(c));
  assert.equal(changes.json.changes.length, npm.length);
  const byHash = new Map(npm.map((c) => [c.hash, c]));
  for (const c of changes.json.changes) {
    const want = byHash.get(c.hash);
    assert.ok(want, `change ${c.hash} is one of the document's`);
    assert.equal(c.actor, want.actor);
    assert.equal(c.seq, want.seq);
    assert.equal(c.time, want.time);
    assert.equal(c.message, want.message ?? null);
    assert.deepEqual([...c.deps].sort(), [...want.deps].sort());
  }
  const first = npm.find((c) => c.seq === 1);
  const since = await call(`/api/v1/documents/${h.documentId}/changes?since=${first.hash}`);
  assert.equal(since.status, 200);
  assert.equal(since.json.changes.length, npm.length - 1);
  const none = await call(`/api/v1/documents/${h.documentId}/changes?since=${client.heads(h).join(',')}`);
  assert.deepEqual(none.json.changes, []);
  assert.equal(none.json.cursor, null);
  // Pages: followed cursor by cursor, they are the whole list, in its order.
  const paged = [];
  for (let cursor = '', pages = 0; cursor !== null; ++pages) {
    assert.ok(pages < 10);
    const page = await call(`/api/v1/documents/${h.documentId}/changes?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(page.status, 200);
    assert.ok(page.json.changes.length <= 1);
    paged.push(...page.json.changes);
    cursor = page.json.cursor;
  }
  assert.deepEqual(paged, changes.json.changes);
  for (const bad of ['limit=0', 'limit=1001', 'limit=x', 'cursor=-1', 'cursor=1e3']) {
    assert.equal((await call(`/api/v1/documents/${h.documentId}/changes?${bad}`)).status, 400, bad);
  }
  for (const bad of ['xyz', 'ab'.repeat(32) + ',', '00'.repeat(32)]) {
    const r = await call(`/api/v1/documents/${h.documentId}/changes?since=${bad}`);
    assert.equal(r.status, 400, `since=${bad}: ${JSON.stringify(r.json)}`);
    assert.equal(typeof r.json.error, 'string');
  }

  // A live edit by the client is seen by the next read.
  client.change(h, (d) => { d.title = 'Notes, edited'; });
  await client.waitServerHas(h);
  const after = await call(`/api/v1/documents/${h.documentId}`);
  assert.deepEqual(after.json, plain(client, h));
  assert.deepEqual(etagHeads(after.headers.get('etag')), client.heads(h));
});

test('api: groups and paged document lists', { skip, timeout: 60000 }, async (t) => {
  const { call, client } = await setup(t);
  const handles = [];
  for (let i = 0; i < 5; i++) handles.push(client.create({ i }));
  await Promise.all(handles.map((h) => client.waitServerHas(h)));

  const groups = await call('/api/v1/groups');
  assert.equal(groups.status, 200);
  assert.equal(groups.json.groups.length, 1);
  assert.equal(groups.json.groups[0].group, GROUP);
  assert.equal(groups.json.groups[0].documents, 5);
  assert.ok(groups.json.groups[0].bytes > 0);

  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const r = await call(`/api/v1/groups/${GROUP}/documents?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.ok(r.json.documents.length <= 2);
    seen.push(...r.json.documents);
    cursor = r.json.cursor;
    pages++;
  } while (cursor && pages < 10);
  assert.equal(pages, 3);
  assert.deepEqual(seen.map((d) => d.id).sort(), handles.map((h) => h.documentId).sort());
  for (const d of seen) {
    const h = handles.find((x) => x.documentId === d.id);
    assert.equal(d.url, `automerge:${d.id}`);
    assert.deepEqual([...d.heads].sort(), client.heads(h));
    assert.ok(d.size > 0);
    const change = client.A.decodeChange(client.A.getAllChanges(client.doc(h)).at(-1));
    assert.equal(d.time, change.time);
  }
  for (const q of ['limit=0', 'limit=201', 'limit=x', 'limit=-1', 'cursor=!!', 'cursor=abc']) {
    const r = await call(`/api/v1/groups/${GROUP}/documents?${q}`);
    assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.json)}`);
    assert.equal(typeof r.json.error, 'string');
  }
  const all = await call(`/api/v1/groups/${GROUP}/documents?limit=200`);
  assert.equal(all.json.documents.length, 5);
  assert.equal(all.json.cursor, null);
});

test('api: tokens, groups, ids and methods are checked', { skip, timeout: 60000 }, async (t) => {
  const { call, client, server, base } = await setup(t);
  const h = client.create({ secret: 42 });
  await client.waitServerHas(h);
  const path = `/api/v1/documents/${h.documentId}`;

  for (const token of [null, 'forged', server.token(GROUP).slice(0, -2) + 'xx']) {
    const r = await call(path, { token });
    assert.equal(r.status, 401, `token ${token}`);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.equal(typeof r.json.error, 'string');
  }
  const basic = await call(path, { token: null, headers: { authorization: 'Basic eDp5' } });
  assert.equal(basic.status, 401);

  // Another group's token sees nothing of this group.
  const other = server.token(OTHER);
  assert.equal((await call(path, { token: other })).status, 404);
  assert.equal((await call(`${path}/changes`, { token: other })).status, 404);
  assert.equal((await call(`/api/v1/groups/${GROUP}/documents`, { token: other })).status, 403);
  const otherGroups = await call('/api/v1/groups', { token: other });
  assert.deepEqual(otherGroups.json.groups.map((g) => g.group), [OTHER]);
  assert.equal(otherGroups.json.groups[0].documents, 0);

  assert.equal((await call('/api/v1/documents/notAnId')).status, 400);
  assert.equal((await call('/api/v1/documents/3Rvncn6vGfW9LAndSNbqedrx1V2g')).status, 404);  // valid, unknown
  assert.equal((await call(`/api/v1/groups/Not..A.Group/documents`)).status, 400);
  assert.equal((await call(path, { method: 'DELETE' })).status, 405);
  assert.equal((await call('/api/v1/nothing')).status, 404);

  // Cross-origin without credentials.
  const pre = await fetch(base + path, {
    method: 'OPTIONS',
    headers: { origin: 'https://tool.example', 'access-control-request-method': 'PATCH' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'https://tool.example');
  assert.match(pre.headers.get('access-control-allow-methods'), /PATCH/);
  assert.match(pre.headers.get('access-control-allow-headers'), /Authorization/);
  assert.equal(pre.headers.get('access-control-allow-credentials'), null);

  // Bodies: over the limit, wrong type, too deep.
  const big = await call(path, { method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: 'x'.repeat((1 << 20) + 1) });
  assert.equal(big.status, 413);
  const type = await call(path, { method: 'PATCH', headers: { 'content-type': 'text/plain' }, body: '[]' });
  assert.equal(type.status, 415);
  const deep = await call(`/api/v1/groups/${GROUP}/documents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' + '['.repeat(100000) + ']'.repeat(100000) + '}' });
  assert.equal(deep.status, 400);
  assert.equal((await call(`/api/v1/groups/${OTHER}/documents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })).status, 403);
  for (const body of ['not json', '[1]', '"x"', '{"a":']) {
    const r = await call(`/api/v1/groups/${GROUP}/documents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(r.status, 400, body);
    assert.match(r.json.error, /JSON/, body);
  }

  // Many requests at once from one token: each is answered, 200 or 503 + Retry-After,
  // and the server keeps serving.
  const burst = await Promise.all(Array.from({ length: 40 }, () => call(path)));
  for (const r of burst) {
    assert.ok(r.status === 200 || r.status === 503, `burst answer ${r.status}`);
    if (r.status === 503) assert.equal(r.headers.get('retry-after'), '1');
  }
  assert.equal((await call(path)).status, 200);
});

test('api: POST creates and PATCH changes a document, live in a 2.5.6 client (or 501 without the engine)', { skip, timeout: 60000 }, async (t) => {
  const { call, client, env, server } = await setup(t);
  const created = await call(`/api/v1/groups/${GROUP}/documents`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'from the API', items: [1] }),
  });
  if (created.status === 501) {
    const h = client.create({ a: 1 });
    await client.waitServerHas(h);
    const p = await call(`/api/v1/documents/${h.documentId}`, { method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: '[]' });
    assert.equal(p.status, 501);
    t.diagnostic('authoring is not in this build (branch `author`): POST and PATCH answer 501');
    return;
  }
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const { id, url, heads } = created.json;
  assert.equal(url, `automerge:${id}`);
  const found = await client.find(url, 5000);
  assert.equal(found.state, 'ready');
  assert.deepEqual(client.json(found.handle), { title: 'from the API', items: [1] });
  assert.deepEqual(client.heads(found.handle), [...heads].sort());

  // PATCH: the client connected to the document sees it.
  const t0 = performance.now();
  const patched = await call(`/api/v1/documents/${id}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json-patch+json', 'if-match': `"${heads.join(',')}"` },
    body: JSON.stringify([{ op: 'replace', path: '/title', value: 'patched' }, { op: 'add', path: '/items/-', value: 2 }]),
  });
  assert.equal(patched.status, 200, JSON.stringify(patched.json));
  await waitFor(() => client.json(found.handle)?.title === 'patched', 5000, 'the PATCH at the client');
  t.diagnostic(`PATCH to the client: ${(performance.now() - t0).toFixed(0)} ms`);
  assert.deepEqual(client.json(found.handle), { title: 'patched', items: [1, 2] });
  await waitFor(() => sameSet(client.heads(found.handle), patched.json.heads), 5000, 'heads');

  const stale = await call(`/api/v1/documents/${id}`, {
    method: 'PATCH', headers: { 'content-type': 'application/json-patch+json', 'if-match': `"${heads.join(',')}"` }, body: '[]',
  });
  assert.equal(stale.status, 412);
  const failedTest = await call(`/api/v1/documents/${id}`, {
    method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: JSON.stringify([{ op: 'test', path: '/title', value: 'no' }]),
  });
  assert.equal(failedTest.status, 409);
  const badPath = await call(`/api/v1/documents/${id}`, {
    method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: JSON.stringify([{ op: 'remove', path: '/nope' }]),
  });
  assert.equal(badPath.status, 400);
  assert.equal((await call(`/api/v1/documents/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: 'not json' })).status, 400);
  // Every API change of one token is by one actor.
  const changes = await call(`/api/v1/documents/${id}/changes`);
  assert.equal(new Set(changes.json.changes.map((c) => c.actor)).size, 1);

  // ?heads= is the document as it was: npm's view at those heads.
  const then = await call(`/api/v1/documents/${id}?heads=${heads.join(',')}`);
  assert.equal(then.status, 200, JSON.stringify(then.json));
  assert.deepEqual(then.json, client.A.toJS(client.A.view(client.doc(found.handle), heads)));
  assert.deepEqual(then.json, { title: 'from the API', items: [1] });
  assert.equal((await call(`/api/v1/documents/${id}?heads=${'00'.repeat(32)}`)).status, 404);

  // A 1.2.1 client (automerge 2.2.8) of the document sees a PATCH too.
  const old = await env.client('1.2.1', server.url(GROUP));
  await old.waitPeer();
  const oldFound = await old.find(url, 5000);
  assert.equal(oldFound.state, 'ready');
  const t1 = performance.now();
  const again = await call(`/api/v1/documents/${id}`, {
    method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' },
    body: JSON.stringify([{ op: 'add', path: '/by', value: 'api' }]),
  });
  assert.equal(again.status, 200, JSON.stringify(again.json));
  await waitFor(() => old.json(oldFound.handle)?.by === 'api', 5000, 'the PATCH at the 1.2.1 client');
  t.diagnostic(`PATCH to the 1.2.1 client: ${(performance.now() - t1).toFixed(0)} ms`);
  await waitFor(() => client.json(found.handle)?.by === 'api', 5000, 'the PATCH at the 2.5.6 client');
  const now = await call(`/api/v1/documents/${id}`);
  assert.deepEqual(now.json, plain(client, found.handle));

  // Read your writes: a read after a PATCH was answered sees it, though an unchanged
  // document's read is answered from its kept JSON text on the io thread; and a
  // client's change too, once the client knows the server has it.
  for (let i = 0; i < 5; i++) {
    assert.equal((await call(`/api/v1/documents/${id}`)).status, 200);  // the text is kept
    const w = await call(`/api/v1/documents/${id}`, {
      method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'add', path: '/n', value: i }]),
    });
    assert.equal(w.status, 200, JSON.stringify(w.json));
    const r = await call(`/api/v1/documents/${id}`);
    assert.equal(r.json.n, i);
    assert.equal(r.headers.get('etag'), `"${[...w.json.heads].sort().join(',')}"`);
  }
  client.change(found.handle, (d) => { d.n = 'client'; });
  await client.waitServerHas(found.handle);
  assert.equal((await call(`/api/v1/documents/${id}`)).json.n, 'client');
});

// Issue 14, grants: a token minted with scopes reads (and, with :write, writes) the
// groups they reach and nothing else; `grants revoke` takes them away at once.
test('api: a token\'s scopes reach other groups, read or write, until its grant is revoked', { skip, timeout: 60000 }, async (t) => {
  const { call, client, server } = await setup(t);
  const h = client.create({ shared: 'by the library app' });
  await client.waitServerHas(h);
  const path = `/api/v1/documents/${h.documentId}`;
  const mint = async (args) => {
    const r = await runCli(['token', '--group', OTHER, '--data', server.data, ...args], { env: serverEnv() });
    assert.equal(r.code, 0, r.stderr);
    return { token: r.stdout.trim(), grant: /grant (G[0-9A-Z-]+)/.exec(r.stderr)?.[1] };
  };
  const reader = await mint(['--scope', `${GROUP}:read`, '--name', 'e2e-reader']);
  assert.ok(reader.grant);
  await waitFor(async () => (await call(path, { token: reader.token })).status === 200, 5000, 'the grant to be seen');
  const read = await call(path, { token: reader.token });
  assert.deepEqual(read.json, { shared: 'by the library app' });
  assert.equal(read.headers.get('groundmist-group'), GROUP, 'the answer names the group it came from');
  assert.equal((await call(`${path}?group=${GROUP}`, { token: reader.token })).status, 200);
  assert.equal((await call(`${path}?group=${OTHER}`, { token: reader.token })).status, 404, 'pinned to a group without it');
  assert.equal((await call(`${path}?group=xyz.groundmist.elsewhere`, { token: reader.token })).status, 403);
  const head = read.headers.get('etag').replace(/"/g, '').split(',')[0];
  assert.equal((await call(`${path}?heads=${head}`, { token: reader.token, headers: { accept: 'application/octet-stream' } })).status, 406);
  const groups = await call('/api/v1/groups', { token: reader.token });
  assert.deepEqual(groups.json.groups.map((g) => [g.group, g.write]), [[OTHER, true], [GROUP, false]]);
  assert.equal((await call(`/api/v1/groups/${GROUP}/documents`, { token: reader.token })).status, 200);
  const patch = { method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' },
    body: JSON.stringify([{ op: 'replace', path: '/shared', value: 'by an agent' }]) };
  assert.equal((await call(path, { token: reader.token, ...patch })).status, 403, 'read-only: no writes');
  assert.equal((await call(`/api/v1/groups/${GROUP}/documents`, { token: reader.token, method: 'POST',
    headers: { 'content-type': 'application/json' }, body: '{}' })).status, 403);

  const writer = await mint(['--scope', 'xyz.groundmist:write', '--name', 'e2e-writer']);
  await waitFor(async () => (await call(path, { token: writer.token, ...patch })).status === 200, 5000, 'the write grant');
  await waitFor(() => client.json(h)?.shared === 'by an agent', 5000, 'the app to see the patch');

  await runCli(['grants', 'revoke', reader.grant, '--data', server.data]);
  await waitFor(async () => (await call(path, { token: reader.token })).status === 404, 5000, 'the revoked scope to fall');
  const after = await call('/api/v1/groups', { token: reader.token });
  assert.deepEqual(after.json.groups.map((g) => g.group), [OTHER], 'the token keeps its own group');
});
