// Issue 3, test 6: data-folder compatibility both ways (DESIGN.md: "an existing data
// folder can be served by either server"; spec/automerge.md §4).
//  - a folder written by the JS reference server (npm automerge-repo 2.5.6 Repo,
//    NodeWSServerAdapter + NodeFSStorageAdapter, sharePolicy false) is served by ours;
//  - a group folder written by ours (after SIGTERM, and after kill -9) is loaded by a
//    JS Repo with NodeFSStorageAdapter, with both client stacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { scope } from './lib/scope.mjs';
import { STACKS, loadStack, sameSet } from './lib/clients.mjs';
import { GROUP, SERVER_KIND } from './lib/server.mjs';
import { tempDir, waitFor, listFiles, groupDir, withTimeout } from './lib/util.mjs';

// Text that deflate cannot shrink much, so the document's snapshot is well over 1 KiB
// and later small edits are stored as `incremental` files (spec §4.2).
const bigText = (n) => crypto.randomBytes(n).toString('base64');

// Makes documents through `url` with `stack` clients: a small one, a big one with
// later edits, one with many small changes. Returns [{ url, heads, json }].
async function writeDocs(env, url) {
  const docs = [];
  const a = await env.client('2.5.6', url);
  const b = await env.client('1.2.1', url);
  await Promise.all([a.waitPeer(), b.waitPeer()]);
  const small = a.create({ kind: 'small' });
  const big = a.create({ kind: 'big', text: bigText(6000), edits: [] });
  const many = b.create({ kind: 'many', n: 0, log: [] });
  for (let i = 0; i < 40; i++) {
    b.change(many, (d) => { d.n = i; d.log.push(`entry ${i}`); });
  }
  // Let the first state be stored before the later edits (so the JS server writes a
  // snapshot first and incrementals after it).
  const seen = [];
  for (const [owner, h] of [[a, small], [a, big], [b, many]]) {
    const other = owner === a ? b : a;
    await owner.waitServerHas(h);
    const f = await other.find(h.url, 5000);
    assert.equal(f.state, 'ready');
    seen.push([owner, h, other, f.handle]);
  }
  await waitFor(() => seen.every(([o, h, v, hv]) => sameSet(o.heads(h), v.heads(hv))), 5000, 'first state everywhere');
  await new Promise((r) => setTimeout(r, 300));
  for (let i = 0; i < 5; i++) {
    a.change(big, (d) => { d.edits.push(i); });
    await new Promise((r) => setTimeout(r, 150));
  }
  b.change(seen[1][3], (d) => { d.fromB = true; });
  await waitFor(() => seen.every(([o, h, v, hv]) => sameSet(o.heads(h), v.heads(hv))), 5000, 'final state everywhere');
  for (const [o, h] of seen) docs.push({ url: h.url, id: h.documentId, heads: o.heads(h), json: o.savedJson(h) });
  await a.close();
  await b.close();
  return docs;
}

// Opens a NodeFS group folder with a JS Repo of `stack` (no network) and checks that
// every document loads with the expected heads and content.
async function checkWithJsRepo(stackName, folder, docs) {
  const s = await loadStack(stackName);
  const repo = new s.Repo({ storage: new s.NodeFS(folder), network: [] });
  try {
    for (const d of docs) {
      let handle;
      let state;
      if (s.v1) {
        handle = repo.find(d.url);
        await withTimeout(handle.whenReady(['ready', 'unavailable']), 5000, `${stackName} find ${d.url}`);
        state = handle.state;
      } else {
        handle = await withTimeout(repo.find(d.url), 5000, `${stackName} find ${d.url}`).catch((e) => e);
        state = handle instanceof Error ? `error: ${handle.message}` : handle.state;
      }
      assert.equal(state, 'ready', `JS Repo ${stackName} on ${folder}: ${d.url} (${d.json.kind}) ended ${state}`);
      const doc = s.v1 ? handle.docSync() : handle.doc();
      assert.deepEqual([...s.A.getHeads(doc)].sort(), d.heads, `${stackName}: heads of ${d.json.kind}`);
      assert.deepEqual(s.A.toJS(s.A.load(s.A.save(doc))), d.json);
    }
  } finally {
    if (!s.v1) await withTimeout(repo.shutdown(), 5000, 'shutdown').catch(() => {});
  }
}

// Our server serving `data`: fresh clients of both stacks find every document.
async function checkServedBy(env, server, docs) {
  for (const st of STACKS) {
    const c = await env.client(st, server.url());
    await c.waitPeer();
    for (const d of docs) {
      const f = await c.find(d.url, 5000);
      assert.equal(f.state, 'ready', `${st} client: ${d.url} (${d.json.kind}) ended ${f.state}`);
      await waitFor(() => sameSet(c.heads(f.handle), d.heads), 5000, `${st}: every change of ${d.json.kind}`);
      assert.deepEqual(c.savedJson(f.handle), d.json);
    }
    await c.close();
  }
}

for (const [kind, what] of [['js', 'repo 2.5.6'], ['js1', 'repo 1.2.1, as the prototype']]) test(`datafolder: a folder written by the JS reference server (${what}) is served by ours, and back`, async (t) => {
  const env = scope(t);
  const data = tempDir('jsfolder');
  const js = await env.server({ data, kind });
  const docs = await writeDocs(env, js.url());
  const probe = await env.client('2.5.6', js.url());
  await probe.waitPeer();
  const jsStorageId = probe.serverStorageId();
  await probe.close();
  await js.stop();
  const files = listFiles(groupDir(data, GROUP));
  t.diagnostic(`JS server wrote ${files.length} files: ${files.map((f) => f.split('/').slice(2, 3)).join(',')}`);
  assert.ok(files.some((f) => f.includes('/incremental/')), `the JS folder has incremental files too: ${files.join(' ')}`);

  const ours = await env.server({ data });
  await checkServedBy(env, ours, docs);
  const c = await env.client('2.5.6', ours.url());
  await c.waitPeer();
  if (SERVER_KIND === 'cpp') assert.equal(c.serverStorageId(), jsStorageId, "our server announces the folder's storage-adapter-id");

  // Edit through ours, then the JS server (and a JS repo) read the folder again.
  const f = await c.find(docs[1].url, 5000);
  c.change(f.handle, (d) => { d.edits.push('via ours'); });
  const v = await env.client('1.2.1', ours.url());
  await v.waitPeer();
  const fv = await v.find(docs[1].url, 5000);
  await waitFor(() => sameSet(v.heads(fv.handle), c.heads(f.handle)), 5000, 'edit via ours relayed');
  docs[1] = { ...docs[1], heads: c.heads(f.handle), json: c.savedJson(f.handle) };
  await c.close();
  await v.close();
  await ours.stop();
  for (const st of STACKS) await checkWithJsRepo(st, groupDir(data, GROUP), docs);
  const js2 = await env.server({ data, kind });
  await checkServedBy(env, js2, docs);
});

for (const how of ['SIGTERM', 'kill -9']) {
  test(`datafolder: a group folder written by ours (${how}) loads in JS Repos with NodeFSStorageAdapter`, async (t) => {
    const env = scope(t);
    const data = tempDir('ourfolder');
    const server = await env.server({ data });
    const docs = await writeDocs(env, server.url());
    if (how === 'SIGTERM') {
      const r = await server.stop();
      assert.equal(r.code, 0, `exit after SIGTERM: ${JSON.stringify(r)}`);
    } else {
      await server.kill9();
    }
    const files = listFiles(groupDir(data, GROUP));
    t.diagnostic(`${files.length} files: ${files.join(' ')}`);
    assert.ok(files.includes('st/orage-adapter-id'), 'the group folder has its storage-adapter-id');
    // Only the marker that says the store was swept for leftovers (.tmp/.swept).
    const dotted = files.filter((f) => f !== '.tmp/.swept' && f.split('/').some((p) => p.startsWith('.')));
    assert.deepEqual(dotted, [], `no leftover temp files: ${files.join(' ')}`);
    for (const st of STACKS) await checkWithJsRepo(st, groupDir(data, GROUP), docs);
    // The JS reference servers (repo 2.5.6, and 1.2.1 as the prototype) serve it too.
    for (const kind of ['js', 'js1']) {
      const js = await env.server({ data, kind });
      await checkServedBy(env, js, docs);
      await js.stop();
    }
  });
}
