// A client that stops reading must not hold up anyone else: the server's outgoing
// queue per socket is bounded (--max-queue); overflowing it cuts that socket off
// (src/server/connection.h), while other clients keep receiving promptly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { scope } from './lib/scope.mjs';
import { loadStack, sameSet } from './lib/clients.mjs';
import { SERVER_KIND } from './lib/server.mjs';
import { joinRaw } from './lib/raw.mjs';
import { tempDir, waitFor, sleep } from './lib/util.mjs';

test('slow reader: a socket that stops reading is cut off, others keep syncing', { skip: SERVER_KIND === 'js' ? 'groundmist-sync behaviour' : false }, async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('slow'), args: ['--max-queue', '1mb'] });
  const s = await loadStack('2.5.6');
  const A = s.A;
  const a = await env.client('2.5.6', server.url());
  const b = await env.client('1.2.1', server.url());
  await Promise.all([a.waitPeer(), b.waitPeer()]);
  const h = a.create({ chunks: [] });
  await a.waitServerHas(h);
  const fb = await b.find(h.url, 5000);

  // The slow peer subscribes to the document, then stops reading its socket.
  const slow = await joinRaw(server.url());
  slow.send({ type: 'request', senderId: slow.peerId, targetId: slow.serverPeerId, documentId: h.documentId,
              data: A.generateSyncMessage(A.init(), A.initSyncState())[1] });
  await slow.waitMessage((m) => m.type === 'sync', 3000, 'the first sync for the slow peer');
  slow.ws._socket.pause();

  const t0 = performance.now();
  for (let i = 0; i < 24; i++) {
    a.change(h, (d) => { d.chunks.push(new Uint8Array(crypto.randomBytes(1024 * 1024))); });
    await sleep(20);
  }
  await waitFor(() => b.json(fb.handle)?.chunks?.length === 24, 30000, 'B to receive 24 MiB of changes while a peer is stuck');
  t.diagnostic(`24 x 1 MiB to B in ${(performance.now() - t0).toFixed(0)} ms with a stuck peer`);
  assert.ok(sameSet(a.heads(h), b.heads(fb.handle)));
  slow.ws._socket.resume();
  const closed = await waitFor(() => slow.closed, 10000, 'the stuck socket to be closed').catch(() => null);
  t.diagnostic(`stuck socket: ${closed ? `closed ${closed.code} "${closed.reason}"` : 'still open'}`);
  assert.ok(closed, 'the stuck socket was not cut off');
  assert.ok(server.alive());
});
