// A data folder restored from an older backup. Clients with storage keep a sync state
// per server storageId (spec/automerge.md §4.1 "sync-state"), so after the restore they
// believe the server has changes it lost. The sync protocol must recover: on reconnect
// the server ends up with everything again, and fresh clients get it all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { scope } from './lib/scope.mjs';
import { sameSet } from './lib/clients.mjs';
import { tempDir, waitFor, listFiles } from './lib/util.mjs';

for (const stack of ['2.5.6', '1.2.1']) {
  test(`restore: a ${stack} client with storage re-uploads what a restored backup lost`, async (t) => {
    const env = scope(t);
    const data = tempDir('restore');
    const server1 = await env.server({ data });
    const port = server1.port;
    const storageDir = tempDir('restore-client');
    let a = await env.client(stack, server1.url(), { storageDir });
    await a.waitPeer();
    const h = a.create({ log: ['before backup'] });
    await a.waitServerHas(h);
    const backup = tempDir('backup');
    await server1.stop();
    fs.cpSync(data, backup, { recursive: true });

    // More edits after the backup, acknowledged by a restarted server.
    const server2 = await env.server({ data, port });
    await a.waitPeer(10000);
    for (let i = 0; i < 3; i++) {
      a.change(h, (d) => { d.log.push(`after backup ${i}`); });
      await a.waitServerHas(h);
    }
    const want = { heads: a.heads(h), json: a.savedJson(h) };
    await a.close();
    await server2.stop();
    // The client wrote the server's sync state down.
    const files = listFiles(storageDir);
    t.diagnostic(`client storage: ${files.filter((f) => f.includes('sync-state')).length} sync-state file(s)`);

    // Restore the old folder, start the server, restart the app from its storage.
    fs.rmSync(data, { recursive: true, force: true });
    fs.cpSync(backup, data, { recursive: true });
    const server3 = await env.server({ data, port });
    a = await env.client(stack, server3.url(), { storageDir });
    const f = await a.find(h.url, 5000);
    assert.equal(f.state, 'ready');
    assert.ok(sameSet(a.heads(f.handle), want.heads), 'the client reloaded its own latest state');
    await a.waitPeer();
    await waitFor(() => a.ackedByServer(f.handle), 10000, 'the restored server to catch up with the client');
    const c = await env.client('2.5.6', server3.url());
    await c.waitPeer();
    const fc = await c.find(h.url, 5000);
    assert.equal(fc.state, 'ready');
    await waitFor(() => sameSet(c.heads(fc.handle), want.heads), 5000, 'a fresh client to get the post-backup changes');
    assert.deepEqual(c.savedJson(fc.handle), want.json);
  });
}
