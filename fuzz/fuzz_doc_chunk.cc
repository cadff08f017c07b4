// Fuzzes document chunks (src/automerge/doc_chunk.h). The input is a document chunk
// *body*; the target wraps it in a type-0 chunk (so the checksum is right), parses
// the chunk and decodes the document. Whenever decoding succeeds, the op-order check
// and expansion must not crash (expansion may fail), loading the expansion into an
// empty change graph (its fast path) must give the same changes, and encoding the
// document, compressed or not, must decode back to the same document.
#include <cstdint>
#include <cstdlib>

#include "automerge/change_graph.h"
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
  (void)has_canonical_op_order(*doc);
  auto changes = expand_document(*doc, document_expansion_limit(size));
  if (changes.ok()) {
    if (changes->size() != doc->changes.size()) std::abort();
    const size_t n = changes->size();
    const ChangeHash last = n ? (*changes)[n - 1].hash : ChangeHash{};
    ChangeGraph graph;
    if (graph.load_document(*doc, std::move(*changes)).ok()) {
      if (graph.size() != n || (n && graph.hash(static_cast<ChangeGraph::Index>(n - 1)) != last)) std::abort();
    } else if (!graph.empty()) {
      std::abort();  // a failed load leaves the graph as it was
    }
  }
  check_round_trip(*doc, false);
  check_round_trip(*doc, true);
  return 0;
}
