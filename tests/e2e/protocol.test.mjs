// Wire-level checks of the handshake and replies (spec/automerge.md §3.2–3.4) with a raw
// peer, so a failure in the client tests can be pinned to a frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { scope } from './lib/scope.mjs';
import { loadStack } from './lib/clients.mjs';
import { GROUP, SERVER_KIND } from './lib/server.mjs';
import { joinRaw, openRaw, encode } from './lib/raw.mjs';
import { tempDir, waitFor, sleep, groupDir, withTimeout } from './lib/util.mjs';

const s2 = await loadStack('2.5.6');
const A = s2.A;
const newDocId = () => s2.repoPkg.parseAutomergeUrl(s2.repoPkg.generateAutomergeUrl()).documentId;
const emptyRequest = A.generateSyncMessage(A.init(), A.initSyncState())[1];

test('protocol: join → peer, request → doc-unavailable, sync → stored and answered', async (t) => {
  const env = scope(t);
  const data = tempDir('protocol');
  const server = await env.server({ data });

  // Messages before join are ignored (no reply, socket stays open).
  const { ws } = await openRaw(server.url());
  const early = [];
  ws.on('message', (d) => early.push(d));
  ws.send(encode({ type: 'request', senderId: 'early', targetId: 'x', documentId: newDocId(), data: emptyRequest }));
  await sleep(300);
  assert.equal(early.length, 0, 'a message before join got a reply');
  ws.terminate();

  const p = await joinRaw(server.url(), { peerId: 'raw-protocol-peer' });
  const peer = p.messages()[0];
  assert.equal(peer.type, 'peer');
  assert.equal(typeof peer.senderId, 'string');
  assert.ok(peer.senderId.length > 0);
  assert.equal(peer.targetId, 'raw-protocol-peer');
  assert.equal(peer.selectedProtocolVersion, '1');
  assert.equal(typeof peer.peerMetadata, 'object');
  if (SERVER_KIND === 'cpp') {
    assert.equal(peer.peerMetadata.isEphemeral, false, 'the server is not ephemeral');
    const sid = fs.readFileSync(`${groupDir(data, GROUP)}/st/orage-adapter-id`, 'utf8');
    assert.equal(peer.peerMetadata.storageId, sid, 'peer.storageId is the group folder\'s storage-adapter-id');
  }

  // request for an unknown document → doc-unavailable (a sync before it is allowed).
  const documentId = newDocId();
  let from = p.frames.length;
  const t0 = performance.now();
  p.send({ type: 'request', senderId: p.peerId, targetId: p.serverPeerId, documentId, data: emptyRequest });
  const du = await p.waitMessage((m) => m.type === 'doc-unavailable', 2000, 'doc-unavailable', from);
  t.diagnostic(`doc-unavailable after ${(performance.now() - t0).toFixed(1)} ms`);
  assert.equal(du.documentId, documentId);
  assert.equal(du.targetId, p.peerId);
  assert.equal(du.senderId, p.serverPeerId);
  for (const m of p.messages().slice(1)) {
    assert.ok(['sync', 'doc-unavailable'].includes(m.type), `unexpected ${m.type} in reply to request`);
  }

  // sync with a document: the server answers with sync for the same document.
  let doc = A.from({ hello: 'world' });
  let state = A.initSyncState();
  const docId2 = newDocId();
  for (let round = 0; round < 10; round++) {
    let msg;
    [state, msg] = A.generateSyncMessage(doc, state);
    if (!msg) break;
    from = p.frames.length;
    p.send({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: docId2, data: msg });
    const reply = await p.waitMessage((m) => m.type === 'sync' && m.documentId === docId2, 2000, `sync reply, round ${round}`, from);
    assert.equal(reply.targetId, p.peerId);
    assert.ok(reply.data instanceof Uint8Array && reply.data.length > 0, 'sync data is a byte string');
    [doc, state] = A.receiveSyncMessage(doc, state, reply.data);
  }
  assert.deepEqual(state.theirHeads, A.getHeads(doc), 'the server reports our heads: it has the document');
  // A second raw peer can now fetch it with a request.
  const q = await joinRaw(server.url());
  let qdoc = A.init();
  let qs = A.initSyncState();
  const first = A.generateSyncMessage(qdoc, qs);
  qs = first[0];
  q.send({ type: 'request', senderId: q.peerId, targetId: q.serverPeerId, documentId: docId2, data: first[1] });
  await waitFor(async () => {
    for (const m of q.messages().filter((x) => x.type === 'sync' && x.documentId === docId2 && !x.seen)) {
      m.seen = true;
      [qdoc, qs] = A.receiveSyncMessage(qdoc, qs, m.data);
      const [ns, out] = A.generateSyncMessage(qdoc, qs);
      qs = ns;
      if (out) q.send({ type: 'sync', senderId: q.peerId, targetId: q.serverPeerId, documentId: docId2, data: out });
    }
    return qdoc.hello === 'world';
  }, 3000, 'the second raw peer to receive the document');
  q.close();
  p.close();
});

test('protocol: a second socket joining with the same peerId replaces the first', async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('samepeer') });
  const one = await joinRaw(server.url(), { peerId: 'raw-same' });
  const two = await joinRaw(server.url(), { peerId: 'raw-same' });
  const closed = await withTimeout(one.closedPromise, 3000, 'the old socket to be closed').catch((e) => e);
  assert.ok(!(closed instanceof Error), 'the server keeps the old socket of a re-joining peer open (spec §3.2: close it)');
  // The new socket works.
  const documentId = newDocId();
  two.send({ type: 'request', senderId: two.peerId, targetId: two.serverPeerId, documentId, data: emptyRequest });
  await two.waitMessage((m) => m.type === 'doc-unavailable' && m.documentId === documentId, 2000, 'doc-unavailable on the new socket');
  two.close();
});

// Runs the sync protocol for `documentId` between raw peer `p` (holding `doc`) and the
// server until neither side has anything to send. Returns the resulting doc.
async function syncRaw(p, documentId, doc, { request = false } = {}) {
  let state = A.initSyncState();
  const seen = new Set();
  let [s1, out] = A.generateSyncMessage(doc, state);
  state = s1;
  if (out) p.send({ type: request ? 'request' : 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId, data: out });
  for (let quiet = 0; quiet < 10;) {
    await sleep(30);
    const fresh = p.frames.filter((f) => f.message?.type === 'sync' && f.message.documentId === documentId && !seen.has(f));
    if (fresh.length === 0) { quiet++; continue; }
    quiet = 0;
    for (const f of fresh) {
      seen.add(f);
      [doc, state] = A.receiveSyncMessage(doc, state, f.message.data);
    }
    [state, out] = A.generateSyncMessage(doc, state);
    if (out) p.send({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId, data: out });
  }
  return doc;
}

test('protocol: a peer that reconnects with the same peerId and no state gets the document again', async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('rejoin') });
  const documentId = newDocId();
  const up = await joinRaw(server.url());
  const original = A.from({ v: 'uploaded' });
  await syncRaw(up, documentId, original);
  // A reader with a fixed peerId syncs it, drops, and comes back with nothing.
  for (let round = 0; round < 3; round++) {
    const r = await joinRaw(server.url(), { peerId: 'raw-fixed-reader' });
    const got = await syncRaw(r, documentId, A.init(), { request: true });
    assert.equal(got.v, 'uploaded', `round ${round}: the returning reader (fresh state) got ${JSON.stringify(A.toJS(got))}`);
    if (round === 1) {
      // This time a new socket replaces the old one while it is still open.
      const r2 = await joinRaw(server.url(), { peerId: 'raw-fixed-reader' });
      const got2 = await syncRaw(r2, documentId, A.init(), { request: true });
      assert.equal(got2.v, 'uploaded', 'a replacing socket with a fresh state gets the document');
      r2.close();
    }
    r.close();
    await sleep(50);
  }
  up.close();
});

test('protocol: ephemeral relay keeps sender, session, count and data; drops repeats', async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('ephwire') });
  const documentId = newDocId();
  const p1 = await joinRaw(server.url(), { peerId: 'raw-eph-1' });
  const p2 = await joinRaw(server.url(), { peerId: 'raw-eph-2' });
  const p3 = await joinRaw(server.url(), { peerId: 'raw-eph-3' }); // never syncs the doc
  await syncRaw(p1, documentId, A.from({ e: 1 }));
  await syncRaw(p2, documentId, A.init(), { request: true });
  const payload = encode({ cursor: 5 });
  const eph = (p, sessionId, count, senderId = p.peerId) =>
    p.send({ type: 'ephemeral', senderId, targetId: p.serverPeerId, documentId, sessionId, count, data: payload });
  const got = () => p2.messages().filter((m) => m.type === 'ephemeral');
  eph(p1, 's1', 1);
  eph(p1, 's1', 1); // repeat
  await waitFor(() => got().length >= 1, 2000, 'the first ephemeral at p2');
  await sleep(300);
  assert.equal(got().length, 1, 'a repeated (senderId, sessionId, count) is dropped');
  const m = got()[0];
  assert.equal(m.senderId, 'raw-eph-1');
  assert.equal(m.targetId, 'raw-eph-2');
  assert.equal(m.sessionId, 's1');
  assert.equal(m.count, 1);
  assert.equal(m.documentId, documentId);
  assert.deepEqual(Buffer.from(m.data), Buffer.from(payload));
  eph(p1, 's1', 2);
  await waitFor(() => got().length === 2, 2000, 'a higher count is relayed');
  eph(p1, 's1', 1); // older than seen
  eph(p1, 's2', 1); // a new session
  await waitFor(() => got().length === 3, 2000, 'a new session is relayed');
  await sleep(300);
  assert.deepEqual(got().map((x) => `${x.sessionId}/${x.count}`), ['s1/1', 's1/2', 's2/1']);
  assert.equal(p1.messages().filter((x) => x.type === 'ephemeral').length, 0, 'the sender gets nothing back');
  assert.equal(p3.messages().filter((x) => x.type === 'ephemeral').length, 0, 'a peer not syncing the document gets nothing');
  for (const p of [p1, p2, p3]) p.close();
});

test('protocol: `sync` (not `request`) for an unknown document never gets doc-unavailable', async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('syncunknown') });
  const p = await joinRaw(server.url());
  const documentId = newDocId();
  p.send({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId, data: emptyRequest });
  await sleep(500);
  const du = p.messages().filter((m) => m.type === 'doc-unavailable');
  assert.equal(du.length, 0, 'doc-unavailable in answer to a sync message');
  p.close();
});

test('protocol: real clients stay connected across many server pings', { skip: SERVER_KIND === 'js' ? 'groundmist-sync flag' : false }, async (t) => {
  const env = scope(t);
  // 0.3 s: a client must answer a ping within one interval, and node on a loaded CI
  // machine can stall for 100 ms.
  const server = await env.server({ data: tempDir('pings'), args: ['--ping-interval', '0.3'] });
  const clients = [];
  for (const s of ['2.5.6', '1.2.1']) clients.push(await env.client(s, server.url()));
  await Promise.all(clients.map((c) => c.waitPeer()));
  let drops = 0;
  for (const c of clients) c.repo.networkSubsystem.on('peer-disconnected', () => drops++);
  const h = clients[0].create({ n: 0 });
  await clients[0].waitServerHas(h);
  const f = await clients[1].find(h.url, 5000);
  await sleep(3000); // 10 ping intervals of silence
  clients[0].change(h, (d) => { d.n = 1; });
  await waitFor(() => clients[1].json(f.handle).n === 1, 3000, 'an edit after a quiet period');
  assert.equal(drops, 0, 'clients were disconnected by pings');
});
