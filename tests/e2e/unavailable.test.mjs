// Issue 3, test 2: a document nobody has (spec/automerge.md §3.4 "doc-unavailable").
// find() must end `unavailable` quickly (the server answers `request` with
// doc-unavailable instead of letting the client wait for its 60 s timeout), and the
// requester stays subscribed: when another client later uploads that document, the
// server pushes it and the requester's handle becomes ready.
//
// The uploader creates the document while offline (a Repo without network) so its id
// is known before the server has it, then connects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scope } from './lib/scope.mjs';
import { tempDir, waitFor } from './lib/util.mjs';

const PAIRS = [
  ['2.5.6', '2.5.6'],
  ['1.2.1', '1.2.1'],
  ['1.2.1', '2.5.6'],
];

for (const [requester, uploader] of PAIRS) {
  test(`unavailable: requester ${requester} gets doc-unavailable < 1 s, then the doc when ${uploader} uploads it`, async (t) => {
    const env = scope(t);
    const server = await env.server({ data: tempDir('unavail') });

    const up = await env.client(uploader, null); // offline for now
    const hu = up.create({ made: 'offline', n: 1 });

    const req = await env.client(requester, server.url());
    await req.waitPeer();
    const r = await req.find(hu.url, 10000);
    assert.equal(r.state, 'unavailable', `find of a document the server does not have ended ${r.state}`);
    assert.ok(r.ms < 1000, `find took ${r.ms.toFixed(0)} ms to end unavailable (want < 1000)`);
    t.diagnostic(`unavailable after ${r.ms.toFixed(0)} ms`);

    // A second find of the same unknown document is answered as fast.
    if (requester === '2.5.6') {
      const again = await req.find(hu.url, 10000);
      assert.equal(again.state, 'unavailable');
      assert.ok(again.ms < 1000, `second find took ${again.ms.toFixed(0)} ms`);
    }

    // Now the uploader connects and announces its document; the server must push it
    // to the waiting requester.
    up.connect(server.url());
    await up.waitPeer();
    const handle = r.handle ?? req.repo.handles[hu.documentId];
    assert.ok(handle, 'the requester keeps a handle for the unavailable document');
    await waitFor(() => handle.state === 'ready', 5000, "the requester's handle to become ready after the upload");
    await waitFor(() => req.json(handle)?.made === 'offline', 5000, 'the uploaded content at the requester');
    assert.deepEqual(req.json(handle), { made: 'offline', n: 1 });

    // And it keeps syncing afterwards, both ways.
    up.change(hu, (d) => { d.n = 2; });
    await waitFor(() => req.json(handle).n === 2, 5000, 'a later edit from the uploader');
    req.change(handle, (d) => { d.back = true; });
    await waitFor(() => up.json(hu).back === true, 5000, "the requester's edit at the uploader");
  });
}

test('unavailable: five never-seen ids in a row, each unavailable < 1 s', async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('unavail2') });
  const c = await env.client('2.5.6', server.url());
  await c.waitPeer();
  const { generateAutomergeUrl } = c.stack.repoPkg;
  const results = [];
  for (let i = 0; i < 5; i++) results.push(await c.find(generateAutomergeUrl(), 10000));
  for (const r of results) {
    assert.equal(r.state, 'unavailable');
    assert.ok(r.ms < 1000, `find took ${r.ms.toFixed(0)} ms`);
  }
});
