// A damaged data folder (DESIGN.md: "A corrupt file is reported and set aside, and
// every other document keeps serving"). Files of two documents are damaged while the
// server is down (a flipped byte, a truncated file); on restart the healthy document
// serves in full, the damaged ones do not crash anything and their files are set
// aside, and a client that still holds them repairs the server by reconnecting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { scope } from './lib/scope.mjs';
import { sameSet } from './lib/clients.mjs';
import { GROUP, SERVER_KIND } from './lib/server.mjs';
import { tempDir, waitFor, listFiles, groupDir, docDir } from './lib/util.mjs';

test('corruption: damaged files are set aside, other documents serve, clients repair', { skip: SERVER_KIND === 'js' ? 'groundmist-sync behaviour' : false }, async (t) => {
  const env = scope(t);
  const data = tempDir('corrupt');
  const folder = groupDir(data, GROUP);
  const server1 = await env.server({ data });
  const port = server1.port;
  const url = server1.url();
  const storageDir = tempDir('corrupt-client');
  const a = await env.client('2.5.6', url, { storageDir });
  await a.waitPeer();
  const docs = [];
  for (const kind of ['flipped', 'truncated', 'healthy']) {
    const h = a.create({ kind, blob: crypto.randomBytes(1500).toString('base64'), log: [] });
    for (let i = 0; i < 5; i++) {
      a.change(h, (d) => { d.log.push(i); });
      await a.waitServerHas(h);
    }
    docs.push(h);
  }
  const want = docs.map((h) => ({ url: h.url, heads: a.heads(h), json: a.savedJson(h) }));
  await a.close(); // the app quits (its own storage keeps the documents)
  await server1.kill9(); // keep the files exactly as written (no compaction at shutdown)

  const damage = (h, how) => {
    const files = listFiles(docDir(folder, h.documentId));
    assert.ok(files.length > 0, `files of ${h.documentId}`);
    const file = path.join(docDir(folder, h.documentId), files[0]);
    const bytes = fs.readFileSync(file);
    if (how === 'flip') bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    fs.writeFileSync(file, how === 'flip' ? bytes : bytes.subarray(0, Math.floor(bytes.length / 2)));
    return `${files[0]} (${how}, ${files.length} files)`;
  };
  t.diagnostic(`damaged ${damage(docs[0], 'flip')} and ${damage(docs[1], 'truncate')}`);

  // Restart on the damaged folder.
  const server2 = await env.server({ data, port });
  const c = await env.client('1.2.1', server2.url());
  await c.waitPeer();
  const healthy = await c.find(want[2].url, 5000);
  assert.equal(healthy.state, 'ready', 'the healthy document serves');
  await waitFor(() => sameSet(c.heads(healthy.handle), want[2].heads), 5000, 'every change of the healthy document');
  for (const i of [0, 1]) {
    const f = await c.find(want[i].url, 5000);
    t.diagnostic(`${want[i].json.kind} document after restart: ${f.state}${f.state === 'ready' ? ` with ${c.heads(f.handle).length ? 'some' : 'no'} changes` : ''}`);
  }
  assert.ok(server2.alive(), 'the server survives loading damaged files');
  const quarantine = path.join(data, '.groundmist', 'quarantine');
  const setAside = listFiles(quarantine);
  t.diagnostic(`set aside: ${setAside.join(' ')}`);
  assert.ok(setAside.some((f) => f.includes(docs[0].documentId.slice(2))), `the flipped file is set aside under ${quarantine}: ${setAside.join(' ')}`);
  assert.ok(setAside.some((f) => f.includes(docs[1].documentId.slice(2))), `the truncated file is set aside under ${quarantine}: ${setAside.join(' ')}`);
  assert.match(server2.log(), /quarantin|set aside|corrupt|checksum/i, 'the damage is reported in the log');

  // The app starts again from its own storage, opens its documents and re-uploads
  // what the server lost.
  const a2 = await env.client('2.5.6', null, { storageDir });
  const reopened = [];
  for (const w of want) {
    const f = await a2.find(w.url, 5000);
    assert.equal(f.state, 'ready', `the client reloads ${w.json.kind} from its storage`);
    reopened.push(f.handle);
  }
  a2.connect(server2.url());
  await a2.waitPeer(10000);
  for (const i of [0, 1]) await waitFor(() => a2.ackedByServer(reopened[i]), 10000, `the server to have ${want[i].json.kind} again`);
  const d = await env.client('2.5.6', server2.url());
  await d.waitPeer();
  for (const w of want) {
    const f = await d.find(w.url, 5000);
    assert.equal(f.state, 'ready', `${w.json.kind} after the repair`);
    await waitFor(() => sameSet(d.heads(f.handle), w.heads), 5000, `${w.json.kind}: every change after the repair`);
    assert.deepEqual(d.savedJson(f.handle), w.json);
  }
});
