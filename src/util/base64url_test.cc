#include "util/base64url.h"

#include <gtest/gtest.h>

namespace gm {
namespace {

TEST(Base64Url, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : cases) {
    EXPECT_EQ(base64url_encode(as_bytes(plain)), encoded);
    auto back = base64url_decode(encoded);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(as_string(*back), plain);
  }
  Bytes url_chars = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(base64url_encode(url_chars), "-_-_");
}

TEST(Base64Url, Strict) {
  EXPECT_FALSE(base64url_decode("Zm9v=").ok());
  EXPECT_FALSE(base64url_decode("Zm+v").ok());
  EXPECT_FALSE(base64url_decode("Z").ok());
  EXPECT_FALSE(base64url_decode("Zh").ok());  // non-zero trailing bits ("Zg" is canonical)
  EXPECT_FALSE(base64url_decode("Zm 9v").ok());
}

}  // namespace
}  // namespace gm
