// The JS reference sync server for the server benchmark (scripts/bench-server.sh):
// npm @automerge/automerge-repo 2.5.6 configured as automerge-repo-sync-server does it:
// one Repo, NodeWSServerAdapter on a `ws` WebSocketServer, NodeFSStorageAdapter,
// peerId `storage-server-<hostname>`, and `sharePolicy: async () => false` (a server
// announces nothing; it syncs only the documents a peer asks for).
//
//   node js_reference_server.mjs --port P --data DIR [--host 127.0.0.1]
//
// Prints one line, "js-reference-server listening on ws://HOST:PORT (data: DIR)", once
// the Repo's adapter is attached to the socket server (connections made earlier would
// be lost). Clients may add ?token=…; it is ignored. SIGTERM/SIGINT flush and exit 0.
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Repo } from "@automerge/automerge-repo";
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    data: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
  },
});
if (!values.data) {
  console.error("usage: node js_reference_server.mjs --port P --data DIR [--host 127.0.0.1]");
  process.exit(2);
}
const data = path.resolve(values.data);

const wss = new WebSocketServer({ host: values.host, port: Number(values.port) });
await new Promise((resolve, reject) => {
  wss.once("listening", resolve);
  wss.once("error", reject);
});

const repo = new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(data),
  peerId: `storage-server-${os.hostname()}`,
  sharePolicy: async () => false,
});

// The Repo connects its network adapters after loading its storage id (asynchronously).
const deadline = Date.now() + 10000;
while (wss.listenerCount("connection") === 0) {
  if (Date.now() > deadline) {
    console.error("js-reference-server: the Repo did not attach to the WebSocket server within 10 s");
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 5));
}
console.log(`js-reference-server listening on ws://${values.host}:${wss.address().port} (data: ${data})`);

async function stop() {
  await repo.flush();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
