#include "automerge/columns.h"

#include <gtest/gtest.h>

#include "util/hex.h"

namespace gm::automerge {
namespace {

std::string encode_uleb(const std::vector<std::optional<uint64_t>>& values) {
  UlebEncoder e;
  for (auto& v : values) e.append(v);
  return to_hex(e.finish());
}

std::vector<std::optional<uint64_t>> decode_uleb(const std::string& hex, size_t n) {
  Bytes b = *from_hex(hex);
  UlebDecoder d(b);
  std::vector<std::optional<uint64_t>> out(n);
  for (auto& v : out) EXPECT_TRUE(d.next(&v));
  EXPECT_TRUE(d.done());
  return out;
}

TEST(Rle, CanonicalEncoding) {
  using V = std::vector<std::optional<uint64_t>>;
  EXPECT_EQ(encode_uleb(V{}), "");
  EXPECT_EQ(encode_uleb(V{std::nullopt, std::nullopt}), "");  // all null: omitted
  EXPECT_EQ(encode_uleb(V{5}), "7f05");
  EXPECT_EQ(encode_uleb(V{5, 5}), "0205");
  EXPECT_EQ(encode_uleb(V{1, 2, 3}), "7d010203");
  EXPECT_EQ(encode_uleb(V{1, 2, 2}), "7f010202");
  EXPECT_EQ(encode_uleb(V{std::nullopt, 1}), "00017f01");
  EXPECT_EQ(encode_uleb(V{1, std::nullopt}), "7f010001");
  EXPECT_EQ(encode_uleb(V{1, 1, std::nullopt, std::nullopt, 3}), "020100027f03");
}

TEST(Rle, DecodesWhatItEncodes) {
  std::vector<std::optional<uint64_t>> values = {std::nullopt, 1, 1, 2, 3, std::nullopt, 4, 4, 4, 5};
  EXPECT_EQ(decode_uleb(encode_uleb(values), values.size()), values);
}

TEST(Delta, SpecExample) {
  DeltaEncoder e;
  for (int64_t v : {3, 4, 5, 6, 9, 7, 8}) e.append(v);
  Bytes b = e.finish();
  EXPECT_EQ(to_hex(b), "7f0303017d037e01");
  DeltaDecoder d(b);
  for (int64_t v : {3, 4, 5, 6, 9, 7, 8}) {
    std::optional<int64_t> got;
    ASSERT_TRUE(d.next(&got));
    EXPECT_EQ(got, v);
  }
}

TEST(Boolean, SpecExamples) {
  BooleanEncoder e;
  for (bool v : {true, true, false, false, false}) e.append(v);
  EXPECT_EQ(to_hex(e.finish()), "000203");
  for (int i = 0; i < 3; ++i) e.append(false);
  EXPECT_EQ(to_hex(e.finish()), "03");
  EXPECT_EQ(to_hex(e.finish()), "");
}

TEST(Value, SpecExamples) {
  ValueEncoder e;
  Value s{.type = 6, .bytes = "hi"};
  Value i{.type = 4, .int_value = 1};
  Value c{.type = 8, .int_value = 5};
  Value n{};
  Value emoji{.type = 6, .bytes = "\xF0\x9F\x98\x80"};
  for (const Value& v : {s, i, c, n, emoji}) e.append(v);
  Bytes meta, raw;
  e.finish(meta, raw);
  EXPECT_EQ(to_hex(meta), "7b2614180046");
  EXPECT_EQ(to_hex(raw), "68690105f09f9880");
  ValueDecoder d(meta, raw);
  for (const Value& v : {s, i, c, n, emoji}) {
    Value got;
    ASSERT_TRUE(d.next(&got));
    EXPECT_EQ(got, v);
  }
}

TEST(Rle, CountsRowsFromRunHeaders) {
  auto count = [](const std::string& hex, uint64_t limit) { return count_uleb_rle_rows(*from_hex(hex), limit); };
  // 3 × 7, then a literal run of 2, then 4 nulls: 9 rows.
  EXPECT_EQ(*count("0307" "7e0102" "0004", 100), 9u);
  EXPECT_EQ(*count("", 100), 0u);
  // Over the limit: some number above it, without visiting the rows.
  EXPECT_EQ(*count("0307" "7e0102" "0004", 8), 9u);
  EXPECT_EQ(*count("0307" "7e0102" "0004", 4), 5u);
  // A run of 2^62 rows in a few bytes.
  Bytes huge;
  put_sleb(huge, int64_t{1} << 62);
  put_uleb(huge, 1);
  EXPECT_EQ(*count_uleb_rle_rows(huge, 1000), 1001u);
  EXPECT_EQ(*count_uleb_rle_rows(huge, UINT64_MAX), uint64_t{1} << 62);
  // Malformed: a literal run longer than the bytes left, a truncated value or header.
  EXPECT_FALSE(count("7a01", 100).ok());
  EXPECT_FALSE(count("0380", 100).ok());
  EXPECT_FALSE(count("00", 100).ok());
}

TEST(Rle, MalformedInputIsAnErrorNotACrash) {
  for (const char* hex : {"7f", "05", "00", "0000", "7e01", "80"}) {
    Bytes b = *from_hex(hex);
    UlebDecoder d(b);
    std::optional<uint64_t> v;
    bool ok = true;
    for (int i = 0; i < 4 && ok; ++i) ok = d.next(&v);
    EXPECT_FALSE(ok) << hex;
    EXPECT_TRUE(d.error().has_value()) << hex;
  }
}

}  // namespace
}  // namespace gm::automerge
