// Loads every store folder the fault tests kept (GM_FAULT_KEEP, see
// src/repo/group_repo_fault_test.cc) with the JS reference: automerge-repo 2.5.6's
// NodeFSStorageAdapter and automerge 3.5.0. Each <dir>/<case>/ holds `store/` (a group
// folder as compaction left it after a fault) and `expected.txt` (the document id, then
// its heads). Fails unless every document loads with exactly those heads.
//   node tools/load_folders.mjs <dir>
import { Repo } from "@automerge/automerge-repo"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import * as A from "@automerge/automerge"
import fs from "node:fs"
import path from "node:path"

const [dir] = process.argv.slice(2)
if (!dir) {
  console.error("usage: load_folders.mjs <dir>")
  process.exit(2)
}
const cases = fs.readdirSync(dir).sort()
if (cases.length === 0) {
  console.error(`no folders in ${dir}`)
  process.exit(1)
}
let failed = 0
for (const name of cases) {
  const [docId, ...heads] = fs.readFileSync(path.join(dir, name, "expected.txt"), "utf8").trim().split("\n")
  const repo = new Repo({ storage: new NodeFSStorageAdapter(path.join(dir, name, "store")), network: [],
                          sharePolicy: async () => false })
  let got
  try {
    const handle = await repo.find(`automerge:${docId}`)
    got = [...A.getHeads(handle.doc())].sort()
  } catch (e) {
    got = `cannot load: ${e.message}`
  }
  if (JSON.stringify(got) !== JSON.stringify(heads)) {
    failed++
    console.error(`${name}: expected heads ${heads.join(",")}, got ${JSON.stringify(got)}`)
  }
  await repo.shutdown()
}
console.log(`${cases.length - failed} of ${cases.length} folders load in the JS reference with their heads`)
process.exit(failed ? 1 : 0)
