// Decodes CBOR frames with the exact decoder automerge-repo's WebSocket adapters use
// (`cbor.decode` from @automerge/automerge-repo = cbor-x) and prints each as JSON
// (byte strings, which decode as Uint8Array, as {"bytes": "<hex>"}, undefined as {"undefined": true}), so that our
// encoder's output can be checked against what real clients read.
// Usage (from tests/interop): node tools/cbor_check.mjs <hex> [<hex> ...]
//   or one hex frame per line on stdin. Exit status 1 if any frame fails to decode.
import { cbor } from "@automerge/automerge-repo"
import { readFileSync } from "node:fs"

function show(value) {
  // JSON.stringify drops undefined object members; walk first so they stay visible.
  const walk = (v) => {
    if (v === undefined) return { undefined: true }
    if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString("hex") }
    if (Array.isArray(v)) return v.map(walk)
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
    return v
  }
  return JSON.stringify(walk(value))
}

let frames = process.argv.slice(2)
if (frames.length === 0) frames = readFileSync(0, "utf8").split(/\s+/).filter(Boolean)
let failed = false
for (const hex of frames) {
  try {
    console.log(show(cbor.decode(Buffer.from(hex, "hex"))))
  } catch (e) {
    failed = true
    console.log(`ERROR ${e.message}`)
  }
}
process.exit(failed ? 1 : 0)
