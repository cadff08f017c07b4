// Native TLS (--tls-cert, --tls-key; src/server/tls.h): a certificate made here with
// the openssl program, real clients over wss:// and https:// that check it, a plain
// HTTP request on the TLS port, and a reload on SIGHUP while clients stay connected:
// new connections see the new certificate, open ones keep syncing, and a reload of a
// broken file keeps the certificate in use.
//
// The clients trust the test's certificates through tls.connect's `ca`: `ws` (under
// both automerge-repo WebSocket adapters) opens its TLS socket with tls.connect and
// takes no CA from the adapters, and NODE_EXTRA_CA_CERTS is read only at process start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { scope } from './lib/scope.mjs';
import { SERVER_KIND, startServer } from './lib/server.mjs';
import { tempDir, waitFor, withTimeout } from './lib/util.mjs';

const skip = SERVER_KIND === 'js' ? 'groundmist-sync behaviour' : spawnSync('openssl', ['version']).status !== 0 ? 'no openssl program' : false;

// A self-signed P-256 certificate for 127.0.0.1 in `dir`: { cert, key (paths), pem, fingerprint }.
function makeCertificate(dir, name) {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  const r = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', key, '-out', cert,
  ]);
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  const pem = fs.readFileSync(cert, 'utf8');
  return { cert, key, pem, fingerprint: new crypto.X509Certificate(pem).fingerprint256 };
}

// Every certificate the test made is trusted by every TLS connection of this process
// that brings no CA of its own (the `ws` sockets of the automerge-repo adapters).
const trusted = [];
const realConnect = tls.connect;
tls.connect = function connect(...args) {
  const options = args.find((a) => a && typeof a === 'object');
  if (options && options.ca === undefined) options.ca = trusted;
  return realConnect.apply(this, args);
};

// A new TLS connection: its certificate's fingerprint, protocol and ALPN choice.
function peek(port, options = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ca: trusted, ...options }, () => {
        const info = {
          fingerprint: socket.getPeerCertificate().fingerprint256,
          protocol: socket.getProtocol(),
          alpn: socket.alpnProtocol,
        };
        socket.end();
        resolve(info);
      });
      socket.on('error', reject);
    }),
    5000,
    'a TLS handshake',
  );
}

function get(url, options = {}) {
  const lib = url.startsWith('https:') ? https : http;
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = lib.get(url, { ca: trusted, agent: false, ...options }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
    }),
    5000,
    `GET ${url}`,
  );
}

// Replaces `live` (the files the server was started with) by `next`, each file at once.
function install(next, live) {
  for (const [from, to] of [[next.cert, live.cert], [next.key, live.key]]) {
    fs.copyFileSync(from, `${to}.tmp`);
    fs.renameSync(`${to}.tmp`, to);
  }
}

test('tls: wss and https on one port, plain HTTP refused, certificate reloaded on SIGHUP with clients connected', { skip }, async (t) => {
  const env = scope(t);
  const dir = tempDir('tls-certs');
  const first = makeCertificate(dir, 'first');
  const second = makeCertificate(dir, 'second');
  trusted.push(first.pem, second.pem);
  const live = { cert: path.join(dir, 'live.crt'), key: path.join(dir, 'live.key') };
  install(first, live);

  const server = await env.server({ data: tempDir('tls'), args: ['--tls-cert', live.cert, '--tls-key', live.key] });
  assert.equal(server.secure, true, 'the listening line says https://');
  assert.match(server.url(), /^wss:/);

  // The handshake: the first certificate, TLS 1.3 by default, 1.2 when the client caps
  // it, HTTP/1.1 by ALPN when a client offers h2 first.
  const hello = await peek(server.port, { ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(hello.fingerprint, first.fingerprint);
  assert.equal(hello.protocol, 'TLSv1.3');
  assert.equal(hello.alpn, 'http/1.1');
  assert.equal((await peek(server.port, { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
  // TLS 1.1 is refused by the server (its protocol_version alert), not by the client.
  await assert.rejects(peek(server.port, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }),
    (e) => e.code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');

  const health = await get(`https://127.0.0.1:${server.port}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(health.body).status, 'ok');

  // Real clients over wss://, checking the certificate: a 2.5.6 client writes, a 1.2.1
  // client (today's apps) reads.
  const a = await env.client('2.5.6', server.url());
  await a.waitPeer();
  const handle = a.create({ count: 0 });
  await a.waitServerHas(handle);
  const b = await env.client('1.2.1', server.url());
  await b.waitPeer();
  const found = await b.find(handle.url, 5000);
  assert.equal(found.state, 'ready');
  const socketA = a.adapters[0].socket;
  const socketB = b.adapters[0].socket;

  // Plain HTTP on the TLS port: a 400 that says what to do, the others unaffected.
  const plain = await get(`http://127.0.0.1:${server.port}/healthz`);
  assert.equal(plain.status, 400);
  assert.match(plain.body, /https:\/\/ or wss:\/\//);
  a.change(handle, (d) => { d.count = 1; });
  await waitFor(() => b.json(found.handle)?.count === 1, 5000, 'an edit over wss:// after a plain-HTTP request');

  // New files, SIGHUP: new connections get the second certificate...
  install(second, live);
  process.kill(server.pid, 'SIGHUP');
  await waitFor(async () => (await peek(server.port)).fingerprint === second.fingerprint, 5000,
    'a new connection to see the second certificate after SIGHUP');
  assert.ok(server.alive(), 'SIGHUP does not end the server');
  assert.match(server.log(), /TLS certificate reloaded \(SIGHUP\)/);
  // ...while the connected clients keep their sockets and keep syncing.
  a.change(handle, (d) => { d.count = 2; });
  await waitFor(() => b.json(found.handle)?.count === 2, 5000, 'an edit over the sockets opened before the reload');
  assert.equal(a.adapters[0].socket, socketA, 'the 2.5.6 client kept its socket');
  assert.equal(b.adapters[0].socket, socketB, 'the 1.2.1 client kept its socket');
  assert.equal(socketA.readyState, 1);
  assert.equal(socketB.readyState, 1);
  const c = await env.client('2.5.6', server.url());
  await c.waitPeer();
  const seen = await c.find(handle.url, 5000);
  assert.equal(c.json(seen.handle).count, 2, 'a client connected after the reload syncs too');

  // A reload of a broken file keeps the certificate in use.
  fs.writeFileSync(live.cert, 'not a certificate\n');
  process.kill(server.pid, 'SIGHUP');
  await waitFor(() => /TLS reload failed, still serving the previous certificate/.test(server.log()), 5000,
    'the failed reload to be logged');
  assert.equal((await peek(server.port)).fingerprint, second.fingerprint);
  a.change(handle, (d) => { d.count = 3; });
  await waitFor(() => b.json(found.handle)?.count === 3 && c.json(seen.handle)?.count === 3, 5000,
    'edits after a failed reload');

  // Counted: the plain request and the TLS 1.1 attempt; the certificate's expiry.
  const metrics = await get(`https://127.0.0.1:${server.port}/metrics`);
  assert.equal(metrics.status, 200);
  const failed = Number(/^groundmist_sync_tls_handshakes_failed_total (\d+)$/m.exec(metrics.body)?.[1]);
  assert.ok(failed >= 2, `handshake failures counted (${failed})`);
  const expiry = Number(/^groundmist_sync_tls_certificate_expiry_timestamp_seconds (\d+)$/m.exec(metrics.body)?.[1]);
  const notAfter = Date.parse(new crypto.X509Certificate(second.pem).validTo) / 1000;
  assert.equal(expiry, notAfter);
});

test('tls: a key that is not the certificate\'s stops the server at start, naming the files', { skip }, async () => {
  const dir = tempDir('tls-bad');
  const one = makeCertificate(dir, 'one');
  const two = makeCertificate(dir, 'two');
  await assert.rejects(
    startServer({ data: tempDir('tls-bad-data'), args: ['--tls-cert', one.cert, '--tls-key', two.key] }),
    (e) => e.message.includes(two.key) && e.message.includes('does not belong to the certificate') && e.message.includes(one.cert),
  );
  await assert.rejects(
    startServer({ data: tempDir('tls-bad-data'), args: ['--tls-cert', one.cert] }),
    /without its key: give --tls-key too/,
  );
});
