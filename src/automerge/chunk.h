// The chunk container (spec/automerge.md §1.2, §1.4).
//
//   offset 0  4 bytes  magic 85 6f 4a 83
//          4  4 bytes  checksum: first 4 bytes of SHA-256(type ‖ uLEB(len) ‖ body)
//          8  1 byte   type: 0 document, 1 change, 2 compressed change, 3 bundle
//          9  uLEB     body length
//          …  body
//
// A file, storage blob or sync payload is any concatenation of chunks. For a change
// chunk the SHA-256 above is the change hash. A compressed change (type 2) carries
// the raw-DEFLATEd body of a type-1 chunk and that chunk's checksum; it is read by
// inflating and rebuilding the type-1 chunk.
#pragma once

#include <array>
#include <vector>

#include "automerge/types.h"

namespace gm::automerge {

enum class ChunkType : uint8_t { kDocument = 0, kChange = 1, kCompressedChange = 2, kBundle = 3 };

inline constexpr std::array<uint8_t, 4> kChunkMagic = {0x85, 0x6f, 0x4a, 0x83};

// Upper bound on what a single chunk may inflate to (a compressed change, or all the
// columns of a document chunk), so a small hostile input cannot exhaust memory: DEFLATE
// expands up to about 1000 times, so 256 KB can claim it. Far above any real
// document (the 260k-edit benchmark's columns inflate to about 1 MB).
inline constexpr size_t kMaxInflatedSize = size_t{256} << 20;

struct Chunk {
  ChunkType type = ChunkType::kChange;
  // The chunk as a type-0, 1 or 3 chunk: for documents, changes and bundles a view of
  // the input; for compressed changes, the rebuilt type-1 chunk held in `owned`.
  ByteView bytes;
  ByteView body;
  ChangeHash hash;  // SHA-256 of the (type-1) chunk; the change hash for changes
  Bytes owned;
  size_t offset = 0;  // where the chunk starts in the input

  Chunk() = default;
  // `bytes` and `body` may point into `owned`: a copy would point into the original.
  Chunk(const Chunk&) = delete;
  Chunk& operator=(const Chunk&) = delete;
  Chunk(Chunk&&) noexcept = default;
  Chunk& operator=(Chunk&&) noexcept = default;
};

// Parses one chunk at the start of `data`; *consumed is set to its length in `data`.
// Checks magic, length and checksum; inflates compressed changes. A bundle (type 3)
// is returned as it is (expand_bundle in bundle.h reads its body). `base_offset` only
// shifts positions in error messages.
Result<Chunk> parse_chunk(ByteView data, size_t* consumed, size_t base_offset = 0);

// Parses a concatenation of chunks. Empty input gives no chunks.
Result<std::vector<Chunk>> parse_chunks(ByteView data);

// Builds a chunk of `type` around `body` (header, checksum). Returns its hash via
// *hash when non-null.
Bytes make_chunk(ChunkType type, ByteView body, ChangeHash* hash = nullptr);
// The same chunk appended to `out`.
void append_chunk(Bytes& out, ChunkType type, ByteView body, ChangeHash* hash = nullptr);

// A type-1 change chunk as Automerge saves it: compressed (type 2, its body raw-DEFLATEd,
// its checksum kept) when the chunk is at least kCompressChangeMinSize bytes and that
// makes it smaller; otherwise unchanged. `change` must be a whole, checked type-1 chunk.
inline constexpr size_t kCompressChangeMinSize = 256;
Bytes compress_change(ByteView change);

// The header of a chunk whose body is `body`, as hashed: type ‖ uLEB(len) ‖ body.
ChangeHash chunk_hash(ChunkType type, ByteView body);

// Raw DEFLATE (RFC 1951, no zlib header), as Automerge uses for columns and type-2
// chunks (libdeflate). Level 3 of 12: the sizes of Automerge.save() (npm 3.5.0) within
// ±2% on the benchmark documents, at a third of zlib's default-level time.
inline constexpr int kDeflateLevel = 3;
Bytes deflate_raw(ByteView data);
Result<Bytes> inflate_raw(ByteView data, size_t max_size = kMaxInflatedSize);

}  // namespace gm::automerge
