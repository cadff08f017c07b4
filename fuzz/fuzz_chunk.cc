// Fuzzes the chunk container parser (src/automerge/chunk.h): any bytes must parse to
// chunks or an Error without crashing, and every parsed chunk must be consistent:
// its hash is the hash of its (type-1) header and body, and make_chunk rebuilds it.
//
// Random bytes almost never carry a valid checksum, so each input is also parsed
// with its checksums repaired (chunk headers walked as the parser would), which lets
// the fuzzer reach the length, type and DEFLATE paths behind the checksum.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "automerge/chunk.h"
#include "automerge/leb.h"

namespace {

using namespace gm;
using namespace gm::automerge;

void check(ByteView data) {
  auto chunks = parse_chunks(data);
  if (!chunks.ok()) return;
  for (const Chunk& c : *chunks) {
    // A compressed change comes out inflated, as a change.
    if (c.type != ChunkType::kDocument && c.type != ChunkType::kChange && c.type != ChunkType::kBundle) std::abort();
    if (!(chunk_hash(c.type, c.body) == c.hash)) std::abort();
    Bytes rebuilt = make_chunk(c.type, c.body);
    if (rebuilt.size() != c.bytes.size() || std::memcmp(rebuilt.data(), c.bytes.data(), rebuilt.size()) != 0) {
      std::abort();
    }
  }
}

// Rewrites each chunk's checksum to the one the parser expects.
Bytes repair_checksums(ByteView data) {
  Bytes out(data.begin(), data.end());
  size_t pos = 0;
  while (pos + 9 <= out.size() && std::memcmp(out.data() + pos, kChunkMagic.data(), 4) == 0) {
    uint8_t type = out[pos + 8];
    size_t p = pos + 9;
    uint64_t len;
    if (!read_uleb(out, &p, &len) || len > out.size() - p) break;
    ByteView body(out.data() + p, len);
    ChangeHash h;
    if (type == static_cast<uint8_t>(ChunkType::kCompressedChange)) {
      auto inflated = inflate_raw(body, size_t{1} << 24);
      if (!inflated.ok()) break;
      h = chunk_hash(ChunkType::kChange, *inflated);
    } else {
      h = chunk_hash(static_cast<ChunkType>(type), body);
    }
    std::memcpy(out.data() + pos + 4, h.bytes.data(), 4);
    pos = p + len;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(data, size);
  check(input);
  check(repair_checksums(input));
  return 0;
}
