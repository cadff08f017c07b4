// Fuzzes document chunks (src/automerge/doc_chunk.h). The input is a document chunk
// *body*; the target wraps it in a type-0 chunk (so the checksum is right), parses
// the chunk and decodes the document. Whenever decoding succeeds, expansion must not
// crash (it may fail), and encoding the document, compressed or not, must decode back
// to the same document.
#include <cstdint>
#include <cstdlib>

#include "automerge/doc_chunk.h"

namespace {

using namespace gm;
using namespace gm::automerge;

// Keeps a tiny input from claiming millions of rows (each one allocated).
constexpr size_t kFuzzMaxRows = 1 << 14;

void check_round_trip(const DecodedDocument& doc, bool compress) {
  Bytes encoded = encode_document(doc, compress);
  size_t consumed = 0;
  auto chunk = parse_chunk(encoded, &consumed);
  if (!chunk.ok() || consumed != encoded.size() || chunk->type != ChunkType::kDocument) std::abort();
  auto again = decode_document(chunk->body, kFuzzMaxRows);
  if (!again.ok() || !(*again == doc)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes chunk_bytes = make_chunk(ChunkType::kDocument, ByteView(data, size));
  size_t consumed = 0;
  auto chunk = parse_chunk(chunk_bytes, &consumed);
  if (!chunk.ok() || consumed != chunk_bytes.size()) std::abort();  // a well-formed container
  auto doc = decode_document(chunk->body, kFuzzMaxRows);
  if (!doc.ok()) return 0;
  auto changes = expand_document(*doc);
  if (changes.ok() && changes->size() != doc->changes.size()) std::abort();
  check_round_trip(*doc, false);
  check_round_trip(*doc, true);
  return 0;
}
