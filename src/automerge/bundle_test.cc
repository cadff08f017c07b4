#include "automerge/bundle.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "automerge/document.h"

namespace gm::automerge {
namespace {

using nlohmann::json;

std::string testdata(const std::string& name) { return std::string(GM_SOURCE_DIR) + "/src/automerge/testdata/" + name; }

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return Bytes(s.begin(), s.end());
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::vector<std::string> hexes(std::span<const ChangeHash> hashes) {
  std::vector<std::string> out;
  for (const ChangeHash& h : hashes) out.push_back(h.hex());
  return out;
}

// The fixtures tests/interop/tools/bundle_fixtures.mjs writes: npm 3.5.0's saveBundle
// of every change of each document fixture.
std::vector<std::string> bundle_fixtures() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(testdata(""))) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("bundle_") && name.ends_with(".bundle") && name.find("_tail") == std::string::npos) {
      names.push_back(name.substr(0, name.size() - 7));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Bundle, NpmBundlesLoadWithNpmsHeadsAndJson) {
  const auto names = bundle_fixtures();
  ASSERT_GE(names.size(), 10u);
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const Bytes bytes = read_file(testdata(name + ".bundle"));
    const json want = read_json(testdata(name + ".json"));
    auto doc = Document::load(bytes);
    ASSERT_TRUE(doc.ok()) << doc.error().message;
    EXPECT_EQ(hexes(doc->heads()), want["heads"].get<std::vector<std::string>>());
    EXPECT_EQ(doc->to_json(), json::parse(want["json"].get<std::string>()));
    // The changes rebuilt byte for byte: npm's hashes, in the bundle's order.
    size_t consumed = 0;
    auto chunk = parse_chunk(bytes, &consumed);
    ASSERT_TRUE(chunk.ok());
    ASSERT_EQ(chunk->type, ChunkType::kBundle);
    auto rebuilt = expand_bundle(chunk->body);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().message;
    std::vector<std::string> hashes;
    for (const RebuiltChange& rc : *rebuilt) hashes.push_back(rc.hash.hex());
    EXPECT_EQ(hashes, want["hashes"].get<std::vector<std::string>>());
  }
}

// A bundle of the second half of a history: alone its changes wait for the first
// half (as npm's load with allowMissingChanges); after it, the document is npm's.
TEST(Bundle, APartialBundleAppliesAfterWhatItDependsOn) {
  const Bytes tail = read_file(testdata("bundle_branches_v3_tail.bundle"));
  const json want = read_json(testdata("bundle_branches_v3_tail.json"));
  auto alone = Document::load(tail);
  ASSERT_TRUE(alone.ok()) << alone.error().message;
  EXPECT_TRUE(alone->heads().empty());
  EXPECT_EQ(alone->graph().queued_count(), want["hashes"].size());

  const Bytes changes = read_file(testdata("doc_branches_v3.changes"));
  auto chunks = parse_chunks(changes);
  ASSERT_TRUE(chunks.ok());
  const auto base = want["base"].get<std::vector<std::string>>();
  Bytes first;
  for (const Chunk& c : *chunks) {
    if (std::find(base.begin(), base.end(), c.hash.hex()) != base.end()) append(first, c.bytes);
  }
  auto doc = Document::load(first);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  ASSERT_TRUE(doc->apply(tail).ok());
  EXPECT_EQ(hexes(doc->heads()), want["heads"].get<std::vector<std::string>>());
  EXPECT_EQ(doc->to_json(), json::parse(want["json"].get<std::string>()));
  // Chunks after a bundle in one input are read too.
  Bytes both = first;
  append(both, tail);
  auto together = Document::load(both);
  ASSERT_TRUE(together.ok()) << together.error().message;
  EXPECT_EQ(together->heads(), doc->heads());
}

// Every truncation and every single-byte change of a bundle body fails cleanly or
// rebuilds some changes; never a crash (the fuzz target goes further).
TEST(Bundle, DamagedBodiesFailCleanly) {
  for (const char* name : {"bundle_text_v3", "bundle_threshold_256_v3", "bundle_author_v3"}) {
    SCOPED_TRACE(name);
    const Bytes bytes = read_file(testdata(std::string(name) + ".bundle"));
    size_t consumed = 0;
    auto chunk = parse_chunk(bytes, &consumed);
    ASSERT_TRUE(chunk.ok());
    const Bytes body(chunk->body.begin(), chunk->body.end());
    for (size_t n = 0; n < body.size(); ++n) (void)expand_bundle(ByteView(body).first(n));
    for (size_t i = 0; i < body.size(); ++i) {
      for (uint8_t x : {0x01, 0x80, 0xff}) {
        Bytes b = body;
        b[i] ^= x;
        (void)expand_bundle(b);
      }
    }
  }
}

TEST(Bundle, RowClaimsPastTheLimitAreRefused) {
  const Bytes bytes = read_file(testdata("bundle_long_v3.bundle"));
  size_t consumed = 0;
  auto chunk = parse_chunk(bytes, &consumed);
  ASSERT_TRUE(chunk.ok());
  auto r = expand_bundle(chunk->body, /*max_rows=*/10);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("more"), std::string::npos) << r.error().message;
  r = expand_bundle(chunk->body, 0, /*max_bytes=*/100);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kOverLimit);
}

}  // namespace
}  // namespace gm::automerge
