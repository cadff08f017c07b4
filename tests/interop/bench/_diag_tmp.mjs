import { Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
const url = process.argv[2];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mk = () => { const ad = new WebSocketClientAdapter(url, 1000); return [new Repo({ network: [ad] }), ad]; };
const [ra, aa] = mk(); const [rb, ab] = mk();
while (!ra.peers.length || !rb.peers.length) await sleep(20);
const a = ra.create({ n: 0 });
await sleep(500);
const b = await rb.find(a.url);
let tSend = null, tArrive = null, tChange = null;
const origSend = aa.socket.send.bind(aa.socket);
aa.socket.send = (...x) => { if (tSend === null) tSend = performance.now(); return origSend(...x); };
ab.socket.prependListener("message", () => { if (tSend !== null && tArrive === null) tArrive = performance.now(); });
b.on("change", () => { if (tChange === null) tChange = performance.now(); });
const rows = [];
for (let i = 1; i <= 60; i++) {
  await sleep(120);
  tSend = tArrive = tChange = null;
  const t0 = performance.now();
  a.change((d) => { d.n = i; });
  while (tChange === null) await sleep(1);
  rows.push([tSend - t0, tArrive - tSend, tChange - tArrive, tChange - t0]);
}
const med = (k) => { const s = rows.map((r) => r[k]).sort((x, y) => x - y); return s[s.length >> 1].toFixed(2); };
console.log(`median: A change→ws send ${med(0)} ms; A send→B ws message ${med(1)} ms; B message→change event ${med(2)} ms; total ${med(3)} ms`);
process.exit(0);
