// Probes how npm automerge treats odd change chunks (development aid for the change codec).
import * as A from "@automerge/automerge";
import * as A2 from "automerge-2";
import { createHash } from "crypto";
const a1 = "856f4a83913f8185013400100123456789abcdef0123456789abcdef0101000000061507340142025602570270027f057469746c65017f017f2668697f00";
function rechunk(hex) {
  const b = Buffer.from(hex, "hex");
  const body = b.subarray(10);
  const h = createHash("sha256").update(Buffer.concat([Buffer.from([1, body.length]), body])).digest();
  h.copy(b, 4, 0, 4);
  return new Uint8Array(b);
}
function tryAll(name, hex) {
  const c = rechunk(hex);
  for (const [lib, M] of [["3.5.0", A], ["2.2.8", A2]]) {
    let r = [];
    try { r.push("decode:" + JSON.stringify(M.decodeChange(c).ops)); } catch (e) { r.push("decode ERR " + e.message); }
    try { const [d] = M.applyChanges(M.init(), [c]); r.push("apply:" + JSON.stringify(M.toJS(d)) + " heads " + M.getHeads(d).length); } catch (e) { r.push("apply ERR " + e.message); }
    try { const d = M.loadIncremental(M.init(), c); r.push("loadInc:" + JSON.stringify(M.toJS(d))); } catch (e) { r.push("loadInc ERR " + e.message); }
    console.log(name, lib, r.join(" | "));
  }
}
tryAll("orig", a1);
tryAll("action8", a1.replace("65017f017f26", "65017f087f26"));
tryAll("action5str", a1.replace("65017f017f26", "65017f057f26"));
// non-canonical: action column "7f01" -> "0101"? (run of 1 as repeat run)
tryAll("noncanon-run1", a1.replace("65017f017f26", "6501" + "0101" + "7f26"));
tryAll("badutf8-key", a1.replace("7f057469746c65", "7f0574ff746c65"));
tryAll("badutf8-value", a1.replace("7f266869", "7f26ff69"));
// actor index out of range: obj actor column not present; add pred with actor 5? use key actor instead: too complex, skip
// empty column present with length 0 (extra metadata entry 0x01 length 0)
tryAll("emptycol", a1.replace("00061507", "00070100" + "1507").replace(/^(.{18})34/, "$135"));
// Two deps in descending order (the change graph would treat them as missing; only parsing is probed).
{
  const body = Buffer.from(a1, "hex").subarray(10);
  const hi = "ff".repeat(32), lo = "11".repeat(32);
  const b2 = Buffer.concat([Buffer.from("02" + hi + lo, "hex"), body.subarray(1)]);
  const hdr = Buffer.from("856f4a830000000001", "hex");
  const len = b2.length < 128 ? Buffer.from([b2.length]) : Buffer.from([(b2.length & 0x7f) | 0x80, b2.length >> 7]);
  const chunk = Buffer.concat([hdr, len, b2]);
  const h = createHash("sha256").update(Buffer.concat([Buffer.from([1]), len, b2])).digest();
  h.copy(chunk, 4, 0, 4);
  for (const [lib, M] of [["3.5.0", A], ["2.2.8", A2]]) {
    try { console.log("unsorted-deps", lib, "decode:", JSON.stringify(M.decodeChange(new Uint8Array(chunk)).deps)); } catch (e) { console.log("unsorted-deps", lib, "decode ERR", e.message); }
  }
}
