// Issue 14, grants over WebSocket: a socket whose token carries scopes reaches the
// documents of the groups they cover (found by id; a new document goes to the token's
// own group), read-only where the scope is :read. Real automerge-repo 2.5.6 and 1.2.1
// clients: the reader gets the other app's document, its own edits are never stored
// or forwarded (a 1.2.1 client, whose automerge 2.2.8 does not know the read-only sync
// flag, hears one `error` naming the document), nothing loops, reads keep flowing, and
// revoking the grant closes the socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope } from './lib/scope.mjs';
import { GROUP, SERVER_KIND, serverEnv } from './lib/server.mjs';
import { runCli } from './lib/atproto.mjs';
import { STACKS } from './lib/clients.mjs';
import { importFrom, INTEROP_DIR, tempDir, waitFor } from './lib/util.mjs';

const skip = SERVER_KIND !== 'cpp' ? 'the JS reference server has no grants' : false;
const OTHER = 'xyz.groundmist.other';
const { decode } = await importFrom(INTEROP_DIR, 'cbor-x');

// A token of OTHER with scopes, once the running server has seen its grant (it reads
// the database when it changes: the API answers for `documentId` then).
async function mint(server, args, documentId) {
  const r = await runCli(['token', '--group', OTHER, '--data', server.data, ...args], { env: serverEnv() });
  assert.equal(r.code, 0, r.stderr);
  const token = r.stdout.trim();
  await waitFor(async () => (await fetch(`http://127.0.0.1:${server.port}/api/v1/documents/${documentId}`,
    { headers: { authorization: `Bearer ${token}` } })).status === 200, 5000, 'the server to see the grant');
  return { token, grant: /grant (G[0-9A-Z-]+)/.exec(r.stderr)?.[1] };
}

// What the client's socket says and sends about documents: `error` messages received,
// sync messages sent per document.
function watch(client) {
  const seen = { errors: [], sent: new Map(), closed: false };
  const adapter = client.adapters[0];
  const send = adapter.send.bind(adapter);
  adapter.send = (message) => {
    if (message.type === 'sync' || message.type === 'request') {
      seen.sent.set(message.documentId, (seen.sent.get(message.documentId) ?? 0) + 1);
    }
    return send(message);
  };
  adapter.socket.on('message', (data) => {
    const m = decode(new Uint8Array(data));
    if (m.type === 'error') seen.errors.push(m.message);
  });
  adapter.socket.on('close', () => { seen.closed = true; });
  return seen;
}

for (const stack of STACKS) {
  test(`grants: a ${stack} client with a read scope reads another group's document and cannot write it`, { skip, timeout: 60000 }, async (t) => {
    const env = scope(t);
    const server = await env.server({ data: tempDir('grants-ws') });
    const api = async (path, token = server.token(GROUP)) => {
      const res = await fetch(`http://127.0.0.1:${server.port}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, json: res.status === 200 ? await res.json() : undefined };
    };
    const app = await env.client('2.5.6', server.url(GROUP));
    await app.waitPeer();
    const h = app.create({ title: 'the library app\'s', count: 1 });
    await app.waitServerHas(h);

    // Without a scope, another app's token does not reach it: the id is a new document
    // of its own group.
    const plain = await env.client(stack, server.url(OTHER));
    await plain.waitPeer();
    assert.equal((await plain.find(h.documentId, 3000)).state, 'unavailable');

    const reader = await mint(server, ['--scope', `${GROUP}:read`, '--name', `ws-reader-${stack}`], h.documentId);
    const url = `ws://127.0.0.1:${server.port}/?token=${reader.token}`;
    const client = await env.client(stack, url);
    await client.waitPeer();
    const seen = watch(client);
    const found = await client.find(h.documentId);
    assert.equal(found.state, 'ready');
    assert.deepEqual(client.json(found.handle), { title: 'the library app\'s', count: 1 });

    // Its edit is not stored, not forwarded, said at most once, and nothing loops.
    client.change(found.handle, (d) => { d.count = 99; d.note = 'from the reader'; });
    // A 1.2.1 client sends the change and is told once; on a loaded machine (ASan, other
    // suites beside it) that may take longer than the windows below (CI saw it once).
    if (stack === '1.2.1') {
      await waitFor(() => seen.errors.some((e) => e.includes(h.documentId)), 5000, 'the read-only error');
    }
    await new Promise((r) => setTimeout(r, 1500));
    const sentThen = seen.sent.get(h.documentId) ?? 0;
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(seen.sent.get(h.documentId) ?? 0, sentThen, 'no resend loop');
    assert.ok(sentThen <= 4, `${sentThen} sync messages for one edit`);
    const named = seen.errors.filter((e) => e.includes(h.documentId));
    if (stack === '1.2.1') assert.equal(named.length, 1, `one error naming the document: ${seen.errors}`);
    assert.ok(named.length <= 1);
    assert.ok(named.every((e) => /read-only/.test(e)));
    assert.equal(seen.closed, false, 'the socket stays');
    assert.deepEqual(app.json(h), { title: 'the library app\'s', count: 1 }, 'the app never saw it');
    assert.deepEqual((await api(`/api/v1/documents/${h.documentId}`)).json, { title: 'the library app\'s', count: 1 },
      'nothing stored');

    // Reads keep working.
    app.change(h, (d) => { d.more = 'news'; });
    await waitFor(() => client.json(found.handle)?.more === 'news', 5000, 'the reader to see the app\'s change');

    // A document the reader creates goes to its own group.
    const mine = client.create({ made: 'by the reader' });
    await waitFor(async () => (await api(`/api/v1/documents/${mine.documentId}?group=${OTHER}`, reader.token)).status === 200,
      5000, 'the new document in the reader\'s own group');
    assert.equal((await api(`/api/v1/documents/${mine.documentId}`)).status, 404, 'not in the library\'s group');

    // Revoking the grant closes the socket.
    const r = await runCli(['grants', 'revoke', reader.grant, '--data', server.data]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => seen.closed, 5000, 'the reader\'s socket to close');
  });
}

test('grants: a write scope over WebSocket writes to the group that holds the document', { skip, timeout: 60000 }, async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('grants-ws-write') });
  const app = await env.client('1.2.1', server.url(GROUP));
  await app.waitPeer();
  const h = app.create({ items: ['one'] });
  await app.waitServerHas(h);
  const writer = await mint(server, ['--scope', 'xyz.groundmist:write', '--name', 'ws-writer'], h.documentId);
  const client = await env.client('2.5.6', `ws://127.0.0.1:${server.port}/?token=${writer.token}`);
  await client.waitPeer();
  const seen = watch(client);
  const found = await client.find(h.documentId);
  assert.equal(found.state, 'ready');
  client.change(found.handle, (d) => { d.items.push('two'); });
  await waitFor(() => app.json(h)?.items?.length === 2, 5000, 'the app to see the other app\'s edit');
  assert.deepEqual(app.json(h), { items: ['one', 'two'] });
  assert.deepEqual(seen.errors, []);
});
