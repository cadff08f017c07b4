#include "automerge/chunk.h"

#include <libdeflate.h>

#include <cstring>

#include "automerge/leb.h"
#include "util/sha256.h"

namespace gm::automerge {

Result<ChangeHash> ChangeHash::from_hex(std::string_view hex) {
  if (hex.size() != 64) return error("a change hash is 64 hex digits, got " + std::to_string(hex.size()));
  GM_ASSIGN_OR_RETURN(Bytes b, gm::from_hex(hex));
  return from_bytes(b);
}

ChangeHash ChangeHash::from_bytes(ByteView b) {
  ChangeHash h;
  std::memcpy(h.bytes.data(), b.data(), 32);
  return h;
}

ChangeHash chunk_hash(ChunkType type, ByteView body) {
  uint8_t header[11];
  header[0] = static_cast<uint8_t>(type);
  size_t n = 1;
  for (uint64_t len = body.size();; len >>= 7) {
    header[n++] = static_cast<uint8_t>((len & 0x7f) | (len >= 0x80 ? 0x80 : 0));
    if (len < 0x80) break;
  }
  thread_local Sha256 sha;
  sha.reset();
  sha.update(ByteView(header, n));
  sha.update(body);
  ChangeHash h;
  h.bytes = sha.finish();
  return h;
}

Bytes make_chunk(ChunkType type, ByteView body, ChangeHash* hash) {
  Bytes out;
  out.reserve(body.size() + 18);
  append_chunk(out, type, body, hash);
  return out;
}

void append_chunk(Bytes& out, ChunkType type, ByteView body, ChangeHash* hash) {
  ChangeHash h = chunk_hash(type, body);
  for (uint8_t b : kChunkMagic) out.push_back(b);
  for (int i = 0; i < 4; ++i) out.push_back(h.bytes[i]);
  out.push_back(static_cast<uint8_t>(type));
  put_uleb(out, body.size());
  append(out, body);
  if (hash) *hash = h;
}

Result<Chunk> parse_chunk(ByteView data, size_t* consumed, size_t base_offset) {
  Reader r(data, base_offset);
  GM_ASSIGN_OR_RETURN(ByteView magic, r.bytes(4, "chunk magic"));
  if (std::memcmp(magic.data(), kChunkMagic.data(), 4) != 0) {
    return error("not an Automerge chunk (bad magic bytes) at byte " + std::to_string(base_offset));
  }
  GM_ASSIGN_OR_RETURN(ByteView checksum, r.bytes(4, "chunk checksum"));
  GM_ASSIGN_OR_RETURN(uint8_t type, r.byte());
  GM_ASSIGN_OR_RETURN(ByteView body, r.length_prefixed("chunk body"));
  *consumed = r.pos();

  Chunk c;
  c.offset = base_offset;
  if (type > 3) return error("unknown chunk type " + std::to_string(type) + " at byte " + std::to_string(base_offset));
  c.type = static_cast<ChunkType>(type);
  if (c.type == ChunkType::kCompressedChange) {
    auto inflated = inflate_raw(body);
    if (!inflated) return context("compressed change at byte " + std::to_string(base_offset), inflated.error());
    c.owned = make_chunk(ChunkType::kChange, *inflated, &c.hash);
    if (std::memcmp(c.hash.bytes.data(), checksum.data(), 4) != 0) {
      return error(ErrorCode::kCorrupt, "checksum mismatch in compressed change at byte " + std::to_string(base_offset));
    }
    c.type = ChunkType::kChange;
    c.bytes = c.owned;
    c.body = ByteView(c.owned).subspan(c.owned.size() - inflated->size());
    return c;
  }
  c.hash = chunk_hash(c.type, body);
  if (std::memcmp(c.hash.bytes.data(), checksum.data(), 4) != 0) {
    return error(ErrorCode::kCorrupt, "checksum mismatch in chunk at byte " + std::to_string(base_offset) + " (corrupt data)");
  }
  c.bytes = data.first(r.pos());
  c.body = body;
  return c;
}

Bytes compress_change(ByteView change) {
  size_t pos = 9;  // magic, checksum, type
  uint64_t length = 0;
  if (change.size() < kCompressChangeMinSize || change.size() < pos || change[8] != uint8_t(ChunkType::kChange) ||
      !read_uleb(change, &pos, &length) || length != change.size() - pos) {
    return Bytes(change.begin(), change.end());
  }
  Bytes deflated = deflate_raw(change.subspan(pos));
  Bytes out(change.begin(), change.begin() + 8);  // magic and the type-1 checksum
  out.push_back(uint8_t(ChunkType::kCompressedChange));
  put_uleb(out, deflated.size());
  append(out, deflated);
  if (out.size() >= change.size()) return Bytes(change.begin(), change.end());
  return out;
}

Result<std::vector<Chunk>> parse_chunks(ByteView data) {
  std::vector<Chunk> chunks;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t consumed = 0;
    GM_ASSIGN_OR_RETURN(Chunk c, parse_chunk(data.subspan(pos), &consumed, pos));
    chunks.push_back(std::move(c));
    pos += consumed;
  }
  return chunks;
}

namespace {

// libdeflate's (de)compressors are reusable and not thread-safe: one per thread.
struct Compressor {
  libdeflate_compressor* c = libdeflate_alloc_compressor(kDeflateLevel);
  ~Compressor() { libdeflate_free_compressor(c); }
};
struct Decompressor {
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  ~Decompressor() { libdeflate_free_decompressor(d); }
};

}  // namespace

Bytes deflate_raw(ByteView data) {
  thread_local Compressor compressor;
  Bytes out(libdeflate_deflate_compress_bound(compressor.c, data.size()));
  out.resize(libdeflate_deflate_compress(compressor.c, data.data(), data.size(), out.data(), out.size()));
  return out;
}

Result<Bytes> inflate_raw(ByteView data, size_t max_size) {
  thread_local Decompressor decompressor;
  // The inflated size is not stored anywhere: guess, and grow the buffer until it fits.
  Bytes out(std::min(max_size, std::max<size_t>(4096, 4 * data.size())));
  while (true) {
    size_t in_used = 0, out_used = 0;
    libdeflate_result rc = libdeflate_deflate_decompress_ex(decompressor.d, data.data(), data.size(), out.data(),
                                                            out.size(), &in_used, &out_used);
    if (rc == LIBDEFLATE_SUCCESS) {
      if (in_used != data.size()) return error("trailing bytes after DEFLATE data");
      out.resize(out_used);
      // The guess may be up to 4 times too large: callers count size(), so hold no more.
      if (out.capacity() - out_used > out_used / 4) out.shrink_to_fit();
      return out;
    }
    if (rc != LIBDEFLATE_INSUFFICIENT_SPACE) return error("invalid or truncated DEFLATE data");
    if (out.size() >= max_size) {
      return limit_error("DEFLATE data inflates beyond the " + std::to_string(max_size) + "-byte limit");
    }
    // Each attempt starts over, so the old buffer's bytes are not kept (no copy, and
    // never two buffers at once).
    const size_t grown = out.size() > max_size / 4 ? max_size : out.size() * 4;
    Bytes().swap(out);
    out.resize(grown);
  }
}

}  // namespace gm::automerge
