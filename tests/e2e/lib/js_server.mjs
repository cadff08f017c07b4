// The JS reference sync server: npm automerge-repo 2.5.6 (or, with --stack 1.2.1, the
// 1.2.1 stack the TypeScript prototype runs) with NodeWSServerAdapter and
// NodeFSStorageAdapter, configured as the reference sync server (sharePolicy: never
// announce; sync only what a peer asks for). One Repo per lexicon group, its NodeFS
// folder being <data>/<group as folders>, the layout groundmist-sync uses.
//
// Used (1) to write a data folder that our server must serve and (2) as a stand-in
// server (GM_E2E_SERVER=js) that checks the tests themselves against known-good
// behaviour. Tokens are not verified, only parsed: `js.<base64url(group)>`.
//
// Usage: node js_server.mjs --port P --data DIR [--host 127.0.0.1] [--stack 2.5.6|1.2.1]
// Prints "groundmist-sync listening on http://HOST:PORT (data: DIR)" once listening;
// SIGTERM flushes every repo and exits 0.
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { importFrom, INTEROP_DIR, REPO1_DIR, groupDir } from './util.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    data: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    stack: { type: 'string', default: '2.5.6' },
  },
});
if (!values.data) {
  console.error('usage: node js_server.mjs --port P --data DIR');
  process.exit(2);
}
const data = path.resolve(values.data);

const folder = values.stack === '1.2.1' ? REPO1_DIR : INTEROP_DIR;
const { Repo } = await importFrom(folder, '@automerge/automerge-repo');
const { NodeWSServerAdapter } = await importFrom(folder, '@automerge/automerge-repo-network-websocket');
const { NodeFSStorageAdapter } = await importFrom(folder, '@automerge/automerge-repo-storage-nodefs');
const { WebSocketServer } = await importFrom(folder, 'ws', 'wrapper.mjs');

const groups = new Map(); // group → { repo, wss }
function groupFor(name) {
  let g = groups.get(name);
  if (!g) {
    const wss = new WebSocketServer({ noServer: true });
    const repo = new Repo({
      network: [new NodeWSServerAdapter(wss)],
      storage: new NodeFSStorageAdapter(groupDir(data, name)),
      peerId: `storage-server-js-${name}`,
      sharePolicy: async () => false,
    });
    g = { repo, wss };
    groups.set(name, g);
  }
  return g;
}

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('js reference server');
});
server.on('upgrade', (req, socket, head) => {
  const token = new URL(req.url, 'http://x').searchParams.get('token') ?? '';
  const m = /^js\.([A-Za-z0-9_-]+)$/.exec(token);
  const group = m ? Buffer.from(m[1], 'base64url').toString('utf8') : '';
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(group)) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  const { wss } = groupFor(group);
  // The Repo attaches its adapter to `wss` asynchronously (after loading its storage
  // id); hand over the socket only once it listens.
  const handOver = () => {
    if (wss.listenerCount('connection') === 0) return setTimeout(handOver, 5);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };
  handOver();
});
server.listen(Number(values.port), values.host, () => {
  console.log(`groundmist-sync listening on http://${values.host}:${server.address().port} (data: ${data})`);
});

async function stop() {
  for (const { repo } of groups.values()) await repo.flush?.();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
