// Issue 13, "Disk faults" end to end: the server on a small tmpfs that fills to the
// brim while real clients write. While the disk is full, changes that cannot be stored
// are never acknowledged (the writer is told, and keeps them), reads keep being served
// and the server stays up; once space is freed the writers' changes get stored without
// anyone restarting anything, everybody converges, and a kill -9 then loses nothing.
// Needs root (mount); skipped, saying why, otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { scope } from './lib/scope.mjs';
import { sameSet } from './lib/clients.mjs';
import { tempDir, waitFor, sleep } from './lib/util.mjs';
import { SERVER_KIND } from './lib/server.mjs';

// Mounts a tmpfs of `size` on a fresh folder; null (and why) when this machine cannot.
function mountTmpfs(size) {
  if (process.getuid?.() !== 0) return { why: 'not root: cannot mount a tmpfs' };
  const dir = tempDir('diskfull');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    return { why: `mount failed: ${String(e.stderr ?? e.message).trim()}` };
  }
  return { dir };
}

// Writes `file` until the filesystem is full; returns the bytes written.
function fill(file) {
  const block = Buffer.alloc(64 * 1024, 0x55);
  const fd = fs.openSync(file, 'w');
  let written = 0;
  try {
    for (;;) {
      try {
        written += fs.writeSync(fd, block);
      } catch (e) {
        if (e.code !== 'ENOSPC') throw e;
        // Top up with small blocks, so not even a small file fits.
        for (;;) {
          try {
            written += fs.writeSync(fd, block.subarray(0, 512));
          } catch {
            return written;
          }
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

test('disk full: nothing unstored is acknowledged, reads go on, writes resume by themselves, nothing is lost', async (t) => {
  if (SERVER_KIND !== 'cpp') return t.skip('the JS reference server does not handle a full disk');
  const mount = mountTmpfs('8m');
  if (!mount.dir) return t.skip(mount.why);
  t.after(() => {
    try {
      execFileSync('umount', ['-l', mount.dir]);
      fs.rmSync(mount.dir, { recursive: true, force: true });
    } catch {
      /* left for the machine's temp cleanup */
    }
  });
  const env = scope(t);
  const data = path.join(mount.dir, 'data');
  fs.mkdirSync(data, { mode: 0o700 });
  let server = await env.server({ data });
  const url = server.url(); // the token is minted now, while there is room

  const writer = await env.client('2.5.6', url);
  const reader = await env.client('1.2.1', url);
  await Promise.all([writer.waitPeer(), reader.waitPeer()]);
  const handle = writer.create({ items: [] });
  for (let i = 0; i < 5; i++) writer.change(handle, (d) => void d.items.push(`before ${i}`));
  await writer.waitServerHas(handle);
  const stored = writer.heads(handle);
  const r = await reader.find(handle.url, 5000);
  assert.equal(r.state, 'ready');

  // The disk fills up; the writer goes on writing.
  const filler = path.join(mount.dir, 'filler');
  const filled = fill(filler);
  t.diagnostic(`filled the tmpfs with ${filled} bytes`);
  for (let i = 0; i < 20; i++) {
    writer.change(handle, (d) => void d.items.push(`while full ${i} ${'x'.repeat(2000)}`));
    await sleep(50);
  }
  await sleep(1500);
  assert.ok(server.alive(), 'the server stays up on a full disk');
  // Never acknowledged: the server's heads for the writer never went past what is stored.
  const acked = writer.serverHeads(handle);
  assert.ok(acked.length === 0 || sameSet(acked, stored), `acknowledged while full: ${acked} (stored ${stored})`);
  // Reads go on: a new client gets the document as stored.
  const late = await env.client('2.5.6', url);
  await late.waitPeer();
  const l = await late.find(handle.url, 5000);
  assert.equal(l.state, 'ready', `a read while the disk is full ended ${l.state}`);
  await waitFor(() => sameSet(late.heads(l.handle), stored) || late.heads(l.handle).length > 0, 5000, 'the stored state');
  assert.ok(/storing changes failed|could not store|no space/i.test(server.log()), 'the log says why writes fail');

  // Space again: the writer's changes reach the disk without a restart.
  fs.rmSync(filler);
  await writer.waitServerHas(handle, 30000);
  const all = writer.heads(handle);
  const json = writer.savedJson(handle);
  assert.equal(json.items.length, 25);
  await waitFor(() => sameSet(reader.heads(r.handle), all), 15000, 'the reader to converge');
  await waitFor(() => sameSet(late.heads(l.handle), all), 15000, 'the late reader to converge');

  // And it is durable: kill -9, restart on the same folder, a fresh client gets it all.
  await server.kill9();
  server = await env.server({ data });
  const fresh = await env.client('2.5.6', server.url());
  await fresh.waitPeer();
  const f = await fresh.find(handle.url, 5000);
  assert.equal(f.state, 'ready');
  await waitFor(() => sameSet(fresh.heads(f.handle), all), 10000, 'everything after kill -9');
  assert.deepEqual(fresh.savedJson(f.handle), json);
});
