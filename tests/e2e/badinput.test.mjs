// Issue 3, test 7: bad input. After a valid join, each malformed frame must get the
// offending socket an `error` message or a close (spec/automerge.md §3.2–3.3; the
// prototype crashed on a one-byte frame), the server must stay up, never send anything
// but binary CBOR maps (a text or non-CBOR frame crashes 1.2.1 clients, §3.4a), and
// well-behaved clients keep syncing. Upgrades without a valid token get HTTP 401.
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import net from 'node:net';
import assert from 'node:assert/strict';
import { scope } from './lib/scope.mjs';
import { loadStack, sameSet } from './lib/clients.mjs';
import { SERVER_KIND, mintToken } from './lib/server.mjs';
import { joinRaw, openRaw, encode } from './lib/raw.mjs';
import { tempDir, waitFor, sleep, withTimeout } from './lib/util.mjs';

const MAX_FRAME = 256 * 1024;
const s2 = await loadStack('2.5.6');
const A = s2.A;
const newDocId = () => s2.repoPkg.parseAutomergeUrl(s2.repoPkg.generateAutomergeUrl()).documentId;

// Sync messages made by automerge 3.5.0: the first message of a session, and one
// that carries changes (after the other side answered).
function syncMessages() {
  let doc = A.from({ text: 'hello', n: 1 });
  doc = A.change(doc, (d) => { d.n = 2; });
  let empty = A.init();
  let sa = A.initSyncState();
  let sb = A.initSyncState();
  let first;
  let withChanges;
  for (let i = 0; i < 5 && !withChanges; i++) {
    let m;
    [sa, m] = A.generateSyncMessage(doc, sa);
    if (!m) break;
    if (!first) first = m;
    else if (A.decodeSyncMessage(m).changes.length > 0) withChanges = m;
    [empty, sb] = A.receiveSyncMessage(empty, sb, m);
    let back;
    [sb, back] = A.generateSyncMessage(empty, sb);
    if (back) [doc, sa] = A.receiveSyncMessage(doc, sa, back);
  }
  return { first, withChanges };
}
const { first, withChanges } = syncMessages();
// What a client that does not have a document sends in its `request`.
const emptyRequest = A.generateSyncMessage(A.init(), A.initSyncState())[1];

const uleb = (n) => { const out = []; do { let b = n % 128; n = Math.floor(n / 128); if (n > 0) b |= 0x80; out.push(b); } while (n > 0); return out; };
const sleb = (n) => { const out = []; for (;;) { const b = n & 0x7f; n >>= 7; if ((n === 0 && !(b & 0x40)) || (n === -1 && (b & 0x40))) { out.push(b); return out; } out.push(b | 0x80); } };

// A V2 sync message carrying one document chunk whose run-length op columns claim
// `rows` map sets (a few bytes each), padded with an unknown column so that the
// chunk is long enough for that many rows per byte. Decoding it naively takes
// gigabytes and seconds.
function rowBombSync(rows) {
  const columns = [
    [0x15, [...sleb(rows), 1, 0x61]], // key string "a"
    [0x21, [...sleb(rows), 0]], // id actor 0
    [0x23, [...sleb(rows), 1]], // id counter deltas of 1
    [0x42, [...sleb(rows), 1]], // action set
    [0xf2, new Array(Math.ceil(rows / 256) + 16).fill(0)], // unknown column (padding)
  ];
  const body = [...uleb(1), 16, ...new Array(16).fill(7), 0, 0, ...uleb(columns.length)];
  for (const [spec, data] of columns) body.push(...uleb(spec), ...uleb(data.length));
  for (const [, data] of columns) for (const b of data) body.push(b);
  const hashed = Uint8Array.from([0, ...uleb(body.length), ...body]);
  const checksum = createHash('sha256').update(hashed).digest().subarray(0, 4);
  const chunk = [0x85, 0x6f, 0x4a, 0x83, ...checksum, ...hashed];
  return Uint8Array.from([0x43, 0, 0, 0, ...uleb(1), ...uleb(chunk.length), ...chunk]);
}

// A V2 sync message carrying one document chunk of `changes` empty changes whose
// run-length message column gives each the same `length`-byte message: a few hundred
// bytes that claim tens of megabytes of change chunks, each repeating the message
// (with 2000 bytes and 500,000 changes, 2 KB claiming a gigabyte: it took that).
function messageBombSync(changes, length) {
  const columns = [
    [0x01, [...sleb(changes), 0]], // actor 0
    [0x03, [...sleb(changes), 1]], // seq deltas of 1
    [0x13, [...sleb(changes), 0]], // maxOp 0
    [0x23, [...sleb(changes), 0]], // time 0
    [0x35, [...sleb(changes), ...uleb(length), ...new Array(length).fill(0x6d)]], // message "mmm…"
  ];
  const body = [...uleb(1), 16, ...new Array(16).fill(7), 0, ...uleb(columns.length)];
  for (const [spec, data] of columns) body.push(...uleb(spec), ...uleb(data.length));
  body.push(0); // no op columns
  for (const [, data] of columns) for (const b of data) body.push(b);
  const hashed = Uint8Array.from([0, ...uleb(body.length), ...body]);
  const checksum = createHash('sha256').update(hashed).digest().subarray(0, 4);
  const chunk = [0x85, 0x6f, 0x4a, 0x83, ...checksum, ...hashed];
  return Uint8Array.from([0x43, 0, 0, 0, ...uleb(1), ...uleb(chunk.length), ...chunk]);
}

// A V1 sync message carrying one change chunk whose run-length columns claim `ops`
// map sets (a 60-byte change).
function opBombSync(ops) {
  const run = sleb(ops);
  const columns = [[0x15, [...run, 1, 0x61]], [0x34, uleb(ops)], [0x42, [...run, 1]], [0x56, [...run, 0]], [0x70, [...run, 0]]];
  const body = [0, 16, ...new Array(16).fill(9), 1, 1, 0, 0, 0, ...uleb(columns.length)];
  for (const [spec, data] of columns) body.push(...uleb(spec), ...uleb(data.length));
  for (const [, data] of columns) body.push(...data);
  const hashed = Uint8Array.from([1, ...uleb(body.length), ...body]);
  const checksum = createHash('sha256').update(hashed).digest().subarray(0, 4);
  const chunk = [0x85, 0x6f, 0x4a, 0x83, ...checksum, ...hashed];
  return Uint8Array.from([0x42, 0, 0, 0, 1, ...uleb(chunk.length), ...chunk]);
}

function corrupt(bytes, at) {
  const b = Uint8Array.from(bytes);
  b[at] ^= 0x5a;
  return b;
}

// expect: 'reject' = must get `error` or a close; 'any' = dropping it is fine too (the
// spec says unknown types and foreign senderIds are ignored), but the socket must
// then still work.
const CASES = [
  { name: 'non-CBOR bytes', expect: 'reject', frame: () => Uint8Array.from([0xff, 0xfe, 0xfd]) },
  { name: 'one reserved-CBOR byte (0x1c)', expect: 'reject', frame: () => Uint8Array.from([0x1c]) },
  { name: 'one byte 0x00 (CBOR 0, not a map)', expect: 'reject', frame: () => Uint8Array.from([0x00]) },
  { name: 'empty binary frame', expect: 'reject', frame: () => new Uint8Array(0) },
  { name: 'CBOR array', expect: 'reject', frame: () => encode([1, 2, 3]) },
  { name: 'CBOR text string', expect: 'reject', frame: () => encode('sync') },
  { name: 'truncated CBOR map', expect: 'reject', frame: (p) => encode({ type: 'request', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: first }).subarray(0, 30) },
  { name: 'map with non-string keys', expect: 'reject', frame: () => Uint8Array.from([0xa2, 0x01, 0x02, 0x03, 0x04]) },
  { name: 'map without type', expect: 'reject', frame: (p) => encode({ senderId: p.peerId, targetId: p.serverPeerId }) },
  { name: 'type is a number', expect: 'reject', frame: (p) => encode({ type: 7, senderId: p.peerId }) },
  { name: 'sync without documentId and data', expect: 'reject', frame: (p) => encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId }) },
  { name: 'sync with data as a text string', expect: 'reject', frame: (p) => encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: 'hello' }) },
  { name: 'sync with documentId not bs58check', expect: 'reject', frame: (p) => encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: 'not/a-document-id', data: withChanges }) },
  { name: 'sync with documentId a number', expect: 'reject', frame: (p) => encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: 12345, data: withChanges }) },
  { name: 'sync with truncated sync data', expect: 'reject', frame: (p) => encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: withChanges.subarray(0, Math.floor(withChanges.length / 2)) }) },
  { name: 'sync with a corrupt change (flipped byte)', expect: 'reject', frame: (p) => encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: corrupt(withChanges, withChanges.length - 20) }) },
  { name: 'sync data of random bytes', expect: 'reject', frame: (p) => encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: Uint8Array.from([0x42, ...Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff)]) }) },
  { name: 'sync with a document chunk claiming 20 million op rows in 80 KB', expect: 'reject', frame: (p) => encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: rowBombSync(20_000_000) }) },
  { name: 'sync with a document chunk of 120000 changes repeating one 200-byte message, in 300 bytes', expect: 'reject', reason: /bytes rebuilt/, frame: (p) => encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: messageBombSync(120_000, 200) }) },
  { name: 'sync with a change claiming 5 million ops in 60 bytes', expect: 'reject', frame: (p) => encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: opBombSync(5_000_000) }) },
  { name: 'sync with 10000 have entries (one-entry filters, 1024 probes each)', expect: 'reject', frame: (p) => { const entry = [0, 6, 1, 10, 0x80, 8, 0xff, 0x03]; const haves = []; for (let i = 0; i < 10000; i++) haves.push(...entry); return encode({ type: 'sync', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: Uint8Array.from([0x42, 0, 0, ...uleb(10000), ...haves, 0]) }); } },
  { name: 'request with empty data', expect: 'reject', frame: (p) => encode({ type: 'request', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: new Uint8Array(0) }) },
  { name: 'ephemeral without sessionId/count', expect: 'reject', frame: (p) => encode({ type: 'ephemeral', senderId: p.peerId, targetId: p.serverPeerId, documentId: newDocId(), data: encode({ x: 1 }) }) },
  { name: 'map claiming 2^32-1 entries', expect: 'reject', frame: () => Uint8Array.from([0xba, 0xff, 0xff, 0xff, 0xff, 0x64, 0x74, 0x79, 0x70, 0x65]) },
  { name: 'byte string claiming 2^63 bytes', expect: 'reject', frame: () => Uint8Array.from([0xa1, 0x64, 0x64, 0x61, 0x74, 0x61, 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]) },
  { name: '100000 nested arrays', expect: 'reject', frame: () => { const b = new Uint8Array(100001).fill(0x81); b[100000] = 0; return b; } },
  { name: '100000 nested maps', expect: 'reject', frame: () => { const b = new Uint8Array(200001); for (let i = 0; i < 100000; i++) { b[2 * i] = 0xa1; b[2 * i + 1] = 0x00; } b[200000] = 0; return b; } },
  { name: 'indefinite-length map never closed', expect: 'reject', frame: () => Uint8Array.from([0xbf, 0x64, 0x74, 0x79, 0x70, 0x65, 0x64, 0x73, 0x79, 0x6e, 0x63]) },
  { name: 'unknown message type', expect: 'any', frame: (p) => encode({ type: 'no-such-type', senderId: p.peerId, targetId: p.serverPeerId }) },
  { name: 'senderId of another peer', expect: 'any', frame: (p) => encode({ type: 'request', senderId: 'someone-else', targetId: p.serverPeerId, documentId: newDocId(), data: emptyRequest }) },
  { name: 'leave (1.2.1 clients send it)', expect: 'any', frame: (p) => encode({ type: 'leave', senderId: p.peerId }) },
  { name: 'remote-subscription-change', expect: 'any', frame: (p) => encode({ type: 'remote-subscription-change', senderId: p.peerId, targetId: p.serverPeerId, add: ['x'] }) },
  { name: 'join with only protocol version 99', expect: 'reject', fresh: true, frame: () => encode({ type: 'join', senderId: 'raw-v99', peerMetadata: {}, supportedProtocolVersions: ['99'] }) },
  { name: 'text frame', expect: 'reject', text: '{"type":"join"}' },
  { name: `oversized frame (> --max-frame ${MAX_FRAME})`, expect: 'reject', frame: () => new Uint8Array(MAX_FRAME + 1024).fill(0xa0) },
];

test('bad input: every malformed frame gets error or close; the server stays up and keeps syncing', async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('badinput'), args: ['--max-frame', `${MAX_FRAME / 1024}kb`] });
  const url = server.url();

  // Well-behaved clients, connected throughout.
  const a = await env.client('2.5.6', url);
  const b = await env.client('1.2.1', url);
  await Promise.all([a.waitPeer(), b.waitPeer()]);
  const ha = a.create({ round: 0 });
  await a.waitServerHas(ha);
  const fb = await b.find(ha.url, 5000);
  assert.equal(fb.state, 'ready');
  let round = 0;
  const stillSyncing = async (what) => {
    round++;
    a.change(ha, (d) => { d.round = round; });
    await waitFor(() => b.json(fb.handle)?.round === round, 5000, `well-behaved clients still sync after ${what}`);
  };

  const failures = [];
  const outcomes = [];
  // E2E_CASES=regex runs only the matching cases (for debugging).
  const only = process.env.E2E_CASES ? new RegExp(process.env.E2E_CASES) : null;
  let previous = 'start';
  for (const c of CASES.filter((x) => !only || only.test(x.name))) {
    let peer;
    await sleep(50);
    if (!server.alive()) {
      failures.push(`THE SERVER EXITED after "${previous}"\n${server.log().slice(-2000)}`);
      break;
    }
    previous = c.name;
    if (c.fresh) {
      const { ws } = await openRaw(url);
      peer = { ws, frames: [], closed: null };
      peer.closedPromise = new Promise((r) => ws.on('close', (code, reason) => r((peer.closed = { code, reason: reason.toString() }))));
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => {
        let message;
        try { message = (s2.repoPkg.cbor ?? {}).decode?.(data); } catch { /* recorded below */ }
        peer.frames.push({ binary: isBinary, bytes: data, message });
      });
    } else {
      try {
        peer = await joinRaw(url);
      } catch (e) {
        failures.push(`${c.name}: a valid join failed (${e.message}); server ${server.alive() ? 'running' : 'EXITED'}`);
        break;
      }
    }
    const before = peer.frames.length;
    try {
      if (c.text !== undefined) peer.ws.send(c.text, { binary: false });
      else peer.ws.send(c.frame(peer), { binary: true });
    } catch (e) {
      failures.push(`${c.name}: could not send (${e.message})`);
      continue;
    }
    // error message or close within 1.5 s (the error message's full text when both
    // came: a close reason is cut at 100 bytes)
    const errorFrame = () => peer.frames.slice(before).find((f) => f.message?.type === 'error');
    const reaction = await Promise.race([
      peer.closedPromise.then((x) =>
        errorFrame() ? `error message "${errorFrame().message.message}"` : `closed ${x.code}${x.reason ? ` "${x.reason}"` : ''}`,
      ),
      waitFor(errorFrame, 1500, 'error').then(
        (f) => `error message "${f.message.message}"`,
        () => null,
      ),
    ]);
    let outcome = reaction;
    // `reason`: what our server must say (the JS reference has its own words).
    if (reaction && c.reason && SERVER_KIND === 'cpp' && !c.reason.test(reaction)) {
      failures.push(`${c.name}: refused for another reason than ${c.reason}: ${reaction}`);
    }
    if (!reaction) {
      // Dropped: the socket must still work (a request for an unknown doc is answered).
      let works = false;
      if (!c.fresh && peer.ws.readyState === 1) {
        const from = peer.frames.length;
        const documentId = newDocId();
        peer.send({ type: 'request', senderId: peer.peerId, targetId: peer.serverPeerId, documentId, data: emptyRequest });
        works = await peer
          .waitMessage((m) => m.type === 'doc-unavailable' && m.documentId === documentId, 3000, 'doc-unavailable', from)
          .then(() => true, () => false);
      }
      outcome = works ? 'ignored (socket still works)' : 'no error, no close, and the socket no longer answers';
      if (c.expect === 'reject' || !works) failures.push(`${c.name}: ${outcome}`);
    }
    // Anything the server sent must be a binary CBOR map with a string type.
    for (const f of peer.frames) {
      if (!f.binary || !f.message || typeof f.message !== 'object' || typeof f.message.type !== 'string') {
        failures.push(`${c.name}: the server sent a frame that is not a binary CBOR message: ${f.binary ? 'binary' : 'TEXT'} ${Buffer.from(f.bytes).subarray(0, 40).toString('hex')}`);
      }
    }
    outcomes.push(`${c.name}: ${outcome}`);
    if (process.env.E2E_VERBOSE) console.log(`${c.name}: ${outcome}`);
    peer.ws.terminate();
  }
  await sleep(100);
  for (const o of outcomes) t.diagnostic(o);
  assert.deepEqual(failures, []);
  assert.ok(server.alive(), 'the server is still running');
  await stillSyncing('all bad frames');
});

test('bad input: a peer that floods many bad frames on many sockets does not disturb others', async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('badflood') });
  const url = server.url();
  const a = await env.client('2.5.6', url);
  const b = await env.client('2.5.6', url);
  await Promise.all([a.waitPeer(), b.waitPeer()]);
  const ha = a.create({ n: 0 });
  await a.waitServerHas(ha);
  const fb = await b.find(ha.url, 5000);
  const peers = await Promise.all(Array.from({ length: 10 }, () => joinRaw(url)));
  for (let i = 0; i < 50; i++) {
    for (const p of peers) {
      if (p.ws.readyState === 1) p.ws.send(Uint8Array.from([0x42, i, 0xff]), { binary: true });
    }
    a.change(ha, (d) => { d.n = i; });
  }
  await waitFor(() => b.json(fb.handle).n === 49, 5000, 'sync during the flood');
  await Promise.all(peers.map((p) => withTimeout(p.closedPromise, 3000, 'flooding socket closed').catch(() => null)));
  for (const p of peers) p.ws.terminate();
  assert.ok(server.alive());
  assert.ok(sameSet(a.heads(ha), b.heads(fb.handle)));
});

test('bad input: upgrades without a valid token get HTTP 401', { skip: SERVER_KIND === 'js' ? 'the JS stand-in does not verify tokens' : false }, async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('badtoken') });
  const base = `ws://127.0.0.1:${server.port}`;
  const valid = server.token();
  const cases = [
    ['no token', `${base}/`],
    ['empty token', `${base}/?token=`],
    ['garbage token', `${base}/?token=not-a-token`],
    ['token with a flipped signature character', `${base}/?token=${valid.slice(0, -2)}${valid.at(-2) === 'A' ? 'B' : 'A'}${valid.at(-1)}`],
    ['token with the claims of another group', `${base}/?token=${valid.split('.').map((p, i) => (i === 1 ? Buffer.from(Buffer.from(p, 'base64url').toString().replace('xyz.groundmist.test', 'xyz.groundmist.evil')).toString('base64url') : p)).join('.')}`],
    ['token over the 4096-character limit', `${base}/?token=${valid}${'a'.repeat(5000)}`],
    // A request line beyond the server's header limit may be refused as such.
    ['20000-character token', `${base}/?token=${'a'.repeat(20000)}`, [401, 414, 431]],
  ];
  for (const [what, u, allowed = [401]] of cases) {
    const r = await openRaw(u).catch((e) => ({ error: e.message }));
    if (r.ws) r.ws.terminate();
    assert.ok(allowed.includes(r.status), `${what}: got ${JSON.stringify(r.error ?? (r.ws ? 'an open WebSocket' : r.status))}, want ${allowed.join(' or ')}`);
  }
  // The valid one opens.
  const ok = await openRaw(server.url());
  assert.ok(ok.ws, `a valid token: got HTTP ${ok.status}`);
  ok.ws.terminate();
});

test('bad input: a socket is closed when its session token expires', { skip: SERVER_KIND === 'js' ? 'the JS stand-in does not verify tokens' : false }, async (t) => {
  const env = scope(t);
  const data = tempDir('expiry');
  const server = await env.server({ data });
  const url = `ws://127.0.0.1:${server.port}/?token=${mintToken(undefined, data, SERVER_KIND, '2s')}`;
  const p = await joinRaw(url);
  const closed = await withTimeout(p.closedPromise, 6000, 'the socket to close at its token expiry');
  assert.equal(closed.code, 1008);
  assert.match(closed.reason, /session token expired/);
  const again = await openRaw(url);
  if (again.ws) again.ws.terminate();
  assert.equal(again.status, 401, 'the expired token opened a socket again');
  assert.ok(server.alive());
});

test('bad input: idle unauthenticated connections cannot crowd out a client with a token', { skip: SERVER_KIND === 'js' ? 'groundmist-sync behaviour' : false }, async (t) => {
  const env = scope(t);
  const server = await env.server({ data: tempDir('crowd') });
  // More idle TCP connections than the server keeps before a WebSocket upgrade (256).
  const idle = [];
  let closedByServer = 0;
  for (let i = 0; i < 320; i++) {
    const sock = net.connect(server.port, '127.0.0.1');
    sock.on('error', () => {});
    sock.on('close', () => closedByServer++);
    idle.push(sock);
  }
  await Promise.all(idle.map((sock) => new Promise((resolve) => {
    if (sock.readyState === 'open') resolve();
    sock.once('connect', resolve);
    sock.once('close', resolve);
  })));
  await sleep(300);
  const a = await env.client('2.5.6', server.url());
  const b = await env.client('1.2.1', server.url());
  await Promise.all([a.waitPeer(), b.waitPeer()]);
  const h = a.create({ n: 1 });
  await a.waitServerHas(h);
  const f = await b.find(h.url, 5000);
  assert.equal(f.state, 'ready');
  t.diagnostic(`${closedByServer} of 320 idle connections closed by the server to make room`);
  assert.ok(closedByServer >= 320 - 256, `only ${closedByServer} idle connections were closed`);
  for (const sock of idle) sock.destroy();
  assert.ok(server.alive());
});
