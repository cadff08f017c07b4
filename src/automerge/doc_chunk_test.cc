#include "automerge/doc_chunk.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "util/hex.h"

namespace gm::automerge {
namespace {

// Spec §5(b): {"title":"hi","n":1,"list":[1,2],"text":"hey"}, saved by npm 3.5.0.
constexpr const char* kSpecDocHex =
    "856f4a838d69fa7e00bd0101100123456789abcdef0123456789abcdef01872484f70ef791c30d8e3dea8d59d5864f036772f683fc05ef9"
    "27c4d95bd022b060102030213022302400256020c010402061108130815152102230a34024206560957088001027f007f017f097f007f00"
    "7f070004050000040203030600057f000001020000047b00047c07017c046c697374016e0474657874057469746c650005090079037f04"
    "7b030102020104057d02010406017c00140026021403160168690102686579090000";
constexpr const char* kSpecDocChangeHex =
    "856f4a83872484f701890100100123456789abcdef0123456789abcdef01010000000a010802081108130b15183404420a560a57087002"
    "0003020000010300000302030001030600047f000002020000037e000400017d7c07017d057469746c65016e046c69737400027f047465"
    "787400030302010302017f0202017f0403017d26140002147f00031668690101026865790900";

Bytes hex_bytes(std::string_view hex) { return *from_hex(hex); }

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return Bytes(s.begin(), s.end());
}

// Decodes a file holding exactly one document chunk.
Result<DecodedDocument> decode_file_chunk(ByteView data) {
  size_t consumed = 0;
  GM_ASSIGN_OR_RETURN(Chunk chunk, parse_chunk(data, &consumed));
  if (chunk.type != ChunkType::kDocument) return error("not a document chunk");
  return decode_document(chunk.body);
}

TEST(DocChunk, DecodesSpecVector) {
  Bytes doc_bytes = hex_bytes(kSpecDocHex);
  auto doc = decode_file_chunk(doc_bytes);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  ASSERT_EQ(doc->actors.size(), 1u);
  EXPECT_EQ(to_hex(doc->actors[0]), "0123456789abcdef0123456789abcdef");
  ASSERT_EQ(doc->heads.size(), 1u);
  EXPECT_EQ(doc->heads[0].hex(), "872484f70ef791c30d8e3dea8d59d5864f036772f683fc05ef927c4d95bd022b");
  ASSERT_EQ(doc->changes.size(), 1u);
  const auto& c = doc->changes[0];
  EXPECT_EQ(c.actor, 0u);
  EXPECT_EQ(c.seq, 1u);
  EXPECT_EQ(c.max_op, 9u);
  EXPECT_EQ(c.time, 0);
  EXPECT_TRUE(c.deps.empty());
  EXPECT_TRUE(c.extra.empty());
  ASSERT_EQ(doc->ops.size(), 9u);
  // Root ops by key (list, n, text, title), then the list's and the text's elements.
  EXPECT_EQ(doc->ops[0].key.map_key, "list");
  EXPECT_EQ(doc->ops[0].id.counter, 3u);
  EXPECT_EQ(doc->ops[3].key.map_key, "title");
  EXPECT_EQ(doc->ops[3].value.bytes, "hi");
  EXPECT_EQ(doc->ops[4].obj.counter, 3u);
  EXPECT_TRUE(doc->ops[4].insert);
  EXPECT_EQ(doc->ops[4].key.elem.counter, 0u);  // HEAD
  EXPECT_EQ(doc->ops[8].value.bytes, "y");
  EXPECT_EQ(doc->heads_index, std::vector<uint64_t>{0});
}

TEST(DocChunk, ReencodesSpecVectorExactly) {
  Bytes doc_bytes = hex_bytes(kSpecDocHex);
  auto doc = decode_file_chunk(doc_bytes);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ(to_hex(encode_document(*doc, false)), kSpecDocHex);
  EXPECT_EQ(to_hex(encode_document(*doc, true)), kSpecDocHex);  // no column reaches 256 bytes
}

TEST(DocChunk, EmptyDocument) {
  DecodedDocument empty;
  EXPECT_EQ(to_hex(encode_document(empty)), "856f4a83b81a9544000400000000");
  auto doc = decode_file_chunk(hex_bytes("856f4a83b81a9544000400000000"));
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_TRUE(doc->changes.empty());
  EXPECT_TRUE(doc->ops.empty());
}

// Every truncation and every single-byte corruption of the body is either rejected
// with a message or decodes to something that re-encodes and decodes to itself.
TEST(DocChunk, CorruptBodiesFailCleanly) {
  Bytes doc_bytes = hex_bytes(kSpecDocHex);
  size_t consumed;
  auto chunk = parse_chunk(doc_bytes, &consumed);
  ASSERT_TRUE(chunk.ok());
  Bytes body(chunk->body.begin(), chunk->body.end());
  auto check = [](ByteView b) {
    auto doc = decode_document(b);
    if (!doc.ok()) {
      EXPECT_FALSE(doc.error().message.empty());
      return;
    }
    auto again = decode_document(encode_document_body(*doc, false));
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_TRUE(*again == *doc);
  };
  for (size_t n = 0; n < body.size(); ++n) check(ByteView(body).first(n));
  for (size_t i = 0; i < body.size(); ++i) {
    for (uint8_t x : {0x01, 0x7f, 0x80, 0xff}) {
      Bytes b = body;
      b[i] ^= x;
      check(b);
    }
  }
}

TEST(DocChunk, RejectsBadIndexes) {
  DecodedDocument doc;
  doc.actors = {Bytes{1}};
  doc.changes.resize(2);
  doc.changes[0].seq = 1;
  doc.changes[1].seq = 2;
  doc.changes[1].deps = {1};  // not an earlier row
  auto r = decode_document(encode_document_body(doc, false));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("dep index 1"), std::string::npos) << r.error().message;

  doc.changes[1].deps = {0};
  doc.changes[1].actor = 1;  // only one actor
  r = decode_document(encode_document_body(doc, false));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("actor index 1"), std::string::npos) << r.error().message;
}

TEST(DocChunk, DecodesPerfDocuments) {
  for (const char* name : {"text-doc-50k.amrg", "text-doc.amrg"}) {
    SCOPED_TRACE(name);
    Bytes data = read_file(std::string(GM_SHARED_DIR) + "/data/automerge-perf/" + name);
    ASSERT_FALSE(data.empty());
    auto start = std::chrono::steady_clock::now();
    auto doc = decode_file_chunk(data);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(doc.ok()) << doc.error().message;
    std::printf("%s: %zu actors, %zu changes, %zu ops, %zu heads (index %s), decode %.1f ms\n", name,
                doc->actors.size(), doc->changes.size(), doc->ops.size(), doc->heads.size(),
                doc->heads_index.empty() ? "absent" : "present", ms);
    // Re-encoding (compressed or not) decodes to the same document.
    for (bool compress : {false, true}) {
      auto again = decode_document(encode_document_body(*doc, compress));
      ASSERT_TRUE(again.ok()) << again.error().message;
      EXPECT_TRUE(*again == *doc);
    }
  }
}

}  // namespace
}  // namespace gm::automerge
