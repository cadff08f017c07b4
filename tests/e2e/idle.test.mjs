// Idle unload and compaction (src/repo/group_repo.h: documents no client has used for
// `--idle-unload`, 2 s here, are compacted into one snapshot and unloaded; a
// document some connected client still syncs is never unloaded). Checks that a
// compacted document is served again with every change, loads in JS Repos from the
// folder, takes further edits, and that a watched document keeps relaying edits to
// its idle watcher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { scope } from './lib/scope.mjs';
import { STACKS, loadStack, sameSet } from './lib/clients.mjs';
import { GROUP, SERVER_KIND } from './lib/server.mjs';
import { tempDir, waitFor, listFiles, groupDir, docDir, sleep, withTimeout } from './lib/util.mjs';

test('idle: an unused document is compacted and unloaded, then served and edited again', { skip: SERVER_KIND === 'js' ? 'groundmist-sync behaviour' : false }, async (t) => {
  const env = scope(t);
  const data = tempDir('idle');
  const server = await env.server({ data, args: ['--idle-unload', '2'] });
  const folder = groupDir(data, GROUP);

  // doc1: written as many incrementals, then left alone.
  const a = await env.client('2.5.6', server.url());
  await a.waitPeer();
  const h1 = a.create({ text: crypto.randomBytes(3000).toString('base64'), log: [] });
  for (let i = 0; i < 30; i++) {
    a.change(h1, (d) => { d.log.push(i); });
    if (i % 10 === 9) await a.waitServerHas(h1);
  }
  await a.waitServerHas(h1);
  const want1 = { heads: a.heads(h1), json: a.savedJson(h1), url: h1.url };
  // doc2: watched by B (1.2.1) throughout, edited by A only after the unload period.
  const b = await env.client('1.2.1', server.url());
  await b.waitPeer();
  const h2 = a.create({ watched: 0 });
  await a.waitServerHas(h2);
  const f2 = await b.find(h2.url, 5000);
  assert.equal(f2.state, 'ready');
  const before = listFiles(docDir(folder, h1.documentId));
  t.diagnostic(`doc1 before: ${before.length} files (${before.filter((f) => f.startsWith('incremental')).length} incremental)`);
  await a.close(); // doc1 now has no client; B still watches doc2 (and A is gone from it)

  const compacted = await waitFor(() => {
    const files = listFiles(docDir(folder, h1.documentId));
    return files.length === 1 && files[0].startsWith('snapshot/') ? files : null;
  }, 15000, 'doc1 to be compacted into one snapshot (idle unload after 2 s)').catch((e) => {
    throw new Error(`${e.message}; files now: ${listFiles(docDir(folder, h1.documentId)).join(' ')}`);
  });
  t.diagnostic(`doc1 after unload: ${compacted.join(' ')}`);

  // The compacted folder loads in JS Repos of both stacks.
  for (const st of STACKS) {
    const s = await loadStack(st);
    const repo = new s.Repo({ storage: new s.NodeFS(folder), network: [] });
    let handle;
    if (s.v1) {
      handle = repo.find(want1.url);
      await withTimeout(handle.whenReady(['ready', 'unavailable']), 5000, 'find');
    } else {
      handle = await withTimeout(repo.find(want1.url), 5000, 'find');
    }
    assert.equal(handle.state, 'ready', `${st} JS Repo on the compacted folder`);
    const doc = s.v1 ? handle.docSync() : handle.doc();
    assert.deepEqual([...s.A.getHeads(doc)].sort(), want1.heads, `${st}: heads of the compacted snapshot`);
    assert.deepEqual(s.A.toJS(s.A.load(s.A.save(doc))), want1.json);
    if (!s.v1) await repo.shutdown();
  }

  // The watched document still relays to its idle watcher.
  const a2 = await env.client('2.5.6', server.url());
  await a2.waitPeer();
  const g2 = await a2.find(h2.url, 5000);
  assert.equal(g2.state, 'ready');
  a2.change(g2.handle, (d) => { d.watched = 1; });
  await waitFor(() => b.json(f2.handle).watched === 1, 5000, 'an edit to reach the watcher that was idle past the unload period');

  // doc1 is served again after its unload, and takes new edits.
  for (const st of STACKS) {
    const c = await env.client(st, server.url());
    await c.waitPeer();
    const f = await c.find(want1.url, 5000);
    assert.equal(f.state, 'ready', `${st}: doc1 after unload ended ${f.state}`);
    await waitFor(() => sameSet(c.heads(f.handle), want1.heads), 5000, `${st}: doc1 heads after unload`);
    assert.deepEqual(c.savedJson(f.handle), want1.json);
    if (st === '1.2.1') {
      c.change(f.handle, (d) => { d.log.push('after unload'); });
      await c.waitServerHas(f.handle);
      want1.heads = c.heads(f.handle);
      want1.json = c.savedJson(f.handle);
    }
    await c.close();
  }
  await server.stop();
  const server2 = await env.server({ data });
  const c = await env.client('2.5.6', server2.url());
  await c.waitPeer();
  const f = await c.find(want1.url, 5000);
  assert.equal(f.state, 'ready');
  await waitFor(() => sameSet(c.heads(f.handle), want1.heads), 5000, 'doc1 heads after the restart');
  assert.deepEqual(c.savedJson(f.handle), want1.json);
  await sleep(1);
});
