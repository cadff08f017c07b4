// The real automerge-repo 2.5.6 NodeFS storage, to check our DocumentStore against it.
// Run from tests/interop:
//   node tools/nodefs_write.mjs write <dir>          stores one document, prints
//                                                    {"documentId", "storageId", "files"}
//   node tools/nodefs_write.mjs read <dir> <docId>   loads it back through NodeFS, prints
//                                                    {"storageId", "doc"} (doc = its JSON)
import { Repo } from "@automerge/automerge-repo"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import fs from "node:fs"
import path from "node:path"

const [mode, dir, docId] = process.argv.slice(2)
if (!mode || !dir || (mode === "read" && !docId)) {
  console.error("usage: nodefs_write.mjs write <dir> | read <dir> <documentId>")
  process.exit(2)
}

const storage = new NodeFSStorageAdapter(dir)
const repo = new Repo({ storage, network: [], sharePolicy: async () => false })
const storageId = await repo.storageId()

if (mode === "write") {
  // Big enough (> 1 KiB snapshot) that the second save is an incremental file, so the
  // folder holds both kinds (spec/automerge.md §4.2).
  let body = ""
  for (let i = 0; i < 1500; i++) body += ((i * 7919) % 1000).toString(36)
  const handle = repo.create({ title: "hello from nodefs", n: 42, list: [1, 2, 3], body })
  await repo.flush()
  handle.change((d) => { d.n = 43 })
  await repo.flush()
  const files = []
  const walk = (p) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const full = path.join(p, e.name)
      if (e.isDirectory()) walk(full)
      else files.push(path.relative(dir, full))
    }
  }
  walk(dir)
  console.log(JSON.stringify({ documentId: handle.documentId, storageId, files: files.sort() }))
} else {
  const handle = await repo.find(docId)
  console.log(JSON.stringify({ storageId, doc: handle.doc() }))
}
await repo.shutdown()
