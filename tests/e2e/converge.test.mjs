// Issue 3, test 1: clients converge through the server (spec/automerge.md §3.4, §3.6).
// For each client pairing: create on A, find on B, edits on both, concurrent edits,
// and a late joiner that gets everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope } from './lib/scope.mjs';
import { sameSet } from './lib/clients.mjs';
import { tempDir, waitFor } from './lib/util.mjs';

const PAIRS = [
  ['2.5.6', '2.5.6'],
  ['1.2.1', '1.2.1'],
  ['2.5.6', '1.2.1'],
];

for (const [sa, sb] of PAIRS) {
  test(`converge: A ${sa} and B ${sb}; concurrent edits; late joiner`, async (t) => {
    const env = scope(t);
    const server = await env.server({ data: tempDir('converge') });
    const a = await env.client(sa, server.url());
    const b = await env.client(sb, server.url());
    await Promise.all([a.waitPeer(), b.waitPeer()]);

    // Create on A, find on B.
    const ha = a.create({ title: 'hello', list: [] });
    await a.waitServerHas(ha);
    const found = await b.find(ha.url, 5000);
    assert.equal(found.state, 'ready', `B's find of A's new document ended ${found.state} after ${found.ms.toFixed(0)} ms`);
    const hb = found.handle;
    assert.deepEqual(b.json(hb), { title: 'hello', list: [] });

    // Edits on both sides.
    a.change(ha, (d) => { d.fromA = 1; });
    b.change(hb, (d) => { d.fromB = 2; });
    await waitFor(() => a.json(ha).fromB === 2 && b.json(hb).fromA === 1, 5000, 'both edits on both sides');

    // Concurrent edits: 25 interleaved inserts each, no waiting in between.
    for (let i = 0; i < 25; i++) {
      a.change(ha, (d) => { d.list.push(`a${i}`); });
      b.change(hb, (d) => { d.list.push(`b${i}`); });
    }
    // Same key edited concurrently: a conflict both must resolve the same way.
    a.change(ha, (d) => { d.title = 'from A'; });
    b.change(hb, (d) => { d.title = 'from B'; });
    await waitFor(() => a.heads(ha).length > 0 && sameSet(a.heads(ha), b.heads(hb)), 10000, 'equal heads after concurrent edits');
    const va = a.savedJson(ha);
    const vb = b.savedJson(hb);
    assert.deepEqual(va, vb);
    assert.equal(va.list.length, 50);
    assert.deepEqual(va.list.filter((x) => x.startsWith('a')), Array.from({ length: 25 }, (_, i) => `a${i}`));
    assert.deepEqual(va.list.filter((x) => x.startsWith('b')), Array.from({ length: 25 }, (_, i) => `b${i}`));

    // A second document, created on B.
    const hb2 = b.create({ second: true });
    await b.waitServerHas(hb2);
    const f2 = await a.find(hb2.url, 5000);
    assert.equal(f2.state, 'ready');

    // A late joiner gets everything.
    for (const sc of new Set([sa, sb])) {
      const c = await env.client(sc, server.url());
      await c.waitPeer();
      const fc = await c.find(ha.url, 5000);
      assert.equal(fc.state, 'ready', `late joiner (${sc}) find ended ${fc.state}`);
      await waitFor(() => sameSet(c.heads(fc.handle), a.heads(ha)), 5000, 'late joiner has all changes');
      assert.deepEqual(c.savedJson(fc.handle), va);
      const fc2 = await c.find(hb2.url, 5000);
      assert.equal(fc2.state, 'ready');
      assert.deepEqual(c.json(fc2.handle), { second: true });
      await c.close();
    }
  });
}
