// Issue 3, test 3: ephemeral relay (spec/automerge.md §3.4 "ephemeral"). A broadcast
// reaches every other client of the document exactly once; the sender never gets it
// back; nothing loops (clients re-forward ephemeral messages to their peers, so a
// server without (senderId, sessionId, count) de-duplication would echo them forever).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope } from './lib/scope.mjs';
import { tempDir, waitFor, sleep } from './lib/util.mjs';

const TRIOS = [
  ['2.5.6', '2.5.6', '2.5.6'],
  ['1.2.1', '1.2.1', '1.2.1'],
  ['2.5.6', '1.2.1', '2.5.6'],
];

for (const stacks of TRIOS) {
  test(`ephemeral: ${stacks.join(' → ')} broadcasts arrive once each, no loop`, async (t) => {
    const env = scope(t);
    const server = await env.server({ data: tempDir('ephemeral') });
    const clients = [];
    for (const s of stacks) clients.push(await env.client(s, server.url()));
    await Promise.all(clients.map((c) => c.waitPeer()));

    const [a, ...others] = clients;
    const ha = a.create({ topic: 'presence' });
    await a.waitServerHas(ha);
    const handles = [ha];
    for (const c of others) {
      const f = await c.find(ha.url, 5000);
      assert.equal(f.state, 'ready');
      handles.push(f.handle);
    }
    // Both receivers must be syncing the document at the server before A broadcasts.
    await waitFor(() => clients.every((c, i) => c.json(handles[i])?.topic === 'presence'), 5000, 'all have the doc');

    const received = clients.map(() => []);
    clients.forEach((c, i) => c.onEphemeral(handles[i], (e) => received[i].push({ from: e.senderId, message: e.message })));

    const N = 3;
    for (let k = 0; k < N; k++) a.broadcast(ha, { cursor: k, who: 'A' });
    await waitFor(() => received.slice(1).every((r) => r.length >= N), 5000, 'every receiver got every broadcast');
    // Let any echo or loop show itself.
    await sleep(1500);
    assert.equal(received[0].length, 0, `the sender got its own broadcast back ${received[0].length} times`);
    for (let i = 1; i < clients.length; i++) {
      assert.equal(received[i].length, N, `client ${i} (${stacks[i]}) received ${received[i].length} messages for ${N} broadcasts`);
      assert.deepEqual(received[i].map((r) => r.message.cursor), [0, 1, 2]);
      for (const r of received[i]) {
        assert.equal(r.from, a.peerId, 'senderId is the original author');
        assert.equal(r.message.who, 'A');
      }
    }

    // A broadcast from another client reaches the rest, once.
    const before = received.map((r) => r.length);
    clients[1].broadcast(handles[1], { cursor: 99, who: 'B' });
    await waitFor(() => received[0].length === before[0] + 1 && received[2].length === before[2] + 1, 5000, "B's broadcast at A and C");
    await sleep(1000);
    assert.deepEqual(received.map((r) => r.length), [before[0] + 1, before[1], before[2] + 1]);
  });
}
