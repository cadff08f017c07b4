// Issue 3, test 5: group isolation (DESIGN.md "That socket sees only the documents of
// the group its token names"). A client holding a token for group Y cannot get a
// document of group X (doc-unavailable), cannot overwrite it by uploading the same
// documentId, and each group's documents live only under its own folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { scope } from './lib/scope.mjs';
import { SERVER_KIND } from './lib/server.mjs';
import { openRaw, joinRaw } from './lib/raw.mjs';
import { sameSet } from './lib/clients.mjs';
import { tempDir, waitFor, listFiles, groupDir, docDir } from './lib/util.mjs';

const X = 'xyz.groundmist.alpha';
const Y = 'xyz.groundmist.beta';

for (const stack of ['2.5.6', '1.2.1']) {
  test(`isolation: a ${stack} client of group Y cannot reach group X's documents`, async (t) => {
    const env = scope(t);
    const data = tempDir('isolation');
    const server = await env.server({ data });
    const ax = await env.client(stack, server.url(X));
    const bx = await env.client('2.5.6', server.url(X));
    const cy = await env.client(stack, server.url(Y));
    await Promise.all([ax.waitPeer(), bx.waitPeer(), cy.waitPeer()]);

    const hx = ax.create({ group: 'X', secret: 42 });
    await ax.waitServerHas(hx);
    const fx = await bx.find(hx.url, 5000);
    assert.equal(fx.state, 'ready', 'same-group client finds the document');
    await waitFor(() => sameSet(bx.heads(fx.handle), ax.heads(hx)), 5000, 'X document at the server');

    const fy = await cy.find(hx.url, 5000);
    assert.equal(fy.state, 'unavailable', `group Y client's find of a group X document ended ${fy.state}`);
    assert.ok(fy.ms < 1000, `doc-unavailable took ${fy.ms.toFixed(0)} ms`);
    assert.equal(cy.json(fy.handle), undefined);

    // Group Y's own document stays in Y.
    const hy = cy.create({ group: 'Y' });
    await cy.waitServerHas(hy);
    const dy = await env.client('2.5.6', server.url(Y));
    await dy.waitPeer();
    const fdy = await dy.find(hy.url, 5000);
    assert.equal(fdy.state, 'ready');
    const fxy = await bx.find(hy.url, 5000);
    assert.equal(fxy.state, 'unavailable', `group X client's find of a group Y document ended ${fxy.state}`);

    // Folders: X's document only under X, Y's only under Y.
    const xDir = groupDir(data, X);
    const yDir = groupDir(data, Y);
    await waitFor(() => listFiles(docDir(xDir, hx.documentId)).length > 0, 5000, `X's document under ${xDir}`);
    await waitFor(() => listFiles(docDir(yDir, hy.documentId)).length > 0, 5000, `Y's document under ${yDir}`);
    assert.deepEqual(listFiles(docDir(yDir, hx.documentId)).filter((f) => !f.startsWith('sync-state')), [],
      "no content of X's document under Y's folder");
    assert.equal(fs.existsSync(docDir(xDir, hy.documentId)), false, "no trace of Y's document under X's folder");

    // The X client still sees its own document unchanged, and Y's request did not
    // subscribe Y to X's edits.
    let yGotIt = false;
    fy.handle?.on?.('change', () => (yGotIt = true));
    ax.change(hx, (d) => { d.secret = 43; });
    await waitFor(() => bx.json(fx.handle).secret === 43, 5000, 'X edit at the X client');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(yGotIt || cy.json(fy.handle) !== undefined, false, 'an X edit reached the Y client');
  });
}

test('isolation: uploading a group X documentId from group Y does not touch X', async (t) => {
  const env = scope(t);
  const data = tempDir('isolation2');
  const server = await env.server({ data });
  const ax = await env.client('2.5.6', server.url(X));
  const cy = await env.client('2.5.6', server.url(Y));
  await Promise.all([ax.waitPeer(), cy.waitPeer()]);
  const hx = ax.create({ owner: 'X', value: 'original' });
  await ax.waitServerHas(hx);
  const vx = await env.client('2.5.6', server.url(X));
  await vx.waitPeer();
  const fx = await vx.find(hx.url, 5000);
  assert.equal(fx.state, 'ready');

  // The attacker imports unrelated content under the same documentId into group Y.
  const A = cy.A;
  const forged = A.save(A.from({ owner: 'Y', value: 'forged' }));
  const hy = cy.repo.import(forged, { docId: hx.documentId });
  await waitFor(async () => {
    const probe = await env.client('2.5.6', server.url(Y));
    await probe.waitPeer();
    const f = await probe.find(hx.url, 3000);
    const ok = f.state === 'ready' && probe.json(f.handle)?.owner === 'Y';
    await probe.close();
    return ok;
  }, 8000, 'the forged copy to exist in group Y');

  // Group X still has only the original.
  const fresh = await env.client('2.5.6', server.url(X));
  await fresh.waitPeer();
  const f = await fresh.find(hx.url, 5000);
  assert.equal(f.state, 'ready');
  await waitFor(() => sameSet(fresh.heads(f.handle), ax.heads(hx)), 5000, 'X heads');
  assert.deepEqual(fresh.json(f.handle), { owner: 'X', value: 'original' });
  assert.equal(ax.json(hx).value, 'original');
  assert.equal(cy.json(hy).value, 'forged');
});

test('isolation: a group whose folder would contain (or lie inside) an open group is refused', { skip: SERVER_KIND === 'js' ? 'groundmist-sync behaviour' : false }, async (t) => {
  const env = scope(t);
  const data = tempDir('nested');
  const server = await env.server({ data });
  const inner = 'xyz.groundmist.notes';
  const outer = 'xyz.groundmist';
  const deeper = 'xyz.groundmist.notes.drafts';
  const a = await env.client('2.5.6', server.url(inner));
  await a.waitPeer();
  const h = a.create({ inner: true });
  await a.waitServerHas(h);
  for (const g of [outer, deeper]) {
    let outcome;
    try {
      const r = await openRaw(server.url(g));
      if (!r.ws) {
        outcome = `HTTP ${r.status}`;
      } else {
        const p = await joinRaw(server.url(g)).catch((e) => e);
        r.ws.terminate();
        if (p instanceof Error) outcome = p.refused ?? `no peer message (${p.message})`;
        else {
          // Joined: it must not see the inner group's documents.
          const f = await p.waitMessage(() => false, 10, '').catch(() => null);
          outcome = `joined (${f})`;
          p.close();
        }
      }
    } catch (e) {
      outcome = `refused (${e.message})`;
    }
    t.diagnostic(`${g}: ${outcome}`);
    assert.ok(!/^joined/.test(outcome), `a socket for ${g} (folder overlapping ${inner}) was accepted`);
    // Said clearly: an `error` message naming the reason (then close code 1008).
    assert.match(outcome, /group refused/, `how the socket for ${g} was refused`);
  }
  // The inner group keeps working, and nothing was written for the refused groups.
  const b = await env.client('1.2.1', server.url(inner));
  await b.waitPeer();
  const f = await b.find(h.url, 5000);
  assert.equal(f.state, 'ready');
  const stray = listFiles(groupDir(data, outer)).filter((x) => !x.startsWith('notes/'));
  assert.deepEqual(stray, [], `files of the refused group ${outer}`);
  assert.deepEqual(listFiles(groupDir(data, deeper)), [], `files of the refused group ${deeper}`);
});
