// Fuzzes the change codec (src/automerge/change.h). The input is a change chunk
// *body*; the target wraps it in a type-1 chunk (so the checksum is right), parses
// the chunk and decodes the change. Whenever decoding succeeds, re-encoding must give
// back the input exactly (strict mode) and count_change_ops must give its op count,
// and a change accepted in lenient mode must re-encode to a canonical body that strict
// decoding accepts and reproduces.
#include <cstdint>
#include <cstdlib>

#include "automerge/change.h"

namespace {

using namespace gm;
using namespace gm::automerge;

// Keeps a tiny input from claiming millions of ops (each one allocated).
constexpr size_t kFuzzMaxOps = 1 << 16;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes chunk_bytes = make_chunk(ChunkType::kChange, ByteView(data, size));
  auto chunks = parse_chunks(chunk_bytes);
  if (!chunks.ok() || chunks->size() != 1) std::abort();  // a well-formed container
  ByteView body = (*chunks)[0].body;

  ChangeDecodeOptions strict;
  strict.max_ops = kFuzzMaxOps;
  auto change = decode_change(body, strict);
  if (change.ok()) {
    Bytes again = encode_change_body(*change);
    if (again.size() != body.size() || !std::equal(again.begin(), again.end(), body.begin())) std::abort();
  }

  // The op count read without decoding (what a change graph checks its limit with)
  // is the decoded count whenever decoding succeeds.
  auto count = count_change_ops(body, kFuzzMaxOps);
  if (change.ok() && (!count.ok() || *count != change->ops.size())) std::abort();

  ChangeDecodeOptions lenient = strict;
  lenient.require_canonical = false;
  auto loose = decode_change(body, lenient);
  if (change.ok() && !loose.ok()) std::abort();  // lenient accepts a superset
  if (loose.ok()) {
    Bytes canonical = encode_change_body(*loose);
    auto reparsed = decode_change(canonical, strict);
    if (!reparsed.ok()) std::abort();
    if (encode_change_body(*reparsed) != canonical) std::abort();
  }
  return 0;
}
