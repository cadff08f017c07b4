#include "automerge/leb.h"

#include <gtest/gtest.h>

#include "util/hex.h"

namespace gm::automerge {
namespace {

Bytes uleb(uint64_t v) {
  Bytes b;
  put_uleb(b, v);
  return b;
}
Bytes sleb(int64_t v) {
  Bytes b;
  put_sleb(b, v);
  return b;
}

TEST(Leb, SpecExamples) {
  EXPECT_EQ(to_hex(uleb(129)), "8101");
  EXPECT_EQ(to_hex(sleb(-1)), "7f");
  EXPECT_EQ(to_hex(sleb(64)), "c000");
  EXPECT_EQ(to_hex(sleb(-2)), "7e");
  EXPECT_EQ(to_hex(sleb(-5)), "7b");
  EXPECT_EQ(to_hex(sleb(1700000000000)), "80d095ffbc31");
}

TEST(Leb, RoundTripsExtremes) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, UINT64_MAX, uint64_t{1} << 63}) {
    Bytes b = uleb(v);
    size_t pos = 0;
    uint64_t out;
    ASSERT_TRUE(read_uleb(b, &pos, &out));
    EXPECT_EQ(out, v);
    EXPECT_EQ(pos, b.size());
    EXPECT_EQ(uleb_size(v), b.size());
  }
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{63}, int64_t{-64}, int64_t{64}, int64_t{-65}, INT64_MAX, INT64_MIN}) {
    Bytes b = sleb(v);
    size_t pos = 0;
    int64_t out;
    ASSERT_TRUE(read_sleb(b, &pos, &out)) << v;
    EXPECT_EQ(out, v);
    EXPECT_EQ(pos, b.size());
  }
}

TEST(Leb, RejectsOverlongTruncatedAndOverflowing) {
  uint64_t u;
  int64_t s;
  for (const char* hex : {"8000", "80", "", "ffffffffffffffffff02", "ffffffffffffffffffff01"}) {
    Bytes b = *from_hex(hex);
    size_t pos = 0;
    EXPECT_FALSE(read_uleb(b, &pos, &u)) << hex;
  }
  for (const char* hex : {"8000", "ff7f", "80", "", "ffffffffffffffffff01"}) {
    Bytes b = *from_hex(hex);
    size_t pos = 0;
    EXPECT_FALSE(read_sleb(b, &pos, &s)) << hex;
  }
}

TEST(Reader, ReportsWhereInputEnds) {
  Bytes b = *from_hex("05aabb");
  Reader r(b, 100);
  auto v = r.length_prefixed("message");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.error().message.find("at byte 101"), std::string::npos) << v.error().message;
}

}  // namespace
}  // namespace gm::automerge
