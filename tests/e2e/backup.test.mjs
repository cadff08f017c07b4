// `groundmist-sync backup` against a live server while real clients write and the
// server compacts (idle documents are unloaded and compacted after --idle-unload), then
// `restore` into an empty folder: a server on it serves every change acknowledged
// before each backup began, to a fresh client of the other stack, and the sessions in
// server.db came along (a token minted before the backup works, a revoked one stays
// refused). cli/backup.h, storage/backup_copy.h.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { scope } from './lib/scope.mjs';
import { GROUP, SERVER_KIND, mintToken } from './lib/server.mjs';
import { cli, runCli } from './lib/atproto.mjs';
import { openRaw } from './lib/raw.mjs';
import { tempDir, sleep } from './lib/util.mjs';
import { loadStack } from './lib/clients.mjs';

const skip = SERVER_KIND !== 'cpp' && 'the backup command is groundmist-sync\'s';
const DOCS = 6;
const ROUNDS = 3;

test('backup: copies taken while clients write and the server compacts restore every acknowledged change', { skip, timeout: 60000 }, async (t) => {
  const env = scope(t);
  const data = tempDir('backup-data');
  const server = await env.server({ data, args: ['--idle-unload', '0.1'] });

  // Sessions in server.db: one kept, one revoked before any backup.
  const kept = mintToken(GROUP, data);
  const before = await cli(['sessions', 'list', '--json', '--data', data], { json: true });
  const revoked = mintToken(GROUP, data);
  const sessions = await cli(['sessions', 'list', '--json', '--data', data], { json: true });
  assert.equal(sessions.length, 2, JSON.stringify(sessions));
  const second = sessions.find((s) => !before.some((b) => b.id === s.id));
  await cli(['sessions', 'revoke', String(second.id), '--data', data]);

  // Round 0 creates the documents; every round a new client appends to each, waits for
  // the server's acknowledgement, notes what every backup from now on must hold, and
  // leaves (its documents go idle and get compacted) while a backup runs and another
  // client keeps writing.
  const url = `ws://127.0.0.1:${server.port}/?token=${kept}`;
  const ids = [];
  const acked = new Map(); // documentId -> entries acknowledged so far
  const backups = [];
  for (let round = 0; round < ROUNDS; round++) {
    const c = await env.client('2.5.6', url);
    await c.waitPeer();
    const handles = [];
    for (let i = 0; i < DOCS; i++) {
      const h = round === 0 ? c.create({ log: [] }) : (await c.find(ids[i])).handle;
      if (round === 0) ids.push(h.documentId);
      // Several changes, so a document has several files and is worth compacting.
      for (let k = 0; k < 3; k++) c.change(h, (d) => { d.log.push(`r${round}-${k}`); });
      handles.push(h);
    }
    for (const h of handles) await c.waitServerHas(h, 10000);
    for (let i = 0; i < DOCS; i++) acked.set(ids[i], [...(acked.get(ids[i]) ?? []), `r${round}-0`, `r${round}-1`, `r${round}-2`]);
    const expected = new Map([...acked].map(([id, log]) => [id, [...log]]));

    const closing = c.close(); // idle from now: unloaded and compacted after 0.1 s
    const out = path.join(tempDir('backup-out'), `b${round}`);
    // Several backups in a row while the compactions happen and another client writes
    // (to two documents only: a document a client watches is not unloaded).
    const during = await env.client('2.5.6', url);
    await during.waitPeer();
    const writing = (async () => {
      for (let k = 0; k < 10; k++) {
        const { handle } = await during.find(ids[k % 2]);
        during.change(handle, (d) => { d.log.push(`during-${round}-${k}`); });
        await sleep(15);
      }
    })();
    const results = [];
    for (let k = 0; k < 4; k++) {
      const o = `${out}-${k}`;
      results.push(runCli(['backup', o, '--data', data, '--json']).then((r) => ({ ...r, out: o })));
      await sleep(40);
    }
    await Promise.all([closing, writing]);
    await during.close();
    for (const r of await Promise.all(results)) {
      assert.equal(r.code, 0, `backup ${r.out}: ${r.stderr}`);
      const summary = JSON.parse(r.stdout);
      assert.deepEqual(summary.groups, [GROUP]);
      assert.equal(summary.documents >= DOCS, true, r.stdout);
      assert.equal(summary.database, true, r.stdout);
      backups.push({ out: r.out, expected, summary });
    }
    await sleep(150);
  }
  const repeated = backups.reduce((n, b) => n + b.summary.repeatedPasses, 0);
  t.diagnostic(`${backups.length} backups, ${repeated} document passes repeated because a file was compacted away meanwhile`);
  const snapshots = fs.readdirSync(path.join(data, 'xyz', 'groundmist', 'test'), { recursive: true })
    .filter((p) => p.includes(`snapshot${path.sep}`)).length;
  assert.ok(snapshots > 0, 'the server compacted documents during the test');

  // A refused target: not empty.
  const full = tempDir('backup-full');
  fs.writeFileSync(path.join(full, 'x'), 'x');
  const refused = await runCli(['backup', full, '--data', data]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /not empty/);

  // Restore the first and the last backups of each round into new folders, serve
  // each, and read every document with a fresh client of the other stack.
  const chosen = backups.filter((_, i) => i % 4 === 0 || i % 4 === 3);
  for (const [n, b] of chosen.entries()) {
    const target = path.join(tempDir('backup-restore'), 'data');
    const r = await runCli(['restore', b.out, '--data', target, '--json']);
    assert.equal(r.code, 0, `restore ${b.out}: ${r.stderr}`);
    assert.equal(JSON.parse(r.stdout).problems.length, 0, r.stdout);
    // Only the last one gets a server and clients (each costs a second).
    if (n !== chosen.length - 1) continue;
    const restored = await env.server({ data: target });
    const ok = await openRaw(`ws://127.0.0.1:${restored.port}/?token=${kept}`);
    assert.ok(ok.ws, `the token minted before the backup works on the restored server (HTTP ${ok.status})`);
    ok.ws.terminate();
    const no = await openRaw(`ws://127.0.0.1:${restored.port}/?token=${revoked}`);
    assert.equal(no.status, 401, 'the session revoked before the backup stays revoked');
    const reader = await env.client('1.2.1', `ws://127.0.0.1:${restored.port}/?token=${kept}`);
    await reader.waitPeer();
    for (const [id, log] of b.expected) {
      const { handle, state } = await reader.find(id, 10000);
      assert.equal(state, 'ready', `${id} from the restored server`);
      const doc = reader.json(handle);
      for (const entry of log) assert.ok(doc.log.includes(entry), `${id} lost ${entry} (has ${doc.log.join(',')})`);
    }
  }

  // Every backup: intact per its manifest, every document in it loads, with every
  // change acknowledged before it began (its files loaded by npm's automerge).
  const { A } = await loadStack('2.5.6');
  for (const b of backups) {
    const r = await runCli(['backup-check', b.out, '--json']);
    assert.equal(r.code, 0, `backup-check ${b.out}: ${r.stderr}`);
    for (const [id, log] of b.expected) {
      const folder = path.join(b.out, 'data', 'xyz', 'groundmist', 'test', id.slice(0, 2), id.slice(2));
      const parts = [];
      for (const kind of ['snapshot', 'incremental']) {
        const dir = path.join(folder, kind);
        if (fs.existsSync(dir)) for (const f of fs.readdirSync(dir).sort()) parts.push(fs.readFileSync(path.join(dir, f)));
      }
      const doc = A.toJS(A.load(new Uint8Array(Buffer.concat(parts))));
      for (const entry of log) assert.ok(doc.log.includes(entry), `${b.out}: ${id} lost ${entry}`);
    }
  }
});

test('backup: restore refuses a damaged backup, naming the file, and a non-empty folder', { skip, timeout: 30000 }, async (t) => {
  const env = scope(t);
  const data = tempDir('backup-damaged');
  const server = await env.server({ data });
  const c = await env.client('2.5.6', server.url());
  await c.waitPeer();
  const h = c.create({ text: 'keep me' });
  await c.waitServerHas(h);
  const out = path.join(tempDir('backup-damaged-out'), 'b');
  await cli(['backup', out, '--data', data, '--verify']);

  const nonEmpty = await runCli(['restore', out, '--data', data]);
  assert.equal(nonEmpty.code, 1);
  assert.match(nonEmpty.stderr, /is not empty/);

  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  const entry = manifest.files.find((f) => f.path.includes('incremental') || f.path.includes('snapshot'));
  const file = path.join(out, entry.path);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 1] ^= 0xff;
  fs.writeFileSync(file, bytes);
  const target = path.join(tempDir('backup-damaged-restore'), 'data');
  const r = await runCli(['restore', out, '--data', target]);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(`backup damaged: ${file}`), r.stderr);
  assert.equal(fs.existsSync(target), false, 'nothing restored');
});
