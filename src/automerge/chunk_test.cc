#include "automerge/chunk.h"

#include <gtest/gtest.h>

#include "automerge/leb.h"
#include "util/hex.h"

namespace gm::automerge {
namespace {

// spec/automerge.md §5(a) and §5(b), produced by npm @automerge/automerge 3.5.0.
constexpr const char* kA1 =
    "856f4a83913f8185013400100123456789abcdef0123456789abcdef0101000000061507340142025602570270027f057469746c65017f01"
    "7f2668697f00";
constexpr const char* kA1Hash = "913f8185ebaccd6dedbb5f391d12abfbe1a0c112bb5476a37e90a21c420271ab";
constexpr const char* kA2 =
    "856f4a83227da37b016701913f8185ebaccd6dedbb5f391d12abfbe1a0c112bb5476a37e90a21c420271ab100123456789abcdef012345"
    "6789abcdef020280d095ffbc31016d0008150934014202560357037003710273027e057469746c65016e0202017e2618796f057e01007f"
    "007f01";
constexpr const char* kA2Hash = "227da37b4ffcac3c22799432866e25ef536b8e5a4134992e88e7a43654b09854";
constexpr const char* kDocB =
    "856f4a838d69fa7e00bd0101100123456789abcdef0123456789abcdef01872484f70ef791c30d8e3dea8d59d5864f036772f683fc05ef"
    "927c4d95bd022b060102030213022302400256020c010402061108130815152102230a34024206560957088001027f007f017f097f007f00"
    "7f070004050000040203030600057f000001020000047b00047c07017c046c697374016e0474657874057469746c650005090079037f047b"
    "030102020104057d02010406017c00140026021403160168690102686579090000";
constexpr const char* kEmptyDoc = "856f4a83b81a9544000400000000";

Bytes hex(const char* h) { return *from_hex(h); }

TEST(Chunk, ParsesChangeVectors) {
  for (auto [chunk_hex, hash_hex] : {std::pair{kA1, kA1Hash}, std::pair{kA2, kA2Hash}}) {
    Bytes bytes = hex(chunk_hex);
    size_t consumed = 0;
    auto c = parse_chunk(bytes, &consumed);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(consumed, bytes.size());
    EXPECT_EQ(c->type, ChunkType::kChange);
    EXPECT_EQ(c->hash.hex(), hash_hex);
    EXPECT_EQ(c->bytes.size(), bytes.size());
    EXPECT_EQ(c->bytes.data(), bytes.data());  // a view of the input, not a copy
    EXPECT_EQ(c->body.data(), bytes.data() + 10);
    EXPECT_EQ(c->body.size(), bytes.size() - 10);
    EXPECT_EQ(chunk_hash(ChunkType::kChange, c->body), c->hash);
    ChangeHash h;
    EXPECT_EQ(make_chunk(ChunkType::kChange, c->body, &h), bytes);
    EXPECT_EQ(h, c->hash);
  }
}

TEST(Chunk, ParsesDocumentsAndConcatenations) {
  Bytes doc = hex(kDocB);
  Bytes empty = hex(kEmptyDoc);
  Bytes a1 = hex(kA1);
  Bytes a2 = hex(kA2);
  Bytes all;
  for (const Bytes* b : {&doc, &a1, &empty, &a2}) append(all, *b);
  auto chunks = parse_chunks(all);
  ASSERT_TRUE(chunks.ok()) << chunks.error().message;
  ASSERT_EQ(chunks->size(), 4u);
  EXPECT_EQ((*chunks)[0].type, ChunkType::kDocument);
  EXPECT_EQ((*chunks)[0].body.size(), 189u);  // §5(b): "body 189"
  EXPECT_EQ((*chunks)[1].type, ChunkType::kChange);
  EXPECT_EQ((*chunks)[1].hash.hex(), kA1Hash);
  EXPECT_EQ((*chunks)[1].offset, doc.size());
  EXPECT_EQ((*chunks)[2].type, ChunkType::kDocument);
  EXPECT_EQ(to_hex((*chunks)[2].body), "00000000");
  EXPECT_EQ((*chunks)[3].offset, doc.size() + a1.size() + empty.size());
  EXPECT_EQ((*chunks)[3].hash.hex(), kA2Hash);

  auto none = parse_chunks({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// A change compressed for storage reads back as the same change; small ones stay.
TEST(Chunk, CompressedChangesReadBackTheSame) {
  Bytes small = *from_hex(kA1);
  EXPECT_EQ(compress_change(small), small);
  Bytes body(4096, 'x');
  Bytes large = make_chunk(ChunkType::kChange, body);
  Bytes compressed = compress_change(large);
  ASSERT_LT(compressed.size(), large.size() / 10);
  EXPECT_EQ(compressed[8], uint8_t(ChunkType::kCompressedChange));
  size_t consumed = 0;
  auto chunk = parse_chunk(compressed, &consumed);
  ASSERT_TRUE(chunk.ok()) << chunk.error().message;
  EXPECT_EQ(consumed, compressed.size());
  EXPECT_EQ(Bytes(chunk->bytes.begin(), chunk->bytes.end()), large);
}

TEST(Chunk, ChecksumMismatch) {
  Bytes bytes = hex(kA1);
  Bytes bad_checksum = bytes;
  bad_checksum[5] ^= 1;
  auto r = parse_chunks(bad_checksum);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("checksum"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  // A corrupted body byte is caught by the checksum too.
  for (size_t i = 10; i < bytes.size(); ++i) {
    Bytes b = bytes;
    b[i] ^= 0x40;
    EXPECT_FALSE(parse_chunks(b).ok()) << "byte " << i;
  }
  // The second chunk of a concatenation: the error names its offset.
  Bytes two = bytes;
  append(two, bad_checksum);
  auto r2 = parse_chunks(two);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.error().message.find(std::to_string(bytes.size())), std::string::npos) << r2.error().message;
}

TEST(Chunk, BadMagic) {
  Bytes bytes = hex(kA1);
  for (size_t i = 0; i < 4; ++i) {
    Bytes b = bytes;
    b[i] ^= 0x01;
    auto r = parse_chunks(b);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("magic"), std::string::npos) << r.error().message;
  }
  // Trailing garbage after a valid chunk.
  Bytes trailing = bytes;
  trailing.push_back(0);
  EXPECT_FALSE(parse_chunks(trailing).ok());
}

TEST(Chunk, TruncationAtEveryByteFails) {
  for (const char* v : {kA1, kA2, kDocB, kEmptyDoc}) {
    Bytes bytes = hex(v);
    for (size_t n = 1; n < bytes.size(); ++n) {
      Bytes cut(bytes.begin(), bytes.begin() + n);
      EXPECT_FALSE(parse_chunks(cut).ok()) << v << " cut at " << n;
      // And a valid chunk followed by a truncated one.
      Bytes two = bytes;
      append(two, cut);
      EXPECT_FALSE(parse_chunks(two).ok()) << v << " second chunk cut at " << n;
    }
  }
}

TEST(Chunk, OversizedLengths) {
  Bytes bytes = hex(kA1);
  // Length one more than the body.
  Bytes longer = bytes;
  longer[9] = static_cast<uint8_t>(longer[9] + 1);
  EXPECT_FALSE(parse_chunks(longer).ok());
  // A 64-bit length.
  Bytes huge(bytes.begin(), bytes.begin() + 9);
  put_uleb(huge, UINT64_MAX);
  append(huge, ByteView(bytes).subspan(10));
  auto r = parse_chunks(huge);
  ASSERT_FALSE(r.ok());
  // A length that does not fit 64 bits, and an overlong (non-shortest) length.
  Bytes overflow(bytes.begin(), bytes.begin() + 9);
  for (int i = 0; i < 10; ++i) overflow.push_back(0xff);
  overflow.push_back(0x01);
  EXPECT_FALSE(parse_chunks(overflow).ok());
  Bytes overlong(bytes.begin(), bytes.begin() + 9);
  overlong.push_back(static_cast<uint8_t>(bytes[9] | 0x80));
  overlong.push_back(0x00);
  append(overlong, ByteView(bytes).subspan(10));
  EXPECT_FALSE(parse_chunks(overlong).ok());
}

TEST(Chunk, UnknownTypesAreRefusedAndBundlesParsed) {
  Bytes body = {0x00};
  // A bundle is parsed as a chunk (bundle.h reads its body).
  Bytes bundle = make_chunk(ChunkType::kBundle, body);
  auto b = parse_chunks(bundle);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->at(0).type, ChunkType::kBundle);
  EXPECT_EQ(b->at(0).body.size(), 1u);
  bundle[4] ^= 1;
  EXPECT_EQ(parse_chunks(bundle).error().code, ErrorCode::kCorrupt);
  Bytes unknown = make_chunk(static_cast<ChunkType>(4), body);
  auto r = parse_chunks(unknown);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("type 4"), std::string::npos) << r.error().message;
}

// A type-2 chunk: the type-1 body raw-DEFLATEd, with the type-1 checksum (§1.4).
Bytes compress_change(const Bytes& type1) {
  size_t consumed = 0;
  auto c = parse_chunk(type1, &consumed);
  EXPECT_TRUE(c.ok());
  Bytes deflated = deflate_raw(c->body);
  Bytes out(type1.begin(), type1.begin() + 8);  // magic + type-1 checksum
  out.push_back(static_cast<uint8_t>(ChunkType::kCompressedChange));
  put_uleb(out, deflated.size());
  append(out, deflated);
  return out;
}

TEST(Chunk, CompressedChangeParsesToTheSameHash) {
  for (auto [chunk_hex, hash_hex] : {std::pair{kA1, kA1Hash}, std::pair{kA2, kA2Hash}}) {
    Bytes type1 = hex(chunk_hex);
    Bytes type2 = compress_change(type1);
    size_t consumed = 0;
    auto c = parse_chunk(type2, &consumed);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(consumed, type2.size());
    EXPECT_EQ(c->type, ChunkType::kChange);
    EXPECT_EQ(c->hash.hex(), hash_hex);
    EXPECT_EQ(to_hex(c->bytes), to_hex(type1));  // the rebuilt type-1 chunk
    EXPECT_EQ(to_hex(c->body), to_hex(ByteView(type1).subspan(10)));

    // Inside a concatenation, and the moved-from chunk keeps its views valid.
    Bytes two = type2;
    append(two, type1);
    auto chunks = parse_chunks(two);
    ASSERT_TRUE(chunks.ok()) << chunks.error().message;
    ASSERT_EQ(chunks->size(), 2u);
    EXPECT_EQ((*chunks)[0].hash, (*chunks)[1].hash);
    EXPECT_EQ(to_hex((*chunks)[0].body), to_hex((*chunks)[1].body));

    // A wrong checksum, truncated DEFLATE data, garbage DEFLATE data.
    Bytes bad = type2;
    bad[4] ^= 1;
    EXPECT_FALSE(parse_chunks(bad).ok());
    for (size_t n = 1; n < type2.size(); ++n) {
      Bytes cut(type2.begin(), type2.begin() + n);
      EXPECT_FALSE(parse_chunks(cut).ok()) << "cut at " << n;
    }
    Bytes garbage(type2.begin(), type2.begin() + 9);
    Bytes junk = {0xff, 0xff, 0xff, 0xff};
    put_uleb(garbage, junk.size());
    append(garbage, junk);
    auto g = parse_chunks(garbage);
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.error().message.find("compressed"), std::string::npos) << g.error().message;
  }
}

TEST(Chunk, InflateLimit) {
  Bytes zeros(100000, 0);
  Bytes deflated = deflate_raw(zeros);
  EXPECT_LT(deflated.size(), 1000u);
  auto ok = inflate_raw(deflated);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok, zeros);
  auto limited = inflate_raw(deflated, 4096);
  ASSERT_FALSE(limited.ok());
  EXPECT_NE(limited.error().message.find("limit"), std::string::npos) << limited.error().message;
  // Trailing bytes after the DEFLATE stream.
  Bytes trailing = deflated;
  trailing.push_back(0);
  EXPECT_FALSE(inflate_raw(trailing).ok());
  EXPECT_FALSE(inflate_raw({}).ok());
}

}  // namespace
}  // namespace gm::automerge
