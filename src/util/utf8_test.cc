#include "util/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace gm {
namespace {

TEST(Utf8, AcceptsWhatRfc3629Allows) {
  for (const char* ok : {"", "plain", "héllo", "✓", "𝄞", "\xed\x9f\xbf" /* U+D7FF */, "\xee\x80\x80" /* U+E000 */,
                         "\xf4\x8f\xbf\xbf" /* U+10FFFF */}) {
    EXPECT_TRUE(is_valid_utf8(ok)) << ok;
  }
  EXPECT_EQ(utf8_sequence_length("a"), 1u);
  EXPECT_EQ(utf8_sequence_length("é!"), 2u);
  EXPECT_EQ(utf8_sequence_length("𝄞"), 4u);
}

TEST(Utf8, RefusesOverlongSurrogatesAndTruncation) {
  for (const char* bad : {"\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xed\xa0\x80" /* U+D800 */,
                          "\xed\xbf\xbf", "\xf4\x90\x80\x80" /* > U+10FFFF */, "\xf5\x80\x80\x80", "\xff", "\x80",
                          "\xe2\x9c", "a\xc3"}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << std::string(bad).size();
  }
  EXPECT_EQ(utf8_sequence_length(""), 0u);
  EXPECT_EQ(utf8_sequence_length("\xe2\x9c"), 0u);
}

}  // namespace
}  // namespace gm
