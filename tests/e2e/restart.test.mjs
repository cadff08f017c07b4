// Issue 3, test 4: durability and recovery.
//  - everything survives a clean server restart (SIGTERM, start on the same folder);
//  - a server started on an EMPTY data folder is rebuilt from what reconnecting
//    clients hold (clients reconnect by themselves and re-announce their documents);
//  - `kill -9` right after a client saw its change acknowledged loses nothing
//    (DESIGN.md "Writes are crash-safe … acknowledged only once durable").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope } from './lib/scope.mjs';
import { STACKS, sameSet } from './lib/clients.mjs';
import { tempDir, waitFor, listFiles, groupDir, docDir } from './lib/util.mjs';
import { GROUP } from './lib/server.mjs';

// Waits until `verifier` (another client) holds `handle`'s document at its current heads:
// proof that the server had every change.
async function waitRelayed(owner, handle, verifier) {
  await owner.waitServerHas(handle);
  const f = await verifier.find(handle.url, 5000);
  assert.equal(f.state, 'ready', `verifier's find ended ${f.state}`);
  await waitFor(() => sameSet(verifier.heads(f.handle), owner.heads(handle)), 5000, 'the verifier to reach the owner heads');
  return f.handle;
}

test('restart: documents survive SIGTERM and a restart on the same data folder', async (t) => {
  const env = scope(t);
  const data = tempDir('restart');
  let server = await env.server({ data });
  const owners = [];
  const docs = []; // { url, json }
  for (const s of STACKS) {
    const a = await env.client(s, server.url());
    const v = await env.client(s === '2.5.6' ? '1.2.1' : '2.5.6', server.url());
    await Promise.all([a.waitPeer(), v.waitPeer()]);
    for (let i = 0; i < 3; i++) {
      const h = a.create({ stack: s, i, items: [] });
      for (let k = 0; k < 5; k++) a.change(h, (d) => { d.items.push(k); });
      await waitRelayed(a, h, v);
      docs.push({ url: h.url, json: a.savedJson(h), heads: a.heads(h) });
    }
    owners.push(a, v);
  }
  for (const c of owners) await c.close();
  const stopped = await server.stop();
  assert.equal(stopped.code, 0, `server exit after SIGTERM: ${JSON.stringify(stopped)}`);

  server = await env.server({ data });
  for (const s of STACKS) {
    const c = await env.client(s, server.url());
    await c.waitPeer();
    for (const d of docs) {
      const f = await c.find(d.url, 5000);
      assert.equal(f.state, 'ready', `${s} client after restart: ${d.url} ended ${f.state}`);
      await waitFor(() => sameSet(c.heads(f.handle), d.heads), 5000, `all changes of ${d.url} after restart`);
      assert.deepEqual(c.savedJson(f.handle), d.json);
    }
  }
});

test('restart: a server on an EMPTY data folder is rebuilt by reconnecting clients', async (t) => {
  const env = scope(t);
  const server1 = await env.server({ data: tempDir('rebuild1') });
  const port = server1.port;
  const url = server1.url(); // the token stays valid: same secret for every server here
  const dirA = tempDir('clientA');
  const dirB = tempDir('clientB');
  const a = await env.client('2.5.6', url, { storageDir: dirA });
  let b = await env.client('1.2.1', url, { storageDir: dirB });
  await Promise.all([a.waitPeer(), b.waitPeer()]);
  const ha = a.create({ owner: 'A', n: 1 });
  const hb = b.create({ owner: 'B', n: 1 });
  const haAtB = await waitRelayed(a, ha, b);
  await waitRelayed(b, hb, a);

  await server1.kill9();
  // Offline edits while no server runs.
  a.change(ha, (d) => { d.n = 2; });
  b.change(haAtB, (d) => { d.offlineFromB = true; });
  // B's app restarts: a new Repo on B's own storage, opening its document again.
  await b.close();
  b = await env.client('1.2.1', url, { storageDir: dirB });
  const reopened = await b.find(hb.url, 5000);
  assert.equal(reopened.state, 'ready', 'B reloads its document from its own storage');
  const haAtB2 = await b.find(ha.url, 5000);
  assert.equal(haAtB2.state, 'ready', 'B reloads A\'s document from its own storage');

  const emptyData = tempDir('rebuild2');
  const server2 = await env.server({ data: emptyData, port });
  await Promise.all([a.waitPeer(10000), b.waitPeer(10000)]);

  const c = await env.client('2.5.6', server2.url());
  await c.waitPeer();
  const fa = await waitFor(async () => {
    const f = await c.find(ha.url, 5000);
    return f.state === 'ready' ? f : null;
  }, 8000, "A's document at the new server");
  await waitFor(() => c.json(fa.handle)?.n === 2 && c.json(fa.handle)?.offlineFromB === true, 8000,
    "A's document with both offline edits");
  const fb = await c.find(hb.url, 5000);
  assert.equal(fb.state, 'ready', "B's document at the new server");
  assert.equal(c.json(fb.handle).owner, 'B');
  // The new server wrote it down in its own folder.
  for (const id of [ha.documentId, hb.documentId]) {
    await waitFor(() => listFiles(docDir(groupDir(emptyData, GROUP), id)).length > 0, 5000, `files of ${id} in the new data folder`);
  }
});

test('restart: kill -9 right after an acknowledged change loses nothing', async (t) => {
  const env = scope(t);
  const data = tempDir('kill9');
  let server = await env.server({ data });
  const port = server.port;
  const expect = []; // { url, heads, json }

  // (1) acknowledged as the client sees it: the server's heads in the client's sync
  //     state (needs the server's storageId in `peer`).
  for (const s of STACKS) {
    const a = await env.client(s, server.url());
    await a.waitPeer();
    assert.ok(a.serverStorageId(), `the server's peer message carries a storageId (${s} client sees ${JSON.stringify(a.repo.peerMetadataByPeerId[a.serverPeerId()])})`);
    const h = a.create({ acked: s, k: 0 });
    for (let k = 1; k <= 10; k++) {
      a.change(h, (d) => { d.k = k; });
      await waitFor(() => a.ackedByServer(h), 5000, `${s}: server acknowledged change ${k}`);
    }
    expect.push({ url: h.url, heads: a.heads(h), json: a.savedJson(h) });
  }
  // (2) acknowledged by a second client having received it.
  {
    const a = await env.client('2.5.6', server.url());
    const b = await env.client('1.2.1', server.url());
    await Promise.all([a.waitPeer(), b.waitPeer()]);
    const h = a.create({ relayed: true, list: [] });
    const hb = await waitRelayed(a, h, b);
    a.change(h, (d) => { d.list.push('last'); });
    await waitFor(() => b.json(hb).list.length === 1, 5000, 'B received the last change');
    expect.push({ url: h.url, heads: a.heads(h), json: a.savedJson(h) });
  }
  await server.kill9();

  server = await env.server({ data, port });
  for (const s of STACKS) {
    const c = await env.client(s, server.url());
    await c.waitPeer();
    for (const d of expect) {
      const f = await c.find(d.url, 5000);
      assert.equal(f.state, 'ready', `after kill -9: ${d.url} ended ${f.state} for a ${s} client`);
      await waitFor(() => sameSet(c.heads(f.handle), d.heads), 5000, `after kill -9: every acknowledged change of ${d.url}`)
        .catch((e) => { throw new Error(`${e.message}: have ${JSON.stringify(c.savedJson(f.handle))}, want ${JSON.stringify(d.json)}`); });
      assert.deepEqual(c.savedJson(f.handle), d.json);
    }
  }
});

// Shared by the two tests below: one run of "SIGTERM while four clients edit".
let busyRun;

test('restart: SIGTERM while clients are connected and editing exits cleanly and keeps every acknowledged change', async (t) => {
  const env = scope(t);
  const data = tempDir('sigterm-busy');
  const server = await env.server({ data });
  const port = server.port;
  const clients = [];
  const sendErrors = [];
  for (const s of ['2.5.6', '1.2.1', '2.5.6', '1.2.1']) {
    clients.push(await env.client(s, server.url(), { retryInterval: 60000, recordSendErrors: sendErrors }));
  }
  await Promise.all(clients.map((c) => c.waitPeer()));
  const handles = clients.map((c, i) => c.create({ owner: i, n: 0 }));
  await Promise.all(clients.map((c, i) => c.waitServerHas(handles[i])));
  // Keep editing; stop the server in the middle.
  let stop = false;
  const clientErrors = [];
  const loops = clients.map(async (c, i) => {
    for (let n = 1; !stop && n < 2000; n++) {
      try {
        c.change(handles[i], (d) => { d.n = n; });
      } catch (e) {
        clientErrors.push(`${c.name} at n=${n} (${stop ? 'after' : 'before'} the server exited): ${e.message}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  await new Promise((r) => setTimeout(r, 600));
  // SIGTERM while the clients edit; they stop editing 100 ms into the server's 300 ms
  // quiet period. A client's own edit is synced whenever it happens (up to the repo's
  // 100 ms debounce later), so edits still going when the close frames arrive would
  // be recorded below although the server asked nothing of the client.
  const exiting = server.stop();
  await new Promise((r) => setTimeout(r, 100));
  stop = true;
  const exit = await exiting;
  await Promise.all(loops);
  // What each client saw the server acknowledge (its sync state's view of the server).
  const acked = clients.map((c, i) => c.serverHeads(handles[i]));
  busyRun = { clientErrors, sendErrors };
  for (const e of clientErrors) t.diagnostic(`client error: ${e}`);
  for (const e of sendErrors) t.diagnostic(`client reply after the server began closing: ${e}`);
  assert.equal(exit.code, 0, `exit after SIGTERM with busy clients: ${JSON.stringify(exit)}\n${server.log().slice(-1500)}`);
  for (const c of clients) await c.close();

  const server2 = await env.server({ data, port });
  const v = await env.client('2.5.6', server2.url());
  await v.waitPeer();
  for (let i = 0; i < clients.length; i++) {
    assert.ok(acked[i].length > 0, `client ${i} saw an acknowledgement`);
    const f = await v.find(handles[i].url, 5000);
    assert.equal(f.state, 'ready');
    await waitFor(() => v.A.hasHeads(v.doc(f.handle), acked[i]), 3000, `client ${i}: the acknowledged heads after the restart`)
      .catch((e) => { throw new Error(`${e.message}; acknowledged ${acked[i]}, the restarted server has n=${v.json(f.handle).n}`); });
  }
});

test('restart: the shutdown sends nothing clients must answer on a closing socket', async (t) => {
  // Clients answer a server's `sync` asynchronously; if the close frame arrives in the
  // same read, the reply goes to a closing socket and the npm adapters throw: 1.2.1 as
  // an uncaught exception, 2.5.6 inside DocHandle.update, leaving the handle with an
  // outdated document (every later change() throws "Attempting to change an outdated
  // document" until the app reloads). Here the harness records those sends instead.
  assert.ok(busyRun, 'the previous test ran');
  assert.deepEqual(busyRun.clientErrors, [], 'document handles broken by the server shutdown');
  assert.deepEqual(busyRun.sendErrors, [], 'replies the clients had to send on a closing socket');
});
