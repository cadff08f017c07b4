// Fuzzes bundle chunks (src/automerge/bundle.h). The input is a bundle chunk *body*;
// the target wraps it in a type-3 chunk (so the checksum is right) and rebuilds its
// changes. Whenever that succeeds, every rebuilt chunk must be a change chunk with
// the hash given for it that decodes, and loading the chunk into a document (which
// applies the changes' ops) must not crash (it may fail: an op may name an object
// the changes never made).
#include <cstdint>
#include <cstdlib>

#include "automerge/bundle.h"
#include "automerge/document.h"

namespace {

using namespace gm;
using namespace gm::automerge;

// Keeps a tiny input from claiming millions of rows (each one allocated).
constexpr size_t kFuzzMaxRows = 1 << 14;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes chunk_bytes = make_chunk(ChunkType::kBundle, ByteView(data, size));
  size_t consumed = 0;
  auto chunk = parse_chunk(chunk_bytes, &consumed);
  if (!chunk.ok() || consumed != chunk_bytes.size() || chunk->type != ChunkType::kBundle) std::abort();
  auto changes = expand_bundle(chunk->body, kFuzzMaxRows, document_expansion_limit(size));
  if (!changes.ok()) return 0;
  ChangeDecodeOptions options;
  options.max_ops = kFuzzMaxRows;
  for (const RebuiltChange& rc : *changes) {
    auto c = parse_chunk(rc.chunk, &consumed);
    if (!c.ok() || consumed != rc.chunk.size() || c->type != ChunkType::kChange || c->hash != rc.hash) std::abort();
    if (!decode_change(c->body, options).ok()) std::abort();
  }
  (void)Document::load(chunk_bytes);
  return 0;
}
